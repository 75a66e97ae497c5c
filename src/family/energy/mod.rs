//! Mean-field energies (`[model] kind = "energy"`): the Wasserstein gradient flow of
//! F(μ) = ∫V dμ + ½∫∫W dμdμ + T∫ρ log ρ, with V and W written as formulas. Its N-particle system
//! dX_i = −∇V(X_i) dt − (1/N) Σ_j ∇₁W(X_i, X_j) dt + √(2T) dB_i (../shared/papers/mckean_vlasov.md) runs as
//! GD, an adaptive flow or Langevin; its limit ∂_t ρ = ∇·(ρ∇(V + W∗ρ)) + TΔρ runs on a grid; one
//! archive holds both, with their W2 distance at every save.
//!
//! ```toml
//! [model]
//! kind = "energy"
//! dimension = 1                          # 1 or 2: particles x, or (x1, x2)
//! potential = "x^4/4 - x^2/2"            # V(x); in 2-D a formula in x1, x2
//! interaction = "-exp(-(x - y)^2/2)"     # W(x, y); in 2-D in x1, x2, y1, y2; "0" for none
//! temperature = 0.05                     # T ≥ 0
//! particles = 1000
//! init = { law = "gaussian", mean = [0.0], std = [1.0] }  # or law = "uniform", low, high
//!
//! [[dynamics]]
//! kind = "pde"                           # finite volumes, Scharfetter–Gummel fluxes
//! cells = 2000
//! box = [[-5, 5]]
//! t_end = 10.0
//! ```
//!
//! Files: this one (problem file and `Study`), `particles.rs` (the particle system from the
//! formulas), `pde.rs` (the limit on a grid), `run.rs` (running and archiving).

pub mod particles;
pub mod pde;
pub mod run;

use super::{Finished, Monitor, RunOptions, Source, Study, SweepAction, SweepDone};
use crate::archive::catalog::{plain, Description, Place};
use crate::archive::ArchiveReader;
use crate::error::Result;
use crate::problem::{Checks, Method, SaveSpec};
use crate::report::plot::{self, any_run_has, chart::Chart, figures, Figure, PlotOptions};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub(crate) struct EnergyStudy;

