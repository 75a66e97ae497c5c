//! The `meanfield` binary: the only place that prints.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use meanfield::archive::Existing;
use meanfield::problem::ModelKind;
use meanfield::run::{run_setup, RunOptions};
use meanfield::run_diagonal::{run_diagonal, DiagonalSetup};
use meanfield::run_linear::{run_linear, LinearSetup};
use std::path::PathBuf;
use std::process::ExitCode;

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
        /// losses | particles | kernel | spectra | beta | sweep | radii (default: the archive's main
        /// figure: sweep for sweep summaries, radii beside a radial PDE, beta for diagonal networks, spectra for linear
        /// networks, losses otherwise).
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
    let cli = Cli::parse();
    let result = match cli.command {
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
        } => match resume {
            Some(archive) => resume_run(archive, threads, quiet, verbose),
            None => {
                let opts = RunOptions {
                    out,
                    seed,
                    threads,
                    problem_file: None,
                    existing: if force {
                        Existing::Replace
                    } else {
                        Existing::Refuse
                    },
                };
                run(problem, from, opts, quiet, verbose)
            }
        },
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
        } => plot(archive, what, out, run, &size, top),
        Command::Sweep { action } => sweep(action),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// The problem text, the path its messages and relative data paths go by, and the options of a
/// repeat: from an archive's record (`--from`) or from a problem file.
fn problem_source(
    problem: Option<PathBuf>,
    from: Option<PathBuf>,
    mut opts: RunOptions,
) -> meanfield::Result<(String, PathBuf, RunOptions)> {
    use meanfield::archive::ArchiveReader;
    let Some(archive) = from else {
        let problem = problem.ok_or_else(|| {
            meanfield::Error::Usage("give a problem file or --from ARCHIVE".into())
        })?;
        opts.problem_file = Some(problem.clone());
        return Ok((read_problem(&problem)?, problem, opts));
    };
    let reader = ArchiveReader::open(&archive)?;
    let root = &reader.file;
    let missing = |what: &str| meanfield::Error::Archive {
        path: archive.clone(),
        message: format!("it records no {what}, so the run cannot be repeated from it"),
    };
    let text = ArchiveReader::str_attr(root, "problem_resolved")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("resolved problem (attribute problem_resolved)"))?;
    let seed = ArchiveReader::num_attr(root, "seed").ok_or_else(|| missing("seed"))?;
    let dir = ArchiveReader::str_attr(root, "problem_dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            archive
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_default()
        });
    drop(reader);
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    // Messages name the archive's record; relative data paths resolve against the recorded folder.
    let path = dir.join(format!("{name}#problem_resolved"));
    if opts.seed.is_none() {
        opts.seed = Some(seed as u64);
    }
    if opts.out.is_none() {
        let stem = archive
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "run".into());
        opts.out = Some(archive.with_file_name(format!("{stem}_repeat.h5")));
    }
    let same = |a: &PathBuf, b: &PathBuf| matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y);
    if opts.out.as_ref().is_some_and(|o| same(o, &archive)) {
        return Err(meanfield::Error::archive(
            &archive,
            "is the archive this run repeats: --out must name another file",
        ));
    }
    opts.problem_file = Some(path.clone());
    Ok((text, path, opts))
}

fn plot(
    archive: PathBuf,
    what: Option<String>,
    out: Option<PathBuf>,
    run: Option<String>,
    size: &str,
    top: usize,
) -> meanfield::Result<ExitCode> {
    use meanfield::plot::{plot, Figure, PlotOptions};
    let bad_size = || {
        meanfield::Error::Usage(format!(
            "--size {size}: expected WIDTHxHEIGHT, e.g. 1000x700"
        ))
    };
    let (w, h) = size.split_once('x').ok_or_else(bad_size)?;
    let size = (
        w.trim().parse().map_err(|_| bad_size())?,
        h.trim().parse().map_err(|_| bad_size())?,
    );
    let what = what.as_deref().map(Figure::parse).transpose()?;
    let opts = PlotOptions {
        what,
        run: run.as_deref(),
        size,
        top,
        ..PlotOptions::default()
    };
    // The default name needs the figure, which may come from the archive: plot to a temporary
    // name only when the user gave none is not needed, since the choice is cheap to repeat.
    let out = match out {
        Some(o) => o,
        None => {
            let figure = match what {
                Some(f) => f,
                None => Figure::default_for(&meanfield::archive::ArchiveReader::open(&archive)?),
            };
            let stem = archive
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "archive".into());
            archive.with_file_name(format!("{stem}_{}.png", figure.name()))
        }
    };
    let figure = plot(&archive, &out, &opts)?;
    eprintln!("{}: {} figure", out.display(), figure.name());
    Ok(ExitCode::SUCCESS)
}

