//! Problem files for diagonal linear networks (`[model] kind = "diagonal"`): the same frame as
//! two-layer problems (seed, output, data, save) with their own model and dynamics.
//!
//! ```toml
//! [model]
//! kind = "diagonal"
//! parametrization = "uv"      # β = u ⊙ v, or "u2_minus_v2": β = u² − v²
//! alpha = 1e-3                # initialization scale α
//!
//! [[dynamics]]
//! kind = "saddle_limit"       # Algorithm 1: saddles, jump times, active sets
//! [[dynamics]]
//! kind = "mirror_flow"        # the flow in the dual variable, accelerated time τ = t/λ_α
//! method = "bdf"
//! alphas = [1e-3, 1e-6, 1e-12, 1e-24]
//! [[dynamics]]
//! kind = "gradient_flow"      # the flow on (u, v) in raw time t
//! method = "bdf"
//! t_end = 50.0
//! [[dynamics]]
//! kind = "gd"                 # gradient descent on (u, v), step k at t = kη
//! step = 0.01
//! steps = 5000
//! ```

use super::{Checks, DataSpec, InputLaw, Method, SaveSpec, TargetSpec};
use crate::error::Result;
pub use crate::model::diagonal::Parametrization;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagonalProblem {
    #[serde(default)]
    pub seed: u64,
    pub output: PathBuf,
    pub data: DataSpec,
    pub model: DiagonalSpec,
    pub dynamics: Vec<DiagonalDynamics>,
    #[serde(default)]
    pub save: SaveSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagonalKind {
    Diagonal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagonalSpec {
    pub kind: DiagonalKind,
    #[serde(default = "uv")]
    pub parametrization: Parametrization,
    /// Initialization scale α.
    pub alpha: f64,
}

fn uv() -> Parametrization {
    Parametrization::Uv
}

fn default_rel_tol() -> f64 {
    1e-10
}
fn bdf() -> Method {
    Method::Bdf
}
fn mirror_rtol() -> f64 {
    1e-9
}
fn mirror_atol() -> f64 {
    1e-12
}
fn flow_rtol() -> f64 {
    1e-8
}
fn flow_atol() -> f64 {
    1e-12
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DiagonalDynamics {
    /// Algorithm 1: the exact α → 0 limit.
    SaddleLimit {
        #[serde(default)]
        name: Option<String>,
        /// The path ends when ‖∇L(β)‖∞ ≤ tol·‖∇L(0)‖∞.
        #[serde(default = "default_rel_tol")]
        tol: f64,
    },
    /// The mirror flow dq/dτ = −∇L(β(q)) in accelerated time, one run per α.
    MirrorFlow {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "bdf")]
        method: Method,
        #[serde(default = "mirror_rtol")]
        rtol: f64,
        #[serde(default = "mirror_atol")]
        atol: f64,
        /// Accelerated end time; default 1.5 × the limit's last jump time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tau_end: Option<f64>,
        /// Initialization scales to run; default [model.alpha].
        #[serde(default)]
        alphas: Vec<f64>,
    },
    /// The gradient flow on (u, v) in raw time, at model.alpha.
    GradientFlow {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "bdf")]
        method: Method,
        #[serde(default = "flow_rtol")]
        rtol: f64,
        #[serde(default = "flow_atol")]
        atol: f64,
        t_end: f64,
    },
    /// Gradient descent on (u, v) with step η: step k at raw time t = kη.
    Gd {
        #[serde(default)]
        name: Option<String>,
        step: f64,
        steps: usize,
    },
}

impl DiagonalDynamics {
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            DiagonalDynamics::SaddleLimit { .. } => "saddle_limit",
            DiagonalDynamics::MirrorFlow { .. } => "mirror_flow",
            DiagonalDynamics::GradientFlow { .. } => "gradient_flow",
            DiagonalDynamics::Gd { .. } => "gd",
        }
    }
    pub fn name(&self) -> String {
        let n = match self {
            DiagonalDynamics::SaddleLimit { name, .. }
            | DiagonalDynamics::MirrorFlow { name, .. }
            | DiagonalDynamics::GradientFlow { name, .. }
            | DiagonalDynamics::Gd { name, .. } => name,
        };
        n.clone().unwrap_or_else(|| self.kind_name().to_string())
    }
}

