//! `meanfield run` for shallow linear networks: GD, the self-consistent dynamics of eq. (1), the
//! gradient flow and the closed forms, all from the same A(0), in one archive.
//!
//! Time: t = kη, with η the GD step; the continuous runs are saved at the same t.
//!
//! ```text
//!   /data/a_star [d,d]  y [d,d]      attrs rank, noise, n (regression), train_loss_offset
//!   /init/a [d,d]                    attrs sigma2, width, threshold (σ²w), eta, reduced (0/1),
//!                                          gamma_sigma2, gamma_w, u0
//!   /runs/<name>/t [T]  step [T]  train_error [T]  test_error [T]  singular_values [T,d]
//!                distance [T'] (‖A − A_ref‖_F/‖A_ref‖_F at the saves both runs reached)
//!                a_final [d,d]
//!                attrs kind, method, min_test_error, min_test_step, min_test_t, reference,
//!                      max_distance, stop_rule (GD with early stopping)
//! ```
//!
//! Errors are the paper's: train ‖A − Y‖_F²/d², test ‖A − A*‖_F²/d². The minimum test error of a
//! discrete run is taken over every step, of a continuous one over its saves.

use crate::archive::{ArchiveWriter, Provenance, SeriesWriter};
use crate::dynamics::linear_net::WeightFlow;
use crate::dynamics::mixed::{velocity_into, MixedFlow, Workspace};
use crate::error::{Error, Result};
use crate::family::{overall_status, RunOptions, RunSummary};
use crate::integrate::{ode, Outcome, SolverStats};
use crate::limits::linear_modes::{lazy_solution, saxe_mode};
use crate::model::linear_net::{op_norm, paper_step, singular_values, Gd, LinearNet, MatrixTask};
use crate::problem::linear::{LinearData, LinearInit, LinearMethod, Reduction};
use crate::problem::{LinearDynamics, LinearProblem, Method};
use crate::rng::{stream, Stream};
use faer::{Mat, MatRef, Par};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Progress of a run whose dynamics go in parallel: (saves done, saves in all).
pub(crate) type SharedProgress<'a> = dyn Fn(usize, usize) + Sync + 'a;

pub struct LinearSetup {
    pub problem: LinearProblem,
    pub problem_text: String,
    pub task: MatrixTask,
    /// The initial weights (reduced to width 2d when `reduced`).
    pub net: LinearNet,
    pub a0: Mat<f64>,
    pub sigma2: f64,
    pub width: usize,
    /// σ²w: the singular values above it are balanced, those below lazy (0 for the aligned start).
    pub threshold: f64,
    pub eta: f64,
    pub reduced: bool,
}

/// What a linear-network run produced beyond the common summary.
#[derive(Debug, Clone)]
pub struct LinearResult {
    pub name: String,
    pub min_test: f64,
    pub min_test_step: usize,
    pub min_test_t: f64,
    /// Largest ‖A − A_ref‖_F/‖A_ref‖_F against the first dynamics listed (NaN for that one).
    pub max_distance: f64,
}

#[derive(Debug, Clone)]
pub struct LinearReport {
    pub archive: PathBuf,
    pub runs: Vec<RunSummary>,
    pub results: Vec<LinearResult>,
}

impl LinearReport {
    pub fn completed(&self) -> bool {
        self.runs.iter().all(|r| r.completed)
    }
}

impl LinearSetup {
    pub fn from_text(text: String, path: &Path, opts: &RunOptions) -> Result<LinearSetup> {
        let mut problem = LinearProblem::parse(&text, path)?;
        if let Some(seed) = opts.seed {
            problem.seed = seed;
        }
        LinearSetup::new(problem, text)
    }