/// `--threads`: the global pool serves both faer's GEMMs and our sweeps (0: all cores). More
/// than 8 per core only costs memory and start-up time (30 000 took minutes), so it is capped.
fn init_threads(threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cap = 8 * cores;
    let threads = if threads > cap {
        eprintln!(
            "meanfield: --threads {threads} is more than 8 per core ({cores} cores here); using {cap}"
        );
        cap
    } else {
        threads
    };
    if threads > 0 {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
    threads
}

fn resume_run(
    archive: PathBuf,
    threads: usize,
    quiet: bool,
    verbose: bool,
) -> meanfield::Result<ExitCode> {
    let threads = init_threads(threads);
    let opts = RunOptions {
        out: None,
        seed: None,
        threads,
        problem_file: None,
        existing: Existing::Replace,
    };
    let (text, problem, mut opts) = problem_source(None, Some(archive.clone()), opts)?;
    opts.out = Some(archive.clone());
    let kind = meanfield::problem::model_kind(&text, &problem)?;
    if kind != ModelKind::TwoLayer {
        // Diagonal and linear-network archives do not hold every run's full state (GD weights of
        // a linear network are not saved), so they are recomputed from their record, which gives
        // the uninterrupted run's arrays, into a side file that replaces the archive only when
        // the run is over: the old archive survives a second kill.
        let side = archive.with_extension("resume.h5");
        let opts = RunOptions {
            out: Some(side.clone()),
            ..opts
        };
        let code = run(None, Some(archive.clone()), opts, quiet, verbose)?;
        std::fs::rename(&side, &archive).map_err(|e| {
            meanfield::Error::archive(
                &archive,
                format!("replacing it with {}: {e}", side.display()),
            )
        })?;
        if !quiet {
            println!("resumed {} (recomputed from its record)", archive.display());
        }
        return Ok(code);
    }
    let parsed = meanfield::problem::Problem::parse(&text, &problem)?;
    let setup = meanfield::run::Setup::from_problem(parsed, text, &problem, &opts)?;
    let bar = progress_bar(quiet);
    if verbose {
        log_solver_events(&bar);
    }
    let report = meanfield::run::resume_setup(&setup, &archive, &mut |name, done, total| {
        bar.set_prefix(name.to_string());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        log_save(&bar, verbose, name, done, total);
    })?;
    bar.finish_and_clear();
    if !quiet {
        println!("archive {} (resumed)", report.archive.display());
        print!("{}", meanfield::report::inspect(&report.archive)?);
    }
    for r in report.runs.iter().filter(|r| !r.completed) {
        eprintln!("error: run '{}' {}", r.name, r.status);
    }
    Ok(if report.completed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// Prints an archive's tables (unless quiet) and the runs that did not complete; exit code 3
/// when any did not.
fn conclude<'a>(
    archive: &std::path::Path,
    tables: fn(&std::path::Path) -> meanfield::Result<String>,
    failed: impl Iterator<Item = (&'a str, &'a str)>,
    quiet: bool,
) -> meanfield::Result<ExitCode> {
    if !quiet {
        println!("archive {}", archive.display());
        print!("{}", tables(archive)?);
    }
    let mut complete = true;
    for (name, status) in failed {
        eprintln!("error: run '{name}' {status}");
        complete = false;
    }
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// `--verbose`: solver events on stderr, tagged with the run the bar shows, without tearing it.
fn log_solver_events(bar: &ProgressBar) {
    let bar = bar.clone();
    meanfield::integrate::log_solver_events(Box::new(move |line| {
        let run = bar.prefix();
        bar.suspend(|| log_line(format_args!("[{}] {line}", run.trim())));
    }));
}

/// `--verbose`: one line per save, written once the save is on disk.
fn log_save(bar: &ProgressBar, verbose: bool, run: &str, done: usize, total: usize) {
    if verbose {
        bar.suspend(|| log_line(format_args!("[{run}] saved {done}/{total}")));
    }
}

/// A log line on stderr. A closed stderr (a reader that went away) must not stop the run.
fn log_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn progress_bar(quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {pos}/{len} saves  {per_sec}  {elapsed_precise} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

fn run(
    problem: Option<PathBuf>,
    from: Option<PathBuf>,
    mut opts: RunOptions,
    quiet: bool,
    verbose: bool,
) -> meanfield::Result<ExitCode> {
    opts.threads = init_threads(opts.threads);
    let bar = progress_bar(quiet);
    if verbose {
        log_solver_events(&bar);
    }
    let mut current = String::new();
    let mut progress = |name: &str, done: usize, total: usize| {
        if name != current {
            current = name.to_string();
            bar.reset();
            bar.set_prefix(name.to_string());
            bar.set_length(total as u64);
        }
        bar.set_position(done as u64);
        log_save(&bar, verbose, name, done, total);
    };
    let (text, problem, opts) = problem_source(problem, from, opts)?;
    let kind = meanfield::problem::model_kind(&text, &problem)?;
    if kind == ModelKind::Linear {
        let setup = LinearSetup::from_text(text, &problem, &opts)?;
        let shared = bar.clone();
        shared.set_prefix("linear");
        let report = run_linear(&setup, &opts, &move |done, total| {
            shared.set_length(total as u64);
            shared.set_position(done as u64);
        })?;
        bar.finish_and_clear();
        let failed = report.runs.iter().filter(|r| !r.completed);
        return conclude(
            &report.archive,
            meanfield::report::linear_tables,
            failed.map(|r| (r.name.as_str(), r.status.as_str())),
            quiet,
        );
    }
    if kind == ModelKind::Diagonal {
        let setup = DiagonalSetup::from_text(text, &problem, &opts)?;
        if let Some(w) = setup.twins_warning() {
            bar.suspend(|| eprintln!("warning: {w}"));
        }
        let report = run_diagonal(&setup, &opts, &mut progress)?;
        bar.finish_and_clear();
        let failed = report.runs.iter().filter(|r| !r.completed);
        return conclude(
            &report.archive,
            meanfield::report::diagonal_tables,
            failed.map(|r| (r.name.as_str(), r.status.as_str())),
            quiet,
        );
    }
    let parsed = meanfield::problem::Problem::parse(&text, &problem)?;
    let setup = meanfield::run::Setup::from_problem(parsed, text, &problem, &opts)?;
    let report = run_setup(&setup, &opts, &mut progress)?;
    bar.finish_and_clear();
    if !quiet {
        println!("archive {}", report.archive.display());
        let l = &report.laziness;
        if l.jacobian_norm > 0.0 {
            println!(
                "laziness κ = ‖f(θ0) − y‖·‖D²f‖/‖Df‖² = {:.3e}  ({:.3e} · {:.3e} / {:.3e}²)",
                l.kappa, l.residual_norm, l.hessian_norm, l.jacobian_norm
            );
        } else {
            // e.g. every ramp neuron on a flat piece at the training inputs
            println!("laziness κ undefined: Df = 0 at the training inputs");
        }
        println!(
            "{:<16} {:<14} {:<9} {:>10} {:>12} {:>12} {:>8} {:>9} {:>8} {:>9}",
            "run",
            "kind",
            "method",
            "t_end",
            "loss_train",
            "loss_test",
            "steps",
            "rhs",
            "rejected",
            "seconds"
        );
        for r in &report.runs {
            println!(
                "{:<16} {:<14} {:<9} {:>10.4} {:>12.4e} {:>12.4e} {:>8} {:>9} {:>8} {:>9.2}",
                r.name,
                r.kind,
                r.method,
                r.t_last,
                r.loss_train,
                r.loss_test,
                r.stats.steps,
                r.stats.rhs_evals,
                r.stats.rejected_steps,
                r.stats.wall_seconds
            );
        }
    }
    for r in report.runs.iter().filter(|r| !r.completed) {
        eprintln!("error: run '{}' {}", r.name, r.status);
    }
    Ok(if report.completed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn read_problem(p: &PathBuf) -> meanfield::Result<String> {
    std::fs::read_to_string(p).map_err(|e| meanfield::Error::Problem {
        file: p.clone(),
        key: "(file)".into(),
        message: format!("cannot read: {e}"),
    })
}

/// `sweep` on a linear-network file: its [sweep] table is the (γσ², γw) phase diagram.
fn linear_sweep(
    action: SweepAction,
    problem: PathBuf,
    text: String,
) -> meanfield::Result<ExitCode> {
    use meanfield::phase;
    use meanfield::problem::LinearProblem;
    let p = LinearProblem::parse(&text, &problem)?;
    let Some(sw) = p.sweep.as_ref() else {
        return Err(meanfield::Error::Problem {
            file: problem,
            key: "sweep".into(),
            message: "expected a [sweep] table with gamma_sigma2 and gamma_w lists".into(),
        });
    };
    match action {
        SweepAction::List { .. } => {
            println!("{:>5} {:>8} {:>8} {:>6}  region", "point", "γσ²", "γw", "seed");
            for (i, (gs, gw, seed)) in phase::grid(&p, sw).into_iter().enumerate() {
                let r = phase::region(p.data.d(), p.data.rank(), gs, gw);
                println!("{i:>5} {gs:>8.3} {gw:>8.3} {seed:>6}  {}", phase::REGIONS[r]);
            }
            println!("summary archive {}", p.sweep_output().display());
            Ok(ExitCode::SUCCESS)
        }
        SweepAction::Run { quiet, .. } => {
            let bar = progress_bar(quiet);
            bar.set_style(
                ProgressStyle::with_template("phase diagram [{bar:30}] {pos}/{len} points  {per_sec}  {elapsed_precise} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            let shared = bar.clone();
            let (out, _) = phase::run_phase(&p, &text, &RunOptions::default(), &move |done, total| {
                shared.set_length(total as u64);
                shared.set_position(done as u64);
            })?;
            bar.finish_and_clear();
            if !quiet {
                println!("archive {}", out.display());
                print!("{}", phase::phase_table(&out)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        SweepAction::Collect { .. } => {
            print!("{}", phase::phase_table(&p.sweep_output())?);
            Ok(ExitCode::SUCCESS)
        }
        SweepAction::Task { .. } => Err(meanfield::Error::Usage(
            "a linear-network phase diagram runs as one job: `meanfield sweep run` (its points go in parallel and each is archived as it finishes)".into(),
        )),
    }
}

/// Each run's final test loss per point, when the tasks hold several runs (e.g. random
/// features and the neural tangent model beside the network).
fn print_run_losses(points: &[meanfield::sweep::Point]) {
    let Some(first) = points.first().filter(|p| p.run_loss_test.len() > 1) else {
        return;
    };
    println!("\nfinal test loss by run");
    print!("{:>5} {:>7} {:>6}", "task", "width", "seed");
    for (name, _) in &first.run_loss_test {
        print!(" {:>12}", name.chars().take(12).collect::<String>());
    }
    println!();
    for p in points {
        print!("{:>5} {:>7} {:>6}", p.task.index, p.task.width, p.task.seed);
        for (_, v) in &p.run_loss_test {
            print!(" {v:>12.4e}");
        }
        println!();
    }
}

/// Classification scores per point and run, on labelled data: the network's test accuracy, its
/// kernel distance, and kernel regression's test accuracy with the run's tangent kernel at
/// initialization ("lazy") and at the end ("feature"), on the ±1 target and on the classes.
fn print_class_scores(points: &[meanfield::sweep::Point]) {
    if points.iter().all(|p| p.run_scores.is_empty()) {
        return;
    }
    println!("\nclassification: test accuracy, kernel distance, kernel regression (K at init / at end; ±1 target and classes)");
    println!(
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
            println!(
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
fn print_distances(points: &[meanfield::sweep::Point]) {
    let at = points.first().map_or(&[][..], |p| &p.to_ref.t[..]);
    if points
        .iter()
        .any(|p| p.to_ref.radial_w2.iter().any(|v| !v.is_nan()))
    {
        println!("\nradial W2 between the laws of |w| of the network and of the radial PDE");
        println!(
            "{:>5} {:>7} {:>6} {:>8} {:>11}",
            "task", "width", "seed", "t", "radial_w2"
        );
        for p in points {
            for (k, t) in at.iter().enumerate() {
                println!(
                    "{:>5} {:>7} {:>6} {:>8.4} {:>11.4e}",
                    p.task.index, p.task.width, p.task.seed, t, p.to_ref.radial_w2[k]
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
    println!("\ndistances to the widest run of the same alpha and seed");
    println!(
        "{:>5} {:>7} {:>10} {:>6} {:>8} {:>11} {:>11} {:>11}  method",
        "task", "width", "alpha", "seed", "t", "risk_gap", "f_l2", "w2"
    );
    for p in points
        .iter()
        .filter(|p| p.to_ref.reference_width != p.task.width)
    {
        for (k, t) in at.iter().enumerate() {
            let r = &p.to_ref;
            println!(
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

fn sweep(action: SweepAction) -> meanfield::Result<ExitCode> {
    use meanfield::problem::Problem;
    use meanfield::sweep;
    let path = match &action {
        SweepAction::List { problem }
        | SweepAction::Task { problem, .. }
        | SweepAction::Collect { problem }
        | SweepAction::Run { problem, .. } => problem.clone(),
    };
    let text = read_problem(&path)?;
    if meanfield::problem::model_kind(&text, &path)? == ModelKind::Linear {
        return linear_sweep(action, path, text);
    }
    let load = |p: &PathBuf| -> meanfield::Result<(Problem, String)> {
        let text = std::fs::read_to_string(p).map_err(|e| meanfield::Error::Problem {
            file: p.clone(),
            key: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        if meanfield::problem::model_kind(&text, p)? != ModelKind::TwoLayer {
            return Err(meanfield::Error::Problem {
                file: p.clone(),
                key: "model.kind".into(),
                message: "sweeps run two-layer and linear-network problems; for several initialization scales of a diagonal network list them in the mirror_flow's alphas".into(),
            });
        }
        Ok((Problem::parse(&text, p)?, text))
    };
    let print_collected = |points: &[sweep::Point], fits: &[sweep::Fit]| {
        println!(
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
            println!(
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
        print_run_losses(points);
        print_class_scores(points);
        print_distances(points);
        if !fits.is_empty() {
            println!("\nlog-log slopes (95% confidence interval)");
        }
        for f in fits {
            let at = match (f.against.as_str(), f.at.is_nan()) {
                (_, true) => "all points".to_string(),
                ("alpha", _) => format!("width = {}", f.at),
                _ => format!("alpha = {}", f.at),
            };
            println!(
                "  {:<16} vs {:<6} {:<16} slope {:>7.3}  [{:.3}, {:.3}]  ({} points)",
                f.quantity, f.against, at, f.slope, f.ci_low, f.ci_high, f.points
            );
        }
    };
    match action {
        SweepAction::List { problem } => {
            let (p, _) = load(&problem)?;
            println!(
                "{:>5} {:>7} {:>10} {:>6}  archive",
                "task", "width", "alpha", "seed"
            );
            for t in sweep::tasks(&p, &problem)? {
                println!(
                    "{:>5} {:>7} {:>10.4} {:>6}  {}",
                    t.index,
                    t.width,
                    t.alpha,
                    t.seed,
                    t.archive.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SweepAction::Task {
            problem,
            index,
            threads,
        } => {
            let (p, text) = load(&problem)?;
            let ts = sweep::tasks(&p, &problem)?;
            let t = ts.get(index).ok_or_else(|| {
                meanfield::Error::Usage(format!(
                    "task index {index} is out of range: the sweep has {} tasks (0..{})",
                    ts.len(),
                    ts.len()
                ))
            })?;
            let threads = init_threads(threads);
            let r = sweep::run_task(&p, &text, &problem, t, threads)?;
            println!("task {index}: {}", r.archive.display());
            Ok(if r.completed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        SweepAction::Collect { problem } => {
            let (p, text) = load(&problem)?;
            let (points, fits) = sweep::collect(&p, &text, &problem)?;
            print_collected(&points, &fits);
            Ok(ExitCode::SUCCESS)
        }
        SweepAction::Run {
            problem,
            redo,
            quiet,
        } => {
            let (p, text) = load(&problem)?;
            let bar = progress_bar(quiet);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>14} [{bar:30}] {pos}/{len} tasks  {per_sec}  {elapsed_precise} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix("sweep");
            let shared = bar.clone();
            let reports = sweep::run_all(&p, &text, &problem, redo, &move |done, total| {
                shared.set_length(total as u64);
                shared.set_position(done as u64);
            })?;
            bar.finish_and_clear();
            let (points, fits) = sweep::collect(&p, &text, &problem)?;
            if !quiet {
                print_collected(&points, &fits);
            }
            Ok(if reports.iter().all(|r| r.completed()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
    }
}
