//! `meanfield run` for energies: the PDE runs first, then every particle run from the same
//! initial particles, each compared with the (first) PDE run at the save times they share.
//!
//! ```text
//!   /init/particles [N, D]                  the initial sample (columns "x" or "x1,x2")
//!   /runs/<pde>/t [T]  density [T, M] or [T, M1, M2]  mass [T]  free_energy [T]  mean [T, D]
//!               variance [T, D]  min_density [T]  grid [M] (1-D) | grid_x1 [M1] grid_x2 [M2]
//!               attrs jacobian (its form), cell_width | cell_area, edge_warning
//!   /runs/<particles>/t [T]  particles [T, N, D]  free_energy [T]  energy [T]  mean [T, D]
//!               variance [T, D]  w2_pde [T] (NaN where the PDE has no save at that time)
//!               attrs seed, w2_method, w2_against
//! ```
//! Root attributes: the formulas (potential, interaction) and their derivatives as exmex holds
//! them (potential_gradient, interaction_gradient, …), temperature.

use super::particles::{entropy_estimate, sample, Energy, ParticleFlow};
use super::pde::{initial_density, Grid, Pde};
use super::{EnergyDynamics, EnergyProblem};
use crate::archive::{ArchiveWriter, SeriesWriter};
use crate::dynamics::VectorField;
use crate::error::{Error, Result};
use crate::family::{
    overall_status, run_status, Finished, Monitor, RunOptions, RunSummary, Source, SweepAction,
    SweepDone,
};
use crate::integrate::{gd, ode, Outcome, SolverStats};
use crate::measure::wasserstein::w2_sq_1d_cells;
use rand_distr::Distribution;

/// A PDE run's saves, for the particle runs to compare with.
struct PdeRecord {
    name: String,
    grid: Grid,
    saves: Vec<(f64, Vec<f64>)>,
}

/// How particles are compared with a density: in 1-D exactly (quantile functions), in 2-D by
/// the exact assignment against N points drawn from the density (which adds their own sampling
/// error) up to N = 1000, by sliced W2 (64 directions) beyond.
const W2_METHOD_1D: &str = "exact: the L² distance of the quantile functions";
const W2_METHOD_2D: &str = "exact assignment against N points drawn from the density (cell by mass, uniform within it; seed's density stream) for N ≤ 1000, sliced W2 over 64 directions beyond; the drawn sample's own sampling error is included";

impl PdeRecord {
    /// W2 between the particles and the density saved at time t (None: no save there).
    fn w2(&self, t: f64, x: &[f64], seed: u64) -> Option<f64> {
        let (_, rho) = self
            .saves
            .iter()
            .find(|(s, _)| (s - t).abs() <= 1e-9 * t.abs().max(1.0))?;
        let g = &self.grid;
        if g.dim() == 1 {
            let ax = &g.axes[0];
            return Some(w2_sq_1d_cells(x.to_vec(), ax.low, ax.h, rho).sqrt());
        }
        let d = g.dim();
        let n = x.len() / d;
        let y = draw(g, rho, n, seed);
        let xm = faer::Mat::from_fn(n, d, |i, a| x[i * d + a]);
        let ym = faer::Mat::from_fn(n, d, |i, a| y[i * d + a]);
        if n <= 1000 {
            crate::measure::wasserstein::w2_exact(xm.as_ref(), ym.as_ref(), faer::Par::Seq).ok()
        } else {
            crate::measure::wasserstein::w2_sliced(xm.as_ref(), ym.as_ref(), 64, seed).ok()
        }
    }
}

/// n points from a cell density: a cell by its mass, then uniform within it.
fn draw(g: &Grid, rho: &[f64], n: usize, seed: u64) -> Vec<f64> {
    let mut rng = crate::rng::stream(seed, crate::rng::Stream::DensitySample);
    let mut cdf = Vec::with_capacity(rho.len());
    let mut acc = 0.0;
    for r in rho {
        acc += r.max(0.0);
        cdf.push(acc);
    }
    let d = g.dim();
    let mut out = Vec::with_capacity(n * d);
    for _ in 0..n {
        let u: f64 = rand::Rng::random::<f64>(&mut rng) * acc;
        let k = cdf.partition_point(|c| *c < u).min(rho.len() - 1);
        let c = g.centre(k);
        for (a, ax) in g.axes.iter().enumerate() {
            let v: f64 = rand::Rng::random(&mut rng);
            out.push(c[a] + (v - 0.5) * ax.h);
        }
    }
    out
}

