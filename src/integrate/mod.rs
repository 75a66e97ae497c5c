//! Integrators. They know vector fields and save times, nothing of networks.
//!
//! - `ode`: adaptive diffsol solvers (BDF, ESDIRK34, TR-BDF2, Tsit45) with the field's own
//!   assembled Jacobian for the implicit ones;
//! - `gd`: the explicit Euler step of the same field, i.e. gradient descent in mean-field time.

pub mod gd;
pub mod ode;
pub mod woodbury;

use faer::{Mat, MatMut};

/// dy/dt = F(y): the autonomous vector fields of the dynamics layer.
pub trait VectorField {
    /// Length of the state.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// out = F(y)
    fn eval(&self, y: &[f64], out: &mut [f64]);
    /// out = ∂F/∂y · v
    fn jac_mul(&self, y: &[f64], v: &[f64], out: &mut [f64]);
    /// out = ∂F/∂y, assembled (len × len).
    fn jacobian(&self, y: &[f64], out: MatMut<'_, f64>);
    /// ∂F/∂y in the structured form `LowRankJacobian`, when the field has one: the implicit
    /// solvers then solve their Newton systems by Woodbury's identity instead of a dense LU.
    fn jacobian_low_rank(&self, _y: &[f64]) -> Option<LowRankJacobian> {
        None
    }
    /// Some(b) when `jacobian_low_rank` gives the structure at every state, with blocks of b:
    /// the implicit solvers then store their Jacobian and Newton matrices block-sparse (no
    /// len × len array at all).
    fn low_rank_block(&self) -> Option<usize> {
        None
    }
    /// y ← y + h F(y), one explicit Euler (GD) step. `scratch` holds F(y) unless the field
    /// overrides this with a step taken in place (no second state-sized buffer).
    fn euler_step(&self, y: &mut [f64], h: f64, scratch: &mut Vec<f64>) {
        scratch.resize(y.len(), 0.0);
        self.eval(y, scratch);
        for (yi, vi) in y.iter_mut().zip(scratch.iter()) {
            *yi += h * vi;
        }
    }
}

/// m += blockdiag(B_1, …, B_N), the blocks b × b row-major one after the other.
pub fn add_block_diagonal(mut m: MatMut<'_, f64>, b: usize, blocks: &[f64]) {
    for (j, blk) in blocks.chunks(b * b).enumerate() {
        for p in 0..b {
            for q in 0..b {
                m[(j * b + p, j * b + q)] += blk[p * b + q];
            }
        }
    }
}

/// ∂F/∂y = blockdiag(B_1, …, B_N) − L R: square blocks of size `block` on the diagonal and a
/// rank-r coupling (L is len × r, held as its transpose `left_t` so that L's rows are contiguous
/// columns, as R's are; R is r × len). A particle flow has this form with r the number
/// of samples: J = blockdiag(B_j) − (1/(nN)) ΦᵀΦ (design.md §1).
#[derive(Debug, Clone)]
pub struct LowRankJacobian {
    pub block: usize,
    /// B_j, each block × block row-major, one after the other.
    pub blocks: Vec<f64>,
    /// Lᵀ (r × len).
    pub left_t: Mat<f64>,
    pub right: Mat<f64>,
    /// J's diagonal blocks B_j − (L R)_jj, same layout (computed once: every Newton setup reads
    /// them).
    diagonal: Vec<f64>,
}

impl LowRankJacobian {
    pub fn new(block: usize, blocks: Vec<f64>, left_t: Mat<f64>, right: Mat<f64>) -> Self {
        let mut j = LowRankJacobian {
            block,
            blocks,
            left_t,
            right,
            diagonal: vec![],
        };
        j.diagonal = j.compute_diagonal_blocks();
        j
    }

