//! Problem files: TOML parsed with serde into typed specs, then validated.
//!
//! Parsing catches unknown keys and wrong types (toml's message names the key, the line and the
//! column); `validate` catches values of the right type that make no sense (a zero width, a NaN
//! tolerance), naming the key in the same `file: key: expectation` form.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use crate::data::spec::{DataSpec, InputLaw, Normalize, Risk, TargetSpec};
pub use crate::integrate::ode::Method;
pub use crate::model::activation::Activation;
pub use crate::model::init::InitSpec;
pub use crate::model::loss::LossSpec;
pub use crate::model::{Params, Scaling};

pub mod diagonal;
pub mod linear;
pub use diagonal::{DiagonalDynamics, DiagonalProblem, DiagonalSpec, Parametrization};
pub use linear::{LinearDynamics, LinearProblem};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// Master seed: data, teacher and initial particles are all drawn from streams derived from it.
    #[serde(default)]
    pub seed: u64,
    /// Where `meanfield run` writes the archive (relative to the working directory).
    pub output: PathBuf,
    pub data: DataSpec,
    pub model: ModelSpec,
    pub dynamics: Vec<DynamicsSpec>,
    #[serde(default)]
    pub save: SaveSpec,
    /// Optional study over widths, output scales and seeds (`meanfield sweep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepSpec>,
}

/// A sweep: the product of the listed widths, output scales α and seeds, each point a task run
/// into its own archive. An empty list keeps the problem's own value.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    #[serde(default)]
    pub width: Vec<usize>,
    /// Output scales; each replaces `model.scaling` by `{ alpha = x }`.
    #[serde(default)]
    pub alpha: Vec<f64>,
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// GD step for each α (same length as `alpha`), replacing the `step` of every `gd` dynamics:
    /// for studies whose step rule depends on the scale (keeping `steps`).
    #[serde(default)]
    pub step: Vec<f64>,
    /// The summary archive; task archives go in the folder `<summary stem>_tasks` beside it.
    pub summary: PathBuf,
    /// Save times at which every point is compared with the widest run of its α and seed
    /// (default: the last save).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Always "two_layer" here (the default); other kinds are other problem types.
    #[serde(default)]
    pub kind: TwoLayerKind,
    pub activation: Activation,
    /// ℓ(y, f): "square" (default) or a formula of y and f; the risk is R = E ℓ(y, f).
    #[serde(default, skip_serializing_if = "LossSpec::is_square")]
    pub loss: LossSpec,
    /// N, the number of particles (after symmetric doubling, if any).
    pub width: usize,
    #[serde(default)]
    pub bias: bool,
    pub scaling: Scaling,
    #[serde(default)]
    pub init: InitSpec,
    /// "trained" (default) or "fixed": the output weights a_j keep their initial values
    /// (Mei–Montanari–Nguyen's networks: a_j = 1 with init.a_mean = 1, init.a_std = 0).
    #[serde(default, skip_serializing_if = "OutputWeights::is_trained")]
    pub output_weights: OutputWeights,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputWeights {
    #[default]
    Trained,
    Fixed,
}