pub(crate) fn run_energy(
    src: &Source,
    opts: &RunOptions,
    monitor: &dyn Monitor,
) -> Result<Finished> {
    let _scope = crate::integrate::RunScope::enter();
    let mut problem = EnergyProblem::parse(&src.text, &src.path)?;
    if let Some(seed) = opts.seed {
        problem.seed = seed;
    }
    let m = &problem.model;
    let energy = Energy::build(m, &src.path)?;
    let x0 = sample(&m.init, m.particles, problem.seed);
    energy.check_finite(&x0, &src.path)?;

    let out = opts.archive_path(&problem.output);
    let resolved = problem.resolved_toml(&out)?;
    let mut prov = opts.provenance(&src.text, &resolved, problem.seed, super::describe);
    prov.width = Some(m.particles as u64);
    let archive = ArchiveWriter::create(&out, &prov, opts.existing)?;
    record_formulas(&archive, &out, &energy)?;
    let columns = super::particles::variables(m.dimension).0.join(",");
    archive.write_init(&x0, m.particles, m.dimension, &columns)?;

    let mut runs = vec![];
    let mut pde: Option<PdeRecord> = None;
    let mut progress = |name: &str, done, total| monitor.progress(name, done, total, None);
    // PDE runs first: the particle runs are compared with the first one.
    let order = problem
        .dynamics
        .iter()
        .filter(|d| matches!(d, EnergyDynamics::Pde { .. }))
        .chain(
            problem
                .dynamics
                .iter()
                .filter(|d| !matches!(d, EnergyDynamics::Pde { .. })),
        );
    for spec in order {
        let name = spec.name();
        let times = problem.save.times(spec.t_end());
        if matches!(spec, EnergyDynamics::Pde { .. }) {
            let (summary, record) = run_pde(
                &energy,
                &problem,
                spec,
                &times,
                &archive,
                &mut progress,
                monitor,
            )?;
            runs.push(summary);
            if pde.is_none() {
                pde = Some(record);
            }
            continue;
        }
        let (summary, _) = run_particles(
            &energy,
            spec,
            &name,
            &x0,
            problem.seed,
            &times,
            &archive,
            pde.as_ref(),
            &mut progress,
        )?;
        runs.push(summary);
    }
    archive.finish(&overall_status(&runs))?;
    let summary = format!("archive {}\n{}", out.display(), table(&runs, pde.as_ref()));
    Ok(Finished::from_runs(out, &runs, summary))
}

/// The formulas and their derivatives, as root attributes.
fn record_formulas(archive: &ArchiveWriter, out: &std::path::Path, e: &Energy) -> Result<()> {
    let set = |name: &str, value: &str| {
        crate::archive::set_str(archive.file(), name, value).map_err(|err| Error::archive(out, err))
    };
    let join = |v: &[crate::expr::Expr]| {
        v.iter()
            .map(|x| x.exmex_text())
            .collect::<Vec<_>>()
            .join("; ")
    };
    set("potential", e.v.text())?;
    set("potential_gradient", &join(&e.grad_v))?;
    set("potential_hessian", &join(&e.hess_v))?;
    match &e.w {
        None => set("interaction", "0")?,
        Some(w) => {
            set("interaction", w.w.text())?;
            set("interaction_gradient", &join(&w.grad1))?;
            set("interaction_hessian_xx", &join(&w.hess11))?;
            set("interaction_hessian_xy", &join(&w.hess12))?;
        }
    }
    set(
        "derivative_syntax",
        "exmex: a unary minus binds tighter than ^, so -(x-y)^2.0 is (x − y)²; gradients and row-major Hessians separated by ';'",
    )?;
    archive.set_number("temperature", e.temperature)?;
    archive.set_number("dimension", e.d as f64)
}