impl DiagonalProblem {
    /// Parse and validate TOML text; `file` is only used in messages.
    pub fn parse(text: &str, file: &Path) -> Result<DiagonalProblem> {
        let p: DiagonalProblem = super::parse_toml(text, file)?;
        p.validate(file)?;
        Ok(p)
    }

    /// The problem with every default filled in, as TOML: what the archive at `archive` records.
    pub(crate) fn resolved_toml(&self, archive: &Path) -> Result<String> {
        crate::problem::resolved_toml(self, archive)
    }

    fn validate(&self, file: &Path) -> Result<()> {
        let c = Checks { file };
        let scale = |key: &str, a: f64| {
            if a.is_finite() && a > 0.0 && a < 1.0 {
                Ok(())
            } else {
                Err(c.err(
                    key,
                    format!("expected an initialization scale in (0, 1), got {a}"),
                ))
            }
        };
        super::validate_data(&self.data, file)?;
        if let DataSpec::Synthetic { d, n_train, .. } = self.data {
            check_sizes(file, "data.d", d, n_train)?;
        }
        if let DataSpec::Synthetic { input, .. } = self.data {
            if input != InputLaw::Gaussian {
                return Err(c.err(
                    "data.input",
                    "diagonal networks use a Gaussian design: expected input = \"gaussian\"".into(),
                ));
            }
        }
        if let DataSpec::Synthetic {
            target: TargetSpec::Teacher { .. } | TargetSpec::SingleIndex { .. },
            ..
        } = self.data
        {
            return Err(c.err(
                "data.target.kind",
                "diagonal networks regress linear targets: expected \"sparse\" or \"linear\""
                    .into(),
            ));
        }
        scale("model.alpha", self.model.alpha)?;
        if self.dynamics.is_empty() {
            return Err(c.err(
                "dynamics",
                "expected at least one [[dynamics]] table".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, dy) in self.dynamics.iter().enumerate() {
            let key = |k: &str| format!("dynamics[{i}].{k}");
            let name = dy.name();
            c.unique_name(&name, &key("name"), &mut names)?;
            match dy {
                DiagonalDynamics::SaddleLimit { tol, .. } => {
                    if !(tol.is_finite() && *tol > 0.0 && *tol < 1.0) {
                        return Err(c.err(
                            &key("tol"),
                            format!("expected a relative tolerance in (0, 1), got {tol}"),
                        ));
                    }
                }
                DiagonalDynamics::MirrorFlow {
                    rtol,
                    atol,
                    tau_end,
                    alphas,
                    ..
                } => {
                    c.positive(&key("rtol"), *rtol)?;
                    c.positive(&key("atol"), *atol)?;
                    if let Some(t) = tau_end {
                        c.positive(&key("tau_end"), *t)?;
                    }
                    for (j, &a) in alphas.iter().enumerate() {
                        scale(&key(&format!("alphas[{j}]")), a)?;
                    }
                }
                DiagonalDynamics::GradientFlow {
                    rtol, atol, t_end, ..
                } => {
                    c.positive(&key("rtol"), *rtol)?;
                    c.positive(&key("atol"), *atol)?;
                    c.positive(&key("t_end"), *t_end)?;
                }
                DiagonalDynamics::Gd { step, steps, .. } => {
                    c.positive(&key("step"), *step)?;
                    c.steps(&key("steps"), *steps)?;
                }
            }
        }
        super::validate_save(&self.save, file)?;
        Ok(())
    }
}

/// Algorithm 1 and the implicit solvers hold d×d and n×d matrices: refuse sizes beyond 16 GiB
/// before any work. Synthetic sizes are checked when the file is read, CSV sizes once loaded
/// (`key` names what sets the size).
pub(crate) fn check_sizes(file: &Path, key: &str, d: usize, n_train: usize) -> Result<()> {
    let bytes = 8.0 * (4.0 * (d * d) as f64 + 4.0 * (n_train * d) as f64);
    if bytes > 16.0 * (1u64 << 30) as f64 {
        return Err(Checks { file }.err(
            key,
            format!(
                "this problem needs about {:.1} GiB (dense d×d Jacobians at d = {d}); the limit is 16 GiB",
                bytes / (1u64 << 30) as f64
            ),
        ));
    }
    Ok(())
}
