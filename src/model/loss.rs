//! Losses ℓ(y, f), seen through what the numerics take from them. The risk is R = E ℓ(y, f);
//! in mean-field time (docs/architecture.md) the velocity carries the residual
//! r = −½ ∂ℓ/∂f at each sample (y − f for the square loss) and the Jacobian's low-rank part the
//! curvature c = ½ ∂²ℓ/∂f² (1 for the square loss):
//!   v_j = (1/(αn)) Σ_i r_i ∇σ*(x_i; θ_j),   ∂v_j/∂θ_k ∋ −(1/(nN)) Σ_i c_i ∇σ*_ij ∇σ*_ikᵀ.

use crate::expr::Expr;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt::Debug;
use std::sync::Arc;

pub trait Loss: Debug + Send + Sync {
    /// The loss as the archive and messages name it.
    fn name(&self) -> &str;
    /// ℓ(y, f).
    fn value(&self, y: f64, f: f64) -> f64;
    /// r = −½ ∂ℓ/∂f at the output f − f₀ (f₀: the initial output, when the model subtracts it).
    fn residual(&self, y: f64, f: f64, f0: Option<f64>) -> f64;
    /// c = ½ ∂²ℓ/∂f² at the output f − f₀.
    fn curvature(&self, y: f64, f: f64, f0: Option<f64>) -> f64;
    /// Whether c ≡ 1 (the square loss): the Jacobian then skips weighting its low-rank part,
    /// which leaves the square loss's arrays exactly as they were before losses were traits.
    fn unit_curvature(&self) -> bool {
        false
    }
    /// The mean of ℓ over paired targets and outputs (NaN when empty).
    fn mean(&self, y: &[f64], f: &[f64]) -> f64 {
        if y.is_empty() {
            return f64::NAN;
        }
        y.iter()
            .zip(f)
            .map(|(&a, &b)| self.value(a, b))
            .sum::<f64>()
            / y.len() as f64
    }
}

/// ℓ(y, f) = (y − f)², the risk E(y − f)² of the seeds: r = y − f, c = 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Square;

impl Loss for Square {
    fn name(&self) -> &str {
        "square"
    }
    fn value(&self, y: f64, f: f64) -> f64 {
        (y - f) * (y - f)
    }
    fn residual(&self, y: f64, f: f64, f0: Option<f64>) -> f64 {
        // (y − f) + f₀, in this order: every path computed it so before losses were traits.
        match f0 {
            Some(f0) => y - f + f0,
            None => y - f,
        }
    }
    fn curvature(&self, _: f64, _: f64, _: Option<f64>) -> f64 {
        1.0
    }
    fn unit_curvature(&self) -> bool {
        true
    }
}

/// ℓ(y, f) written as a formula of y and f, with ∂ℓ/∂f and ∂²ℓ/∂f² derived by exmex.
#[derive(Debug)]
pub struct Formula {
    pub loss: Expr,
    /// ∂ℓ/∂f
    pub d1: Expr,
    /// ∂²ℓ/∂f²
    pub d2: Expr,
}

impl Formula {
    pub fn parse(text: &str) -> Result<Formula, String> {
        let loss = Expr::parse(text, &["y", "f"])?;
        if !loss.depends_on(1) {
            return Err(format!(
                "\"{text}\" does not depend on f, the network's output"
            ));
        }
        let d1 = loss.partial(1)?;
        let d2 = d1.partial(1)?;
        Ok(Formula { loss, d1, d2 })
    }
}

impl Loss for Formula {
    fn name(&self) -> &str {
        self.loss.text()
    }
    fn value(&self, y: f64, f: f64) -> f64 {
        self.loss.eval(&[y, f])
    }
    fn residual(&self, y: f64, f: f64, f0: Option<f64>) -> f64 {
        -0.5 * self.d1.eval(&[y, f - f0.unwrap_or(0.0)])
    }
    fn curvature(&self, y: f64, f: f64, f0: Option<f64>) -> f64 {
        0.5 * self.d2.eval(&[y, f - f0.unwrap_or(0.0)])
    }
}

/// The problem file's `model.loss`: "square" (the default, the seeds' risk E(y − f)²) or a
/// formula of y and f.
#[derive(Debug, Clone, Default)]
pub enum LossSpec {
    #[default]
    Square,
    Formula(Arc<Formula>),
}

impl LossSpec {
    pub fn parse(text: &str) -> Result<LossSpec, String> {
        if text.trim() == "square" {
            return Ok(LossSpec::Square);
        }
        Formula::parse(text)
            .map(|f| LossSpec::Formula(Arc::new(f)))
            .map_err(|e| {
                format!(
                    "{e} (a loss is \"square\" or a formula of y and f, e.g. \"log(1 + exp(-y*f))\")"
                )
            })
    }

    pub fn is_square(&self) -> bool {
        matches!(self, LossSpec::Square)
    }

    /// The loss the numerics take.
    pub fn build(&self) -> Arc<dyn Loss> {
        match self {
            LossSpec::Square => Arc::new(Square),
            LossSpec::Formula(f) => f.clone(),
        }
    }

    /// ℓ, ℓ_f and ℓ_ff as text (exmex's syntax for derivatives), in LaTeX, and whether the
    /// derivatives hold almost everywhere. The square loss is (y - f)^2.
    pub fn derived(&self) -> Result<(Vec<String>, Vec<String>, bool), String> {
        let f = match self {
            LossSpec::Square => Arc::new(Formula::parse("(y - f)^2")?),
            LossSpec::Formula(f) => f.clone(),
        };
        Ok(crate::expr::written_forms(&f.loss, &[&f.d1, &f.d2]))
    }

    pub fn name(&self) -> &str {
        match self {
            LossSpec::Square => "square",
            LossSpec::Formula(f) => f.loss.text(),
        }
    }
}

impl Serialize for LossSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for LossSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LossSpec, D::Error> {
        LossSpec::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// r and c are −½ℓ′ and ½ℓ″: central differences of `value`.
    #[test]
    fn square_derivatives_match_finite_differences() {
        let h = 1e-5;
        for (y, f, f0) in [(0.3, -1.2, None), (-2.0, 0.7, Some(0.25))] {
            let u = f - f0.unwrap_or(0.0);
            let d1 = (Square.value(y, u + h) - Square.value(y, u - h)) / (2.0 * h);
            let d2 = (Square.value(y, u + h) - 2.0 * Square.value(y, u) + Square.value(y, u - h))
                / (h * h);
            assert!((Square.residual(y, f, f0) + 0.5 * d1).abs() < 1e-9);
            assert!((Square.curvature(y, f, f0) - 0.5 * d2).abs() < 1e-4);
        }
        assert_eq!(Square.mean(&[1.0, 2.0], &[0.0, 0.0]), 2.5);
    }
}
