//! Problem files for shallow linear networks A = W₂W₁ (`[model] kind = "linear"`; Tu, Aranguri &
//! Jacot, shared/papers/mixed_dynamics.md). The frame is that of the other kinds (seed, output,
//! data, model, dynamics); the data is a matrix task and `[training]` holds the step and the
//! horizon that every dynamics shares (continuous runs are saved at t = kη).
//!
//! ```toml
//! [data]
//! task = "denoising"          # Y = A* + noise·E, A* of rank `rank`; or "whitened_regression" (n)
//! d = 500
//! rank = 5
//! [model]
//! kind = "linear"
//! gamma_sigma2 = -1.85        # σ² = d^γσ²
//! gamma_w = 2.25              # w = ⌊d^γw⌋
//! init = "gaussian"           # or "aligned": balanced, aligned with Y, A(0) = u0·U Vᵀ
//! reduction = "auto"          # width-2d reduction by a Bartlett draw when w ≥ 2d; "full"; "bartlett"
//! [training]
//! steps = 100
//! step_factor = 5             # η = 1/(f σ²w) if γσ² + γw > 1, else 1/(f ‖A*‖op)
//! [[dynamics]]
//! kind = "gd"                 # the paper's sequential GD
//! [[dynamics]]
//! kind = "self_consistent"    # eq. (1): method "euler" (the paper's, step η) or "tsit45"
//! [sweep]                     # `meanfield sweep run`: the (γσ², γw) phase diagram
//! gamma_sigma2 = [-2.5, -1.5, -0.5]
//! gamma_w = [0.5, 1.5, 2.5]
//! ```

