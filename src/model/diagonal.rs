//! Diagonal linear networks x ↦ ⟨β, x⟩ with β = u ⊙ v (or β = u² − v²), trained on
//! L(β) = ‖Xβ − y‖²/(2n) (shared/papers/saddle_to_saddle.md §1.2–1.3).
//!
//! Both parametrizations follow a mirror flow d/dt ∇φ_α(β) = −∇L(β). In the dual variable
//! q = ∇φ_α(β)/λ_α and accelerated time τ = t/λ_α it reads dq/dτ = −∇L(β(q)), q(0) = 0, with
//!
//!   β(q) = c α² sinh(2 log(1/α) q),   c = 1 (u ⊙ v, λ_α = log 1/α), c = 2 (u² − v², λ_α = ½ log 1/α).
//!
//! `beta_of_q` evaluates this in log-space so that α = 1e-40 and beyond neither underflows α²
//! nor overflows the sinh.

use faer::{ColRef, Mat, MatRef};
use serde::{Deserialize, Serialize};
use std::cell::OnceCell;

/// Largest exponent passed to exp: beyond it β would overflow (the solver then rejects the step).
const EXP_CLIP: f64 = 700.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parametrization {
    /// β = u ⊙ v, u(0) = √2 α 𝟙, v(0) = 0 (imbalance u² − v² = 2α²).
    Uv,
    /// β = u² − v², u(0) = v(0) = α 𝟙.
    U2MinusV2,
}

pub struct Diagonal {
    /// Design X (n × d) and labels y.
    pub x: Mat<f64>,
    pub y: Vec<f64>,
    pub param: Parametrization,
    pub alpha: f64,
    /// XᵀX/n, built on first use (only the implicit solvers' Jacobians need it).
    gram: OnceCell<Mat<f64>>,
}

impl Diagonal {
    pub fn new(x: Mat<f64>, y: Vec<f64>, param: Parametrization, alpha: f64) -> Diagonal {
        Diagonal {
            x,
            y,
            param,
            alpha,
            gram: OnceCell::new(),
        }
    }

    pub fn n(&self) -> usize {
        self.x.nrows()
    }
    pub fn d(&self) -> usize {
        self.x.ncols()
    }

    /// A copy at another initialization scale (same data).
    pub(crate) fn with_alpha(&self, alpha: f64) -> Diagonal {
        Diagonal::new(self.x.clone(), self.y.clone(), self.param, alpha)
    }

    /// log(1/α), computed from α directly (exact for α down to the smallest positive f64).
    pub(crate) fn log_inv_alpha(&self) -> f64 {
        -self.alpha.ln()
    }

    /// λ_α: raw time t = λ_α τ.
    pub fn time_scale(&self) -> f64 {
        match self.param {
            Parametrization::Uv => self.log_inv_alpha(),
            Parametrization::U2MinusV2 => 0.5 * self.log_inv_alpha(),
        }
    }

    fn c(&self) -> f64 {
        match self.param {
            Parametrization::Uv => 1.0,
            Parametrization::U2MinusV2 => 2.0,
        }
    }

    pub fn gram(&self) -> &Mat<f64> {
        self.gram
            .get_or_init(|| self.x.transpose() * &self.x * faer::Scale(1.0 / self.n() as f64))
    }

    /// L(β) and ∇L(β) = Xᵀ(Xβ − y)/n.
    pub fn loss_grad(&self, beta: &[f64]) -> (f64, Vec<f64>) {
        loss_grad(self.x.as_ref(), &self.y, beta)
    }

    /// ‖X'β − y'‖²/(2m) on other data (the test set).
    pub(crate) fn loss_on(x: MatRef<'_, f64>, y: &[f64], beta: &[f64]) -> f64 {
        if y.is_empty() {
            return f64::NAN;
        }
        let f = x * ColRef::from_slice(beta);
        f.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / (2.0 * y.len() as f64)
    }

