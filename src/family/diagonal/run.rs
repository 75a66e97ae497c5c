//! `meanfield run` for diagonal linear networks: the saddle-to-saddle limit (Algorithm 1) and the
//! flows at finite α beside it, in one archive.
//!
//! Time: raw time t of the gradient flow on L; accelerated time τ = t/λ_α (λ_α = log 1/α for
//! u ⊙ v, ½ log 1/α for u² − v²), on which the limit's jumps sit at fixed t_k. Every flow run
//! archives both `t` and `tau`; the limit's `t` is its jump times in τ.
//!
//! ```text
//!   /runs/<limit>/t [p+1]  beta [p+1,d]  s [p+1,d]  loss_train [p+1]  loss_test [p+1]
//!                 l1_norm [p+1]  support_size [p+1]  entered [p+1] (−1: none)  left [p+1,d] (0/1)
//!   /runs/<flow>/t [T]  tau [T]  beta [T,d]  loss_train [T]  loss_test [T]
//!                 q [T,d] (mirror flow) | u [T,d] v [T,d] conservation_error [T]
//!                 conservation_error_relative [T] (weights)
//!                 plateau_tau [K]  plateau_distance [K]  attrs alpha, time_scale,
//!                 worst_plateau_distance, first_jump_tau
//! ```

use crate::archive::{ArchiveWriter, SeriesWriter};
use crate::data::Dataset;
use crate::dynamics::diagonal::{MirrorFlow, WeightFlow};
use crate::dynamics::VectorField;
use crate::error::{Error, Result};
use crate::family::{overall_status, Progress, RunOptions, RunSummary};
use crate::integrate::{gd, ode, Outcome, SolverStats};
use crate::limits::saddle::{saddle_path, SaddlePath};
use crate::model::diagonal::Diagonal;
use crate::problem::{DiagonalDynamics, DiagonalProblem, Method, Parametrization};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How close one flow came to the limit.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub run: String,
    pub alpha: f64,
    /// (plateau index k, mid-plateau τ, ‖β_flow(τ) − β_k‖₂).
    pub plateaus: Vec<(usize, f64, f64)>,
    pub worst: f64,
    /// First τ at which ‖β‖∞ reaches half of ‖β_1‖∞ (linear interpolation between saves).
    pub first_jump_tau: f64,
}

#[derive(Debug, Clone)]
pub struct DiagonalReport {
    pub archive: PathBuf,
    pub runs: Vec<RunSummary>,
    /// The limit, or why Algorithm 1 failed.
    pub limit: std::result::Result<SaddlePath, String>,
    pub comparisons: Vec<Comparison>,
}

impl DiagonalReport {
    pub fn completed(&self) -> bool {
        self.runs.iter().all(|r| r.completed)
    }
}

pub struct DiagonalSetup {
    pub problem: DiagonalProblem,
    pub problem_text: String,
    pub data: Dataset,
    pub net: Diagonal,
    /// Pairs of training columns (i < j) that are equal or negated (`twin_columns`).
    pub twins: Vec<(usize, usize, bool)>,
}

impl DiagonalSetup {
    pub fn from_text(text: String, path: &Path, opts: &RunOptions) -> Result<DiagonalSetup> {
        let mut problem = DiagonalProblem::parse(&text, path)?;
        if let Some(seed) = opts.seed {
            problem.seed = seed;
        }
        let base = opts.data_dir(path);
        let data = Dataset::build(&problem.data, problem.seed, base, path)?;
        crate::problem::diagonal::check_sizes(path, "data.train", data.d(), data.n_train())?;
        let net = Diagonal::new(
            data.x_train.clone(),
            data.y_train.clone(),
            problem.model.parametrization,
            problem.model.alpha,
        );
        let twins = twin_columns(data.x_train.as_ref());
        Ok(DiagonalSetup {
            problem,
            problem_text: text,
            data,
            net,
            twins,
        })
    }

    /// What to tell the user when the data have twin columns (None when they have none).
    pub(crate) fn twins_warning(&self) -> Option<String> {
        (!self.twins.is_empty()).then(|| {
            format!(
                "data columns {} are equal or negated: Algorithm 1 assumes general position, so \
                 the saddle table may name one column of a pair while the weight sits on the \
                 other (recorded as the archive's attribute duplicate_columns)",
                twins_text(&self.twins)
            )
        })
    }