impl Study for EnergyStudy {
    fn kind(&self) -> &'static str {
        "energy"
    }

    /// A sweep's W2 against N, or the PDE's density against the particles.
    fn default_figure(&self, archive: &ArchiveReader) -> Figure {
        if ArchiveReader::str_attr(&archive.file, "kind").as_deref() == Some("energy_sweep") {
            Figure::Sweep
        } else if any_run_has(archive, "density") {
            Figure::Density
        } else {
            Figure::Losses
        }
    }
    /// An energy's "losses" are its free energy, its particles are positions, and its sweep
    /// fits W2 against N.
    fn draw(&self, what: Figure, archive: &ArchiveReader, opts: &PlotOptions<'_>) -> Result<Chart> {
        match what {
            Figure::Losses => figures::free_energy(archive, opts.run),
            Figure::Particles => figures::positions(archive, opts.run, opts.max_particles),
            Figure::Sweep => figures::energy_sweep(archive),
            _ => plot::draw(what, archive, opts),
        }
    }

    fn check(&self, src: &Source) -> Result<()> {
        let p = EnergyProblem::parse(&src.text, &src.path)?;
        particles::Energy::build(&p.model, &src.path).map(|_| ())
    }

    fn run(&self, src: &Source, opts: &RunOptions, monitor: &dyn Monitor) -> Result<Finished> {
        run::run_energy(src, opts, monitor)
    }

    /// V, W and the derivatives the particle velocity, its Jacobian and the PDE take.
    fn derive(&self, src: &Source, latex: bool) -> Result<String> {
        let p = EnergyProblem::parse(&src.text, &src.path)?;
        let e = particles::Energy::build(&p.model, &src.path)?;
        let (x, xy) = particles::variables(e.d);
        // A formula as written, a derivative in exmex's text; or both in LaTeX.
        let written = |f: &crate::expr::Expr| {
            if latex {
                f.latex()
            } else {
                f.text().to_string()
            }
        };
        let show = |x: &crate::expr::Expr| if latex { x.latex() } else { x.exmex_text() };
        let mut rows = vec![("V".to_string(), written(&e.v))];
        for (a, g) in e.grad_v.iter().enumerate() {
            rows.push((format!("∂V/∂{}", x[a]), show(g)));
        }
        for (ab, h) in e.hess_v.iter().enumerate() {
            rows.push((format!("∂²V/∂{}∂{}", x[ab / e.d], x[ab % e.d]), show(h)));
        }
        if let Some(w) = &e.w {
            rows.push(("W".into(), written(&w.w)));
            for (a, g) in w.grad1.iter().enumerate() {
                rows.push((format!("∂W/∂{}", x[a]), show(g)));
            }
            for (ab, h) in w.hess11.iter().enumerate() {
                rows.push((format!("∂²W/∂{}∂{}", x[ab / e.d], x[ab % e.d]), show(h)));
            }
            for (ab, h) in w.hess12.iter().enumerate() {
                rows.push((
                    format!("∂²W/∂{}∂{}", x[ab / e.d], xy[e.d + ab % e.d]),
                    show(h),
                ));
            }
        }
        let mut s = String::new();
        if latex {
            s.push_str("\\begin{aligned}\n");
            for (k, v) in &rows {
                s.push_str(&format!("{k} &= {v} \\\\\n"));
            }
            s.push_str("\\end{aligned}\n");
        } else {
            for (k, v) in &rows {
                s.push_str(&format!("{k:<12} = {v}\n"));
            }
            let kinked = e.v.has_switches() || e.w.as_ref().is_some_and(|w| w.w.has_switches());
            if kinked {
                s.push_str("(the derivatives hold almost everywhere: signum and heaviside count as constants)\n");
            }
            s.push_str(&format!(
                "\nparticles: dX_i = −∇V(X_i) dt − (1/N) Σ_j ∇₁W(X_i, X_j) dt + √(2T) dB_i, T = {}\n\
                 PDE: ∂_t ρ = ∇·(ρ ∇(V + W∗ρ)) + T Δρ\n",
                e.temperature
            ));
        }
        Ok(s)
    }

    fn derives(&self) -> bool {
        true
    }

    fn sweep(&self, src: &Source, action: SweepAction, monitor: &dyn Monitor) -> Result<SweepDone> {
        run::sweep_energy(src, action, monitor)
    }

    fn sweeps(&self) -> bool {
        true
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyProblem {
    #[serde(default)]
    pub seed: u64,
    pub output: PathBuf,
    pub model: EnergySpec,
    pub dynamics: Vec<EnergyDynamics>,
    #[serde(default)]
    pub save: SaveSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<EnergySweep>,
}

/// `meanfield sweep`: every particle dynamics at each N (and `repeats` initial samples each)
/// against the first PDE run, with the fitted power law of their W2 distance in N.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergySweep {
    /// The particle counts N.
    pub particles: Vec<usize>,
    /// Independent initial samples per N, from seeds seed, seed + 1, …
    #[serde(default = "one")]
    pub repeats: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergyKind {
    Energy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergySpec {
    pub kind: EnergyKind,
    #[serde(default = "one")]
    pub dimension: usize,
    /// V, a formula in x (1-D) or x1, x2 (2-D).
    pub potential: String,
    /// W, a formula in x, y (1-D) or x1, x2, y1, y2 (2-D).
    #[serde(default = "zero")]
    pub interaction: String,
    #[serde(default)]
    pub temperature: f64,
    /// N.
    pub particles: usize,
    pub init: InitLaw,
}

fn one() -> usize {
    1
}
fn zero() -> String {
    "0".into()
}

/// The law of the initial particles, and the PDE's initial density.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "law", rename_all = "snake_case", deny_unknown_fields)]
pub enum InitLaw {
    /// Independent coordinates N(mean_k, std_k²).
    Gaussian { mean: Vec<f64>, std: Vec<f64> },
    /// Uniform on the box Π [low_k, high_k].
    Uniform { low: Vec<f64>, high: Vec<f64> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnergyDynamics {
    /// Explicit Euler on the particle system (T = 0): step k at t = kη.
    Gd {
        #[serde(default)]
        name: Option<String>,
        step: f64,
        steps: usize,
    },
    /// The particle flow (T = 0), adaptive, with the exact Jacobian for implicit methods.
    GradientFlow {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "bdf")]
        method: Method,
        #[serde(default = "rtol")]
        rtol: f64,
        #[serde(default = "atol")]
        atol: f64,
        t_end: f64,
    },
    /// Euler–Maruyama with √(2T) dB.
    Langevin {
        #[serde(default)]
        name: Option<String>,
        step: f64,
        steps: usize,
    },
    /// The limit PDE on a box with no-flux walls, by finite volumes.
    Pde {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "bdf")]
        method: Method,
        #[serde(default = "rtol")]
        rtol: f64,
        #[serde(default = "atol")]
        atol: f64,
        t_end: f64,
        /// Cells per axis: one count for every axis, or one per axis.
        #[serde(default = "cells")]
        cells: Cells,
        #[serde(rename = "box")]
        bounds: Vec<[f64; 2]>,
    },
}

