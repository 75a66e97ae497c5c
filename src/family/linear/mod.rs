//! Shallow linear networks Y = W₂W₁X: GD, the self-consistent mixed dynamics, Saxe's modes and
//! the lazy solution, and the (γσ², γw) phase diagram as this family's sweep.

pub mod phase;
pub mod run;

pub use run::{run_linear, LinearReport, LinearResult, LinearSetup};

use super::{Finished, Monitor, RunOptions, Source, Study, SweepAction, SweepDone};
use crate::error::{Error, Result};
use crate::problem::LinearProblem;
use std::fmt::Write;

pub struct LinearStudy;

impl Study for LinearStudy {
    fn kind(&self) -> &'static str {
        "linear"
    }

    fn check(&self, src: &Source) -> Result<()> {
        LinearProblem::parse(&src.text, &src.path).map(|_| ())
    }

    fn run(&self, src: &Source, opts: &RunOptions, monitor: &dyn Monitor) -> Result<Finished> {
        let setup = LinearSetup::from_text(src.text.clone(), &src.path, opts)?;
        let report = run_linear(&setup, opts, &|done, total| {
            monitor.progress("linear", done, total)
        })?;
        let summary = format!(
            "archive {}\n{}",
            report.archive.display(),
            crate::report::linear_tables(&report.archive)?
        );
        Ok(Finished::from_runs(report.archive, &report.runs, summary))
    }

    fn sweeps(&self) -> bool {
        true
    }

    /// The `[sweep]` table of a linear-network file is the (γσ², γw) phase diagram.
    fn sweep(&self, src: &Source, action: SweepAction, monitor: &dyn Monitor) -> Result<SweepDone> {
        let p = LinearProblem::parse(&src.text, &src.path)?;
        let Some(sw) = p.sweep.as_ref() else {
            return Err(Error::Problem {
                file: src.path.clone(),
                key: "sweep".into(),
                message: "expected a [sweep] table with gamma_sigma2 and gamma_w lists".into(),
            });
        };
        let output = match action {
            SweepAction::List => {
                let mut s = String::new();
                let _ = writeln!(s, "{:>5} {:>8} {:>8} {:>6}  region", "point", "γσ²", "γw", "seed");
                for (i, (gs, gw, seed)) in phase::grid(&p, sw).into_iter().enumerate() {
                    let r = phase::region(p.data.d(), p.data.rank(), gs, gw);
                    let _ = writeln!(s, "{i:>5} {gs:>8.3} {gw:>8.3} {seed:>6}  {}", phase::REGIONS[r]);
                }
                let _ = writeln!(s, "summary archive {}", p.sweep_output().display());
                s
            }
            SweepAction::Run { .. } => {
                let (out, _) = phase::run_phase(&p, &src.text, &RunOptions::default(), &|d, t| {
                    monitor.progress("phase diagram", d, t)
                })?;
                format!("archive {}\n{}", out.display(), phase::phase_table(&out)?)
            }
            SweepAction::Collect => phase::phase_table(&p.sweep_output())?,
            SweepAction::Task { .. } => return Err(Error::Usage(
                "a linear-network phase diagram runs as one job: `meanfield sweep run` (its points go in parallel and each is archived as it finishes)".into(),
            )),
        };
        Ok(SweepDone {
            output,
            completed: true,
        })
    }
}