impl OutputWeights {
    fn is_trained(&self) -> bool {
        *self == OutputWeights::Trained
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TwoLayerKind {
    #[default]
    TwoLayer,
}

/// One dynamics to integrate from the shared initial particles. `name` is its group in the archive
/// (`/runs/<name>`) and defaults to the kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DynamicsSpec {
    /// Finite-N gradient descent: the explicit Euler step of the mean-field-time field.
    Gd {
        #[serde(default)]
        name: Option<String>,
        step: f64,
        steps: usize,
    },
    /// The particle gradient flow, integrated adaptively.
    GradientFlow {
        #[serde(default)]
        name: Option<String>,
        method: Method,
        #[serde(default = "default_rtol")]
        rtol: f64,
        #[serde(default = "default_atol")]
        atol: f64,
        t_end: f64,
    },
    /// The linearized (tangent) model around θ₀, integrated adaptively in parameter space.
    Linearized {
        #[serde(default)]
        name: Option<String>,
        /// Which parameters the linear model trains (see `Params`).
        #[serde(default, skip_serializing_if = "Params::is_all")]
        params: Params,
        method: Method,
        #[serde(default = "default_rtol")]
        rtol: f64,
        #[serde(default = "default_atol")]
        atol: f64,
        t_end: f64,
    },
    /// The residual dynamics ∂_t u = −E[K_t u] on the training set, integrated as its own state
    /// with the particles alongside (explicit method only: tsit45).
    Residual {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "tsit45")]
        method: Method,
        #[serde(default = "default_rtol")]
        rtol: f64,
        #[serde(default = "default_atol")]
        atol: f64,
        t_end: f64,
    },
    /// Stochastic gradient descent: the Euler step of the field on a random batch, with optional
    /// Langevin noise and weight decay (design.md §1 time; step k at t = kη):
    ///   θ ← θ + η (v_B(θ) − λθ) + √(2ηT) g,   g ~ N(0, I) on the trained coordinates.
    /// With T > 0 and λ > 0 its particle law tends to the Gibbs measure ρ* ∝ exp(−(Ψ + λ|θ|²/2)/T)
    /// (the McKean–Vlasov fixed point).
    Sgd {
        #[serde(default)]
        name: Option<String>,
        step: f64,
        steps: usize,
        /// Samples per step: 0 = the whole training set (or the exact population field when
        /// data.risk = "population"); B > 0 = B distinct training points drawn anew each step.
        #[serde(default)]
        batch: usize,
        /// Draw the batch fresh from the data law each step (online SGD; synthetic data only).
        #[serde(default)]
        online: bool,
        /// T = 1/β, the Langevin temperature.
        #[serde(default)]
        temperature: f64,
        /// λ, the weight decay.
        #[serde(default)]
        weight_decay: f64,
    },
    /// Mei–Montanari–Nguyen's radial PDE (`dynamics::radial`) for isotropic_classes data and the
    /// ramp activation with fixed output weights 1: `radii` radii drawn from the initial law of
    /// ‖w‖, integrated with tsit45; archived as `radii` [T, M] and the risk `loss_train`. The
    /// kernel is the exact u_d at data.d, or u_∞ with `large_d = true`.
    RadialPde {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "default_radii")]
        radii: usize,
        #[serde(default)]
        large_d: bool,
        #[serde(default = "default_rtol")]
        rtol: f64,
        #[serde(default = "default_atol")]
        atol: f64,
        t_end: f64,
    },
    /// The frozen-kernel (NTK) limit in closed form, by one eigendecomposition: no ODE steps.
    NtkLimit {
        #[serde(default)]
        name: Option<String>,
        t_end: f64,
        /// `empirical`: K₀ of the finite network; `analytic`: the N = ∞ kernel.
        #[serde(default)]
        kernel: KernelSource,
        /// Which parameters the frozen kernel comes from (see `Params`).
        #[serde(default, skip_serializing_if = "Params::is_all")]
        params: Params,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelSource {
    #[default]
    Empirical,
    Analytic,
}

fn tsit45() -> Method {
    Method::Tsit45
}

fn default_radii() -> usize {
    20_000
}

fn default_rtol() -> f64 {
    1e-6
}
fn default_atol() -> f64 {
    1e-8
}

impl DynamicsSpec {
    pub fn name(&self) -> String {
        let n = match self {
            DynamicsSpec::Gd { name, .. }
            | DynamicsSpec::Sgd { name, .. }
            | DynamicsSpec::RadialPde { name, .. }
            | DynamicsSpec::GradientFlow { name, .. }
            | DynamicsSpec::Linearized { name, .. }
            | DynamicsSpec::Residual { name, .. }
            | DynamicsSpec::NtkLimit { name, .. } => name,
        };
        n.clone().unwrap_or_else(|| self.kind_name().to_string())
    }
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            DynamicsSpec::Gd { .. } => "gd",
            DynamicsSpec::Sgd { .. } => "sgd",
            DynamicsSpec::RadialPde { .. } => "radial_pde",
            DynamicsSpec::GradientFlow { .. } => "gradient_flow",
            DynamicsSpec::Linearized { .. } => "linearized",
            DynamicsSpec::Residual { .. } => "residual",
            DynamicsSpec::NtkLimit { .. } => "ntk_limit",
        }
    }
    /// The time this dynamics runs to.
    pub fn t_end(&self) -> f64 {
        match *self {
            DynamicsSpec::Gd { step, steps, .. } | DynamicsSpec::Sgd { step, steps, .. } => {
                step * steps as f64
            }
            DynamicsSpec::GradientFlow { t_end, .. }
            | DynamicsSpec::RadialPde { t_end, .. }
            | DynamicsSpec::Linearized { t_end, .. }
            | DynamicsSpec::Residual { t_end, .. }
            | DynamicsSpec::NtkLimit { t_end, .. } => t_end,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spacing {
    Linear,
    Log,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveSpec {
    /// Number of save times, including t = 0 and t_end.
    #[serde(default = "default_count")]
    pub count: usize,
    #[serde(default = "default_spacing")]
    pub spacing: Spacing,
    /// First positive save time for log spacing, as a fraction of t_end.
    #[serde(default = "default_log_start")]
    pub log_start: f64,
    /// How many training points the tangent-kernel Gram uses (0: none).
    #[serde(default)]
    pub kernel_points: usize,
    /// Whether to archive all particles at every save time.
    #[serde(default = "yes")]
    pub particles: bool,
}

fn default_count() -> usize {
    21
}
fn default_spacing() -> Spacing {
    Spacing::Linear
}
fn default_log_start() -> f64 {
    1e-3
}
fn yes() -> bool {
    true
}

impl Default for SaveSpec {
    fn default() -> Self {
        SaveSpec {
            count: default_count(),
            spacing: default_spacing(),
            log_start: default_log_start(),
            kernel_points: 0,
            particles: true,
        }
    }
}

impl SaveSpec {
    /// Save times on [0, t_end]: t = 0 first and t_end last.
    pub fn times(&self, t_end: f64) -> Vec<f64> {
        let c = self.count;
        match self.spacing {
            Spacing::Linear => (0..c).map(|i| t_end * i as f64 / (c - 1) as f64).collect(),
            Spacing::Log => {
                let t0 = self.log_start * t_end;
                let mut v = vec![0.0];
                for i in 0..c - 1 {
                    let s = if c > 2 {
                        i as f64 / (c - 2) as f64
                    } else {
                        1.0
                    };
                    v.push(t0 * (t_end / t0).powf(s));
                }
                *v.last_mut().unwrap() = t_end;
                v
            }
        }
    }
}

/// A problem with every default filled in, as TOML. It fails loudly: an archive that records no
/// problem could not be repeated (`run --from`) or resumed.
pub(crate) fn resolved_toml<T: Serialize>(problem: &T, archive: &Path) -> Result<String> {
    match toml::to_string(problem) {
        Ok(text) if !text.trim().is_empty() => Ok(text),
        Ok(_) => Err(Error::archive(
            archive,
            "the resolved problem (problem_resolved) came out empty",
        )),
        Err(e) => Err(Error::archive(
            archive,
            format!("cannot record the resolved problem (problem_resolved): {e}"),
        )),
    }
}

/// A problem file's text; an unreadable file is a problem error naming it.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Problem {
        file: path.to_path_buf(),
        key: "(file)".into(),
        message: format!("cannot read: {e}"),
    })
}

