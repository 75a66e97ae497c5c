//! Sweeps: a problem run over a grid of widths, output scales and seeds. Each grid point is an
//! independent task with its own archive, so a cluster job array can run `sweep task I` for every
//! index; `collect` then reads the finished archives into one summary archive with fitted
//! log-log slopes. Locally `sweep run` runs the tasks in parallel.
//!
//! Per point, from its archive:
//! - `f_gap`: sup over save times of the RMS over training points of f − f_lin, between the
//!   first nonlinear run (`gd` or `gradient_flow`) and the first linear one (`linearized` or
//!   `ntk_limit`): Chizat–Oyallon–Bach's sup_t ‖αf(w_α(t)) − αf̄(w̄_α(t))‖ (our f includes α);
//! - `w_dist`: sup_t ‖θ(t) − θ₀‖ (Euclidean over all particle coordinates) of the nonlinear run;
//! - final train/test loss and kernel distance of the nonlinear run;
//! - distances to the widest run of the same α and seed at the times `sweep.at` (`reference`).

use super::run::{run_setup, RunReport, Setup};
use crate::archive::{ArchiveReader, ArchiveWriter, Existing, Provenance, CLASS_SCORES};
use crate::error::{Error, Result};
use crate::family::RunOptions;
use crate::problem::{Problem, Scaling};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

mod reference;
pub use reference::{ToReference, W2_EXACT_MAX, W2_SLICES};

#[derive(Debug, Clone)]
pub struct Task {
    pub index: usize,
    pub width: usize,
    pub alpha: f64,
    pub seed: u64,
    /// GD step replacing the problem's, when the sweep gives one per α.
    pub step: Option<f64>,
    pub archive: PathBuf,
}

fn spec(problem: &Problem, file: &Path) -> Result<crate::problem::SweepSpec> {
    problem.sweep.clone().ok_or_else(|| Error::Problem {
        file: file.to_path_buf(),
        key: "sweep".into(),
        message: "expected a [sweep] table for `meanfield sweep`".into(),
    })
}

/// The tasks of a problem's sweep, in a fixed order (width, then α, then seed).
pub fn tasks(problem: &Problem, file: &Path) -> Result<Vec<Task>> {
    let sw = spec(problem, file)?;
    let widths = if sw.width.is_empty() {
        vec![problem.model.width]
    } else {
        sw.width.clone()
    };
    let base_alpha = problem.model.scaling;
    let alphas: Vec<(Option<f64>, Option<f64>)> = if sw.alpha.is_empty() {
        vec![(None, None)]
    } else {
        sw.alpha
            .iter()
            .enumerate()
            .map(|(i, a)| (Some(*a), sw.step.get(i).copied()))
            .collect()
    };
    let seeds = if sw.seeds.is_empty() {
        vec![problem.seed]
    } else {
        sw.seeds.clone()
    };
    let stem = sw
        .summary
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "sweep".into());
    let dir = sw
        .summary
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("{stem}_tasks"));
    let mut out = vec![];
    for &w in &widths {
        for (a, step) in &alphas {
            for &s in &seeds {
                let index = out.len();
                out.push(Task {
                    index,
                    width: w,
                    alpha: a.unwrap_or_else(|| base_alpha.alpha(w)),
                    seed: s,
                    step: *step,
                    archive: dir.join(format!("task_{index}.h5")),
                });
            }
        }
    }
    Ok(out)
}

/// Runs one task into its own archive.
pub fn run_task(
    problem: &Problem,
    text: &str,
    file: &Path,
    task: &Task,
    threads: usize,
) -> Result<RunReport> {
    let _scope = crate::integrate::RunScope::enter();
    let mut p = problem.clone();
    p.model.width = task.width;
    if problem.sweep.as_ref().is_some_and(|s| !s.alpha.is_empty()) {
        p.model.scaling = Scaling::Alpha(task.alpha);
    }
    p.seed = task.seed;
    p.output = task.archive.clone();
    if let Some(h) = task.step {
        for d in &mut p.dynamics {
            if let crate::problem::DynamicsSpec::Gd { step, .. }
            | crate::problem::DynamicsSpec::Sgd { step, .. } = d
            {
                *step = h;
            }
        }
    }
    let opts = RunOptions {
        out: Some(task.archive.clone()),
        seed: None,
        threads,
        problem_file: Some(file.to_path_buf()),
        ..Default::default()
    };
    let setup = Setup::from_problem(p, text.to_string(), file, &opts)?;
    run_setup(&setup, &opts, &mut |_, _, _, _| {})
}

