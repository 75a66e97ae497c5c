//! The binary's progress bar and log lines on stderr (part of the CLI, not of the library).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use meanfield::family::Monitor;
use std::sync::Mutex;

/// The progress bar on stderr: one bar per run (or sweep), restarted when the run changes.
pub struct Bar(pub ProgressBar, bool, Mutex<String>);

impl Bar {
    pub fn new(quiet: bool, verbose: bool) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if quiet {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>14} [{bar:30}] {pos}/{len}  {per_sec}  {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        if verbose {
            log_solver_events(&bar);
        }
        Bar(bar, verbose, Mutex::new(String::new()))
    }
}

impl Monitor for Bar {
    fn progress(&self, name: &str, done: usize, total: usize) {
        let bar = &self.0;
        if let Ok(mut current) = self.2.lock() {
            if *current != name {
                name.clone_into(&mut current);
                bar.reset();
                bar.set_prefix(name.to_string());
            }
        }
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        if self.1 {
            bar.suspend(|| log_line(format_args!("[{name}] saved {done}/{total}")));
        }
    }

    fn warn(&self, message: &str) {
        self.0.suspend(|| eprintln!("warning: {message}"));
    }
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