impl Problem {
    /// Read, parse and validate a problem file.
    pub fn load(path: &Path) -> Result<Problem> {
        Problem::parse(&read_text(path)?, path)
    }

    /// Parse and validate TOML text; `file` is only used in messages.
    pub fn parse(text: &str, file: &Path) -> Result<Problem> {
        let p: Problem = parse_toml(text, file)?;
        p.validate(file)?;
        Ok(p)
    }

    /// The problem with every default filled in, as TOML: what the archive at `archive` records.
    pub(crate) fn resolved_toml(&self, archive: &Path) -> Result<String> {
        crate::problem::resolved_toml(self, archive)
    }

    fn validate(&self, file: &Path) -> Result<()> {
        let c = Checks { file };

        validate_data(&self.data, file)?;

        let m = &self.model;
        c.size("model.width", m.width, 1)?;
        if m.init.symmetric && !m.width.is_multiple_of(2) {
            return Err(c.err(
                "model.width",
                format!(
                    "expected an even width with model.init.symmetric = true, got {}",
                    m.width
                ),
            ));
        }
        match m.scaling {
            Scaling::Alpha(a) => c.positive("model.scaling.alpha", a)?,
            Scaling::AlphaExponent(b) => {
                if !b.is_finite() {
                    return Err(c.err(
                        "model.scaling.alpha_exponent",
                        format!("expected a finite number, got {b}"),
                    ));
                }
                let a = m.scaling.alpha(m.width);
                if !(a.is_finite() && a > 0.0) {
                    return Err(c.err(
                        "model.scaling.alpha_exponent",
                        format!("N^β = {a} is not a usable scale"),
                    ));
                }
            }
            Scaling::MeanField | Scaling::Ntk => {}
        }
        c.nonneg("model.init.a_std", m.init.a_std)?;
        if !m.init.a_mean.is_finite() {
            return Err(c.err(
                "model.init.a_mean",
                format!("expected a finite number, got {}", m.init.a_mean),
            ));
        }
        if let Some(w) = m.init.w_std {
            c.nonneg("model.init.w_std", w)?;
        }
        c.nonneg("model.init.b_std", m.init.b_std)?;
        if m.init.b_std > 0.0 && !m.bias {
            return Err(c.err(
                "model.init.b_std",
                "a bias std needs model.bias = true".into(),
            ));
        }

        self.check_population(file)?;
        self.check_fixed_output(file)?;
        self.check_memory(file)?;

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
            let square_only = matches!(dy, DynamicsSpec::RadialPde { .. });
            if square_only && !m.loss.is_square() {
                return Err(c.err(
                    &key("kind"),
                    format!(
                        "{} is integrated in closed form for the square loss only, and model.loss = \"{}\"; with a formula loss run gd, sgd, gradient_flow, linearized, residual or ntk_limit",
                        dy.kind_name(),
                        m.loss.name()
                    ),
                ));
            }
            match *dy {
                DynamicsSpec::Gd { step, steps, .. } => {
                    c.positive(&key("step"), step)?;
                    c.steps(&key("steps"), steps)?;
                }
                DynamicsSpec::Sgd {
                    step,
                    steps,
                    batch,
                    online,
                    temperature,
                    weight_decay,
                    ..
                } => {
                    c.positive(&key("step"), step)?;
                    c.steps(&key("steps"), steps)?;
                    c.nonneg(&key("temperature"), temperature)?;
                    c.nonneg(&key("weight_decay"), weight_decay)?;
                    match (&self.data, online) {
                        (DataSpec::Synthetic { .. }, true) => {
                            c.size(&key("batch"), batch, 1)?;
                            if batch > MAX_DIM {
                                return Err(c.err(
                                    &key("batch"),
                                    format!("expected at most {MAX_DIM} fresh samples per step, got {batch}"),
                                ));
                            }
                        }
                        (_, true) => {
                            return Err(c.err(
                                &key("online"),
                                "online SGD draws fresh samples from the data law: it needs data.source = \"synthetic\"".into(),
                            ))
                        }
                        (DataSpec::Synthetic { n_train, .. }, false) if batch > *n_train => {
                            return Err(c.err(
                                &key("batch"),
                                format!("expected at most data.n_train = {n_train} samples per step, got {batch}"),
                            ))
                        }
                        _ => {}
                    }
                }
                DynamicsSpec::RadialPde {
                    radii,
                    large_d,
                    rtol,
                    atol,
                    t_end,
                    ..
                } => {
                    c.size(&key("radii"), radii, 1)?;
                    if radii > MAX_DIM {
                        return Err(c.err(
                            &key("radii"),
                            format!("expected at most {MAX_DIM}, got {radii}"),
                        ));
                    }
                    c.positive(&key("rtol"), rtol)?;
                    c.positive(&key("atol"), atol)?;
                    c.positive(&key("t_end"), t_end)?;
                    self.check_radial(file, &key("kind"))?;
                    if !large_d {
                        let d = match self.data {
                            DataSpec::Synthetic { d, .. } => d,
                            DataSpec::Csv { .. } | DataSpec::Hdf5 { .. } => 0,
                        };
                        crate::dynamics::radial::RadialPde::finite(0.0, 1, d)
                            .map_err(|m| c.err(&key("large_d"), m))?;
                    }
                }
                DynamicsSpec::GradientFlow {
                    rtol, atol, t_end, ..
                }
                | DynamicsSpec::Linearized {
                    rtol, atol, t_end, ..
                } => {
                    c.positive(&key("rtol"), rtol)?;
                    c.positive(&key("atol"), atol)?;
                    c.positive(&key("t_end"), t_end)?;
                }
                DynamicsSpec::Residual {
                    method,
                    rtol,
                    atol,
                    t_end,
                    ..
                } => {
                    if method != Method::Tsit45 {
                        return Err(c.err(
                            &key("method"),
                            format!(
                                "the residual dynamics runs with method = \"tsit45\" only (no analytic Jacobian for the coupled kernel), got {:?}",
                                method.name()
                            ),
                        ));
                    }
                    c.positive(&key("rtol"), rtol)?;
                    c.positive(&key("atol"), atol)?;
                    c.positive(&key("t_end"), t_end)?;
                }
                DynamicsSpec::NtkLimit { t_end, .. } => {
                    c.positive(&key("t_end"), t_end)?;
                }
            }
        }