fn bdf() -> Method {
    Method::Bdf
}
fn rtol() -> f64 {
    1e-6
}
fn atol() -> f64 {
    1e-9
}
fn cells() -> Cells {
    Cells::Each(2000)
}

/// `cells = 2000`, or in 2-D also `cells = [200, 100]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cells {
    Each(usize),
    PerAxis(Vec<usize>),
}

impl Cells {
    /// The count along each of `d` axes (None: a list of the wrong length).
    pub(crate) fn per_axis(&self, d: usize) -> Option<Vec<usize>> {
        match self {
            Cells::Each(m) => Some(vec![*m; d]),
            Cells::PerAxis(v) if v.len() == d => Some(v.clone()),
            Cells::PerAxis(_) => None,
        }
    }
}

impl EnergyDynamics {
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            EnergyDynamics::Gd { .. } => "gd",
            EnergyDynamics::GradientFlow { .. } => "gradient_flow",
            EnergyDynamics::Langevin { .. } => "langevin",
            EnergyDynamics::Pde { .. } => "pde",
        }
    }

    /// The archive group: the dynamics' `name`, or its kind.
    pub fn name(&self) -> String {
        let n = match self {
            EnergyDynamics::Gd { name, .. }
            | EnergyDynamics::GradientFlow { name, .. }
            | EnergyDynamics::Langevin { name, .. }
            | EnergyDynamics::Pde { name, .. } => name,
        };
        n.clone().unwrap_or_else(|| self.kind_name().to_string())
    }

    pub fn t_end(&self) -> f64 {
        match *self {
            EnergyDynamics::Gd { step, steps, .. }
            | EnergyDynamics::Langevin { step, steps, .. } => step * steps as f64,
            EnergyDynamics::GradientFlow { t_end, .. } | EnergyDynamics::Pde { t_end, .. } => t_end,
        }
    }
}

impl EnergyProblem {
    pub fn parse(text: &str, file: &Path) -> Result<EnergyProblem> {
        let p: EnergyProblem = crate::problem::parse_toml(text, file)?;
        p.validate(file)?;
        Ok(p)
    }

    /// The problem with every default filled in, as TOML: what the archive at `archive` records.
    pub(crate) fn resolved_toml(&self, archive: &Path) -> Result<String> {
        crate::problem::resolved_toml(self, archive)
    }

