//! The two-layer network f(x) = (α/N) Σ_j a_j σ(⟨w_j, x⟩ + b_j) as a system of N particles: its
//! gradient flow, GD/SGD/Langevin, residual and linearized dynamics, the NTK and radial limits,
//! and sweeps over widths, output scales and seeds. Its model and fields are the shared
//! `model::two_layer` and `dynamics` particle machinery.

pub(crate) mod derive;
pub mod run;
pub mod sweep;
pub mod table;

pub use run::{resume_setup, run_problem, run_setup, Readout, RunReport, Setup};

use super::{Finished, Monitor, RunOptions, Source, Study, SweepAction, SweepDone};
use crate::archive::catalog::{plain, Description, Place, MEAN_FIELD_TIME};
use crate::archive::ArchiveReader;
use crate::error::{Error, Result};
use crate::problem::Problem;
use crate::report::plot::{any_run_has, Figure};
use std::path::Path;

pub(crate) struct TwoLayerStudy;

impl TwoLayerStudy {
    fn setup(src: &Source, opts: &RunOptions) -> Result<Setup> {
        let problem = Problem::parse(&src.text, &src.path)?;
        Setup::from_problem(problem, src.text.clone(), &src.path, opts)
    }
}

impl Study for TwoLayerStudy {
    fn kind(&self) -> &'static str {
        "two_layer"
    }

    /// A sweep's fits, or the radial densities against the radial PDE, else the losses.
    fn default_figure(&self, archive: &ArchiveReader) -> Figure {
        if ArchiveReader::str_attr(&archive.file, "kind").as_deref() == Some("sweep") {
            Figure::Sweep
        } else if any_run_has(archive, "radii") {
            Figure::Radii
        } else {
            Figure::Losses
        }
    }

    fn check(&self, src: &Source) -> Result<()> {
        Problem::parse(&src.text, &src.path).map(|_| ())
    }

    fn derive(&self, src: &Source, latex: bool) -> Result<String> {
        derive::derive(&Problem::parse(&src.text, &src.path)?, latex, &src.path)
    }

    fn derives(&self) -> bool {
        true
    }

    fn run(&self, src: &Source, opts: &RunOptions, monitor: &dyn Monitor) -> Result<Finished> {
        let setup = Self::setup(src, opts)?;
        let report = run_setup(&setup, opts, &mut |name, done, total, loss| {
            monitor.progress(name, done, total, loss)
        })?;
        Ok(finished(&report, table::run_summary(&report)))
    }

    /// Runs with their full state saved (gd, gradient_flow, linearized) continue from their last
    /// save; completed runs stay; the others start again.
    fn resume(
        &self,
        src: &Source,
        archive: &Path,
        opts: &RunOptions,
        monitor: &dyn Monitor,
    ) -> Result<Finished> {
        let setup = Self::setup(src, opts)?;
        let report = resume_setup(&setup, archive, &mut |name, done, total, loss| {
            monitor.progress(name, done, total, loss)
        })?;
        let summary = format!(
            "archive {} (resumed)\n{}",
            report.archive.display(),
            crate::report::inspect(&report.archive)?
        );
        Ok(finished(&report, summary))
    }

    fn sweeps(&self) -> bool {
        true
    }

    fn sweep(&self, src: &Source, action: SweepAction, monitor: &dyn Monitor) -> Result<SweepDone> {
        let p = Problem::parse(&src.text, &src.path)?;
        let (file, text) = (&src.path, &src.text);
        let done = |output: String, completed: bool| Ok(SweepDone { output, completed });
        match action {
            SweepAction::List => done(table::tasks(&sweep::tasks(&p, file)?), true),
            SweepAction::Task { index, threads } => {
                let ts = sweep::tasks(&p, file)?;
                let t = ts.get(index).ok_or_else(|| {
                    Error::Usage(format!(
                        "task index {index} is out of range: the sweep has {} tasks (0..{})",
                        ts.len(),
                        ts.len()
                    ))
                })?;
                let r = sweep::run_task(&p, text, file, t, threads)?;
                done(
                    format!("task {index}: {}\n", r.archive.display()),
                    r.completed(),
                )
            }
            SweepAction::Collect => {
                let (points, fits) = sweep::collect(&p, text, file)?;
                done(table::collected(&points, &fits), true)
            }
            SweepAction::Run { redo } => {
                let runs = sweep::run_all(&p, text, file, redo, &|d, t| {
                    monitor.progress("sweep", d, t, None)
                })?;
                let (points, fits) = sweep::collect(&p, text, file)?;
                done(
                    table::collected(&points, &fits),
                    runs.iter().all(|r| r.completed()),
                )
            }
        }
    }
}

