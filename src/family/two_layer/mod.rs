//! The two-layer network f(x) = (α/N) Σ_j a_j σ(⟨w_j, x⟩ + b_j) as a system of N particles: its
//! gradient flow, GD/SGD/Langevin, residual and linearized dynamics, the NTK and radial limits,
//! and sweeps over widths, output scales and seeds. Its model and fields are the shared
//! `model::two_layer` and `dynamics` particle machinery.

pub mod run;
pub mod sweep;
pub mod table;

pub use run::{resume_setup, run_problem, run_setup, Readout, RunReport, Setup};

use super::{Finished, Monitor, RunOptions, Source, Study, SweepAction, SweepDone};
use crate::error::{Error, Result};
use crate::problem::Problem;
use std::path::Path;

pub struct TwoLayerStudy;

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

    fn check(&self, src: &Source) -> Result<()> {
        Problem::parse(&src.text, &src.path).map(|_| ())
    }

    fn run(&self, src: &Source, opts: &RunOptions, monitor: &dyn Monitor) -> Result<Finished> {
        let setup = Self::setup(src, opts)?;
        let report = run_setup(&setup, opts, &mut |name, done, total| {
            monitor.progress(name, done, total)
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
        let report = resume_setup(&setup, archive, &mut |name, done, total| {
            monitor.progress(name, done, total)
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
                    monitor.progress("sweep", d, t)
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