    pub fn new(problem: LinearProblem, problem_text: String) -> Result<LinearSetup> {
        let task = draw_task(&problem.data, problem.seed);
        let d = problem.data.d();
        let m = &problem.model;
        let mut rng = stream(problem.seed, Stream::Particles);
        let t = &problem.training;
        let (net, sigma2, width, threshold, reduced, eta) = match m.init {
            LinearInit::Gaussian => {
                let (gs, gw) = (m.gamma_sigma2.unwrap_or(0.0), m.gamma_w.unwrap_or(0.0));
                let (s2, w) = LinearProblem::scales(d, gs, gw);
                let reduce = match m.reduction {
                    Reduction::Auto => w >= 2 * d,
                    Reduction::Bartlett => true,
                    Reduction::Full => false,
                };
                let net = if reduce {
                    LinearNet::reduced(d, w, s2, &mut rng).ok_or_else(|| {
                        Error::Usage(format!("the Bartlett draw needs w ≥ 2d, got w = {w}"))
                    })?
                } else {
                    LinearNet::full(d, w, s2, &mut rng)
                };
                let eta = t.step.unwrap_or_else(|| {
                    paper_step(d, gs, gw, op_norm(task.a_star.as_ref()), t.step_factor)
                });
                (net, s2, w, s2 * w as f64, reduce, eta)
            }
            LinearInit::Aligned => {
                let net = LinearNet::aligned(task.y.as_ref(), m.u0)
                    .ok_or_else(|| Error::Numerical("the SVD of Y did not converge".into()))?;
                let eta = t
                    .step
                    .unwrap_or_else(|| 1.0 / (t.step_factor * op_norm(task.y.as_ref())));
                (net, f64::NAN, 0, 0.0, true, eta)
            }
        };
        let a0 = net.product();
        Ok(LinearSetup {
            problem,
            problem_text,
            task,
            net,
            a0,
            sigma2,
            width,
            threshold,
            eta,
            reduced,
        })
    }

    /// The steps at which every run saves: 0, every `save_every`, and the last.
    pub fn save_steps(&self) -> Vec<usize> {
        let t = &self.problem.training;
        let mut k: Vec<usize> = (0..=t.steps).step_by(t.save_every).collect();
        if k.last() != Some(&t.steps) {
            k.push(t.steps);
        }
        k
    }
}

/// The task of a problem, from the seed's target stream.
pub(crate) fn draw_task(data: &LinearData, seed: u64) -> MatrixTask {
    let mut rng = stream(seed, Stream::Target);
    match *data {
        LinearData::Denoising { d, rank, noise } => MatrixTask::denoising(d, rank, noise, &mut rng),
        LinearData::WhitenedRegression { d, rank, n, noise } => {
            MatrixTask::whitened_regression(d, rank, n, noise, &mut rng).0
        }
    }
}

/// Saves one run: errors at every observed step (for the minimum), a row at each save step.
struct Recorder<'a> {
    name: String,
    w: SeriesWriter,
    task: &'a MatrixTask,
    eta: f64,
    save_at: &'a [usize],
    next: usize,
    spectra: bool,
    keep: bool,
    snapshots: Vec<(usize, Mat<f64>)>,
    best: (f64, usize, f64),
    last: (f64, f64, f64),
    progress: &'a SharedProgress<'a>,
    counter: &'a std::sync::atomic::AtomicUsize,
    total: usize,
}

impl Recorder<'_> {
    /// Observes A at step k (time kη for the discrete runs; `t` for the continuous ones);
    /// `force` saves a step off the schedule (an early stop). Returns Err(reason) on a
    /// non-finite A.
    fn observe(
        &mut self,
        k: usize,
        t: f64,
        a: MatRef<'_, f64>,
        spectrum: Option<Vec<f64>>,
        force: bool,
    ) -> Result<std::result::Result<(), String>> {
        let (train, test) = self.task.errors(a);
        if !(train.is_finite() && test.is_finite()) {
            return Ok(Err(format!(
                "diverged at step {k} (t = {t:e}): A is no longer finite"
            )));
        }
        if test < self.best.0 || self.best.0.is_nan() {
            self.best = (test, k, t);
        }
        self.last = (t, train, test);
        let scheduled = self.save_at.get(self.next) == Some(&k);
        if scheduled || force {
            if scheduled {
                self.next += 1;
            }
            let mut row: Vec<&[f64]> = vec![];
            let (kf, tr, te) = ([k as f64], [train], [test]);
            row.extend([&kf[..], &tr[..], &te[..]]);
            let s;
            if self.spectra {
                s = spectrum.unwrap_or_else(|| singular_values(a, Par::rayon(0)));
                row.push(&s);
            }
            self.w.append(t, &row)?;
            if self.keep {
                self.snapshots.push((k, a.to_owned()));
            }
            let done = 1 + self
                .counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (self.progress)(done, self.total);
        }
        Ok(Ok(()))
    }
}

/// What one dynamics left behind for the comparisons.
struct Finished {
    summary: RunSummary,
    writer: SeriesWriter,
    snapshots: Vec<(usize, Mat<f64>)>,
    best: (f64, usize, f64),
}