use super::Checks;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearProblem {
    #[serde(default)]
    pub seed: u64,
    pub output: PathBuf,
    pub data: LinearData,
    pub model: LinearSpec,
    pub training: Training,
    #[serde(default)]
    pub dynamics: Vec<LinearDynamics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<PhaseSweep>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case", deny_unknown_fields)]
pub enum LinearData {
    /// Y = A* + noise·E (the paper's task).
    Denoising {
        d: usize,
        rank: usize,
        #[serde(default = "one")]
        noise: f64,
    },
    /// n whitened samples (XXᵀ = nI), y = A*x + noise·ε: the loss is ½‖A − Ŷ‖² + const.
    WhitenedRegression {
        d: usize,
        rank: usize,
        n: usize,
        #[serde(default = "one")]
        noise: f64,
    },
}

impl LinearData {
    pub fn d(&self) -> usize {
        match *self {
            LinearData::Denoising { d, .. } | LinearData::WhitenedRegression { d, .. } => d,
        }
    }
    pub fn rank(&self) -> usize {
        match *self {
            LinearData::Denoising { rank, .. } | LinearData::WhitenedRegression { rank, .. } => {
                rank
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearKind {
    Linear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearInit {
    /// W₁, W₂ i.i.d. N(0, σ²), σ² = d^γσ², w = ⌊d^γw⌋.
    Gaussian,
    /// Balanced and aligned with Y: W₁ = √u₀Vᵀ, W₂ = √u₀U (Saxe's setting; σ² and w unused).
    Aligned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// Bartlett when w ≥ 2d, else the full network.
    Auto,
    /// Simulate the w × d weights themselves.
    Full,
    /// Draw the width-2d reduction directly (needs w ≥ 2d).
    Bartlett,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearSpec {
    pub kind: LinearKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma_sigma2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma_w: Option<f64>,
    #[serde(default = "gaussian")]
    pub init: LinearInit,
    /// Initial mode size for `init = "aligned"`.
    #[serde(default = "default_u0")]
    pub u0: f64,
    #[serde(default = "auto")]
    pub reduction: Reduction,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    pub steps: usize,
    /// f in the paper's step rule; ignored when `step` is given.
    #[serde(default = "five")]
    pub step_factor: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    #[serde(default = "one_usize")]
    pub save_every: usize,
    /// Singular values of A at every save.
    #[serde(default = "yes")]
    pub spectra: bool,
    /// The paper's phase-diagram stopping rules, applied to `gd`.
    #[serde(default)]
    pub early_stop: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearMethod {
    /// Forward Euler with the GD step η (the paper's scheme; self_consistent only).
    Euler,
    /// Adaptive explicit Runge–Kutta (Tsitouras 5(4)) with error control, any size.
    Tsit45,
    /// Adaptive implicit methods with a dense Jacobian: states up to `MAX_IMPLICIT_STATE`.
    Bdf,
    Esdirk34,
    TrBdf2,
}

impl LinearMethod {
    /// The adaptive solver, or None for Euler.
    pub fn adaptive(self) -> Option<super::Method> {
        match self {
            LinearMethod::Euler => None,
            LinearMethod::Tsit45 => Some(super::Method::Tsit45),
            LinearMethod::Bdf => Some(super::Method::Bdf),
            LinearMethod::Esdirk34 => Some(super::Method::Esdirk34),
            LinearMethod::TrBdf2 => Some(super::Method::TrBdf2),
        }
    }
}

/// Largest state for the implicit methods: their Newton matrix is dense (n² numbers).
pub(crate) const MAX_IMPLICIT_STATE: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LinearDynamics {
    /// GD exactly as the paper's code: sequential, W₁ first.
    Gd {
        #[serde(default)]
        name: Option<String>,
    },
    /// Eq. (1) from the same A(0).
    SelfConsistent {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "euler")]
        method: LinearMethod,
        #[serde(default = "rtol")]
        rtol: f64,
        #[serde(default = "atol")]
        atol: f64,
    },
    /// The gradient flow on (W₁, W₂) (in the reduced form), adaptive (Tsit45 by default).
    GradientFlow {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "tsit45")]
        method: LinearMethod,
        #[serde(default = "rtol")]
        rtol: f64,
        #[serde(default = "atol")]
        atol: f64,
    },
    /// A(t) = Y + e^{−2σ²wt}(A(0) − Y): the frozen kernel 2σ²w·Id.
    LazyLimit {
        #[serde(default)]
        name: Option<String>,
    },
    /// Saxe's modes u(t) = s e^{2st}/(e^{2st} − 1 + s/u₀) in Y's singular basis (init = aligned).
    Saxe {
        #[serde(default)]
        name: Option<String>,
    },
}

impl LinearDynamics {
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            LinearDynamics::Gd { .. } => "gd",
            LinearDynamics::SelfConsistent { .. } => "self_consistent",
            LinearDynamics::GradientFlow { .. } => "gradient_flow",
            LinearDynamics::LazyLimit { .. } => "lazy_limit",
            LinearDynamics::Saxe { .. } => "saxe",
        }
    }
    pub fn name(&self) -> String {
        let n = match self {
            LinearDynamics::Gd { name }
            | LinearDynamics::SelfConsistent { name, .. }
            | LinearDynamics::GradientFlow { name, .. }
            | LinearDynamics::LazyLimit { name }
            | LinearDynamics::Saxe { name } => name,
        };
        n.clone().unwrap_or_else(|| self.kind_name().to_string())
    }
}

/// The phase diagram: GD (with the early-stopping rules) and eq. (1) in lockstep at every grid
/// point and seed, with the task of `[data]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSweep {
    pub gamma_sigma2: Vec<f64>,
    pub gamma_w: Vec<f64>,
    #[serde(default = "one_usize")]
    pub seeds: usize,
    #[serde(default = "max_steps")]
    pub max_steps: usize,
    #[serde(default = "fifty")]
    pub step_factor: f64,
    #[serde(default = "yes")]
    pub early_stop: bool,
    /// The summary archive (default: the problem's output with `_phase` before the extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
}

fn one() -> f64 {
    1.0
}
fn five() -> f64 {
    5.0
}
fn fifty() -> f64 {
    50.0
}
fn one_usize() -> usize {
    1
}
fn max_steps() -> usize {
    750
}
fn yes() -> bool {
    true
}
fn gaussian() -> LinearInit {
    LinearInit::Gaussian
}
fn auto() -> Reduction {
    Reduction::Auto
}
fn default_u0() -> f64 {
    1e-4
}
fn euler() -> LinearMethod {
    LinearMethod::Euler
}
fn tsit45() -> LinearMethod {
    LinearMethod::Tsit45
}
fn rtol() -> f64 {
    1e-8
}
fn atol() -> f64 {
    1e-10
}

/// Largest d: the runs hold a handful of d × d and 2d × d matrices per dynamics.
pub(crate) const MAX_LINEAR_D: usize = 4000;
/// Largest width simulated without the reduction (2wd numbers).
pub(crate) const MAX_FULL_ENTRIES: f64 = 5e8;

impl LinearProblem {
    pub fn parse(text: &str, file: &Path) -> Result<LinearProblem> {
        let p: LinearProblem = super::parse_toml(text, file)?;
        p.validate(file)?;
        Ok(p)
    }

    /// The problem with every default filled in, as TOML: what the archive at `archive` records.
    pub(crate) fn resolved_toml(&self, archive: &Path) -> Result<String> {
        crate::problem::resolved_toml(self, archive)
    }

    /// The (σ², w) of the Gaussian initialization at these exponents.
    pub fn scales(d: usize, gamma_sigma2: f64, gamma_w: f64) -> (f64, usize) {
        let d = d as f64;
        (d.powf(gamma_sigma2), d.powf(gamma_w).floor() as usize)
    }

    /// Where the phase-diagram summary goes.
    pub(crate) fn sweep_output(&self) -> PathBuf {
        if let Some(o) = self.sweep.as_ref().and_then(|s| s.output.clone()) {
            return o;
        }
        let stem = self
            .output
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "linear".into());
        self.output.with_file_name(format!("{stem}_phase.h5"))
    }

    fn validate(&self, file: &Path) -> Result<()> {
        let c = Checks { file };
        let d = self.data.d();
        if !(2..=MAX_LINEAR_D).contains(&d) {
            return Err(c.err(
                "data.d",
                format!("expected an integer in [2, {MAX_LINEAR_D}], got {d}"),
            ));
        }
        let rank = self.data.rank();
        if rank == 0 || rank > d {
            return Err(c.err(
                "data.rank",
                format!("expected an integer in [1, d = {d}], got {rank}"),
            ));
        }
        match self.data {
            LinearData::Denoising { noise, .. } => c.nonneg("data.noise", noise)?,
            LinearData::WhitenedRegression { noise, n, .. } => {
                c.nonneg("data.noise", noise)?;
                if n < d || n > super::MAX_DIM {
                    return Err(c.err(
                        "data.n",
                        format!(
                            "whitened inputs need n ≥ d = {d} samples (at most {}), got {n}",
                            super::MAX_DIM
                        ),
                    ));
                }
            }
        }
        let gamma = |key: &str, v: Option<f64>| -> Result<f64> {
            match v {
                Some(g) if g.is_finite() && g.abs() <= 10.0 => Ok(g),
                Some(g) => Err(c.err(key, format!("expected an exponent in [-10, 10], got {g}"))),
                None => Err(c.err(
                    key,
                    "expected an exponent (σ² = d^gamma_sigma2, w = d^gamma_w) for init = \"gaussian\""
                        .into(),
                )),
            }
        };
        match self.model.init {
            LinearInit::Gaussian => {
                gamma("model.gamma_sigma2", self.model.gamma_sigma2)?;
                let gw = gamma("model.gamma_w", self.model.gamma_w)?;
                check_width(&c, d, gw, self.model.reduction, "model.gamma_w")?;
            }
            LinearInit::Aligned => {
                c.positive("model.u0", self.model.u0)?;
                for (key, v) in [
                    ("model.gamma_sigma2", self.model.gamma_sigma2),
                    ("model.gamma_w", self.model.gamma_w),
                ] {
                    if v.is_some() {
                        return Err(c.err(
                            key,
                            "not used with init = \"aligned\" (the balanced aligned start has no σ² or w); remove it".into(),
                        ));
                    }
                }
            }
        }
        let t = &self.training;
        c.steps("training.steps", t.steps)?;
        c.positive("training.step_factor", t.step_factor)?;
        if let Some(s) = t.step {
            c.positive("training.step", s)?;
        }
        if t.save_every == 0 || t.save_every > t.steps {
            return Err(c.err(
                "training.save_every",
                format!(
                    "expected an integer in [1, steps = {}], got {}",
                    t.steps, t.save_every
                ),
            ));
        }
        let saves = t.steps / t.save_every + 2;
        let snapshot_bytes = (saves * d * d * 8 * self.dynamics.len().max(1)) as f64;
        if self.dynamics.len() > 1 && snapshot_bytes > 8.0 * (1u64 << 30) as f64 {
            return Err(c.err(
                "training.save_every",
                format!(
                    "comparing the dynamics keeps A at every save: {:.1} GiB here, the limit is 8 GiB; save less often",
                    snapshot_bytes / (1u64 << 30) as f64
                ),
            ));
        }
        if self.dynamics.is_empty() && self.sweep.is_none() {
            return Err(c.err(
                "dynamics",
                "expected at least one [[dynamics]] table (or a [sweep] table)".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, dy) in self.dynamics.iter().enumerate() {
            let key = |k: &str| format!("dynamics[{i}].{k}");
            c.unique_name(&dy.name(), &key("name"), &mut names)?;
            match dy {
                LinearDynamics::SelfConsistent {
                    rtol, atol, method, ..
                }
                | LinearDynamics::GradientFlow {
                    rtol, atol, method, ..
                } => {
                    c.positive(&key("rtol"), *rtol)?;
                    c.positive(&key("atol"), *atol)?;
                    let flow = matches!(dy, LinearDynamics::GradientFlow { .. });
                    if flow && *method == LinearMethod::Euler {
                        return Err(c.err(
                            &key("method"),
                            "the Euler step of the gradient flow is GD: use kind = \"gd\", or an adaptive method".into(),
                        ));
                    }
                    // vec(A) for eq. (1); X₁ and X₂ (p × d each) for the flow.
                    let p = match self.model.init {
                        LinearInit::Aligned => 2 * d,
                        LinearInit::Gaussian => {
                            let (_, w) =
                                LinearProblem::scales(d, 0.0, self.model.gamma_w.unwrap_or(0.0));
                            let reduced = match self.model.reduction {
                                Reduction::Auto => w >= 2 * d,
                                Reduction::Bartlett => true,
                                Reduction::Full => false,
                            };
                            if reduced {
                                2 * d
                            } else {
                                w
                            }
                        }
                    };
                    let n = if flow { 2 * p * d } else { d * d };
                    let implicit = !matches!(method, LinearMethod::Euler | LinearMethod::Tsit45);
                    if implicit && n > MAX_IMPLICIT_STATE {
                        return Err(c.err(
                            &key("method"),
                            format!(
                                "implicit methods factorize a dense {n} × {n} Newton matrix here; they take states up to {MAX_IMPLICIT_STATE}: use \"tsit45\""
                            ),
                        ));
                    }
                }
                LinearDynamics::Saxe { .. } if self.model.init != LinearInit::Aligned => {
                    return Err(c.err(
                        &key("kind"),
                        "Saxe's modes hold for a small balanced aligned start: set model.init = \"aligned\"".into(),
                    ));
                }
                _ => {}
            }
        }
        if let Some(s) = &self.sweep {
            if s.gamma_sigma2.is_empty() || s.gamma_w.is_empty() {
                return Err(c.err(
                    "sweep.gamma_w",
                    "expected non-empty lists sweep.gamma_sigma2 and sweep.gamma_w".into(),
                ));
            }
            for (j, &gs) in s.gamma_sigma2.iter().enumerate() {
                gamma(&format!("sweep.gamma_sigma2[{j}]"), Some(gs))?;
            }
            for (j, &gw) in s.gamma_w.iter().enumerate() {
                let key = format!("sweep.gamma_w[{j}]");
                gamma(&key, Some(gw))?;
                check_width(&c, d, gw, Reduction::Auto, &key)?;
            }
            if s.seeds == 0 || s.seeds > 1000 {
                return Err(c.err(
                    "sweep.seeds",
                    format!("expected an integer in [1, 1000], got {}", s.seeds),
                ));
            }
            c.steps("sweep.max_steps", s.max_steps)?;
            c.positive("sweep.step_factor", s.step_factor)?;
        }
        Ok(())
    }
}

/// w = ⌊d^γw⌋ must be ≥ 1, fit in memory when simulated in full, and allow the reduction when
/// it is asked for.
fn check_width(c: &Checks<'_>, d: usize, gw: f64, red: Reduction, key: &str) -> Result<()> {
    let (_, w) = LinearProblem::scales(d, 0.0, gw);
    if w == 0 {
        return Err(c.err(
            key,
            format!("w = ⌊d^gamma_w⌋ = 0 at d = {d}: expected gamma_w ≥ 0"),
        ));
    }
    let full = match red {
        Reduction::Full => true,
        Reduction::Bartlett => {
            if w < 2 * d {
                return Err(c.err(
                    "model.reduction",
                    format!("the Bartlett draw needs w ≥ 2d = {}, got w = {w}; use \"auto\" or \"full\"", 2 * d),
                ));
            }
            false
        }
        Reduction::Auto => w < 2 * d,
    };
    if full && 2.0 * w as f64 * d as f64 > MAX_FULL_ENTRIES {
        return Err(c.err(
            key,
            format!(
                "the full network has 2wd = {:.2e} weights (w = {w}), more than {MAX_FULL_ENTRIES:e}; use reduction = \"auto\"",
                2.0 * w as f64 * d as f64
            ),
        ));
    }
    Ok(())
}
