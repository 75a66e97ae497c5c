//! Integrators. They know vector fields and save times, nothing of networks.
//!
//! - `ode`: adaptive diffsol solvers (BDF, ESDIRK34, TR-BDF2, Tsit45) with the field's own
//!   assembled Jacobian for the implicit ones;
//! - `gd`: the explicit Euler step of the same field, i.e. gradient descent in mean-field time.

pub mod gd;
pub mod ode;
pub mod woodbury;

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
pub(crate) type Observer<'a> = dyn FnMut(f64, &[f64]) -> crate::error::Result<()> + 'a;

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
pub(crate) struct RunScope(());

impl RunScope {
    pub(crate) fn enter() -> RunScope {
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
pub(crate) const INTERRUPTED: &str = "interrupted (signal); continue with meanfield run --resume";

pub(crate) fn all_finite(y: &[f64]) -> bool {
    y.iter().all(|v| v.is_finite())
}
