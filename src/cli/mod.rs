//! The binary's progress bar and log lines on stderr (part of the CLI, not of the library).

pub mod args;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use meanfield::family::Monitor;
use std::sync::Mutex;

/// The progress bar on stderr: one bar per run (or sweep), restarted when the run changes.
pub struct Bar {
    pub bar: ProgressBar,
    verbose: bool,
    quiet: bool,
    /// The run the bar shows (empty before the first progress).
    current: Mutex<String>,
}

impl Bar {
    pub fn new(quiet: bool, verbose: bool) -> Bar {
        // Hidden until the first progress: no "0/0" before a run knows its length.
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>14} [{bar:30}] {pos}/{len}  {rate}  {msg}  {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", three_figures(s.per_sec()));
            })
            .progress_chars("=> "),
        );
        if verbose {
            log_solver_events(&bar);
        }
        Bar {
            bar,
            verbose,
            quiet,
            current: Mutex::new(String::new()),
        }
    }
}

impl Monitor for Bar {
    fn progress(&self, name: &str, done: usize, total: usize, loss: Option<f64>) {
        let bar = &self.bar;
        if let Ok(mut current) = self.current.lock() {
            if current.is_empty() && !self.quiet {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
            if *current != name {
                name.clone_into(&mut current);
                bar.reset();
                bar.set_prefix(name.to_string());
            }
        }
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        // The table's number format (meanfield::report::sci), so the bar and the table agree.
        bar.set_message(match loss {
            Some(l) => format!("loss {}", meanfield::report::sci(l)),
            None => String::new(),
        });
        if self.verbose {
            bar.suspend(|| log_line(format_args!("[{name}] saved {done}/{total}")));
        }
    }

    fn warn(&self, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {message}"));
    }
}

/// A rate to three significant figures (12.3, 0.0456, 1230), not indicatif's raw float.
fn three_figures(v: f64) -> String {
    if !v.is_finite() || v <= 0.0 {
        return "-".into();
    }
    meanfield::report::fixed(v, 3)
}

/// `--verbose`: solver events on stderr, tagged with the run the bar shows, without tearing it.
fn log_solver_events(bar: &ProgressBar) {
    let bar = bar.clone();
    meanfield::integrate::log_solver_events(Box::new(move |line| {
        let run = bar.prefix();
        bar.suspend(|| log_line(format_args!("[{}] {line}", run.trim())));
    }));
}

/// A log line on stderr. A closed stderr (a reader that went away) must not stop the run.
fn log_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