    fn validate(&self, file: &Path) -> Result<()> {
        let c = Checks { file };
        let m = &self.model;
        let d = m.dimension;
        if d != 1 && d != 2 {
            return Err(c.err("model.dimension", format!("expected 1 or 2, got {d}")));
        }
        c.nonneg("model.temperature", m.temperature)?;
        c.size("model.particles", m.particles, 1)?;
        let (a, b, names) = match &m.init {
            InitLaw::Gaussian { mean, std } => (mean, std, ["mean", "std"]),
            InitLaw::Uniform { low, high } => (low, high, ["low", "high"]),
        };
        for (v, n) in [(a, names[0]), (b, names[1])] {
            if v.len() != d {
                return Err(c.err(
                    &format!("model.init.{n}"),
                    format!("expected {d} number(s), one per dimension, got {}", v.len()),
                ));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(c.err(&format!("model.init.{n}"), "expected finite numbers".into()));
            }
        }
        match &m.init {
            InitLaw::Gaussian { std, .. } if std.iter().any(|s| *s <= 0.0) => {
                return Err(c.err("model.init.std", "expected numbers > 0".into()))
            }
            InitLaw::Uniform { low, high } if low.iter().zip(high).any(|(l, h)| l >= h) => {
                return Err(c.err(
                    "model.init.high",
                    "expected high > low in every dimension".into(),
                ))
            }
            _ => {}
        }
        crate::problem::validate_save(&self.save, file)?;
        let mut seen = Default::default();
        for (i, dy) in self.dynamics.iter().enumerate() {
            let key = |k: &str| format!("dynamics[{}].{k}", i + 1);
            c.unique_name(&dy.name(), &key("name"), &mut seen)?;
            match dy {
                EnergyDynamics::Gd { step, steps, .. }
                | EnergyDynamics::Langevin { step, steps, .. } => {
                    c.positive(&key("step"), *step)?;
                    c.steps(&key("steps"), *steps)?;
                }
                EnergyDynamics::GradientFlow {
                    rtol,
                    atol,
                    t_end,
                    method,
                    ..
                } => {
                    let nd = m.particles * d;
                    if *method != Method::Tsit45 && nd > 20_000 {
                        return Err(c.err(
                            &key("method"),
                            format!("the implicit methods store the particles' dense Jacobian, (N·D)² = {nd}² entries ({:.1} GiB each for the Jacobian, the Newton matrix and its LU): use method = \"tsit45\", or at most 20000 particle coordinates", (nd * nd * 8) as f64 / (1u64 << 30) as f64),
                        ));
                    }
                    c.positive(&key("rtol"), *rtol)?;
                    c.positive(&key("atol"), *atol)?;
                    c.positive(&key("t_end"), *t_end)?;
                }
                EnergyDynamics::Pde {
                    rtol,
                    atol,
                    t_end,
                    cells,
                    bounds,
                    ..
                } => {
                    c.positive(&key("rtol"), *rtol)?;
                    c.positive(&key("atol"), *atol)?;
                    c.positive(&key("t_end"), *t_end)?;
                    let Some(per) = cells.per_axis(d) else {
                        return Err(c.err(
                            &key("cells"),
                            format!("expected one count, or {d} (one per axis)"),
                        ));
                    };
                    let total: usize = per.iter().product();
                    if per.iter().any(|m| *m < 3) || total > 1_000_000 {
                        return Err(c.err(
                            &key("cells"),
                            format!("expected at least 3 cells per axis and at most 1000000 in all, got {per:?}"),
                        ));
                    }
                    let w = !particles::no_interaction(&m.interaction, d);
                    if w && total > 6000 {
                        return Err(c.err(
                            &key("cells"),
                            format!("with an interaction the grid holds W at every pair of cells (a {total}×{total} matrix): expected at most 6000 cells, got {total}"),
                        ));
                    }
                    if bounds.len() != d {
                        return Err(c.err(
                            &key("box"),
                            format!(
                                "expected {d} range(s) [low, high], one per dimension, got {}",
                                bounds.len()
                            ),
                        ));
                    }
                    if bounds
                        .iter()
                        .any(|[l, h]| !(l.is_finite() && h.is_finite() && l < h))
                    {
                        return Err(c.err(
                            &key("box"),
                            "expected finite ranges [low, high] with low < high".into(),
                        ));
                    }
                    let outside = pde::outside_mass(&m.init, bounds);
                    if outside > 1e-3 {
                        return Err(c.err(
                            &key("box"),
                            format!(
                                "the box {} does not contain the initial law: it leaves out {outside:.3e} of its mass (at most 1e-3 may fall outside)",
                                bounds.iter().map(|[l, h]| format!("[{l}, {h}]")).collect::<Vec<_>>().join(" × ")
                            ),
                        ));
                    }
                }
            }
            let t = m.temperature;
            match dy {
                EnergyDynamics::Gd { .. } | EnergyDynamics::GradientFlow { .. } if t > 0.0 => {
                    return Err(c.err(
                        &key("kind"),
                        format!(
                            "{} is the noiseless particle flow, which does not follow the limit at temperature {t} > 0: use kind = \"langevin\" (or set temperature = 0)",
                            dy.kind_name()
                        ),
                    ))
                }
                _ => {}
            }
        }
        if let Some(sw) = &self.sweep {
            let mut ns = sw.particles.clone();
            ns.sort();
            ns.dedup();
            if ns.len() != sw.particles.len() {
                return Err(c.err(
                    "sweep.particles",
                    format!("expected each particle count once, got {:?}", sw.particles),
                ));
            }
            if ns.len() < 3 || ns[0] < 4 {
                return Err(c.err(
                    "sweep.particles",
                    format!("expected at least 3 different particle counts, each at least 4 (for a fitted slope), got {:?}", sw.particles),
                ));
            }
            for &n in &ns {
                c.size("sweep.particles", n, 4)?;
            }
            if sw.repeats == 0 || sw.repeats > 1000 {
                return Err(c.err(
                    "sweep.repeats",
                    format!("expected an integer in [1, 1000], got {}", sw.repeats),
                ));
            }
            let pde = self
                .dynamics
                .iter()
                .any(|x| matches!(x, EnergyDynamics::Pde { .. }));
            let particles = self
                .dynamics
                .iter()
                .any(|x| !matches!(x, EnergyDynamics::Pde { .. }));
            if !pde || !particles || d != 1 {
                return Err(c.err(
                    "sweep",
                    "a sweep measures particles against the PDE: it needs dimension = 1, a kind = \"pde\" dynamics and at least one particle dynamics".into(),
                ));
            }
            // W2 is taken at the save times the particles share with the (first) PDE.
            let t_pde = self
                .dynamics
                .iter()
                .find(|x| matches!(x, EnergyDynamics::Pde { .. }))
                .map(|x| x.t_end())
                .unwrap_or(0.0);
            for (i, dy) in self.dynamics.iter().enumerate() {
                let t = dy.t_end();
                if (t - t_pde).abs() > 1e-9 * t_pde.abs().max(1.0) {
                    return Err(c.err(
                        &format!("dynamics[{}]", i + 1),
                        format!("a sweep compares every dynamics with the PDE at their common save times: expected it to end at the PDE's t_end = {t_pde}, got {t} (steps × step for gd and langevin)"),
                    ));
                }
            }
        }
        if self.dynamics.is_empty() {
            return Err(c.err(
                "dynamics",
                "expected at least one [[dynamics]] entry".into(),
            ));
        }
        Ok(())
    }
}