        if let Some(sw) = &self.sweep {
            if sw.width.is_empty() && sw.alpha.is_empty() && sw.seeds.is_empty() {
                return Err(c.err(
                    "sweep",
                    "expected at least one of width, alpha, seeds to list values".into(),
                ));
            }
            for (i, &w) in sw.width.iter().enumerate() {
                c.size(&format!("sweep.width[{i}]"), w, 1)?;
                if m.init.symmetric && !w.is_multiple_of(2) {
                    return Err(c.err(
                        &format!("sweep.width[{i}]"),
                        format!("expected an even width with model.init.symmetric = true, got {w}"),
                    ));
                }
            }
            for (i, &a) in sw.alpha.iter().enumerate() {
                c.positive(&format!("sweep.alpha[{i}]"), a)?;
            }
            if !sw.step.is_empty() && sw.step.len() != sw.alpha.len() {
                return Err(c.err(
                    "sweep.step",
                    format!(
                        "expected one step per sweep.alpha value ({}), got {}",
                        sw.alpha.len(),
                        sw.step.len()
                    ),
                ));
            }
            for (i, &t) in sw.at.iter().enumerate() {
                c.nonneg(&format!("sweep.at[{i}]"), t)?;
            }
            for (i, &h) in sw.step.iter().enumerate() {
                c.positive(&format!("sweep.step[{i}]"), h)?;
            }
            if let Some(&w) = sw.width.iter().max() {
                let mut widest = self.clone();
                widest.model.width = w;
                widest.sweep = None;
                widest.check_memory(file)?;
            }
        }