/// Integrates every dynamics of a linear-network problem (in parallel) into one archive.
pub fn run_linear(
    setup: &LinearSetup,
    opts: &RunOptions,
    progress: &SharedProgress<'_>,
) -> Result<LinearReport> {
    let _scope = crate::integrate::RunScope::enter();
    let out = opts.archive_path(&setup.problem.output);
    let resolved = setup.problem.resolved_toml(&out)?;
    let archive = ArchiveWriter::create(
        &out,
        &Provenance {
            width: Some(setup.width as u64),
            ..opts.provenance(
                &setup.problem_text,
                &resolved,
                setup.problem.seed,
                super::describe,
            )
        },
        opts.existing,
    )?;
    let p = &setup.problem;
    let (n, offset) = match p.data {
        LinearData::WhitenedRegression { n, .. } => (n as f64, setup.task.offset),
        LinearData::Denoising { .. } => (f64::NAN, 0.0),
    };
    let noise = match p.data {
        LinearData::Denoising { noise, .. } | LinearData::WhitenedRegression { noise, .. } => noise,
    };
    archive.write_matrices(
        "data",
        &[("a_star", &setup.task.a_star), ("y", &setup.task.y)],
        &[
            ("rank", p.data.rank() as f64),
            ("noise", noise),
            ("n", n),
            ("train_loss_offset", offset),
        ],
    )?;
    archive.write_matrices(
        "init",
        &[("a", &setup.a0)],
        &[
            ("sigma2", setup.sigma2),
            ("width", setup.width as f64),
            ("threshold", setup.threshold),
            ("eta", setup.eta),
            ("reduced", if setup.reduced { 1.0 } else { 0.0 }),
            ("gamma_sigma2", p.model.gamma_sigma2.unwrap_or(f64::NAN)),
            ("gamma_w", p.model.gamma_w.unwrap_or(f64::NAN)),
            (
                "u0",
                if p.model.init == LinearInit::Aligned {
                    p.model.u0
                } else {
                    f64::NAN
                },
            ),
        ],
    )?;
    let save_at = setup.save_steps();
    let d = setup.task.d();
    let spectra = p.training.spectra;
    let mut writers = vec![];
    for spec in &p.dynamics {
        let mut series: Vec<(&str, &[usize])> =
            vec![("step", &[]), ("train_error", &[]), ("test_error", &[])];
        let shape = [d];
        if spectra {
            series.push(("singular_values", &shape));
        }
        let w = archive.series_run(&spec.name(), &series)?;
        w.set_str("kind", spec.kind_name())?;
        w.set_str("method", method_name(spec))?;
        w.set_str("errors", "train ‖A − Y‖²/d², test ‖A − A*‖²/d²")?;
        w.set_num("eta", setup.eta)?;
        writers.push(w);
    }
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let total = save_at.len() * p.dynamics.len();
    let keep = p.dynamics.len() > 1;
    let finished: Vec<Result<Finished>> = p
        .dynamics
        .par_iter()
        .zip(writers.into_par_iter())
        .map(|(spec, w)| {
            let rec = Recorder {
                name: spec.name(),
                w,
                task: &setup.task,
                eta: setup.eta,
                save_at: &save_at,
                next: 0,
                spectra,
                keep,
                snapshots: vec![],
                best: (f64::NAN, 0, f64::NAN),
                last: (0.0, f64::NAN, f64::NAN),
                progress,
                counter: &counter,
                total,
            };
            run_one(setup, spec, rec)
        })
        .collect();
    let mut done = vec![];
    for f in finished {
        done.push(f?);
    }
    let mut results = vec![];
    let reference = done
        .first()
        .map(|f| (f.summary.name.clone(), f.snapshots.clone()));
    for (i, f) in done.iter().enumerate() {
        let mut max_distance = f64::NAN;
        if let (Some((ref_name, ref_snaps)), true) = (&reference, i > 0) {
            let mut dist = vec![];
            for (k, a) in &f.snapshots {
                if let Ok(j) = ref_snaps.binary_search_by_key(k, |s| s.0) {
                    let r = &ref_snaps[j].1;
                    dist.push((a - r).norm_l2() / r.norm_l2());
                }
            }
            max_distance = dist.iter().copied().fold(f64::NAN, f64::max);
            f.writer.write_array("distance", &[dist.len()], &dist)?;
            f.writer.set_str("reference", ref_name)?;
            f.writer.set_num("max_distance", max_distance)?;
        }
        results.push(LinearResult {
            name: f.summary.name.clone(),
            min_test: f.best.0,
            min_test_step: f.best.1,
            min_test_t: f.best.2,
            max_distance,
        });
    }
    let runs: Vec<RunSummary> = done.into_iter().map(|f| f.summary).collect();
    archive.finish(&overall_status(&runs))?;
    Ok(LinearReport {
        archive: out,
        runs,
        results,
    })
}