    fn limit_tol(&self) -> f64 {
        self.problem
            .dynamics
            .iter()
            .find_map(|d| match d {
                DiagonalDynamics::SaddleLimit { tol, .. } => Some(*tol),
                _ => None,
            })
            .unwrap_or(1e-10)
    }
}

/// Pairs of columns i < j of X (0-based) with x_j = x_i or x_j = −x_i exactly, and whether
/// negated; zero columns are left out. Each column is keyed by its values with the sign that
/// makes its first nonzero entry positive: O(n·d) time, no d × d matrix.
pub(crate) fn twin_columns(x: faer::MatRef<'_, f64>) -> Vec<(usize, usize, bool)> {
    let mut first: std::collections::HashMap<Vec<u64>, (usize, f64)> = Default::default();
    let mut twins = vec![];
    for j in 0..x.ncols() {
        let col = x.col(j);
        let Some(lead) = col.iter().copied().find(|v| *v != 0.0) else {
            continue;
        };
        let sign = lead.signum();
        // + 0.0 turns −0.0 into 0.0, so the key does not depend on the sign of zeros.
        let key: Vec<u64> = col.iter().map(|v| (sign * v + 0.0).to_bits()).collect();
        match first.get(&key) {
            Some(&(i, s)) => twins.push((i, j, s != sign)),
            None => {
                first.insert(key, (j, sign));
            }
        }
    }
    twins
}

/// The weights start at size ~α and grow by many orders before β moves: an absolute tolerance
/// above rtol·α would let the solver ignore them (at α = 1e-12 the first jump came at τ = 0.978
/// instead of 1.01; at α = 1e-24, never). So atol is capped at rtol times the initial weights'
/// size; the archive records it as `atol` beside `atol_requested`.
fn weight_atol(net: &Diagonal, rtol: f64, atol: f64) -> f64 {
    let size = net
        .init_state()
        .iter()
        .map(|w| w.abs())
        .filter(|w| *w > 0.0)
        .fold(f64::INFINITY, f64::min);
    if size.is_finite() {
        atol.min(rtol * size)
    } else {
        atol
    }
}