        validate_save(&self.save, file)?;
        let s = &self.save;
        if let DataSpec::Synthetic { n_train, .. } = self.data {
            if s.kernel_points > n_train {
                return Err(c.err(
                    "save.kernel_points",
                    format!(
                        "expected at most data.n_train = {n_train}, got {}",
                        s.kernel_points
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuse sizes that would not fit in memory before any work starts. Only synthetic data has
    /// sizes known before loading; file data is checked again once loaded (`check_sizes`).
    fn check_memory(&self, file: &Path) -> Result<()> {
        if let DataSpec::Synthetic {
            d, n_train, n_test, ..
        } = self.data
        {
            self.check_sizes(file, d, n_train, n_test)?;
        }
        Ok(())
    }

    /// Memory estimate for a run with these data sizes: the state is N·D numbers (times a few
    /// copies in the solver), the forward pass holds a few n×N arrays, and an implicit solver holds
    /// a dense P×P Jacobian and its LU factors.
    pub(crate) fn check_sizes(
        &self,
        file: &Path,
        d: usize,
        n_train: usize,
        n_test: usize,
    ) -> Result<()> {
        let m = &self.model;
        let p = (m.width * (d + 1 + usize::from(m.bias))) as f64;
        let n = (n_train + n_test) as f64;
        let implicit = self.dynamics.iter().any(|dy| match dy {
            DynamicsSpec::GradientFlow { method, .. } | DynamicsSpec::Linearized { method, .. } => {
                *method != Method::Tsit45
            }
            _ => false,
        });
        let mut bytes = 8.0 * (4.0 * n * m.width as f64 + 16.0 * p + n * d as f64);
        if implicit {
            bytes += 8.0 * 3.0 * p * p;
        }
        let limit = 16.0 * (1u64 << 30) as f64;
        if bytes > limit {
            return Err(Error::Problem {
                file: file.to_path_buf(),
                key: "model.width".into(),
                message: format!(
                    "this problem needs about {:.1} GiB of memory (state P = {p}, {} samples{}); the limit is {:.0} GiB",
                    bytes / (1u64 << 30) as f64,
                    n,
                    if implicit { ", dense P×P Jacobian for the implicit solver" } else { "" },
                    limit / (1u64 << 30) as f64
                ),
            });
        }
        Ok(())
    }
}

/// TOML text into a problem type; a parse error names the key at its position.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, file: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let start = e.span().map(|s| s.start);
        let key = start
            .map(|s| key_at(text, s))
            .unwrap_or_else(|| "(toml)".into());
        let (mut key, message) = in_user_words(key, e.message().trim());
        // toml places an unknown key of an array entry at the array: find the line that sets it,
        // so that the key names its entry (dynamics[1].stpe).
        if let (Some(s), Some(field)) = (
            start,
            message
                .strip_prefix("unknown key")
                .and(key.rsplit('.').next()),
        ) {
            if let Some(at) = line_setting(text, s, field) {
                key = key_at(text, at);
            }
        }
        Error::Problem {
            file: file.to_path_buf(),
            key,
            message,
        }
    })
}

/// The byte offset of the first line at or after `from` that sets `field` (`field = …`).
fn line_setting(text: &str, from: usize, field: &str) -> Option<usize> {
    let mut offset = text[..from.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    for line in text[offset..].split_inclusive('\n') {
        let body = line.trim_start();
        if let Some(rest) = body.strip_prefix(field) {
            if rest.trim_start().starts_with('=') {
                return Some(offset + (line.len() - body.len()));
            }
        }
        offset += line.len();
    }
    None
}

/// serde's messages in the problem file's words: an unknown or missing key is named in the key
/// path, a type is named as TOML spells it, never as a Rust type.
fn in_user_words(key: String, message: &str) -> (String, String) {
    let quoted = |prefix: &str| {
        let rest = message.strip_prefix(prefix)?;
        let end = rest.find('`')?;
        Some((rest[..end].to_string(), rest[end + 1..].to_string()))
    };
    // A key found at the top of the file is placed by its line: the path then starts afresh.
    let join = |field: &str| {
        if key.is_empty() || key.starts_with("line ") || key == "(toml)" || key == field {
            field.to_string()
        } else if key.ends_with(&format!(".{field}")) {
            key.clone()
        } else {
            format!("{key}.{field}")
        }
    };
    if let Some((field, rest)) = quoted("unknown field `") {
        let expected = rest.trim_start_matches(',').trim().replace('`', "");
        return (join(&field), format!("unknown key; {expected}"));
    }
    if let Some((field, _)) = quoted("missing field `") {
        return (join(&field), "required, and missing".to_string());
    }
    let message = if message.starts_with("invalid type: map, expected a sequence") {
        "expected a list of tables ([[key]] entries), got a single [key] table".to_string()
    } else {
        plain_types(message)
    };
    (key, message)
}

/// Checks of values of the right type, each error naming the file, the key and what was expected.
pub(crate) struct Checks<'a> {
    pub file: &'a Path,
}

impl Checks<'_> {
    pub fn err(&self, key: &str, message: String) -> Error {
        Error::Problem {
            file: self.file.to_path_buf(),
            key: key.to_string(),
            message,
        }
    }

    pub fn positive(&self, key: &str, v: f64) -> Result<()> {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(self.err(key, format!("expected a finite number > 0, got {v}")))
        }
    }