fn method_name(spec: &LinearDynamics) -> &'static str {
    match spec {
        LinearDynamics::Gd { .. } => "paper_sequential",
        LinearDynamics::SelfConsistent {
            method: LinearMethod::Euler,
            ..
        } => "euler",
        LinearDynamics::SelfConsistent { method, .. }
        | LinearDynamics::GradientFlow { method, .. } => {
            method.adaptive().map(|m| m.name()).unwrap_or("euler")
        }
        LinearDynamics::LazyLimit { .. } | LinearDynamics::Saxe { .. } => "closed_form",
    }
}

/// The paper's early-stopping rules (errors logged before each update), checked after step i's
/// errors are known: the rule that fired, if any.
pub(crate) fn stop_rule(train: &[f64], test: &[f64]) -> Option<&'static str> {
    let i = train.len().checked_sub(1)?;
    if train[i] < 1e-3 {
        return Some("train error below 1e-3");
    }
    if i > 3 && test[i] > test[i - 1] && test[i - 1] > test[i - 2] && test[i - 2] > test[i - 3] {
        return Some("test error rose three times in a row");
    }
    if i > 0 && (train[i] - train[i - 1]).abs() < 2e-4 && train[0] - train[i] > 1e-2 {
        return Some("train error changed by less than 2e-4 after falling by more than 1e-2");
    }
    None
}

fn run_one(setup: &LinearSetup, spec: &LinearDynamics, mut rec: Recorder<'_>) -> Result<Finished> {
    let start = Instant::now();
    let y = setup.task.y.as_ref();
    let eta = setup.eta;
    let steps = setup.problem.training.steps;
    let c = setup.threshold;
    let par = Par::rayon(0);
    let mut stats = SolverStats::default();
    // Err(reason) from the loop: the run stopped early and why.
    let mut status: std::result::Result<String, String> = Ok("completed".into());
    match spec {
        LinearDynamics::Gd { .. } => {
            let mut gd = Gd::new(setup.net.clone());
            let early = setup.problem.training.early_stop;
            let (mut train, mut test) = (vec![], vec![]);
            for k in 0..=steps {
                let (tr, te) = setup.task.errors(gd.a.as_ref());
                train.push(tr);
                test.push(te);
                let rule = if early {
                    stop_rule(&train, &test)
                } else {
                    None
                };
                if let Err(e) =
                    rec.observe(k, k as f64 * eta, gd.a.as_ref(), None, rule.is_some())?
                {
                    status = Err(e);
                    break;
                }
                if let Some(r) = rule {
                    rec.w.set_str("stop_rule", r)?;
                    status = Ok(format!("completed (early stop at step {k}: {r})"));
                    break;
                }
                if k == steps {
                    break;
                }
                gd.step(y, eta, par);
                stats.steps += 1;
                stats.rhs_evals += 1;
            }
            rec.w.write_array(
                "a_final",
                &[gd.a.nrows(), gd.a.ncols()],
                &rows(gd.a.as_ref()),
            )?;
        }
        LinearDynamics::SelfConsistent {
            method: LinearMethod::Euler,
            ..
        } => {
            let mut b = setup.a0.clone();
            let mut ws = Workspace::new(b.ncols());
            for k in 0..=steps {
                let s = velocity_into(b.as_ref(), y, c * c, par, &mut ws);
                let finite = s.is_some();
                if let Err(e) = rec.observe(k, k as f64 * eta, b.as_ref(), s, false)? {
                    status = Err(e);
                    break;
                }
                if !finite {
                    status = Err(format!(
                        "the eigendecomposition of AᵀA failed at step {k} (t = {:e})",
                        k as f64 * eta
                    ));
                    break;
                }
                if k == steps {
                    break;
                }
                for j in 0..b.ncols() {
                    for i in 0..b.nrows() {
                        b[(i, j)] += eta * ws.out[(i, j)];
                    }
                }
                stats.steps += 1;
                stats.rhs_evals += 1;
            }
            rec.w
                .write_array("a_final", &[b.nrows(), b.ncols()], &rows(b.as_ref()))?;
        }
        LinearDynamics::SelfConsistent {
            rtol, atol, method, ..
        } => {
            let field = MixedFlow { y, c2: c * c };
            let d = y.nrows();
            let y0: Vec<f64> = (0..d * d).map(|k| setup.a0[(k % d, k / d)]).collect();
            let m = method.adaptive().unwrap_or(Method::Tsit45);
            let out = integrate(&field, &y0, m, *rtol, *atol, &mut rec, |s| {
                MatRef::from_column_major_slice(s, d, d).to_owned()
            })?;
            stats = out.0;
            if let Some(e) = out.1 {
                status = Err(e);
            }
        }
        LinearDynamics::GradientFlow {
            rtol, atol, method, ..
        } => {
            let p = setup.net.x1.nrows();
            let field = WeightFlow { y, p };
            let y0 = WeightFlow::state(setup.net.x1.as_ref(), setup.net.x2.as_ref());
            let m = method.adaptive().unwrap_or(Method::Tsit45);
            let out = integrate(&field, &y0, m, *rtol, *atol, &mut rec, |s| field.product(s))?;
            stats = out.0;
            if let Some(e) = out.1 {
                status = Err(e);
            }
        }
        LinearDynamics::LazyLimit { .. } => {
            for &k in rec.save_at {
                let t = k as f64 * eta;
                let a = lazy_solution(setup.a0.as_ref(), y, c, t);
                if let Err(e) = rec.observe(k, t, a.as_ref(), None, false)? {
                    status = Err(e);
                    break;
                }
            }
        }
        LinearDynamics::Saxe { .. } => {
            let svd = y
                .svd()
                .map_err(|_| Error::Numerical("the SVD of Y did not converge".into()))?;
            let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
            let u0 = setup.problem.model.u0;
            for &k in rec.save_at {
                let t = k as f64 * eta;
                let modes: Vec<f64> = s.iter().map(|&si| saxe_mode(si, u0, t)).collect();
                let mut us = svd.U().to_owned();
                for (j, m) in modes.iter().enumerate() {
                    us.col_mut(j).iter_mut().for_each(|x| *x *= m);
                }
                let a = us * svd.V().transpose();
                if let Err(e) = rec.observe(k, t, a.as_ref(), None, false)? {
                    status = Err(e);
                    break;
                }
            }
        }
    }
    stats.wall_seconds = start.elapsed().as_secs_f64();
    let (status, completed) = match status {
        Ok(s) => (s, true),
        Err(e) => (format!("{e} (last save at t = {})", rec.last.0), false),
    };
    rec.w.set_num("min_test_error", rec.best.0)?;
    rec.w.set_num("min_test_step", rec.best.1 as f64)?;
    rec.w.set_num("min_test_t", rec.best.2)?;
    rec.w.finish(&stats, &status)?;
    let kind = spec.kind_name().to_string();
    Ok(Finished {
        summary: RunSummary {
            name: rec.name.clone(),
            kind,
            method: method_name(spec).to_string(),
            status,
            completed,
            t_last: rec.last.0,
            loss_train: rec.last.1,
            loss_test: rec.last.2,
            stats,
        },
        writer: rec.w,
        snapshots: rec.snapshots,
        best: rec.best,
    })
}