/// The `pde` dynamics `spec` on its grid into the group of its name.
fn run_pde(
    energy: &Energy,
    problem: &EnergyProblem,
    spec: &EnergyDynamics,
    times: &[f64],
    archive: &ArchiveWriter,
    progress: &mut dyn FnMut(&str, usize, usize),
    monitor: &dyn Monitor,
) -> Result<(RunSummary, PdeRecord)> {
    let EnergyDynamics::Pde {
        method,
        rtol,
        atol,
        cells,
        bounds,
        ..
    } = spec
    else {
        unreachable!("run_pde runs pde dynamics")
    };
    let (method, rtol, atol) = (*method, *rtol, *atol);
    let name = &spec.name();
    let per = cells.per_axis(problem.model.dimension).expect("validated");
    let pde = Pde::new(energy, Grid::new(bounds, &per));
    let d = pde.grid.dim();
    let shape: Vec<usize> = pde.grid.axes.iter().map(|a| a.cells).collect();
    let rho0 = initial_density(&problem.model.init, &pde.grid);
    let mut w: SeriesWriter = archive.series_run(
        name,
        &[
            ("density", &shape),
            ("mass", &[]),
            ("free_energy", &[]),
            ("mean", &[d]),
            ("variance", &[d]),
            ("min_density", &[]),
        ],
    )?;
    w.set_str("kind", "pde")?;
    w.set_str("method", method.name())?;
    w.set_str(
        "scheme",
        "finite volumes, Scharfetter–Gummel fluxes (upwind at T = 0), no-flux walls",
    )?;
    if d == 1 {
        let ax = &pde.grid.axes[0];
        w.write_array("grid", &[ax.cells], &ax.centres())?;
        w.set_num("cell_width", ax.h)?;
    } else {
        for (a, ax) in pde.grid.axes.iter().enumerate() {
            w.write_array(&format!("grid_x{}", a + 1), &[ax.cells], &ax.centres())?;
        }
        w.set_num("cell_area", pde.grid.volume())?;
    }
    w.set_str("jacobian", pde.jacobian_form())?;
    w.set_num("rtol", rtol)?;
    w.set_num("atol", atol)?;
    let total = times.len();
    let mut saves = vec![];
    let mut last = (0.0, f64::NAN);
    let mut edge_warned = false;
    let mut observe = |t: f64, rho: &[f64]| -> Result<()> {
        let mass = pde.mass(rho);
        let f = pde.free_energy(rho);
        let (mean, var) = pde.moments(rho);
        let min = rho.iter().copied().fold(f64::INFINITY, f64::min);
        w.append(t, &[rho, &[mass], &[f], &mean, &var, &[min]])?;
        let edge = pde.edge_mass(rho);
        if edge > 1e-6 * mass && !edge_warned {
            edge_warned = true;
            let msg = format!(
                "{name}: mass {edge:.2e} sits in the box's edge cells at t = {t}: the walls hold back mass that would leave the box; widen box"
            );
            w.set_str("edge_warning", &msg)?;
            monitor.warn(&msg);
        }
        saves.push((t, rho.to_vec()));
        last = (t, f);
        progress(name, saves.len(), total);
        Ok(())
    };
    let outcome = ode::run(&pde, &rho0, method, rtol, atol, times, &mut observe);
    let (status, completed) = run_status(outcome.stopped, last.0)?;
    w.finish(&outcome.stats, &status)?;
    let summary = RunSummary {
        name: name.into(),
        kind: "pde".into(),
        method: method.name().into(),
        status,
        completed,
        t_last: last.0,
        loss_train: last.1,
        loss_test: f64::NAN,
        stats: outcome.stats,
    };
    let record = PdeRecord {
        name: name.into(),
        grid: pde.grid,
        saves,
    };
    Ok((summary, record))
}