    pub(crate) fn nonneg(&self, key: &str, v: f64) -> Result<()> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(self.err(key, format!("expected a finite number >= 0, got {v}")))
        }
    }

    pub fn size(&self, key: &str, v: usize, min: usize) -> Result<()> {
        if v < min || v > MAX_DIM {
            Err(self.err(
                key,
                format!("expected an integer in [{min}, {MAX_DIM}], got {v}"),
            ))
        } else {
            Ok(())
        }
    }

    /// A GD step count.
    pub fn steps(&self, key: &str, steps: usize) -> Result<()> {
        if steps == 0 || steps > 1 << 32 {
            return Err(self.err(
                key,
                format!("expected an integer in [1, 2^32], got {steps}"),
            ));
        }
        Ok(())
    }

    /// A dynamics name is an archive group: letters, digits, '_' or '-', and used once.
    pub(crate) fn unique_name(
        &self,
        name: &str,
        key: &str,
        seen: &mut std::collections::HashSet<String>,
    ) -> Result<()> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.err(
                key,
                format!("expected letters, digits, '_' or '-', got {name:?}"),
            ));
        }
        if !seen.insert(name.to_string()) {
            return Err(self.err(
                key,
                format!("the name {name:?} is used twice; give each dynamics its own name"),
            ));
        }
        Ok(())
    }
}

/// Checks of the save schedule shared by every problem kind.
pub(crate) fn validate_save(s: &SaveSpec, file: &Path) -> Result<()> {
    let c = Checks { file };
    if s.count < 2 || s.count > 100_000 {
        return Err(c.err(
            "save.count",
            format!("expected an integer in [2, 100000], got {}", s.count),
        ));
    }
    if !(s.log_start.is_finite() && s.log_start > 0.0 && s.log_start < 1.0) {
        return Err(c.err(
            "save.log_start",
            format!("expected a number in (0, 1), got {}", s.log_start),
        ));
    }
    Ok(())
}

impl Problem {
    /// Fixed output weights change the tangent model: the linearized, residual and frozen-kernel
    /// dynamics are written for trained ones.
    fn check_fixed_output(&self, file: &Path) -> Result<()> {
        if self.model.output_weights == OutputWeights::Trained {
            return Ok(());
        }
        self.network_dynamics_only(file, "model.output_weights = \"fixed\"", true)
    }