/// Runs an adaptive integration, saving at t = kη for the schedule's steps.
fn integrate(
    field: &dyn crate::dynamics::VectorField,
    y0: &[f64],
    method: Method,
    rtol: f64,
    atol: f64,
    rec: &mut Recorder<'_>,
    to_a: impl Fn(&[f64]) -> Mat<f64>,
) -> Result<(SolverStats, Option<String>)> {
    let eta = rec.eta;
    let times: Vec<f64> = rec.save_at.iter().map(|&k| k as f64 * eta).collect();
    let mut diverged = None;
    let mut observe = |t: f64, state: &[f64]| -> Result<()> {
        let k = rec.save_at.get(rec.next).copied().unwrap_or(0);
        if let Err(e) = rec.observe(k, t, to_a(state).as_ref(), None, false)? {
            diverged = Some(e.clone());
            return Err(Error::Numerical(e));
        }
        Ok(())
    };
    let Outcome { stats, stopped } = ode::run(field, y0, method, rtol, atol, &times, &mut observe);
    let stopped = match (stopped, diverged) {
        (_, Some(e)) => Some(e),
        (None, None) => None,
        (Some(s), None) => {
            if let Some(source) = s.source {
                return Err(source);
            }
            Some(format!("stopped at t = {}: {}", s.t, s.reason))
        }
    };
    Ok((stats, stopped))
}

fn rows(a: MatRef<'_, f64>) -> Vec<f64> {
    let mut v = Vec::with_capacity(a.nrows() * a.ncols());
    for i in 0..a.nrows() {
        for j in 0..a.ncols() {
            v.push(a[(i, j)]);
        }
    }
    v
}
