//! The text tables of a two-layer run and of a sweep, as the CLI prints them.

use super::run::RunReport;
use super::sweep::{Fit, Point, Task};
use std::fmt::Write;

macro_rules! out {
    ($s:expr, $($a:tt)*) => {
        let _ = write!($s, $($a)*);
    };
}
macro_rules! outln {
    ($s:expr) => {
        let _ = writeln!($s);
    };
    ($s:expr, $($a:tt)*) => {
        let _ = writeln!($s, $($a)*);
    };
}

/// The collected sweep: one row per task, then the per-run tables and the log-log fits.
pub fn collected(points: &[Point], fits: &[Fit]) -> String {
    let mut text = String::new();
    let s = &mut text;
    outln!(
        s,
        "{:>5} {:>7} {:>10} {:>6} {:>11} {:>11} {:>11} {:>11} {:>9} {:>9}  status",
        "task",
        "width",
        "alpha",
        "seed",
        "f_gap",
        "w_dist",
        "loss_train",
        "loss_test",
        "kernel",
        "ntk_error"
    );
    for p in points {
        outln!(s,
            "{:>5} {:>7} {:>10.4} {:>6} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>9.3e} {:>9.3e}  {}",
            p.task.index,
            p.task.width,
            p.task.alpha,
            p.task.seed,
            p.f_gap,
            p.w_dist,
            p.loss_train,
            p.loss_test,
            p.kernel_distance,
            p.ntk_error,
            p.status
        );
    }
    run_losses(s, points);
    class_scores(s, points);
    distances(s, points);
    if !fits.is_empty() {
        outln!(s, "\nlog-log slopes (95% confidence interval)");
    }
    for f in fits {
        let at = match (f.against.as_str(), f.at.is_nan()) {
            (_, true) => "all points".to_string(),
            ("alpha", _) => format!("width = {}", f.at),
            _ => format!("alpha = {}", f.at),
        };
        outln!(
            s,
            "  {:<16} vs {:<6} {:<16} slope {:>7.3}  [{:.3}, {:.3}]  ({} points)",
            f.quantity,
            f.against,
            at,
            f.slope,
            f.ci_low,
            f.ci_high,
            f.points
        );
    }
    text
}

/// Each run's final test loss per point, when the tasks hold several runs (e.g. random
/// features and the neural tangent model beside the network).
fn run_losses(s: &mut String, points: &[Point]) {
    let Some(first) = points.first().filter(|p| p.run_loss_test.len() > 1) else {
        return;
    };
    outln!(s, "\nfinal test loss by run");
    out!(s, "{:>5} {:>7} {:>6}", "task", "width", "seed");
    for (name, _) in &first.run_loss_test {
        out!(s, " {:>12}", name.chars().take(12).collect::<String>());
    }
    outln!(s);
    for p in points {
        out!(
            s,
            "{:>5} {:>7} {:>6}",
            p.task.index,
            p.task.width,
            p.task.seed
        );
        for (_, v) in &p.run_loss_test {
            out!(s, " {v:>12.4e}");
        }
        outln!(s);
    }
}

/// Classification scores per point and run, on labelled data: the network's test accuracy, its
/// kernel distance, and kernel regression's test accuracy with the run's tangent kernel at
/// initialization ("lazy") and at the end ("feature"), on the ±1 target and on the classes.
fn class_scores(s: &mut String, points: &[Point]) {
    if points.iter().all(|p| p.run_scores.is_empty()) {
        return;
    }
    outln!(s, "\nclassification: test accuracy, kernel distance, kernel regression (K at init / at end; ±1 target and classes)");
    outln!(
        s,
        "{:>5} {:>7} {:>10} {:>6} {:<14} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "task",
        "width",
        "alpha",
        "seed",
        "run",
        "acc",
        "kernel",
        "kr_init",
        "kr_end",
        "kc_init",
        "kc_end"
    );
    for p in points {
        for (name, v) in &p.run_scores {
            outln!(s,
                "{:>5} {:>7} {:>10.4} {:>6} {:<14} {:>8.4} {:>10.3e} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
                p.task.index,
                p.task.width,
                p.task.alpha,
                p.task.seed,
                name.chars().take(14).collect::<String>(),
                v[0],
                v[1],
                v[2],
                v[3],
                v[4],
                v[5]
            );
        }
    }
}

