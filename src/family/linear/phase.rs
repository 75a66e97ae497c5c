//! The (γσ², γw) phase diagram of shallow linear networks (Tu, Aranguri & Jacot, Fig. 2;
//! shared/papers/mixed_dynamics.md §4–5): at each grid point and seed, GD with the paper's
//! early-stopping rules and eq. (1) by Euler in lockstep, from the same A(0).
//!
//! Per point: the minimum test error, the stable rank ‖A‖_F²/‖A‖_op² at that step, the steps to
//! it, and the largest ‖A_GD − A_SC‖_F/‖A_GD‖_F over the run. Points run in parallel, each
//! single-threaded; each finished point is appended to the archive at once:
//!
//! ```text
//!   /runs/phase_diagram/t [P] (point index)  gamma_sigma2 [P]  gamma_w [P]  seed [P]
//!       region [P] (codes in attr region_codes)  min_test_error [P]  stable_rank [P]
//!       steps_to_min [P]  steps [P]  max_distance [P]  eta [P]  threshold [P]
//! ```

use super::run::{draw_task, stop_rule};
use crate::archive::{ArchiveReader, ArchiveWriter};
use crate::dynamics::mixed::{euler_step_with, Workspace};
use crate::error::Result;
use crate::family::RunOptions;
use crate::model::linear_net::{op_norm, paper_step, singular_values, Gd, LinearNet};
use crate::problem::linear::{LinearData, PhaseSweep};
use crate::problem::LinearProblem;
use crate::rng::{stream, Stream};
use faer::Par;
use rayon::prelude::*;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The regions of the diagram, by where (γσ², γw) lies against the paper's lines.
pub const REGIONS: [&str; 5] = [
    "lazy",
    "mixed",
    "active",
    "infinite_noise",
    "underparameterized",
];