/// What `run_all` did with one task.
#[derive(Debug)]
pub enum TaskRun {
    Ran(RunReport),
    /// Its archive had completed from the same problem text, so it was kept as it is.
    Kept(PathBuf),
}

impl TaskRun {
    pub fn completed(&self) -> bool {
        match self {
            TaskRun::Ran(r) => r.completed(),
            TaskRun::Kept(_) => true,
        }
    }
}

/// Whether a task's archive completed from this very problem text.
fn finished(task: &Task, text: &str) -> bool {
    ArchiveReader::open(&task.archive).is_ok_and(|a| {
        ArchiveReader::str_attr(&a.file, "status").as_deref() == Some("completed")
            && ArchiveReader::str_attr(&a.file, "problem").as_deref() == Some(text)
    })
}

/// Runs every task in parallel; `progress(done, total)` after each task ends. Tasks whose
/// archives completed from the same problem text are kept unless `redo`.
pub fn run_all(
    problem: &Problem,
    text: &str,
    file: &Path,
    redo: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<TaskRun>> {
    let _scope = crate::integrate::RunScope::enter();
    let ts = tasks(problem, file)?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    progress(0, ts.len());
    ts.par_iter()
        .map(|t| {
            let r = if !redo && finished(t, text) {
                Ok(TaskRun::Kept(t.archive.clone()))
            } else {
                run_task(problem, text, file, t, 0).map(TaskRun::Ran)
            };
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(k, ts.len());
            r
        })
        .collect()
}

/// Every task whose archive is missing or did not finish (killed, stopped by a signal or for
/// want of room on the disk), each with the command that runs it; Ok when there is none.
fn check_finished(ts: &[Task], file: &Path) -> Result<()> {
    let unfinished: Vec<String> = ts
        .iter()
        .filter_map(|t| {
            let why = match ArchiveReader::open(&t.archive) {
                Err(e) => e.to_string(),
                Ok(a) => match ArchiveReader::str_attr(&a.file, "status") {
                    Some(s) if s == "running" => format!(
                        "{}: did not finish (status running: killed?)",
                        t.archive.display()
                    ),
                    Some(s) if s.contains("interrupted") || s.contains("no room for") => {
                        format!("{}: {s}", t.archive.display())
                    }
                    _ => return None,
                },
            };
            Some(format!(
                "  task {} (width {}, α {}, seed {}): {why}\n    run: meanfield sweep task {} {}",
                t.index,
                t.width,
                t.alpha,
                t.seed,
                file.display(),
                t.index
            ))
        })
        .collect();
    if unfinished.is_empty() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{} of the sweep's {} tasks have no finished archive:\n{}",
        unfinished.len(),
        ts.len(),
        unfinished.join("\n")
    )))
}

#[derive(Debug, Clone)]
pub struct Point {
    pub task: Task,
    pub status: String,
    pub f_gap: f64,
    pub w_dist: f64,
    pub loss_train: f64,
    pub loss_test: f64,
    pub kernel_distance: f64,
    /// ‖K₀ − K_∞‖_F/‖K_∞‖_F at initialization (NaN without a closed-form kernel).
    pub ntk_error: f64,
    /// Distances to the widest run of the same α and seed (filled by `collect`).
    pub to_ref: ToReference,
    /// Every run's final test loss, by run name in archive order (the linear models beside the
    /// network: random features, neural tangent, NTK).
    pub run_loss_test: Vec<(String, f64)>,
    /// On labelled data, every run's classification scores (`archive::CLASS_SCORES`), by run
    /// name in archive order; empty otherwise.
    pub run_scores: Vec<(String, [f64; CLASS_SCORES.len()])>,
}

impl Point {
    /// The final test loss of run `name`, the k-th run of the first point (NaN if this point's
    /// archive lists its runs otherwise).
    pub(crate) fn run_loss(&self, k: usize, name: &str) -> f64 {
        self.run_loss_test
            .get(k)
            .filter(|r| r.0 == name)
            .map_or(f64::NAN, |r| r.1)
    }
}

/// The run names of the sweep's per-run losses (the first point's runs, in archive order).
fn run_names(points: &[Point]) -> Vec<String> {
    points
        .first()
        .map(|p| p.run_loss_test.iter().map(|r| r.0.clone()).collect())
        .unwrap_or_default()
}

fn kind_of(a: &ArchiveReader, run: &str) -> String {
    a.file
        .group(&format!("runs/{run}"))
        .ok()
        .and_then(|g| ArchiveReader::str_attr(&g, "kind"))
        .unwrap_or_default()
}