/// The sweep's distances to each point's reference (the widest run of its α and seed).
fn distances(s: &mut String, points: &[Point]) {
    let at = points.first().map_or(&[][..], |p| &p.to_ref.t[..]);
    if points
        .iter()
        .any(|p| p.to_ref.radial_w2.iter().any(|v| !v.is_nan()))
    {
        outln!(
            s,
            "\nradial W2 between the laws of |w| of the network and of the radial PDE"
        );
        outln!(
            s,
            "{:>5} {:>7} {:>6} {:>8} {:>11}",
            "task",
            "width",
            "seed",
            "t",
            "radial_w2"
        );
        for p in points {
            for (k, t) in at.iter().enumerate() {
                outln!(
                    s,
                    "{:>5} {:>7} {:>6} {:>8.4} {:>11.4e}",
                    p.task.index,
                    p.task.width,
                    p.task.seed,
                    t,
                    p.to_ref.radial_w2[k]
                );
            }
        }
    }
    if points
        .iter()
        .all(|p| p.to_ref.f_l2.iter().all(|v| v.is_nan()))
    {
        return;
    }
    outln!(
        s,
        "\ndistances to the widest run of the same alpha and seed"
    );
    outln!(
        s,
        "{:>5} {:>7} {:>10} {:>6} {:>8} {:>11} {:>11} {:>11}  method",
        "task",
        "width",
        "alpha",
        "seed",
        "t",
        "risk_gap",
        "f_l2",
        "w2"
    );
    for p in points
        .iter()
        .filter(|p| p.to_ref.reference_width != p.task.width)
    {
        for (k, t) in at.iter().enumerate() {
            let r = &p.to_ref;
            outln!(
                s,
                "{:>5} {:>7} {:>10.4} {:>6} {:>8.4} {:>11.4e} {:>11.4e} {:>11.4e}  {}",
                p.task.index,
                p.task.width,
                p.task.alpha,
                p.task.seed,
                t,
                r.risk_gap[k],
                r.f_l2[k],
                r.w2[k],
                if r.w2.iter().all(|v| v.is_nan()) {
                    "-"
                } else if r.w2_exact {
                    "exact"
                } else {
                    "sliced"
                }
            );
        }
    }
}

/// After a run: the archive, the laziness ratio at θ₀, and one row per dynamics.
pub(crate) fn run_summary(report: &RunReport) -> String {
    let mut text = String::new();
    let s = &mut text;
    outln!(s, "archive {}", report.archive.display());
    let l = &report.laziness;
    if l.jacobian_norm > 0.0 {
        outln!(
            s,
            "laziness κ = ‖f(θ0) − y‖·‖D²f‖/‖Df‖² = {:.3e}  ({:.3e} · {:.3e} / {:.3e}²)",
            l.kappa,
            l.residual_norm,
            l.hessian_norm,
            l.jacobian_norm
        );
    } else {
        // e.g. every ramp neuron on a flat piece at the training inputs
        outln!(s, "laziness κ undefined: Df = 0 at the training inputs");
    }
    // The name column fits the longest run name, so long names do not shift the others.
    let w = report
        .runs
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    outln!(
        s,
        "{:<w$} {:<14} {:<9} {:>10} {:>12} {:>12} {:>8} {:>9} {:>8} {:>9}",
        "run",
        "kind",
        "method",
        "t_last",
        "loss_train",
        "loss_test",
        "steps",
        "rhs",
        "rejected",
        "seconds"
    );
    for r in &report.runs {
        outln!(
            s,
            "{:<w$} {:<14} {:<9} {:>10} {:>12} {:>12} {:>8} {:>9} {:>8} {:>9.2}",
            r.name,
            r.kind,
            r.method,
            crate::report::time(r.t_last),
            crate::report::sci(r.loss_train),
            crate::report::sci(r.loss_test),
            r.stats.steps,
            r.stats.rhs_evals,
            r.stats.rejected_steps,
            r.stats.wall_seconds
        );
    }
    text
}

/// `sweep list`: index, width, α, seed and archive of every task.
pub fn tasks(tasks: &[Task]) -> String {
    let mut text = String::new();
    let s = &mut text;
    outln!(
        s,
        "{:>5} {:>7} {:>10} {:>6}  archive",
        "task",
        "width",
        "alpha",
        "seed"
    );
    for t in tasks {
        outln!(
            s,
            "{:>5} {:>7} {:>10.4} {:>6}  {}",
            t.index,
            t.width,
            t.alpha,
            t.seed,
            t.archive.display()
        );
    }
    text
}