fn finished(report: &RunReport, summary: String) -> Finished {
    Finished::from_runs(report.archive.clone(), &report.runs, summary)
}

/// What a two-layer network's datasets are (the archive's `description` attributes).
pub fn describe(place: &Place<'_>, name: &str) -> Option<Description> {
    match (place.group, place.kind, name) {
        ("points", _, n) => points(n),
        ("runs", _, "t") => Some(("time of each save", Some(MEAN_FIELD_TIME))),
        ("runs", _, "particles") => plain("θ_j(t), the particles at each save [T, N, D], columns in `columns`"),
        ("runs", _, "kernel") => plain("tangent kernel K_t(x_i, x_l) = (1/N) Σ_j ⟨∇σ*(x_i; θ_j), ∇σ*(x_l; θ_j)⟩ on the first kernel_points training inputs [T, k, k]"),
        ("runs", _, "kernel_distance") => plain("‖K_t − K₀‖_F / ‖K₀‖_F"),
        ("runs", _, "kernel_alignment") => plain("yᵀK_t y / (‖K_t‖_F ‖y‖²) on the kernel points"),
        ("runs", "residual", "f_train") => plain("y − u on the training inputs, u the integrated residual [T, n]"),
        ("runs", _, "f_train") => plain("outputs of the run's model on the training inputs [T, n] (ntk_limit: the frozen-kernel model)"),
        ("runs", _, "f_test") => plain("outputs of the run's model on the test inputs [T, m]"),
        ("runs", "radial_pde", "loss_train") => plain("the risk of the infinite-width network whose law of ‖w‖ the radial PDE carries (its particles: radii)"),
        ("runs", _, "loss_train") => plain("R = mean ℓ(y, f) over the training set, ℓ = (y − f)² unless the root's loss_formula names another (the population risk E(f* − f)² with data.risk = \"population\")"),
        ("runs", _, "loss_test") => plain("mean ℓ(y, f) over the test set (ℓ as for loss_train)"),
        ("runs", _, "radii") => plain("the radial PDE's particles r_k = ‖w_k‖ at each save [T, M]"),
        _ => None,
    }
}

fn points(name: &str) -> Option<Description> {
    match name {
        "width" => plain("N, the task's number of particles"),
        "alpha" => plain("α, the task's output scale"),
        "seed" => plain("the task's master seed"),
        "f_gap" => plain("sup_t of the RMS over training points of f − f_lin: the first nonlinear run against the first linearized or ntk_limit run"),
        "w_dist" => plain("sup_t ‖θ(t) − θ₀‖ over all particle coordinates of the first nonlinear run"),
        "loss_train" => plain("final training loss of the task's first nonlinear run"),
        "loss_test" => plain("final test loss of the task's first nonlinear run"),
        "ntk_error" => plain("‖K₀ − K_∞‖_F / ‖K_∞‖_F: the empirical NTK at θ₀ against the analytic one"),
        "kernel_distance" => plain("‖K_T − K₀‖_F / ‖K₀‖_F: how far the tangent kernel moved by the end"),
        "risk_gap" => plain("|R − R_ref| at each compared time [points, times]: risk against the widest run of the same α and seed"),
        "f_l2" => plain("RMS of f − f_ref on the test set at each compared time [points, times]"),
        "w2" => plain("W2 between the particle laws of the task and of its reference [points, times] (exact or sliced: w2_exact)"),
        "radial_w2" => plain("1-D W2 between the law of ‖w‖ of the network and of the radial PDE [points, times]"),
        "at" => Some((
            "the times at which every point is compared with its reference",
            Some(MEAN_FIELD_TIME),
        )),
        "t_compared" => Some((
            "the times each point was compared at, when they differ between points [points, times]",
            Some(MEAN_FIELD_TIME),
        )),
        "loss_test_by_run" => plain("final test loss of every run of each task [points, runs], run names in `runs`"),
        "class_scores" => plain("classification scores [points, runs, columns], names in `runs` and `columns`"),
        "reference_width" => plain("width of the point's reference (the widest run of its α and seed)"),
        "w2_exact" => plain("1 when w2 is exact (assignment), 0 when sliced"),
        _ => None,
    }
}