/// One particle run from x0 (N particles, noise from `seed`) into the group `name`; with its
/// W2 distance to the PDE at each save.
#[allow(clippy::too_many_arguments)]
fn run_particles(
    energy: &Energy,
    spec: &EnergyDynamics,
    name: &str,
    x0: &[f64],
    seed: u64,
    times: &[f64],
    archive: &ArchiveWriter,
    pde: Option<&PdeRecord>,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<(RunSummary, Vec<f64>)> {
    let name = name.to_string();
    let d = energy.d;
    let n = x0.len() / d;
    let t_temp = energy.temperature;
    let mut w: SeriesWriter = archive.series_run(
        &name,
        &[
            ("particles", &[n, d]),
            ("free_energy", &[]),
            ("energy", &[]),
            ("mean", &[d]),
            ("variance", &[d]),
            ("w2_pde", &[]),
        ],
    )?;
    w.set_str("kind", spec.kind_name())?;
    // The seed of this run's sample and noise (a sweep's differ from the archive's).
    w.set_num("seed", seed)?;
    w.set_str_on(
        "particles",
        "columns",
        &super::particles::variables(d).0.join(","),
    )?;
    w.set_str(
        "free_energy_is",
        if t_temp > 0.0 {
            "F_N − T·Ĥ: F_N = (1/N) Σ V(X_i) + (1/(2N²)) Σ_ij W(X_i, X_j) exact, Ĥ the Kozachenko–Leonenko 3-nearest-neighbour estimate of the entropy of the law the particles sample"
        } else {
            "F_N = (1/N) Σ V(X_i) + (1/(2N²)) Σ_ij W(X_i, X_j), exact"
        },
    )?;
    if let Some(p) = pde {
        w.set_str("w2_against", &p.name)?;
        w.set_str(
            "w2_method",
            if d == 1 { W2_METHOD_1D } else { W2_METHOD_2D },
        )?;
    }
    let method = match *spec {
        EnergyDynamics::GradientFlow {
            method, rtol, atol, ..
        } => {
            w.set_num("rtol", rtol)?;
            w.set_num("atol", atol)?;
            method.name()
        }
        EnergyDynamics::Gd { step, steps, .. } => {
            w.set_num("step", step)?;
            w.set_num("steps", steps as u64)?;
            "euler"
        }
        EnergyDynamics::Langevin { step, steps, .. } => {
            w.set_num("step", step)?;
            w.set_num("steps", steps as u64)?;
            w.set_str("noise", "Euler–Maruyama: X ← X + η v(X) + √(2Tη) ξ, ξ ~ N(0, I) drawn in particle order from the seed's Langevin stream")?;
            "euler_maruyama"
        }
        EnergyDynamics::Pde { .. } => unreachable!("PDE runs are run by run_pde"),
    };
    w.set_str("method", method)?;
    let total = times.len();
    let mut done = 0;
    let mut last = (0.0, f64::NAN, f64::NAN);
    let mut w2s = vec![];
    let mut observe = |t: f64, x: &[f64]| -> Result<()> {
        let e = energy.particle_energy(x);
        let f = if t_temp > 0.0 {
            e - t_temp * entropy_estimate(x, d)
        } else {
            e
        };
        let mut mean = vec![0.0; d];
        let mut var = vec![0.0; d];
        for p in x.chunks(d) {
            for a in 0..d {
                mean[a] += p[a] / n as f64;
            }
        }
        for p in x.chunks(d) {
            for a in 0..d {
                var[a] += (p[a] - mean[a]).powi(2) / n as f64;
            }
        }
        let w2 = pde.and_then(|p| p.w2(t, x, seed)).unwrap_or(f64::NAN);
        w.append(t, &[x, &[f], &[e], &mean, &var, &[w2]])?;
        w2s.push(w2);
        done += 1;
        last = (t, f, w2);
        progress(&name, done, total);
        Ok(())
    };
    let field = ParticleFlow { energy, n };
    let outcome: Outcome = match *spec {
        EnergyDynamics::GradientFlow {
            method, rtol, atol, ..
        } => ode::run(&field, x0, method, rtol, atol, times, &mut observe),
        EnergyDynamics::Gd { step, steps, .. } => {
            let at = gd::save_steps(times, step, steps);
            gd::run(
                &field as &dyn VectorField,
                x0,
                step,
                steps,
                &at,
                &mut observe,
            )
        }
        EnergyDynamics::Langevin { step, steps, .. } => {
            let at = gd::save_steps(times, step, steps);
            let mut rng = crate::rng::stream(seed, crate::rng::Stream::Langevin);
            let scale = (2.0 * t_temp * step).sqrt();
            let mut v = vec![0.0; x0.len()];
            let mut advance = |y: &mut [f64]| {
                field.eval(y, &mut v);
                for (yi, vi) in y.iter_mut().zip(&v) {
                    let xi: f64 = rand_distr::StandardNormal.sample(&mut rng);
                    *yi += step * vi + scale * xi;
                }
            };
            gd::run_steps(&mut advance, x0, None, step, steps, &at, &mut observe)
        }
        EnergyDynamics::Pde { .. } => unreachable!("PDE runs are run by run_pde"),
    };
    let (status, completed) = run_status(outcome.stopped, last.0)?;
    w.finish(&outcome.stats, &status)?;
    let summary = RunSummary {
        name: name.clone(),
        kind: spec.kind_name().into(),
        method: method.into(),
        status,
        completed,
        t_last: last.0,
        loss_train: last.1,
        loss_test: last.2,
        stats: outcome.stats,
    };
    Ok((summary, w2s))
}

/// One line per run: its end, free energy, distance to the PDE and cost.
fn table(runs: &[RunSummary], pde: Option<&PdeRecord>) -> String {
    let width = runs.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mw = runs
        .iter()
        .map(|r| r.kind.len() + r.method.len() + 1)
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = format!(
        "{:width$}  {:mw$}  {:>9}  {:>13}  {:>11}  {:>7}  {:>8}  status\n",
        "run", "method", "t_last", "free_energy", "W2_to_pde", "steps", "rejected"
    );
    for r in runs {
        let SolverStats {
            steps,
            rejected_steps,
            ..
        } = r.stats;
        s.push_str(&format!(
            "{:width$}  {:mw$}  {:>9}  {:>13}  {:>11}  {:>7}  {:>8}  {}\n",
            r.name,
            format!("{} {}", r.kind, r.method),
            crate::report::time(r.t_last),
            crate::report::sci(r.loss_train),
            if r.loss_test.is_finite() {
                crate::report::sci(r.loss_test)
            } else {
                "-".into()
            },
            steps,
            rejected_steps,
            r.status
        ));
    }
    if let Some(p) = pde {
        s.push_str(&format!(
            "W2_to_pde: at the last save, against the density of run {}\n",
            p.name
        ));
    }
    s
}

/// `meanfield sweep` of an energy: one archive `<output stem>_sweep.h5` with the first PDE run,
/// every particle dynamics at each N of `[sweep] particles` and each repeat (run groups
/// `<name>_n<N>_r<k>`, initial sample and noise from seed + p for the p-th task), and
///
/// ```text
///   /points/particle_count [P] (u64)  repeat [P] (u64)  seed [P] (u64)  w2_<name> [P, T]
///   /fits/<name>  slope [T]  ci_low [T]  ci_high [T]  intercept [T]  t [T]
/// ```
/// the fits being log(mean over repeats of W2) against log N at each save time (t = 0: the
/// initial sampling error).
pub(crate) fn sweep_energy(
    src: &Source,
    action: SweepAction,
    monitor: &dyn Monitor,
) -> Result<SweepDone> {
    let problem = EnergyProblem::parse(&src.text, &src.path)?;
    let sw = problem.sweep.clone().ok_or_else(|| Error::Problem {
        file: src.path.clone(),
        key: "sweep".into(),
        message: "no [sweep] table: add one, e.g. [sweep] particles = [100, 200, 400, 800]".into(),
    })?;
    // (N, repeat, seed): every task its own seed, so that samples at different N are independent
    // (the fit's interval assumes so).
    let mut tasks = vec![];
    for &n in &sw.particles {
        for k in 0..sw.repeats {
            let seed = problem.seed.wrapping_add(tasks.len() as u64);
            tasks.push((n, k as u64, seed));
        }
    }
    let out = sweep_path(&problem.output);
    match action {
        SweepAction::List => {
            let mut s = format!(
                "{} tasks, into {}\n  N  repeat  seed\n",
                tasks.len(),
                out.display()
            );
            for (n, k, seed) in &tasks {
                s.push_str(&format!("  {n}  {k}  {seed}\n"));
            }
            return Ok(SweepDone {
                output: s,
                completed: true,
            });
        }
        SweepAction::Task { .. } | SweepAction::Collect => return Err(Error::Usage(
            "an energy sweep runs in one process, into one archive: use `meanfield sweep run FILE`"
                .into(),
        )),
        SweepAction::Run { redo } => {
            if out.exists() && !redo {
                return Err(Error::Usage(format!(
                    "{} exists: `meanfield sweep run {} --redo` recomputes it",
                    out.display(),
                    src.path.display()
                )));
            }
        }
    }
    let _scope = crate::integrate::RunScope::enter();
    let energy = Energy::build(&problem.model, &src.path)?;
    let opts = RunOptions {
        problem_file: Some(src.path.clone()),
        ..Default::default()
    };
    let resolved = problem.resolved_toml(&out)?;
    let archive = ArchiveWriter::create(
        &out,
        &opts.provenance(&src.text, &resolved, problem.seed, super::describe),
        crate::archive::Existing::Replace,
    )?;
    archive.set_str("kind", "energy_sweep")?;
    archive.continue_with(format!("meanfield sweep run {}", src.path.display()));
    record_formulas(&archive, &out, &energy)?;
    let mut runs = vec![];
    let mut progress = |name: &str, done, total| monitor.progress(name, done, total, None);
    let pde_spec = problem
        .dynamics
        .iter()
        .find(|d| matches!(d, EnergyDynamics::Pde { .. }))
        .expect("validated: a sweep has a PDE");
    let pde_times = problem.save.times(pde_spec.t_end());
    let (summary, pde) = run_pde(
        &energy,
        &problem,
        pde_spec,
        &pde_times,
        &archive,
        &mut progress,
        monitor,
    )?;
    runs.push(summary);
    let particle_specs: Vec<&EnergyDynamics> = problem
        .dynamics
        .iter()
        .filter(|d| !matches!(d, EnergyDynamics::Pde { .. }))
        .collect();
    // w2[dynamics][task] = the W2 series of that run.
    let mut w2: Vec<Vec<Vec<f64>>> = vec![vec![]; particle_specs.len()];
    for (i, &(n, k, seed)) in tasks.iter().enumerate() {
        let x0 = sample(&problem.model.init, n, seed);
        energy.check_finite(&x0, &src.path)?;
        for (j, spec) in particle_specs.iter().enumerate() {
            let name = format!("{}_n{n}_r{k}", spec.name());
            let times = problem.save.times(spec.t_end());
            let (summary, series) = run_particles(
                &energy,
                spec,
                &name,
                &x0,
                seed,
                &times,
                &archive,
                Some(&pde),
                &mut |_, _, _| {},
            )?;
            runs.push(summary);
            w2[j].push(series);
        }
        progress("sweep", i + 1, tasks.len());
    }
    let points = archive.group("points")?;
    points.write_u64s(
        "particle_count",
        &tasks.iter().map(|t| t.0 as u64).collect::<Vec<_>>(),
    )?;
    points.write_u64s("repeat", &tasks.iter().map(|t| t.1).collect::<Vec<_>>())?;
    points.write_u64s("seed", &tasks.iter().map(|t| t.2).collect::<Vec<_>>())?;
    let mut table = format!(
        "archive {}\nW2 to the PDE '{}' (mean over {} repeat(s)) against N, at the last save:\n",
        out.display(),
        pde.name,
        sw.repeats
    );
    let mut ns = sw.particles.clone();
    ns.sort();
    ns.dedup();
    for (j, spec) in particle_specs.iter().enumerate() {
        let name = spec.name();
        let times = problem.save.times(spec.t_end());
        let t_count = times.len();
        let flat: Vec<f64> = w2[j]
            .iter()
            .flat_map(|s| (0..t_count).map(move |q| s.get(q).copied().unwrap_or(f64::NAN)))
            .collect();
        points.write_array(&format!("w2_{name}"), &[tasks.len(), t_count], &flat)?;
        // The mean over repeats at each N and save time.
        let mean_at = |n: usize, q: usize| -> f64 {
            let v: Vec<f64> = tasks
                .iter()
                .zip(&w2[j])
                .filter(|((m, _, _), _)| *m == n)
                .map(|(_, s)| s.get(q).copied().unwrap_or(f64::NAN))
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let xs: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
        let mut fit = vec![[f64::NAN; 4]; t_count];
        for (q, f) in fit.iter_mut().enumerate() {
            let ys: Vec<f64> = ns.iter().map(|&n| mean_at(n, q)).collect();
            if let Some(l) = crate::measure::fit::loglog_fit(&xs, &ys) {
                *f = [l.slope, l.ci_low, l.ci_high, l.intercept];
            }
        }
        let g = archive.group(&format!("fits/{name}"))?;
        g.write_array("t", &[t_count], &times)?;
        for (c, what) in ["slope", "ci_low", "ci_high", "intercept"]
            .iter()
            .enumerate()
        {
            g.write_array(
                what,
                &[t_count],
                &fit.iter().map(|f| f[c]).collect::<Vec<_>>(),
            )?;
        }
        g.set_str(None, "fit", "log(mean W2 over repeats) = intercept + slope · log N, least squares; [ci_low, ci_high] the slope's 95% Student-t interval")?;
        let last = t_count - 1;
        table.push_str(&format!("  {name} (t = {}):", times[last]));
        for &n in &ns {
            table.push_str(&format!("  N = {n}: {:.4e}", mean_at(n, last)));
        }
        let [s, lo, hi, _] = fit[last];
        table.push_str(&format!(
            "\n    slope {s:.3} [{lo:.3}, {hi:.3}] (95%); at t = 0: {:.3}\n",
            fit[0][0]
        ));
    }
    let status = overall_status(&runs);
    archive.finish(&status)?;
    Ok(SweepDone {
        output: table,
        completed: runs.iter().all(|r| r.completed),
    })
}

/// `<output stem>_sweep.h5` beside the problem's output.
fn sweep_path(output: &std::path::Path) -> std::path::PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "energy".into());
    output.with_file_name(format!("{stem}_sweep.h5"))
}