/// "3 ~ 17, 5 ~ −8" (0-based columns; − for a negated twin).
fn twins_text(twins: &[(usize, usize, bool)]) -> String {
    twins
        .iter()
        .map(|&(i, j, neg)| format!("{i} ~ {}{j}", if neg { "−" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Integrates every dynamics of a diagonal problem and archives them with the limit.
pub fn run_diagonal(
    setup: &DiagonalSetup,
    opts: &RunOptions,
    progress: &mut Progress<'_>,
) -> Result<DiagonalReport> {
    let _scope = crate::integrate::RunScope::enter();
    let out = opts.archive_path(&setup.problem.output);
    let start = Instant::now();
    let limit = saddle_path(setup.net.x.as_ref(), &setup.net.y, setup.limit_tol())
        .map_err(|e| e.to_string());
    let limit_seconds = start.elapsed().as_secs_f64();

    let resolved = setup.problem.resolved_toml(&out)?;
    let archive = ArchiveWriter::create(
        &out,
        // Each run records its own α (the mirror flow runs several).
        &opts.provenance(
            &setup.problem_text,
            &resolved,
            setup.problem.seed,
            super::describe,
        ),
        opts.existing,
    )?;
    archive.write_data(&setup.data)?;
    if !setup.twins.is_empty() {
        crate::archive::set_str(
            archive.file(),
            "duplicate_columns",
            &twins_text(&setup.twins),
        )
        .map_err(|e| Error::archive(&out, e))?;
    }
    let mut runs = vec![];
    let mut comparisons = vec![];
    for spec in &setup.problem.dynamics {
        let name = spec.name();
        match spec {
            DiagonalDynamics::SaddleLimit { .. } => {
                runs.push(write_limit(setup, &archive, &name, &limit, limit_seconds)?);
            }
            DiagonalDynamics::MirrorFlow {
                method,
                rtol,
                atol,
                tau_end,
                alphas,
                ..
            } => {
                let alphas = if alphas.is_empty() {
                    vec![setup.problem.model.alpha]
                } else {
                    alphas.clone()
                };
                let tau_end = match (tau_end, &limit) {
                    (Some(t), _) => *t,
                    (None, Ok(p)) => default_tau_end(p),
                    (None, Err(e)) => {
                        return Err(Error::Usage(format!(
                            "dynamics {name}: tau_end is needed because the limit failed ({e})"
                        )))
                    }
                };
                for &alpha in &alphas {
                    let run_name = if alphas.len() == 1 {
                        name.clone()
                    } else {
                        format!("{name}_alpha_{alpha:e}")
                    };
                    let net = setup.net.with_alpha(alpha);
                    let flow = Flow::Mirror {
                        method: *method,
                        rtol: *rtol,
                        atol: *atol,
                        tau_end,
                    };
                    let (summary, cmp) =
                        run_flow(setup, &net, &archive, &run_name, &flow, &limit, progress)?;
                    runs.push(summary);
                    comparisons.extend(cmp);
                }
            }
            DiagonalDynamics::GradientFlow {
                method,
                rtol,
                atol,
                t_end,
                ..
            } => {
                let flow = Flow::Weights {
                    method: *method,
                    rtol: *rtol,
                    atol: *atol,
                    t_end: *t_end,
                };
                let (summary, cmp) =
                    run_flow(setup, &setup.net, &archive, &name, &flow, &limit, progress)?;
                runs.push(summary);
                comparisons.extend(cmp);
            }
            DiagonalDynamics::Gd { step, steps, .. } => {
                let flow = Flow::Gd {
                    step: *step,
                    steps: *steps,
                };
                let (summary, cmp) =
                    run_flow(setup, &setup.net, &archive, &name, &flow, &limit, progress)?;
                runs.push(summary);
                comparisons.extend(cmp);
            }
        }
    }
    archive.finish(&overall_status(&runs))?;
    Ok(DiagonalReport {
        archive: out,
        runs,
        limit,
        comparisons,
    })
}

/// Past the last jump by half its time, so the last plateau has a midpoint too.
pub(crate) fn default_tau_end(path: &SaddlePath) -> f64 {
    let last = path.saddles.last().map(|s| s.t).unwrap_or(0.0);
    if last > 0.0 {
        1.5 * last
    } else {
        1.0
    }
}

fn write_limit(
    setup: &DiagonalSetup,
    archive: &ArchiveWriter,
    name: &str,
    limit: &std::result::Result<SaddlePath, String>,
    seconds: f64,
) -> Result<RunSummary> {
    let w = archive.result_run(name)?;
    w.set_str("kind", "saddle_limit")?;
    w.set_str("method", "algorithm1")?;
    w.set_str("time", "accelerated time τ = t/λ_α")?;
    w.set_str("loss", "‖Xβ − y‖²/(2n)")?;
    let stats = SolverStats {
        wall_seconds: seconds,
        ..Default::default()
    };
    let path = match limit {
        Ok(p) => p,
        Err(e) => {
            let status = format!("failed: {e}");
            w.finish(&stats, &status)?;
            return Ok(summary(
                name,
                "saddle_limit",
                "algorithm1",
                status,
                false,
                f64::NAN,
                (f64::NAN, f64::NAN),
                stats,
            ));
        }
    };
    let d = setup.net.d();
    let k = path.saddles.len();
    let flat = |f: &dyn Fn(&crate::limits::saddle::Saddle) -> Vec<f64>| -> Vec<f64> {
        path.saddles.iter().flat_map(f).collect()
    };
    let test_loss =
        |b: &[f64]| Diagonal::loss_on(setup.data.x_test.as_ref(), &setup.data.y_test, b);
    w.write_array("t", &[k], &flat(&|s| vec![s.t]))?;
    w.write_array("beta", &[k, d], &flat(&|s| s.beta.clone()))?;
    w.write_array("s", &[k, d], &flat(&|s| s.s.clone()))?;
    w.write_array("loss_train", &[k], &flat(&|s| vec![s.loss]))?;
    w.write_array("loss_test", &[k], &flat(&|s| vec![test_loss(&s.beta)]))?;
    w.write_array(
        "l1_norm",
        &[k],
        &flat(&|s| vec![s.beta.iter().map(|b| b.abs()).sum()]),
    )?;
    w.write_array(
        "support_size",
        &[k],
        &flat(&|s| vec![s.beta.iter().filter(|b| **b != 0.0).count() as f64]),
    )?;
    w.write_array(
        "entered",
        &[k],
        &flat(&|s| vec![s.entered.map(|i| i as f64).unwrap_or(-1.0)]),
    )?;
    w.write_array(
        "left",
        &[k, d],
        &flat(&|s| {
            let mut row = vec![0.0; d];
            for &i in &s.left {
                row[i] = 1.0;
            }
            row
        }),
    )?;
    w.set_num("grad0_inf", path.grad0_inf)?;
    w.set_num("first_jump", 1.0 / path.grad0_inf)?;
    w.set_num("jumps", (k - 1) as f64)?;
    w.set_num("nnls_solves", path.solves as f64)?;
    w.set_num("saved", k as f64)?;
    let last = path.saddles.last().expect("the path starts at β = 0");
    w.set_num("t_last", last.t)?;
    w.finish(&stats, "completed")?;
    Ok(summary(
        name,
        "saddle_limit",
        "algorithm1",
        "completed".into(),
        true,
        last.t,
        (last.loss, test_loss(&last.beta)),
        stats,
    ))
}

#[allow(clippy::too_many_arguments)]
fn summary(
    name: &str,
    kind: &str,
    method: &str,
    status: String,
    completed: bool,
    t_last: f64,
    losses: (f64, f64),
    stats: SolverStats,
) -> RunSummary {
    RunSummary {
        name: name.to_string(),
        kind: kind.to_string(),
        method: method.to_string(),
        status,
        completed,
        t_last,
        loss_train: losses.0,
        loss_test: losses.1,
        stats,
    }
}

enum Flow {
    Mirror {
        method: Method,
        rtol: f64,
        atol: f64,
        tau_end: f64,
    },
    Weights {
        method: Method,
        rtol: f64,
        atol: f64,
        t_end: f64,
    },
    Gd {
        step: f64,
        steps: usize,
    },
}

/// Save times in accelerated time τ: the regular schedule, every plateau's midpoint and a fine
/// window around the first jump (for its crossing time).
fn save_taus(base: &[f64], limit: Option<&SaddlePath>, tau_end: f64) -> Vec<f64> {
    let mut t = base.to_vec();
    if let Some(p) = limit {
        t.extend(
            p.plateau_midpoints(tau_end)
                .into_iter()
                .map(|(_, m)| m)
                .filter(|&m| m <= tau_end),
        );
        if p.grad0_inf > 0.0 {
            let t1 = 1.0 / p.grad0_inf;
            t.extend(
                (0..=120)
                    .map(|j| t1 * (0.9 + 0.3 * j as f64 / 120.0))
                    .filter(|&m| m <= tau_end),
            );
        }
    }
    t.retain(|v| v.is_finite() && *v >= 0.0);
    t.sort_by(f64::total_cmp);
    t.dedup_by(|a, b| (*a - *b).abs() <= 1e-12 * b.abs().max(1e-300));
    t
}

/// Integrates one flow, archives it and compares it with the limit.
fn run_flow(
    setup: &DiagonalSetup,
    net: &Diagonal,
    archive: &ArchiveWriter,
    name: &str,
    flow: &Flow,
    limit: &std::result::Result<SaddlePath, String>,
    progress: &mut Progress<'_>,
) -> Result<(RunSummary, Option<Comparison>)> {
    let d = net.d();
    let lambda = net.time_scale();
    let limit = limit.as_ref().ok();
    let (kind, method, tau_end) = match *flow {
        Flow::Mirror {
            method, tau_end, ..
        } => ("mirror_flow", method.name(), tau_end),
        Flow::Weights { method, t_end, .. } => ("gradient_flow", method.name(), t_end / lambda),
        Flow::Gd { step, steps } => ("gd", "euler", step * steps as f64 / lambda),
    };
    let taus = save_taus(&setup.problem.save.times(tau_end), limit, tau_end);
    let mirror = matches!(flow, Flow::Mirror { .. });
    let shape: &[usize] = &[d];
    let series: Vec<(&str, &[usize])> = if mirror {
        vec![
            ("tau", &[]),
            ("beta", shape),
            ("q", shape),
            ("loss_train", &[]),
            ("loss_test", &[]),
        ]
    } else {
        vec![
            ("tau", &[]),
            ("beta", shape),
            ("u", shape),
            ("v", shape),
            ("conservation_error", &[]),
            ("conservation_error_relative", &[]),
            ("loss_train", &[]),
            ("loss_test", &[]),
        ]
    };
    let mut w: SeriesWriter = archive.series_run(name, &series)?;
    w.set_str("kind", kind)?;
    w.set_str("method", method)?;
    w.set_num("alpha", net.alpha)?;
    w.set_num("time_scale", lambda)?;
    w.set_str(
        "parametrization",
        match net.param {
            Parametrization::Uv => "uv",
            Parametrization::U2MinusV2 => "u2_minus_v2",
        },
    )?;
    w.set_str("loss", "‖Xβ − y‖²/(2n)")?;

    let total = taus.len();
    let mut saved: Vec<(f64, Vec<f64>)> = Vec::with_capacity(total);
    let mut last = (0.0, f64::NAN, f64::NAN);
    let mut done = 0;
    let x_test = setup.data.x_test.as_ref();
    let y_test = &setup.data.y_test;
    // Conserved along the flow: u² − v² = 2α² (u ⊙ v) or u·v = α² (u² − v²). The absolute
    // error, and the error relative to u_i² + v_i² (the size at which it is computed): at tiny α
    // the absolute one looks small even when the flow lost the invariant.
    let conservation = |state: &[f64], relative: bool| -> f64 {
        let (u, v) = state.split_at(d);
        let a2 = net.alpha * net.alpha;
        u.iter()
            .zip(v)
            .map(|(a, b)| {
                let e = match net.param {
                    Parametrization::Uv => (a * a - b * b - 2.0 * a2).abs(),
                    Parametrization::U2MinusV2 => (a * b - a2).abs(),
                };
                if relative {
                    e / (a * a + b * b)
                } else {
                    e
                }
            })
            .fold(0.0, f64::max)
    };
    let mut observe = |tau: f64, state: &[f64]| -> Result<()> {
        let beta = if mirror {
            net.beta_of_q(state)
        } else {
            net.beta_of_state(state)
        };
        let (lt, _) = net.loss_grad(&beta);
        let ls = Diagonal::loss_on(x_test, y_test, &beta);
        if mirror {
            w.append(lambda * tau, &[&[tau], &beta, state, &[lt], &[ls]])?;
        } else {
            let (u, v) = state.split_at(d);
            w.append(
                lambda * tau,
                &[
                    &[tau],
                    &beta,
                    u,
                    v,
                    &[conservation(state, false)],
                    &[conservation(state, true)],
                    &[lt],
                    &[ls],
                ],
            )?;
        }
        saved.push((tau, beta));
        last = (tau, lt, ls);
        done += 1;
        progress(name, done, total, Some(lt));
        Ok(())
    };
    let outcome: Outcome = match *flow {
        Flow::Mirror {
            method, rtol, atol, ..
        } => {
            let field = MirrorFlow { net };
            ode::run(
                &field,
                &vec![0.0; d],
                method,
                rtol,
                atol,
                &taus,
                &mut observe,
            )
        }
        Flow::Weights {
            method, rtol, atol, ..
        } => {
            let atol = weight_atol(net, rtol, atol);
            let field = WeightFlow { net };
            let times: Vec<f64> = taus.iter().map(|t| t * lambda).collect();
            let mut obs = |t: f64, y: &[f64]| observe(t / lambda, y);
            ode::run(
                &field,
                &net.init_state(),
                method,
                rtol,
                atol,
                &times,
                &mut obs,
            )
        }
        Flow::Gd { step, steps } => {
            let field = WeightFlow { net };
            let times: Vec<f64> = taus.iter().map(|t| t * lambda).collect();
            let at = gd::save_steps(&times, step, steps);
            let mut obs = |t: f64, y: &[f64]| observe(t / lambda, y);
            gd::run(
                &field as &dyn VectorField,
                &net.init_state(),
                step,
                steps,
                &at,
                &mut obs,
            )
        }
    };
    let Outcome { stats, stopped } = outcome;
    if let Flow::Gd { step, steps } = *flow {
        w.set_num("step", step)?;
        w.set_num("steps", steps as u64)?;
    } else if let Flow::Mirror { rtol, atol, .. } = *flow {
        w.set_num("rtol", rtol)?;
        w.set_num("atol", atol)?;
    } else if let Flow::Weights { rtol, atol, .. } = *flow {
        w.set_num("rtol", rtol)?;
        w.set_num("atol", weight_atol(net, rtol, atol))?;
        w.set_num("atol_requested", atol)?;
    }
    let (status, completed) = match stopped {
        None => ("completed".to_string(), true),
        Some(s) => {
            if let Some(source) = s.source {
                return Err(source);
            }
            // The solver's clock is τ for the mirror flow and raw t for the weights.
            let tau = if mirror { s.t } else { s.t / lambda };
            (
                format!(
                    "stopped at τ = {tau} (t = {}): {} (last save at τ = {})",
                    tau * lambda,
                    s.reason,
                    last.0
                ),
                false,
            )
        }
    };
    let cmp = limit.map(|p| compare(name, net.alpha, p, &saved, tau_end));
    if let Some(c) = &cmp {
        let taus: Vec<f64> = c.plateaus.iter().map(|p| p.1).collect();
        let dist: Vec<f64> = c.plateaus.iter().map(|p| p.2).collect();
        w.write_array("plateau_tau", &[taus.len()], &taus)?;
        w.write_array("plateau_distance", &[dist.len()], &dist)?;
        w.set_num("worst_plateau_distance", c.worst)?;
        w.set_num("first_jump_tau", c.first_jump_tau)?;
    }
    w.finish(&stats, &status)?;
    Ok((
        summary(
            name,
            kind,
            method,
            status,
            completed,
            last.0,
            (last.1, last.2),
            stats,
        ),
        cmp,
    ))
}

/// Distances between a flow's saved β(τ) and the limit at the plateau midpoints (the save nearest
/// each midpoint, which is the midpoint itself for the ODE flows), and its first crossing time.
pub fn compare(
    run: &str,
    alpha: f64,
    path: &SaddlePath,
    saved: &[(f64, Vec<f64>)],
    tau_end: f64,
) -> Comparison {
    let mut plateaus = vec![];
    for (k, mid) in path.plateau_midpoints(tau_end) {
        if mid > tau_end || saved.is_empty() {
            continue;
        }
        let j = saved.partition_point(|s| s.0 < mid);
        let j = if j == saved.len()
            || (j > 0 && (mid - saved[j - 1].0).abs() < (saved[j].0 - mid).abs())
        {
            j.saturating_sub(1).min(saved.len() - 1)
        } else {
            j
        };
        let dist = saved[j]
            .1
            .iter()
            .zip(&path.saddles[k].beta)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        plateaus.push((k, saved[j].0, dist));
    }
    let worst = plateaus.iter().map(|p| p.2).fold(f64::NAN, f64::max);
    let first_jump_tau = crossing(path, saved);
    Comparison {
        run: run.to_string(),
        alpha,
        plateaus,
        worst,
        first_jump_tau,
    }
}

fn crossing(path: &SaddlePath, saved: &[(f64, Vec<f64>)]) -> f64 {
    let Some(first) = path.saddles.get(1) else {
        return f64::NAN;
    };
    let inf = |b: &[f64]| b.iter().fold(0.0f64, |a, &v| a.max(v.abs()));
    let level = 0.5 * inf(&first.beta);
    for w in saved.windows(2) {
        let (a, b) = (inf(&w[0].1), inf(&w[1].1));
        if a < level && b >= level {
            return w[0].0 + (level - a) / (b - a) * (w[1].0 - w[0].0);
        }
    }
    f64::NAN
}
