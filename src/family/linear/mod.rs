//! Shallow linear networks Y = W₂W₁X: GD, the self-consistent mixed dynamics, Saxe's modes and
//! the lazy solution, and the (γσ², γw) phase diagram as this family's sweep.

pub mod phase;
pub mod run;

pub use run::{run_linear, LinearReport, LinearResult, LinearSetup};

use super::{Finished, Monitor, RunOptions, Source, Study, SweepAction, SweepDone};
use crate::archive::catalog::{plain, Description, Place};
use crate::archive::ArchiveReader;
use crate::error::{Error, Result};
use crate::problem::LinearProblem;
use crate::report::plot::{any_run_has, Figure};
use std::fmt::Write;

pub(crate) struct LinearStudy;

impl Study for LinearStudy {
    fn kind(&self) -> &'static str {
        "linear"
    }

    /// The singular values against eq. (1), where the runs record them.
    fn default_figure(&self, archive: &ArchiveReader) -> Figure {
        if any_run_has(archive, "singular_values") {
            Figure::Spectra
        } else if any_run_has(archive, "stable_rank") {
            Figure::Phase
        } else {
            Figure::Losses
        }
    }

    fn check(&self, src: &Source) -> Result<()> {
        LinearProblem::parse(&src.text, &src.path).map(|_| ())
    }

    fn run(&self, src: &Source, opts: &RunOptions, monitor: &dyn Monitor) -> Result<Finished> {
        let setup = LinearSetup::from_text(src.text.clone(), &src.path, opts)?;
        let report = run_linear(&setup, opts, &|done, total| {
            monitor.progress("linear", done, total, None)
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
                let opts = RunOptions {
                    problem_file: Some(src.path.clone()),
                    ..RunOptions::default()
                };
                let (out, _) = phase::run_phase(&p, &src.text, &opts, &|d, t| {
                    monitor.progress("phase diagram", d, t, None)
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

/// What a linear network's datasets are (the archive's `description` attributes).
pub fn describe(place: &Place<'_>, name: &str) -> Option<Description> {
    match (place.group, place.kind, name) {
        ("data", _, "a_star") => plain("A*, the target matrix [d, d] (test error ‖A − A*‖_F²/d²)"),
        ("data", _, "y") => plain("Y, the observed matrix [d, d] (train error ‖A − Y‖_F²/d²)"),
        ("init", _, "a") => plain("A(0) = W₂W₁ at initialization [d, d]"),
        ("runs", "phase_diagram", "t") => {
            plain("index of the phase-diagram point, in the order points finished")
        }
        ("runs", _, "t") => Some(("time of each save", Some("t = kη, η the GD step"))),
        ("runs", _, "step") => plain("GD step k of each save (t = kη)"),
        ("runs", _, "train_error") => plain("‖A − Y‖_F² / d²"),
        ("runs", _, "test_error") => plain("‖A − A*‖_F² / d²"),
        ("runs", _, "singular_values") => {
            plain("singular values of A at each save, descending [T, d]")
        }
        ("runs", _, "a_final") => plain("A at the end of the run [d, d]"),
        ("runs", _, "distance") => {
            plain("‖A − A_ref‖_F / ‖A_ref‖_F against the first dynamics listed (attr reference)")
        }
        ("runs", "phase_diagram", n) => phase(n),
        _ => None,
    }
}

fn phase(name: &str) -> Option<Description> {
    match name {
        "gamma_sigma2" => plain("γσ²: the initialization variance σ² = d^γσ²"),
        "gamma_w" => plain("γw: the width w = ⌊d^γw⌋"),
        "seed" => plain("the point's seed"),
        "region" => {
            plain("the point's region by the paper's lines (codes in the run's `region_codes`)")
        }
        "min_test_error" => plain("minimum over GD steps of ‖A − A*‖_F² / d²"),
        "stable_rank" => plain("‖A‖_F² / ‖A‖_op² at the step of the minimum test error"),
        "steps_to_min" => plain("GD steps to the minimum test error"),
        "steps" => plain("GD steps taken"),
        "max_distance" => {
            plain("max over steps of ‖A_GD − A_SC‖_F / ‖A_GD‖_F (GD against eq. (1))")
        }
        "eta" => plain("η, the GD step"),
        "threshold" => plain("σ²w: singular values above it are balanced, below it lazy"),
        _ => None,
    }
}
