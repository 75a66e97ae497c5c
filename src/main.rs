//! The `meanfield` binary: argument parsing and printing only. What a command does lives in the
//! library (`meanfield::family` runs, resumes and sweeps problems; `meanfield::report` draws).

use clap::Parser;
use meanfield::archive::Existing;
use meanfield::family::{self, Finished, RunOptions, SweepAction as Action};
use std::process::ExitCode;

mod cli;
use cli::args::{Cli, Command, SweepAction};
use cli::Bar;

fn main() -> ExitCode {
    // Ctrl-C and SIGTERM stop every integration at its next step; the runs end as not completed
    // with their saves kept, and --resume continues them. A request during start-up stops the
    // first step; a second one exits at once (archives stay readable, as after a kill).
    let _ = ctrlc::set_handler(|| {
        if meanfield::integrate::stop_was_requested() {
            eprintln!("meanfield: stopped by a second signal");
            std::process::exit(3);
        }
        meanfield::integrate::request_stop();
    });
    let result = match Cli::parse().command {
        Command::Run {
            problem,
            from,
            resume,
            out,
            seed,
            threads,
            force,
            quiet,
            verbose,
        } => {
            let threads = init_threads(threads);
            let bar = Bar::new(quiet, verbose);
            let done = match resume {
                Some(archive) => family::resume(&archive, threads, &bar),
                None => {
                    let existing = if force {
                        Existing::Replace
                    } else {
                        Existing::Refuse
                    };
                    let opts = RunOptions {
                        out,
                        seed,
                        threads,
                        existing,
                        ..RunOptions::default()
                    };
                    family::run(problem.as_deref(), from.as_deref(), opts, &bar)
                }
            };
            bar.bar.finish_and_clear();
            done.map(|done| conclude(&done, quiet))
        }
        Command::Inspect { archive } => meanfield::report::inspect(&archive).map(|s| {
            print!("{s}");
            ExitCode::SUCCESS
        }),
        Command::Plot {
            archive,
            what,
            out,
            run,
            size,
            top,
        } => {
            let opts = (what.as_deref(), run.as_deref(), size.as_str(), top);
            meanfield::family::plot(&archive, out, opts).map(|(out, figure)| {
                eprintln!("{}: {} figure", out.display(), figure.name());
                ExitCode::SUCCESS
            })
        }
        Command::Derive { problem, latex } => meanfield::family::derive(&problem, latex).map(|s| {
            print!("{s}");
            ExitCode::SUCCESS
        }),
        Command::Export { archive, csv } => {
            meanfield::report::export::csv(&archive, &csv).map(|files| {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            })
        }
        Command::Sweep { action } => {
            let (problem, action, quiet) = match action {
                SweepAction::List { problem } => (problem, Action::List, false),
                SweepAction::Task {
                    problem,
                    index,
                    threads,
                } => {
                    let threads = init_threads(threads);
                    (problem, Action::Task { index, threads }, false)
                }
                SweepAction::Collect { problem } => (problem, Action::Collect, false),
                SweepAction::Run {
                    problem,
                    redo,
                    quiet,
                } => (problem, Action::Run { redo }, quiet),
            };
            let bar = Bar::new(quiet, false);
            let done = family::sweep(&problem, action, &bar);
            bar.bar.finish_and_clear();
            done.map(|d| {
                if !quiet {
                    print!("{}", d.output);
                }
                exit(d.completed)
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// Prints a run's tables (unless quiet) and the runs that did not complete; exit code 3 when
/// any did not.
fn conclude(done: &Finished, quiet: bool) -> ExitCode {
    if !quiet {
        print!("{}", done.summary);
    }
    for (name, status) in &done.failed {
        eprintln!("error: run '{name}' {status}");
    }
    exit(done.completed())
}

/// `--threads`: the global pool's size, warning when the library caps it.
fn init_threads(threads: usize) -> usize {
    let (threads, warning) = meanfield::family::init_threads(threads);
    if let Some(w) = warning {
        eprintln!("meanfield: {w}");
    }
    threads
}

fn exit(completed: bool) -> ExitCode {
    if completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}
