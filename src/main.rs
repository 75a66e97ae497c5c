//! The `meanfield` binary: argument parsing and printing only. What a command does lives in the
//! library (`meanfield::family` runs, resumes and sweeps problems; `meanfield::report` draws).

use clap::{Parser, Subcommand};
use meanfield::archive::Existing;
use meanfield::family::{self, Finished, RunOptions, SweepAction as Action};
use std::path::PathBuf;
use std::process::ExitCode;

mod cli;
use cli::Bar;

#[derive(Parser)]
#[command(
    name = "meanfield",
    version,
    about = "Training dynamics of two-layer networks and their infinite-width limits"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Integrate every dynamics a problem file lists, from the same particles, into one archive.
    Run {
        /// The problem file (TOML).
        #[arg(required_unless_present_any = ["from", "resume"])]
        problem: Option<PathBuf>,
        /// Repeat the run recorded in an archive (its resolved problem and seed; relative data
        /// paths from the recorded problem folder). Default output: <archive stem>_repeat.h5.
        #[arg(long, conflicts_with = "problem")]
        from: Option<PathBuf>,
        /// Continue an archive whose run did not complete (killed, interrupted): completed runs
        /// stay, gd/gradient_flow/linearized runs continue from their last save, others restart.
        #[arg(long, conflicts_with_all = ["problem", "from", "out", "seed"])]
        resume: Option<PathBuf>,
        /// Archive path (default: the problem's `output`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seed (default: the problem's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Worker threads (default: all cores; at most 8 per core). Results do not depend on it.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Replace an archive already at the output path (never an input of the run, nor an
        /// archive another run is writing).
        #[arg(long, conflicts_with = "resume")]
        force: bool,
        /// No progress bar and no summary.
        #[arg(long, short)]
        quiet: bool,
        /// Log the adaptive solvers' events to stderr: rejected steps, Newton failures,
        /// Jacobian updates, LU factorizations (with t and the step size h), and each save.
        #[arg(long, short, conflicts_with = "quiet")]
        verbose: bool,
    },
    /// Summarize an archive: datasets, final losses, solver statistics.
    Inspect { archive: PathBuf },
    /// Draw a figure of an archive into a PNG or SVG file.
    Plot {
        archive: PathBuf,
        /// losses | particles | kernel | spectra | beta | sweep | radii | models (default: the
        /// archive's main figure: sweep for sweep summaries, radii beside a radial PDE, beta for
        /// diagonal networks, spectra for linear networks, losses otherwise).
        #[arg(long)]
        what: Option<String>,
        /// Output file, .png or .svg (default: <archive stem>_<figure>.png beside the archive).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Only this run.
        #[arg(long)]
        run: Option<String>,
        /// Image size in pixels, WIDTHxHEIGHT.
        #[arg(long, default_value = "1000x700")]
        size: String,
        /// Singular values drawn per run (spectra).
        #[arg(long, default_value_t = 20)]
        top: usize,
    },
    /// Studies over widths, output scales and seeds (a problem's [sweep] table).
    Sweep {
        #[command(subcommand)]
        action: SweepAction,
    },
}

#[derive(Subcommand)]
enum SweepAction {
    /// List the tasks: index, width, α, seed, archive.
    List { problem: PathBuf },
    /// Run one task by index into its own archive (for a cluster job array).
    Task {
        problem: PathBuf,
        index: usize,
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Summarize finished task archives into the summary archive and print the table and fits.
    Collect { problem: PathBuf },
    /// Run every task in parallel, then collect. Tasks whose archives completed from the same
    /// problem file are kept.
    Run {
        problem: PathBuf,
        /// Run every task again, completed ones too.
        #[arg(long)]
        redo: bool,
        /// No progress bar and no table.
        #[arg(long, short)]
        quiet: bool,
    },
}

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
            meanfield::report::plot::plot_command(&archive, out, opts).map(|(out, figure)| {
                eprintln!("{}: {} figure", out.display(), figure.name());
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