    pub fn len(&self) -> usize {
        self.right.ncols()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The block-diagonal part of J: B_j − (L R)_jj, one block at a time, row-major.
    pub fn diagonal_blocks(&self) -> &[f64] {
        &self.diagonal
    }

    fn compute_diagonal_blocks(&self) -> Vec<f64> {
        use rayon::prelude::*;
        let b = self.block;
        let mut out = self.blocks.clone();
        // Plain loops per block, blocks in parallel: thousands of tiny products.
        let (left_t, right) = (self.left_t.as_ref(), self.right.as_ref());
        out.par_chunks_mut(b * b).enumerate().for_each(|(j, blk)| {
            for p in 0..b {
                for q in 0..b {
                    let (lp, rq) = (left_t.col(j * b + p), right.col(j * b + q));
                    let lr: f64 = lp.iter().zip(rq.iter()).map(|(u, v)| u * v).sum();
                    blk[p * b + q] -= lr;
                }
            }
        });
        out
    }

    /// The whole matrix, dense (for tests and the fallback solve).
    pub fn dense(&self) -> Mat<f64> {
        let mut m = -(self.left_t.transpose() * &self.right);
        add_block_diagonal(m.as_mut(), self.block, &self.blocks);
        m
    }
}

/// ∂F/∂y assembled one column at a time from J·e_k: for small states whose field has an exact
/// J·v but no cheaper assembly.
pub fn jacobian_by_columns(field: &dyn VectorField, y: &[f64], mut out: MatMut<'_, f64>) {
    let n = field.len();
    let mut e = vec![0.0; n];
    let mut col = vec![0.0; n];
    for k in 0..n {
        e[k] = 1.0;
        field.jac_mul(y, &e, &mut col);
        e[k] = 0.0;
        for (i, c) in col.iter().enumerate() {
            out[(i, k)] = *c;
        }
    }
}

/// What an integration cost, as recorded in the archive's run attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SolverStats {
    pub steps: usize,
    pub rhs_evals: usize,
    pub jacobian_evals: usize,
    pub lu_factorizations: usize,
    pub rejected_steps: usize,
    pub wall_seconds: f64,
}

/// Called at every save time with (t, y); an error stops the integration and is passed on.
pub type Observer<'a> = dyn FnMut(f64, &[f64]) -> crate::error::Result<()> + 'a;

/// How an integration ended: its cost, and why it stopped early if it did.
#[derive(Debug)]
pub struct Outcome {
    pub stats: SolverStats,
    pub stopped: Option<Stopped>,
}

/// Why an integration ended before its last save time.
#[derive(Debug)]
pub struct Stopped {
    /// Time of the last state that was saved or reached.
    pub t: f64,
    pub reason: String,
    /// An error from the observer (archive write), passed on unchanged.
    pub source: Option<crate::error::Error>,
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks every running integration to stop at its next step (Ctrl-C, SIGTERM): it ends as a run
/// that did not complete, with every save so far kept.
pub fn request_stop() {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

pub(crate) fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether a stop was requested and not yet cleared (the CLI exits at a second signal).
pub fn stop_was_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::SeqCst)
}

/// Top-level runs under way (problems, sweeps, phase diagrams; nested ones count too).
static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Held by every top-level run for its duration. When the last one in the process ends, a stop
/// request is cleared, so a long-lived process that was interrupted can run again; a request
/// that arrives before any run starts (a signal during start-up) stays until a run ends, so
/// that run stops at its first step.
pub struct RunScope(());

impl RunScope {
    pub fn enter() -> RunScope {
        RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        RunScope(())
    }
}

impl Drop for RunScope {
    fn drop(&mut self) {
        if RUNS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            STOP.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

type EventLog = dyn Fn(&str) + Send + Sync;
static EVENT_LOG: std::sync::OnceLock<Box<EventLog>> = std::sync::OnceLock::new();

/// Sends the adaptive solvers' events (rejected steps, Newton failures, Jacobian updates, LU
/// factorizations) to `log`, one line each (`meanfield run --verbose`). Set once per process.
pub fn log_solver_events(log: Box<EventLog>) {
    let _ = EVENT_LOG.set(log);
}

pub(crate) fn logging_events() -> bool {
    EVENT_LOG.get().is_some()
}

pub(crate) fn log_event(line: &str) {
    if let Some(log) = EVENT_LOG.get() {
        log(line);
    }
}

/// The reason recorded for a run stopped by `request_stop`.
pub const INTERRUPTED: &str = "interrupted (signal); continue with meanfield run --resume";

pub(crate) fn all_finite(y: &[f64]) -> bool {
    y.iter().all(|v| v.is_finite())
}