/// Reads one task's archive into its summary.
pub(crate) fn summarize(task: &Task) -> Result<Point> {
    let a = ArchiveReader::open(&task.archive)?;
    let status = ArchiveReader::str_attr(&a.file, "status").unwrap_or_else(|| "?".into());
    let runs = a.runs();
    let nonlinear = &reference::nonlinear_run(&a, &task.archive)?;
    // The network's linearization (random-features and neural-tangent runs are other models).
    let linear = runs.iter().find(|r| {
        let params = a
            .file
            .group(&format!("runs/{r}"))
            .ok()
            .and_then(|g| ArchiveReader::str_attr(&g, "params"));
        matches!(kind_of(&a, r).as_str(), "linearized" | "ntk_limit")
            && params.as_deref().is_none_or(|p| p == "all")
    });
    let last = |name: &str| a.last_saved(nonlinear, name).unwrap_or(f64::NAN);
    // Without saved particles (save.particles = false) the displacement is unknown.
    let w_dist = match a.read(&format!("runs/{nonlinear}/particles")) {
        Err(_) => f64::NAN,
        Ok((pshape, particles)) => {
            let (_, theta0) = a.read("init/particles")?;
            let np = theta0.len();
            (0..pshape[0])
                .map(|k| {
                    particles[k * np..(k + 1) * np]
                        .iter()
                        .zip(&theta0)
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(0.0, f64::max)
        }
    };
    let f_gap = match linear {
        None => f64::NAN,
        Some(lin) => {
            let t1 = a.read_1d(&format!("runs/{nonlinear}/t"))?;
            let t2 = a.read_1d(&format!("runs/{lin}/t"))?;
            let (s1, f1) = a.read(&format!("runs/{nonlinear}/f_train"))?;
            let (_, f2) = a.read(&format!("runs/{lin}/f_train"))?;
            let n = s1[1];
            let common = t1.len().min(t2.len());
            if t1[..common]
                .iter()
                .zip(&t2[..common])
                .any(|(x, y)| (x - y).abs() > 1e-9 * (1.0 + x.abs()))
            {
                return Err(Error::archive(
                    &task.archive,
                    format!("runs {nonlinear} and {lin} are saved at different times; give them the same t_end"),
                ));
            }
            (0..common)
                .map(|k| {
                    (f1[k * n..(k + 1) * n]
                        .iter()
                        .zip(&f2[k * n..(k + 1) * n])
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum::<f64>()
                        / n as f64)
                        .sqrt()
                })
                .fold(0.0, f64::max)
        }
    };
    let run_loss_test = runs
        .iter()
        .filter_map(|r| {
            let v = a.read_1d(&format!("runs/{r}/loss_test")).ok()?;
            Some((r.clone(), v.last().copied().unwrap_or(f64::NAN)))
        })
        .collect();
    let run_scores = runs
        .iter()
        .filter_map(|r| Some((r.clone(), a.class_scores(r)?)))
        .collect();
    Ok(Point {
        run_loss_test,
        run_scores,
        task: task.clone(),
        status,
        f_gap,
        w_dist,
        loss_train: last("loss_train"),
        loss_test: last("loss_test"),
        kernel_distance: last("kernel_distance"),
        ntk_error: ArchiveReader::num_attr(&a.file, "ntk_analytic_distance").unwrap_or(f64::NAN),
        to_ref: ToReference::default(),
    })
}

pub use crate::measure::fit::{loglog_fit, LogLog};

/// A least-squares slope of log y on log x with its 95% confidence interval.
#[derive(Debug, Clone)]
pub struct Fit {
    pub quantity: String,
    /// "alpha" (slope vs α at fixed width) or "width" (vs N at fixed α).
    pub against: String,
    /// The value held fixed (a width or an α).
    pub at: f64,
    pub slope: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// log y ≈ intercept + slope · log x: with the slope, the fitted line.
    pub intercept: f64,
    pub points: usize,
}

/// Slopes of each quantity against α at each width and against width at each α when the sweep
/// lists α values (`by_alpha`; measures of convergence in width only against width); otherwise
/// against width over all points (α then follows the problem's scaling, e.g. √N under ntk).
pub fn fits(points: &[Point], by_alpha: bool) -> Vec<Fit> {
    let mut out = vec![];
    let mut widths: Vec<usize> = points.iter().map(|p| p.task.width).collect();
    widths.sort();
    widths.dedup();
    let mut alphas: Vec<f64> = points.iter().map(|p| p.task.alpha).collect();
    alphas.sort_by(|a, b| a.total_cmp(b));
    alphas.dedup();
    type Getter = Box<dyn Fn(&Point) -> f64>;
    // (name, value, whether it measures convergence in width: fitted against width only)
    let mut quantities: Vec<(String, Getter, bool)> = vec![
        ("f_gap".into(), Box::new(|p: &Point| p.f_gap), false),
        ("w_dist".into(), Box::new(|p: &Point| p.w_dist), false),
        ("ntk_error".into(), Box::new(|p: &Point| p.ntk_error), true),
    ];
    // Each run's final test loss, when there are several runs (the linear models' plateaus).
    let names = run_names(points);
    if names.len() > 1 {
        for (k, name) in names.into_iter().enumerate() {
            quantities.push((
                format!("loss_test[{name}]"),
                Box::new(move |p: &Point| p.run_loss(k, &name)),
                false,
            ));
        }
    }
    // Distances to the reference, one quantity per time (NaN at the reference drops it).
    let times = points.first().map_or(&[][..], |p| &p.to_ref.t[..]);
    for (k, t) in times.iter().enumerate() {
        for (name, get) in ToReference::PER_TIME {
            quantities.push((
                format!("{name}(t={t})"),
                Box::new(move |p: &Point| get(&p.to_ref).get(k).copied().unwrap_or(f64::NAN)),
                true,
            ));
        }
    }
    for (q, get, in_width) in &quantities {
        let mut fit = |against: &str, at: f64, sel: Vec<&Point>, x_of: fn(&Point) -> f64| {
            let x: Vec<f64> = sel.iter().map(|p| x_of(p)).collect();
            let y: Vec<f64> = sel.iter().map(|p| get(p)).collect();
            if let Some(l) = loglog_fit(&x, &y) {
                out.push(Fit {
                    quantity: q.clone(),
                    against: against.into(),
                    at,
                    slope: l.slope,
                    ci_low: l.ci_low,
                    ci_high: l.ci_high,
                    intercept: l.intercept,
                    points: sel.iter().filter(|p| get(p).is_finite()).count(),
                });
            }
        };
        let width = |p: &Point| p.task.width as f64;
        if !by_alpha {
            fit("width", f64::NAN, points.iter().collect(), width);
            continue;
        }
        for &w in widths.iter().filter(|_| !in_width) {
            let sel = points.iter().filter(|p| p.task.width == w).collect();
            fit("alpha", w as f64, sel, |p| p.task.alpha);
        }
        for &a in &alphas {
            let sel = points.iter().filter(|p| p.task.alpha == a).collect();
            fit("width", a, sel, width);
        }
    }
    out
}

/// Reads every task archive, writes the summary archive, returns the points and fits.
pub fn collect(problem: &Problem, text: &str, file: &Path) -> Result<(Vec<Point>, Vec<Fit>)> {
    let sw = spec(problem, file)?;
    let ts = tasks(problem, file)?;
    check_finished(&ts, file)?;
    let mut points: Vec<Point> = ts.iter().map(summarize).collect::<Result<_>>()?;
    let population = matches!(
        problem.data,
        crate::problem::DataSpec::Synthetic {
            risk: crate::problem::Risk::Population,
            ..
        }
    );
    reference::distances(&mut points, &sw.at, population)?;
    let fits = fits(&points, !sw.alpha.is_empty());
    write_summary(&sw.summary, (problem, text), &points, &fits, &sw.at)?;
    Ok((points, fits))
}

/// The summary archive, written like every archive: to a temporary file published when
/// complete, with the problem, seed and build recorded at the root.
fn write_summary(
    path: &Path,
    (problem, text): (&Problem, &str),
    points: &[Point],
    fits: &[Fit],
    at: &[f64],
) -> Result<()> {
    let archive = ArchiveWriter::create(
        path,
        &Provenance {
            problem: text,
            problem_resolved: &problem.resolved_toml(path)?,
            seed: problem.seed,
            threads: rayon::current_num_threads(),
            problem_file: None,
            problem_dir: None,
            alpha: None,
            width: None,
            describe: super::describe,
        },
        Existing::Replace,
    )?;
    archive.set_str("kind", "sweep")?;
    let g = archive.group("points")?;
    let n = points.len();
    let col = |name: &str, v: Vec<f64>| g.write_array(name, &[v.len()], &v);
    let ints = |f: fn(&Point) -> u64| points.iter().map(f).collect::<Vec<u64>>();
    g.write_u64s("width", &ints(|p| p.task.width as u64))?;
    col("alpha", points.iter().map(|p| p.task.alpha).collect())?;
    g.write_u64s("seed", &ints(|p| p.task.seed))?;
    col("f_gap", points.iter().map(|p| p.f_gap).collect())?;
    col("w_dist", points.iter().map(|p| p.w_dist).collect())?;
    col("loss_train", points.iter().map(|p| p.loss_train).collect())?;
    col("loss_test", points.iter().map(|p| p.loss_test).collect())?;
    col("ntk_error", points.iter().map(|p| p.ntk_error).collect())?;
    col(
        "kernel_distance",
        points.iter().map(|p| p.kernel_distance).collect(),
    )?;
    // Distances to the reference: [points, times] with the times in /points/at (empty: each
    // run's last save).
    let times = points.first().map_or(0, |p| p.to_ref.f_l2.len());
    for (name, get) in ToReference::PER_TIME {
        let grid: Vec<f64> = (0..n * times)
            .map(|ik| {
                let (i, k) = (ik / times, ik % times);
                get(&points[i].to_ref).get(k).copied().unwrap_or(f64::NAN)
            })
            .collect();
        g.write_array(name, &[n, times], &grid)?;
    }
    // The times actually compared: `sweep.at`, or each reference's last save. When those differ
    // between points (GD steps set per α), /points/at stays empty and t_compared holds them.
    let compared: Vec<&Vec<f64>> = points.iter().map(|p| &p.to_ref.t).collect();
    match compared.first() {
        Some(first) if compared.iter().all(|t| t == first) => col("at", first.to_vec())?,
        Some(_) => {
            col("at", at.to_vec())?;
            let grid: Vec<f64> = (0..n * times)
                .map(|ik| {
                    compared[ik / times]
                        .get(ik % times)
                        .copied()
                        .unwrap_or(f64::NAN)
                })
                .collect();
            g.write_array("t_compared", &[n, times], &grid)?;
        }
        None => col("at", at.to_vec())?,
    }
    // Final test loss of every run: [points, runs], the run names in the attribute `runs`.
    let names = run_names(points);
    let by_run: Vec<f64> = (0..n * names.len())
        .map(|ik| {
            let (i, k) = (ik / names.len(), ik % names.len());
            points[i].run_loss(k, &names[k])
        })
        .collect();
    g.write_array("loss_test_by_run", &[n, names.len()], &by_run)?;
    g.set_str(Some("loss_test_by_run"), "runs", &names.join(","))?;
    // Classification scores on labelled data: [points, runs, columns].
    if let Some(first) = points.first().filter(|p| !p.run_scores.is_empty()) {
        let names: Vec<&str> = first.run_scores.iter().map(|r| r.0.as_str()).collect();
        let cols = CLASS_SCORES.len();
        let mut scores = Vec::with_capacity(n * names.len() * cols);
        for p in points {
            for (k, name) in names.iter().enumerate() {
                let row = p.run_scores.get(k).filter(|r| r.0 == *name);
                scores.extend((0..cols).map(|c| row.map_or(f64::NAN, |r| r.1[c])));
            }
        }
        g.write_array("class_scores", &[n, names.len(), cols], &scores)?;
        g.set_str(Some("class_scores"), "runs", &names.join(","))?;
        g.set_str(Some("class_scores"), "columns", &CLASS_SCORES.join(","))?;
    }
    g.write_u64s(
        "reference_width",
        &ints(|p| p.to_ref.reference_width as u64),
    )?;
    col(
        "w2_exact",
        points
            .iter()
            .map(|p| f64::from(u8::from(p.to_ref.w2_exact)))
            .collect(),
    )?;
    archive.group("fits")?;
    // fit_00, fit_01, …: zero-padded so that they sort.
    let digits = fits.len().saturating_sub(1).to_string().len();
    for (i, fit) in fits.iter().enumerate() {
        let h = archive.group(&format!("fits/fit_{i:0digits$}"))?;
        h.set_str(None, "quantity", &fit.quantity)?;
        h.set_str(None, "against", &fit.against)?;
        h.set_num("at", fit.at)?;
        h.set_num("slope", fit.slope)?;
        h.set_num("ci95_low", fit.ci_low)?;
        h.set_num("ci95_high", fit.ci_high)?;
        h.set_num("intercept", fit.intercept)?;
        h.set_num("points", fit.points as u64)?;
    }
    archive.finish("completed")
}