    /// The radial PDE holds for MMN's setting only.
    fn check_radial(&self, file: &Path, key: &str) -> Result<()> {
        let c = Checks { file };
        let m = &self.model;
        let need = |what: &str| {
            Err(c.err(
                key,
                format!("radial_pde is Mei–Montanari–Nguyen's isotropic example: it needs {what}"),
            ))
        };
        if !matches!(
            self.data,
            DataSpec::Synthetic {
                input: InputLaw::Gaussian,
                target: TargetSpec::IsotropicClasses { .. },
                ..
            }
        ) {
            return need("data.target = { kind = \"isotropic_classes\", delta = Δ } with input = \"gaussian\"");
        }
        if !m.activation.is("ramp") {
            return need("model.activation = \"ramp\"");
        }
        if m.output_weights != OutputWeights::Fixed
            || m.init.a_mean != 1.0
            || m.init.a_std != 0.0
            || m.init.symmetric
            || m.init.subtract_initial
        {
            return need("output weights fixed to 1: model.output_weights = \"fixed\", init = { a_mean = 1.0, a_std = 0.0 }");
        }
        if m.bias || m.scaling != Scaling::MeanField {
            return need("no bias and scaling = \"mean_field\"");
        }
        Ok(())
    }

    /// Refuses any dynamics but the network's own (gd, sgd, gradient_flow, and the radial PDE
    /// when `radial`) under `setting`.
    fn network_dynamics_only(&self, file: &Path, setting: &str, radial: bool) -> Result<()> {
        let c = Checks { file };
        for (i, dy) in self.dynamics.iter().enumerate() {
            let allowed = match dy {
                DynamicsSpec::Gd { .. }
                | DynamicsSpec::GradientFlow { .. }
                | DynamicsSpec::Sgd { .. } => true,
                DynamicsSpec::RadialPde { .. } => radial,
                _ => false,
            };
            if !allowed {
                return Err(c.err(
                    &format!("dynamics[{i}].kind"),
                    format!(
                        "{setting} runs \"gd\", \"sgd\" and \"gradient_flow\", got {:?}",
                        dy.kind_name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `data.risk = "population"` needs what the closed forms cover: Gaussian inputs, no biases,
    /// an activation with a closed-form pair kernel, a teacher of the same activation, and
    /// dynamics that move the particles themselves.
    fn check_population(&self, file: &Path) -> Result<()> {
        let c = Checks { file };
        let DataSpec::Synthetic {
            risk: Risk::Population,
            input,
            target,
            ..
        } = &self.data
        else {
            return Ok(());
        };
        let m = &self.model;
        if *input != InputLaw::Gaussian {
            return Err(c.err(
                "data.input",
                "data.risk = \"population\" is in closed form for input = \"gaussian\" only".into(),
            ));
        }
        if !m.loss.is_square() {
            return Err(c.err(
                "model.loss",
                format!(
                    "data.risk = \"population\" is in closed form for the square loss only, got \"{}\"",
                    m.loss.name()
                ),
            ));
        }
        let act = &m.activation;
        if crate::limits::population::PairKernel::of(act).is_none() {
            return Err(c.err(
                "model.activation",
                format!(
                    "data.risk = \"population\" needs a closed-form E[σ(⟨w,x⟩)σ(⟨w',x⟩)]: relu, erf, linear or quadratic, got \"{}\"", act.name()
                ),
            ));
        }
        let teacher_act = match target {
            TargetSpec::Teacher { activation, .. } | TargetSpec::SingleIndex { activation } => {
                Some(activation.clone())
            }
            TargetSpec::Linear | TargetSpec::Sparse { .. } => Activation::named("linear"),
            TargetSpec::IsotropicClasses { .. } => None,
        };
        if teacher_act.as_ref() != Some(act) {
            return Err(c.err(
                "data.target",
                format!(
                    "data.risk = \"population\" needs a teacher with the model's activation \"{}\", got {}",
                    act.name(),
                    teacher_act.map_or("a target without teacher neurons".into(), |a| format!("\"{}\"", a.name()))
                ),
            ));
        }
        if m.bias {
            return Err(c.err(
                "model.bias",
                "data.risk = \"population\" is in closed form without biases".into(),
            ));
        }
        if m.init.subtract_initial {
            return Err(c.err(
                "model.init.subtract_initial",
                "data.risk = \"population\" does not centre by subtraction (use symmetric)".into(),
            ));
        }
        self.network_dynamics_only(file, "data.risk = \"population\"", false)
    }
}

/// Checks of the data table shared by every problem kind.
pub(crate) fn validate_data(data: &DataSpec, file: &Path) -> Result<()> {
    let c = Checks { file };
    if let DataSpec::Synthetic {
        d,
        n_train,
        n_test,
        noise,
        target,
        ..
    } = data
    {
        c.size("data.d", *d, 1)?;
        c.size("data.n_train", *n_train, 1)?;
        if *n_test > MAX_DIM {
            return Err(c.err(
                "data.n_test",
                format!("expected at most {MAX_DIM}, got {n_test}"),
            ));
        }
        c.nonneg("data.noise", *noise)?;
        if let DataSpec::Synthetic {
            radius: Some(r),
            input,
            ..
        } = data
        {
            c.positive("data.radius", *r)?;
            if *input != InputLaw::Sphere {
                return Err(c.err(
                    "data.radius",
                    "a radius applies to input = \"sphere\" only".into(),
                ));
            }
        }
        if let TargetSpec::IsotropicClasses { delta } = target {
            if !(*delta > 0.0 && *delta < 1.0) {
                return Err(c.err(
                    "data.target.delta",
                    format!("expected 0 < Δ < 1, got {delta}"),
                ));
            }
            if let DataSpec::Synthetic {
                input: InputLaw::Sphere,
                ..
            } = data
            {
                return Err(c.err(
                    "data.input",
                    "isotropic_classes draws x ~ N(0, (1 ± Δ)² I): it needs input = \"gaussian\""
                        .into(),
                ));
            }
        }
        if let TargetSpec::Sparse { support, scale } = target {
            if *support > *d {
                return Err(c.err(
                    "data.target.support",
                    format!("expected at most data.d = {d} nonzero coordinates, got {support}"),
                ));
            }
            if !scale.is_finite() {
                return Err(c.err("data.target.scale", "expected a finite number".into()));
            }
        }
        if let TargetSpec::Teacher { width, scale, .. } = target {
            c.size("data.target.width", *width, 1)?;
            if !scale.is_finite() {
                return Err(c.err("data.target.scale", "expected a finite number".into()));
            }
        }
    }

    Ok(())
}

/// Largest size of any dimension a problem may ask for: sizes that fit in memory comfortably;
/// larger is refused before any work starts.
const MAX_DIM: usize = 1 << 20;

/// serde names Rust types in its messages; say what a problem-file author would.
pub(crate) fn plain_types(msg: &str) -> String {
    let msg = match msg.find("expected struct ") {
        // "expected struct InitSpec" names a Rust type: TOML calls it a table.
        Some(i) => format!("{}expected a table", &msg[..i]),
        None => msg.to_string(),
    };
    msg.replace("expected usize", "expected a non-negative integer")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected f64", "expected a number")
        .replace("expected a boolean", "expected true or false")
}

/// The dotted key path whose value starts at byte `pos` of a TOML text, best effort: the table
/// header above the line plus the key on the line. Used only to name the key in parse errors.
pub(crate) fn key_at(text: &str, pos: usize) -> String {
    let pos = pos.min(text.len());
    let before = &text[..pos];
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[pos..]
        .find('\n')
        .map(|i| pos + i)
        .unwrap_or(text.len());
    let line = text[line_start..line_end].trim();
    // "[[dynamics]]" is an array of tables: name the entry, dynamics[k], as validation does.
    let header = |l: &str, above: &str| {
        let name = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        if l.starts_with("[[") {
            let k = above.lines().filter(|a| a.trim() == l).count();
            format!("{name}[{k}]")
        } else {
            name
        }
    };
    let table = before[..line_start]
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim().starts_with('['))
        .last()
        .map(|(i, l)| {
            let above: String = before[..line_start]
                .lines()
                .take(i)
                .collect::<Vec<_>>()
                .join("\n");
            header(l.trim(), &above)
        });
    let key = line
        .split('=')
        .next()
        .filter(|_| line.contains('='))
        .map(|k| k.trim().to_string());
    let named = match (table, key) {
        (Some(t), Some(k)) if !line.starts_with('[') && !k.is_empty() => format!("{t}.{k}"),
        (_, Some(k)) if !line.starts_with('[') => k,
        (_, _) if line.starts_with('[') => header(line, &before[..line_start]),
        (Some(t), None) => t,
        _ => String::new(),
    };
    // A syntax error with no key to name (a bare "[", "= 1") is placed by its line.
    if named.trim().is_empty() {
        format!("line {}", before.matches('\n').count() + 1)
    } else {
        named
    }
}
