//! Diagonal linear networks β = u ⊙ v (or u² − v²) on sparse regression: the weight flow, GD,
//! the mirror flow of β, and the saddle-to-saddle limit (Algorithm 1) as α → 0.

pub mod run;

pub use run::{run_diagonal, DiagonalReport, DiagonalSetup};

use super::{Finished, Monitor, RunOptions, Source, Study, SweepAction, SweepDone};
use crate::archive::catalog::{plain, Description, Place};
use crate::archive::ArchiveReader;
use crate::error::{Error, Result};
use crate::problem::DiagonalProblem;
use crate::report::plot::Figure;

pub(crate) struct DiagonalStudy;

impl Study for DiagonalStudy {
    fn kind(&self) -> &'static str {
        "diagonal"
    }

    fn default_figure(&self, _: &ArchiveReader) -> Figure {
        Figure::Beta
    }

    fn check(&self, src: &Source) -> Result<()> {
        DiagonalProblem::parse(&src.text, &src.path).map(|_| ())
    }

    fn run(&self, src: &Source, opts: &RunOptions, monitor: &dyn Monitor) -> Result<Finished> {
        let setup = DiagonalSetup::from_text(src.text.clone(), &src.path, opts)?;
        if let Some(w) = setup.twins_warning() {
            monitor.warn(&w);
        }
        let report = run_diagonal(&setup, opts, &mut |name, done, total, loss| {
            monitor.progress(name, done, total, loss)
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

/// What a diagonal network's datasets are (the archive's `description` attributes).
pub fn describe(place: &Place<'_>, name: &str) -> Option<Description> {
    match (place.group, place.kind, name) {
        ("runs", "saddle_limit", "t") => Some((
            "jump times τ_k of the saddle-to-saddle limit (t_0 = 0)",
            Some("accelerated time τ = t/λ_α"),
        )),
        ("runs", _, "t") => Some((
            "time of each save: raw time t of the gradient flow on L",
            Some("raw time t = λ_α τ"),
        )),
        ("runs", _, "tau") => Some((
            "accelerated time of each save",
            Some("τ = t/λ_α (λ_α = log 1/α for u ⊙ v, ½ log 1/α for u² − v²)"),
        )),
        ("runs", _, "loss_train") => {
            plain("L(β) = ‖y − Xβ‖² / (2n) on the training set")
        }
        ("runs", _, "loss_test") => {
            plain("‖y − Xβ‖² / (2m) on the test set")
        }
        ("runs", _, "beta") => plain("β = u ⊙ v (or u² − v²), the regression vector, one row per save (per saddle for the limit)"),
        ("runs", _, "s") => plain("the dual variable s ∈ ∂‖β‖₁ at each saddle [p+1, d]"),
        ("runs", _, "l1_norm") => plain("‖β‖₁ at each saddle"),
        ("runs", _, "support_size") => plain("number of nonzero coordinates of β at each saddle"),
        ("runs", _, "entered") => plain("coordinate that entered the support at each jump (−1: none)"),
        ("runs", _, "left") => plain("1 where a coordinate left the support at the jump [p+1, d]"),
        ("runs", _, "q") => plain("q, the mirror flow's dual state [T, d]"),
        ("runs", _, "u") => plain("u, the first diagonal weights [T, d]"),
        ("runs", _, "v") => plain("v, the second diagonal weights [T, d]"),
        ("runs", _, "conservation_error") => plain("max_i of the conserved quantity's error: |u_i² − v_i² − 2α²| (u ⊙ v) or |u_i v_i − α²| (u² − v²)"),
        ("runs", _, "conservation_error_relative") => plain("max_i of the conserved quantity's error divided by u_i² + v_i²"),
        ("runs", _, "plateau_tau") => Some((
            "τ at the midpoint of each of the limit's plateaus",
            Some("accelerated time τ = t/λ_α"),
        )),
        ("runs", _, "plateau_distance") => plain("‖β_flow(τ) − β_k‖₂ at each plateau midpoint: the flow against the limit's saddle β_k"),
        _ => None,
    }
}
