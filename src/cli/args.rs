//! The command line, as clap reads it (part of the binary, not of the library).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "meanfield",
    version,
    about = "Training dynamics of two-layer networks and their infinite-width limits"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// losses | particles | kernel | spectra | beta | sweep | radii | models | density | phase
        /// (default: the archive's main figure: sweep for sweep summaries, density beside an
        /// energy's PDE, radii beside a radial PDE, beta for diagonal networks, spectra for
        /// linear networks, phase for a phase diagram, losses otherwise).
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
    /// Print the problem's formulas and what is derived from them: σ, σ′, σ″, ℓ, ℓ_f, ℓ_ff, the
    /// particle velocity and the Jacobian blocks (an energy's V, W and their derivatives).
    Derive {
        problem: PathBuf,
        /// As LaTeX (an aligned block).
        #[arg(long)]
        latex: bool,
    },
    /// Write every 1-D series of every run as CSV with a header: DIR/<run>.csv.
    Export {
        archive: PathBuf,
        /// The folder the CSV files go in (made if missing).
        #[arg(long)]
        csv: PathBuf,
    },
    /// Studies over widths, output scales and seeds (a problem's [sweep] table).
    Sweep {
        #[command(subcommand)]
        action: SweepAction,
    },
}

#[derive(Subcommand)]
pub enum SweepAction {
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
