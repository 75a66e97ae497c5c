//! Gradient descent as the explicit Euler step of a vector field: y ← y + η F(y), step k at
//! t = kη. Saves at the steps nearest the requested times.

use super::{all_finite, Observer, Outcome, SolverStats, Stopped};
use crate::dynamics::VectorField;
use std::time::Instant;

/// Step indices for the save times (rounded to the nearest step, deduplicated, ascending).
pub fn save_steps(times: &[f64], step: f64, steps: usize) -> Vec<usize> {
    let mut k: Vec<usize> = times
        .iter()
        .map(|t| ((t / step).round() as usize).min(steps))
        .collect();
    k.dedup();
    k
}

/// Runs `steps` steps of size `step` from y0, calling `observe` at each step in `save_at`.
pub fn run(
    field: &dyn VectorField,
    y0: &[f64],
    step: f64,
    steps: usize,
    save_at: &[usize],
    observe: &mut Observer<'_>,
) -> Outcome {
    run_from(field, y0, None, step, steps, save_at, observe)
}

/// As `run`, from state y0 at step `resume_at` when resuming a run saved there: the same
/// arithmetic as an uninterrupted run from there on, so the result is bit-for-bit the same.
/// Saves at steps up to `resume_at` (already in the archive) are skipped.
pub(crate) fn run_from(
    field: &dyn VectorField,
    y0: &[f64],
    resume_at: Option<usize>,
    step: f64,
    steps: usize,
    save_at: &[usize],
    observe: &mut Observer<'_>,
) -> Outcome {
    let mut scratch = vec![];
    run_steps(
        &mut |y| field.euler_step(y, step, &mut scratch),
        y0,
        resume_at,
        step,
        steps,
        save_at,
        observe,
    )
}

/// As `run_from` with any step: `advance(y)` takes y to the next step, y ← y + ηv (with a
/// stochastic v for SGD).
pub(crate) fn run_steps(
    advance: &mut dyn FnMut(&mut [f64]),
    y0: &[f64],
    resume_at: Option<usize>,
    step: f64,
    steps: usize,
    save_at: &[usize],
    observe: &mut Observer<'_>,
) -> Outcome {
    let start = Instant::now();
    let mut stats = SolverStats::default();
    let mut y = y0.to_vec();
    let k0 = resume_at.unwrap_or(0);
    let mut next = save_at
        .iter()
        .skip_while(|&&k| resume_at.is_some_and(|r| k <= r))
        .peekable();
    let stop = |mut stats: SolverStats, k: usize, reason: String, source| {
        stats.wall_seconds = start.elapsed().as_secs_f64();
        Outcome {
            stats,
            stopped: Some(Stopped {
                t: k as f64 * step,
                reason,
                source,
            }),
        }
    };
    for k in k0..=steps {
        if next.peek() == Some(&&k) {
            next.next();
            if let Err(e) = observe(k as f64 * step, &y) {
                return stop(stats, k, e.to_string(), Some(e));
            }
        }
        if k == steps {
            break;
        }
        if super::stop_requested() {
            return stop(stats, k, super::INTERRUPTED.into(), None);
        }
        advance(&mut y);
        stats.rhs_evals += 1;
        stats.steps += 1;
        if !all_finite(&y) {
            return stop(
                stats,
                k + 1,
                format!(
                    "the state became non-finite at step {} (t = {}): the step size {step} is too large for this problem",
                    k + 1,
                    (k + 1) as f64 * step
                ),
                None,
            );
        }
    }
    stats.wall_seconds = start.elapsed().as_secs_f64();
    Outcome {
        stats,
        stopped: None,
    }
}