    /// The state (u, v) at t = 0, concatenated.
    pub fn init_state(&self) -> Vec<f64> {
        let d = self.d();
        let mut w = vec![0.0; 2 * d];
        match self.param {
            Parametrization::Uv => w[..d].fill(std::f64::consts::SQRT_2 * self.alpha),
            Parametrization::U2MinusV2 => w.fill(self.alpha),
        }
        w
    }

    /// β of a state (u, v).
    pub fn beta_of_state(&self, w: &[f64]) -> Vec<f64> {
        let (u, v) = w.split_at(self.d());
        match self.param {
            Parametrization::Uv => u.iter().zip(v).map(|(a, b)| a * b).collect(),
            Parametrization::U2MinusV2 => u.iter().zip(v).map(|(a, b)| a * a - b * b).collect(),
        }
    }

    /// ∂β/∂u and ∂β/∂v (diagonal), and the second derivatives (h_uu, h_uv, h_vv).
    pub(crate) fn state_derivatives(&self, w: &[f64]) -> (Vec<f64>, Vec<f64>, [f64; 3]) {
        let (u, v) = w.split_at(self.d());
        match self.param {
            Parametrization::Uv => (v.to_vec(), u.to_vec(), [0.0, 1.0, 0.0]),
            Parametrization::U2MinusV2 => (
                u.iter().map(|a| 2.0 * a).collect(),
                v.iter().map(|b| -2.0 * b).collect(),
                [2.0, 0.0, -2.0],
            ),
        }
    }

    /// β(q) = c α² sinh(2Lq), L = log(1/α), in log-space:
    /// (c/2) sign(q) [exp(2L(|q| − 1)) − exp(−2L(|q| + 1))].
    pub fn beta_of_q(&self, q: &[f64]) -> Vec<f64> {
        let (l, c) = (self.log_inv_alpha(), self.c());
        q.iter()
            .map(|&qi| {
                let a = qi.abs();
                let big = (2.0 * l * (a - 1.0)).min(EXP_CLIP).exp();
                let small = (-2.0 * l * (a + 1.0)).exp();
                0.5 * c * qi.signum() * (big - small) * f64::from(qi != 0.0)
            })
            .collect()
    }

    /// dβ/dq = 2cL α² cosh(2Lq) = cL [exp(2L(|q| − 1)) + exp(−2L(|q| + 1))].
    pub fn dbeta_dq(&self, q: &[f64]) -> Vec<f64> {
        let (l, c) = (self.log_inv_alpha(), self.c());
        q.iter()
            .map(|&qi| {
                let a = qi.abs();
                c * l * ((2.0 * l * (a - 1.0)).min(EXP_CLIP).exp() + (-2.0 * l * (a + 1.0)).exp())
            })
            .collect()
    }

    /// q = ∇φ_α(β)/λ_α = arcsinh(β/(cα²))/(2L), the inverse of `beta_of_q`, in log-space:
    /// for |β| ≫ α², arcsinh(x) ≈ log(2x) with log x = log|β| − log c + 2L.
    pub fn q_of_beta(&self, beta: &[f64]) -> Vec<f64> {
        let (l, c) = (self.log_inv_alpha(), self.c());
        beta.iter()
            .map(|&b| {
                let logx = b.abs().ln() - c.ln() + 2.0 * l;
                let ash = if logx > 20.0 {
                    std::f64::consts::LN_2 + logx
                } else {
                    logx.exp().asinh()
                };
                b.signum() * ash / (2.0 * l) * f64::from(b != 0.0)
            })
            .collect()
    }
}

/// L(β) and ∇L(β) for L = ‖Xβ − y‖²/(2n).
pub fn loss_grad(x: MatRef<'_, f64>, y: &[f64], beta: &[f64]) -> (f64, Vec<f64>) {
    let n = x.nrows();
    let b = faer::ColRef::from_slice(beta);
    let mut res = x * b;
    for (i, yi) in y.iter().enumerate() {
        res[i] -= yi;
    }
    let loss = res.iter().map(|r| r * r).sum::<f64>() / (2.0 * n as f64);
    let g = x.transpose() * &res;
    (loss, g.iter().map(|v| v / n as f64).collect())
}