/// - underparameterized: w < rank A* (γw < ln k / ln d);
/// - lazy: σ²w > d (γσ² + γw > 1), above every singular value of A*;
/// - infinite_noise: σ⁴w > 1 (γw + 2γσ² > 0), A(0) has entries of growing size;
/// - mixed: the theory's region (γw > 1, below both lines): lazy bulk, balanced top modes;
/// - active: below both lines with γw ≤ 1.
pub fn region(d: usize, rank: usize, gamma_sigma2: f64, gamma_w: f64) -> usize {
    if gamma_w < (rank as f64).ln() / (d as f64).ln() {
        4
    } else if gamma_sigma2 + gamma_w > 1.0 {
        0
    } else if gamma_w + 2.0 * gamma_sigma2 > 0.0 {
        3
    } else if gamma_w > 1.0 {
        1
    } else {
        2
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PhasePoint {
    pub index: usize,
    pub gamma_sigma2: f64,
    pub gamma_w: f64,
    pub seed: u64,
    pub region: usize,
    pub min_test: f64,
    pub stable_rank: f64,
    pub steps_to_min: usize,
    pub steps: usize,
    pub max_distance: f64,
    pub eta: f64,
    pub threshold: f64,
}

/// The grid in order: γw outer, γσ² inner, seeds innermost.
pub fn grid(problem: &LinearProblem, sweep: &PhaseSweep) -> Vec<(f64, f64, u64)> {
    let mut v = vec![];
    for &gw in &sweep.gamma_w {
        for &gs in &sweep.gamma_sigma2 {
            for s in 0..sweep.seeds as u64 {
                v.push((gs, gw, problem.seed + s));
            }
        }
    }
    v
}

/// One grid point, single-threaded.
pub(crate) fn run_point(
    data: &LinearData,
    sweep: &PhaseSweep,
    index: usize,
    (gs, gw, seed): (f64, f64, u64),
) -> PhasePoint {
    let d = data.d();
    let task = draw_task(data, seed);
    let (s2, w) = LinearProblem::scales(d, gs, gw);
    let mut rng = stream(seed, Stream::Particles);
    let net = if w >= 2 * d {
        LinearNet::reduced(d, w, s2, &mut rng).expect("w ≥ 2d")
    } else {
        LinearNet::full(d, w, s2, &mut rng)
    };
    let eta = paper_step(d, gs, gw, op_norm(task.a_star.as_ref()), sweep.step_factor);
    let c = s2 * w as f64;
    let y = task.y.as_ref();
    let mut gd = Gd::new(net);
    let mut b = gd.a.clone();
    let mut ws = Workspace::new(d);
    let (mut train, mut test) = (vec![], vec![]);
    let mut best = (f64::INFINITY, 0usize, gd.a.clone());
    let mut max_distance = 0.0f64;
    let mut steps = 0;
    for i in 0..sweep.max_steps {
        let (tr, te) = task.errors(gd.a.as_ref());
        if !(tr.is_finite() && te.is_finite()) {
            max_distance = f64::NAN;
            break;
        }
        train.push(tr);
        test.push(te);
        if te < best.0 {
            best = (te, i, gd.a.clone());
        }
        let norm = gd.a.norm_l2();
        if norm > 0.0 {
            max_distance = max_distance.max((&gd.a - &b).norm_l2() / norm);
        }
        if sweep.early_stop && stop_rule(&train, &test).is_some() {
            break;
        }
        gd.step(y, eta, Par::Seq);
        if euler_step_with(&mut b, y, c * c, eta, Par::Seq, &mut ws).is_none() {
            max_distance = f64::NAN;
            break;
        }
        steps = i + 1;
    }
    let s = singular_values(best.2.as_ref(), Par::Seq);
    let top = s.first().copied().unwrap_or(0.0);
    let stable_rank = best.2.squared_norm_l2() / (top * top);
    PhasePoint {
        index,
        gamma_sigma2: gs,
        gamma_w: gw,
        seed,
        region: region(d, data.rank(), gs, gw),
        min_test: best.0,
        stable_rank,
        steps_to_min: best.1,
        steps,
        max_distance,
        eta,
        threshold: c,
    }
}

const COLUMNS: [&str; 11] = [
    "gamma_sigma2",
    "gamma_w",
    "seed",
    "region",
    "min_test_error",
    "stable_rank",
    "steps_to_min",
    "steps",
    "max_distance",
    "eta",
    "threshold",
];

/// Runs every grid point in parallel into the summary archive; returns the points in grid order.
pub(crate) fn run_phase(
    problem: &LinearProblem,
    text: &str,
    opts: &RunOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(PathBuf, Vec<PhasePoint>)> {
    let _scope = crate::integrate::RunScope::enter();
    let sweep = problem
        .sweep
        .as_ref()
        .ok_or_else(|| crate::Error::Usage("the problem has no [sweep] table".into()))?;
    let out = opts.out.clone().unwrap_or_else(|| problem.sweep_output());
    let resolved = problem.resolved_toml(&out)?;
    let archive = ArchiveWriter::create(
        &out,
        &opts.provenance(text, &resolved, problem.seed, super::describe),
        opts.existing,
    )?;
    archive.set_str("kind", "phase_diagram")?;
    if let Some(file) = &opts.problem_file {
        archive.continue_with(format!("meanfield sweep run {}", file.display()));
    }
    let shape: &[usize] = &[];
    let series: Vec<(&str, &[usize])> = COLUMNS.iter().map(|c| (*c, shape)).collect();
    let w = archive.series_run("phase_diagram", &series)?;
    w.set_str("kind", "phase_diagram")?;
    w.set_str("method", "gd_and_self_consistent_euler")?;
    w.set_str(
        "region_codes",
        &REGIONS
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{i} {r}"))
            .collect::<Vec<_>>()
            .join(", "),
    )?;
    w.set_str("max_distance", "max over steps of ‖A_GD − A_SC‖_F/‖A_GD‖_F")?;
    w.set_num("d", problem.data.d() as f64)?;
    w.set_num("rank", problem.data.rank() as f64)?;
    let points = grid(problem, sweep);
    let total = points.len();
    let start = std::time::Instant::now();
    let writer = Mutex::new((w, 0usize, None::<crate::Error>));
    let mut results: Vec<PhasePoint> = points
        .par_iter()
        .enumerate()
        .with_max_len(1)
        .filter_map(|(i, &p)| {
            // After a failed write (no room) the diagram cannot be completed: compute no more.
            if writer.lock().map_or(true, |g| g.2.is_some()) {
                return None;
            }
            let r = run_point(&problem.data, sweep, i, p);
            let mut g = writer.lock().unwrap_or_else(|e| e.into_inner());
            let row = [
                r.gamma_sigma2,
                r.gamma_w,
                r.seed as f64,
                r.region as f64,
                r.min_test,
                r.stable_rank,
                r.steps_to_min as f64,
                r.steps as f64,
                r.max_distance,
                r.eta,
                r.threshold,
            ];
            let cols: Vec<&[f64]> = row.iter().map(std::slice::from_ref).collect();
            if g.2.is_none() {
                if let Err(e) = g.0.append(i as f64, &cols) {
                    g.2 = Some(e);
                }
            }
            g.1 += 1;
            progress(g.1, total);
            Some(r)
        })
        .collect();
    let (w, _, failed) = writer.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = failed {
        return Err(e);
    }
    results.sort_by_key(|p| p.index);
    let stats = crate::integrate::SolverStats {
        steps: results.iter().map(|p| p.steps).sum(),
        wall_seconds: start.elapsed().as_secs_f64(),
        ..Default::default()
    };
    w.finish(&stats, "completed")?;
    archive.finish("completed")?;
    Ok((out, results))
}

/// The table of a phase-diagram archive: per (γσ², γw), the means over seeds, the region and the
/// signed distances to the two lines.
pub(crate) fn phase_table(path: &Path) -> Result<String> {
    let a = ArchiveReader::open(path)?;
    let col = |c: &str| a.read_1d(&format!("runs/phase_diagram/{c}"));
    let cols: Vec<Vec<f64>> = COLUMNS.iter().map(|c| col(c)).collect::<Result<_>>()?;
    let n = cols[0].len();
    let mut keys: Vec<(f64, f64)> = (0..n).map(|i| (cols[0][i], cols[1][i])).collect();
    keys.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.total_cmp(&y.0)));
    keys.dedup();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "phase diagram: means over seeds; lines γσ²+γw = 1 (lazy | active) and γw+2γσ² = 0 (infinite noise)"
    );
    let _ = writeln!(
        s,
        "{:>8} {:>8} {:>6} {:>11} {:>8} {:>8} {:>12} {:>10} {:>10}  region",
        "γσ²", "γw", "seeds", "min_test", "s_rank", "steps", "log10 dist", "γσ²+γw−1", "γw+2γσ²"
    );
    for (gs, gw) in keys {
        let rows: Vec<usize> = (0..n)
            .filter(|&i| cols[0][i] == gs && cols[1][i] == gw)
            .collect();
        let mean = |c: usize| rows.iter().map(|&i| cols[c][i]).sum::<f64>() / rows.len() as f64;
        let region = REGIONS
            .get(cols[3][rows[0]] as usize)
            .copied()
            .unwrap_or("?");
        let on = |v: f64, line: &'static str| if v.abs() < 1e-9 { line } else { "" };
        let _ = writeln!(
            s,
            "{:>8.3} {:>8.3} {:>6} {:>11.4e} {:>8.3} {:>8.1} {:>12.3} {:>10.3} {:>10.3}  {}{}{}",
            gs,
            gw,
            rows.len(),
            mean(4),
            mean(5),
            mean(6),
            mean(8).log10(),
            gs + gw - 1.0,
            gw + 2.0 * gs,
            region,
            on(gs + gw - 1.0, ", on γσ²+γw = 1"),
            on(gw + 2.0 * gs, ", on γw+2γσ² = 0")
        );
    }
    Ok(s)
}
