//! Diagonal linear networks β = u ⊙ v (or u² − v²) on sparse regression: the weight flow, GD,
//! the mirror flow of β, and the saddle-to-saddle limit (Algorithm 1) as α → 0.

pub mod run;

pub use run::{run_diagonal, DiagonalReport, DiagonalSetup};

use super::{Finished, Monitor, RunOptions, Source, Study, SweepAction, SweepDone};
use crate::error::{Error, Result};
use crate::problem::DiagonalProblem;

pub struct DiagonalStudy;

impl Study for DiagonalStudy {
    fn kind(&self) -> &'static str {
        "diagonal"
    }

    fn check(&self, src: &Source) -> Result<()> {
        DiagonalProblem::parse(&src.text, &src.path).map(|_| ())
    }

    fn run(&self, src: &Source, opts: &RunOptions, monitor: &dyn Monitor) -> Result<Finished> {
        let setup = DiagonalSetup::from_text(src.text.clone(), &src.path, opts)?;
        if let Some(w) = setup.twins_warning() {
            monitor.warn(&w);
        }
        let report = run_diagonal(&setup, opts, &mut |name, done, total| {
            monitor.progress(name, done, total)
        })?;
        let summary = format!(
            "archive {}\n{}",
            report.archive.display(),
            crate::report::diagonal_tables(&report.archive)?
        );
        Ok(Finished::from_runs(report.archive, &report.runs, summary))
    }

    /// No `[sweep]`: several initialization scales go in one file, as the mirror flow's alphas.
    fn sweep(&self, src: &Source, _: SweepAction, _: &dyn Monitor) -> Result<SweepDone> {
        Err(Error::Problem {
            file: src.path.clone(),
            key: "model.kind".into(),
            message: "sweeps run two-layer and linear-network problems; for several initialization scales of a diagonal network list them in the mirror_flow's alphas".into(),
        })
    }
}