/// What an energy's datasets are (the archive's `description` attributes).
pub fn describe(place: &Place<'_>, name: &str) -> Option<Description> {
    match place.group {
        "points" => points(name),
        "fits" => fits(name),
        "runs" => runs(name),
        _ => None,
    }
}

const ENERGY_TIME: &str = "time t of dX = −∇V(X) dt − (1/N) Σ_j ∇₁W(X, X_j) dt + √(2T) dB (the PDE's ∂_t ρ = ∇·(ρ∇(V + W∗ρ)) + TΔρ); GD and Langevin step k at t = kη";

fn runs(name: &str) -> Option<Description> {
    match name {
        "t" => Some(("time of each save", Some(ENERGY_TIME))),
        "particles" => plain("X_i(t), the particles at each save [T, N, D], columns in `columns`"),
        "free_energy" => plain("the free energy at each save: the PDE's vol Σ V ρ + ½ vol² Σ W ρρ + T vol Σ ρ log ρ; particles' see the run's `free_energy_is`"),
        "energy" => plain("F_N = (1/N) Σ V(X_i) + (1/(2N²)) Σ_ij W(X_i, X_j) at each save, exact (no entropy)"),
        "mean" => plain("the mean of each coordinate at each save [T, D]"),
        "variance" => plain("the variance of each coordinate at each save [T, D]"),
        "w2_pde" => plain("W2 between the particles and the PDE's density at the same time (method in `w2_method`, PDE in `w2_against`; NaN where it has no save)"),
        "density" => plain("ρ(t), the cell averages at each save [T, cells…] (row-major, the last axis fastest)"),
        "mass" => plain("vol Σ ρ, conserved to round-off by the no-flux walls"),
        "min_density" => plain("the smallest cell average at each save (the scheme keeps ρ ≥ 0 up to the solver's tolerance)"),
        "grid" => plain("the cell centres [M]"),
        "grid_x1" => plain("the cell centres along x1 [M1]"),
        "grid_x2" => plain("the cell centres along x2 [M2]"),
        _ => None,
    }
}

fn points(name: &str) -> Option<Description> {
    match name {
        "particle_count" => plain("N, the task's number of particles"),
        "repeat" => plain("k, the task's repeat at its N"),
        "seed" => plain("the seed of the task's initial sample and noise"),
        n if n.starts_with("w2_") => plain("W2 between the task's particles and the PDE at each save of the dynamics [points, times] (times: fits/<dynamics>/t)"),
        _ => None,
    }
}

fn fits(name: &str) -> Option<Description> {
    match name {
        "t" => Some(("the save times of the fitted dynamics", Some(ENERGY_TIME))),
        "slope" => plain("least-squares slope of log(mean W2 over repeats) on log N at each save"),
        "ci_low" => plain("lower end of the slope's 95% Student-t interval"),
        "ci_high" => plain("upper end of the slope's 95% Student-t interval"),
        "intercept" => plain("intercept of the fitted line: log W2 ≈ intercept + slope · log N"),
        _ => None,
    }
}
