//! Model families and the one pipeline that runs them.
//!
//! A family (two-layer network, diagonal linear network, shallow linear network, …) lives in one
//! folder with one `Study`: how its problem files are checked, run, resumed and swept. `REGISTRY`
//! lists the families; a problem's `[model] kind` picks one, here and nowhere else. The CLI only
//! parses arguments, calls `run`, `resume` or `sweep` below, and prints what they return.

pub mod diagonal;
pub mod energy;
pub mod linear;
pub mod two_layer;

use crate::archive::ArchiveReader;
use crate::error::{Error, Result};
use crate::integrate::SolverStats;
use crate::report::plot::{self, chart::Chart, Figure, PlotOptions};
use std::path::{Path, PathBuf};

/// The model families, by their `[model] kind` spelling; the first is the default when a problem
/// names none. A new family is one folder and one line here.
pub static REGISTRY: &[&dyn Study] = &[
    &two_layer::TwoLayerStudy,
    &diagonal::DiagonalStudy,
    &linear::LinearStudy,
    &energy::EnergyStudy,
];

/// How a model family is run: the one axis along which `run`, `resume` and `sweep` vary.
pub trait Study: Sync {
    /// The `[model] kind` this family answers to.
    fn kind(&self) -> &'static str;
    /// Parses and validates a problem of this family, without building or running anything.
    fn check(&self, src: &Source) -> Result<()>;
    /// Integrates every dynamics the problem lists into one archive.
    fn run(&self, src: &Source, opts: &RunOptions, monitor: &dyn Monitor) -> Result<Finished>;
    /// Continues `archive`, whose recorded problem is `src`. The default recomputes the whole
    /// record into a side file that replaces the archive only when the run is over, so that the
    /// old archive survives a second kill: right for families whose archives do not hold every
    /// run's full state, and exact, since a run from its record repeats the uninterrupted arrays.
    fn resume(
        &self,
        src: &Source,
        archive: &Path,
        opts: &RunOptions,
        monitor: &dyn Monitor,
    ) -> Result<Finished> {
        let side = archive.with_extension("resume.h5");
        let opts = RunOptions {
            out: Some(side.clone()),
            existing: crate::archive::Existing::Replace,
            ..opts.clone()
        };
        let mut done = self.run(src, &opts, monitor)?;
        std::fs::rename(&side, archive).map_err(|e| {
            Error::archive(
                archive,
                format!("replacing it with {}: {e}", side.display()),
            )
        })?;
        done.archive = archive.to_path_buf();
        done.summary = format!(
            "{}resumed {} (recomputed from its record)\n",
            done.summary
                .replace(&side.display().to_string(), &archive.display().to_string()),
            archive.display()
        );
        Ok(done)
    }
    /// A `[sweep]` study of this family's problems.
    fn sweep(&self, src: &Source, action: SweepAction, monitor: &dyn Monitor) -> Result<SweepDone> {
        let _ = (action, monitor);
        Err(Error::Problem {
            file: src.path.clone(),
            key: "sweep".into(),
            message: format!(
                "model.kind = \"{}\" has no sweeps; sweeps run {}",
                self.kind(),
                kinds(REGISTRY.iter().filter(|s| s.sweeps()))
            ),
        })
    }
    /// Whether `sweep` is implemented.
    fn sweeps(&self) -> bool {
        false
    }
    /// `meanfield derive`: the formulas of the problem and what the numerics derive from them,
    /// as text or LaTeX.
    fn derive(&self, src: &Source, latex: bool) -> Result<String> {
        let _ = latex;
        Err(Error::Problem {
            file: src.path.clone(),
            key: "model.kind".into(),
            message: format!(
                "\"{}\" states no formulas to derive; derive covers {}",
                self.kind(),
                kinds(REGISTRY.iter().filter(|s| s.derives()))
            ),
        })
    }
    /// Whether `derive` is implemented.
    fn derives(&self) -> bool {
        false
    }
    /// The figure that says most about an archive of this family (`plot` without `--what`).
    fn default_figure(&self, archive: &ArchiveReader) -> Figure {
        let _ = archive;
        Figure::Losses
    }
    /// Draws a figure of an archive of this family; the default draws the shared ones.
    fn draw(&self, what: Figure, archive: &ArchiveReader, opts: &PlotOptions<'_>) -> Result<Chart> {
        plot::draw(what, archive, opts)
    }
}

/// Where a run's progress and warnings go: the CLI draws a bar, tests use `Quiet`.
pub trait Monitor: Sync {
    /// `done` of `total` saves (or sweep tasks, or phase points) of `name` are on disk; `loss`
    /// is the training loss at the last save, where a run has one.
    fn progress(&self, name: &str, done: usize, total: usize, loss: Option<f64>);
    /// Something to know before the numbers come (e.g. twin data columns).
    fn warn(&self, message: &str);
}

/// A monitor that shows nothing.
pub struct Quiet;

impl Monitor for Quiet {
    fn progress(&self, _: &str, _: usize, _: usize, _: Option<f64>) {}
    fn warn(&self, _: &str) {}
}

/// A problem's text and the path its messages and relative data paths go by.
#[derive(Debug, Clone)]
pub struct Source {
    pub text: String,
    pub path: PathBuf,
}

impl Source {
    /// Reads a problem file.
    pub fn read(path: &Path) -> Result<Source> {
        Ok(Source {
            text: crate::problem::read_text(path)?,
            path: path.to_path_buf(),
        })
    }

    /// The problem an archive records (`run --from`, `run --resume`), with its seed and, unless
    /// given, an output beside it (`<stem>_repeat.h5`). Messages and the new archive's
    /// `problem_file` name the record (`ARCHIVE#problem_resolved`); relative data paths resolve
    /// against the recorded problem folder (`problem_dir`).
    pub fn recorded(archive: &Path, opts: &mut RunOptions) -> Result<Source> {
        let reader = ArchiveReader::open(archive)?;
        let root = &reader.file;
        let missing = |what: &str| {
            Error::archive(
                archive,
                format!("it records no {what}, so the run cannot be repeated from it"),
            )
        };
        let text = ArchiveReader::str_attr(root, "problem_resolved")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| missing("resolved problem (attribute problem_resolved)"))?;
        let seed = ArchiveReader::seed(root).ok_or_else(|| missing("seed"))?;
        let dir = ArchiveReader::str_attr(root, "problem_dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| archive.parent().map(Path::to_path_buf).unwrap_or_default());
        drop(reader);
        let name = archive
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        // The record's true place; data paths resolve against the recorded problem folder.
        let path = archive.with_file_name(format!("{name}#problem_resolved"));
        opts.data_dir = Some(dir);
        opts.seed.get_or_insert(seed);
        if opts.out.is_none() {
            let stem = archive
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "run".into());
            opts.out = Some(archive.with_file_name(format!("{stem}_repeat.h5")));
        }
        let same = |a: &Path, b: &Path| matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y);
        if opts.out.as_deref().is_some_and(|o| same(o, archive)) {
            return Err(Error::archive(
                archive,
                "is the archive this run repeats: --out must name another file",
            ));
        }
        opts.problem_file = Some(path.clone());
        Ok(Source { text, path })
    }
}

/// The family a problem describes: its `[model] kind`, the registry's first when absent.
pub fn study_for(src: &Source) -> Result<&'static dyn Study> {
    // A text that does not parse is reported by the family's own parser, with line and key.
    let kind = src
        .text
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("model").and_then(|m| m.get("kind")).cloned());
    match kind {
        None => Ok(REGISTRY[0]),
        Some(toml::Value::String(k)) if REGISTRY.iter().any(|s| s.kind() == k) => {
            Ok(*REGISTRY.iter().find(|s| s.kind() == k).expect("just found"))
        }
        Some(v) => Err(Error::Problem {
            file: src.path.clone(),
            key: "model.kind".into(),
            message: format!("expected {}, got {v}", kinds(REGISTRY.iter())),
        }),
    }
}

/// "a", "b" or "c"
fn kinds<'a>(studies: impl Iterator<Item = &'a &'static dyn Study>) -> String {
    let names: Vec<String> = studies.map(|s| format!("\"{}\"", s.kind())).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// `meanfield run`: a problem file, or the problem an archive records (`--from`).
pub fn run(
    problem: Option<&Path>,
    from: Option<&Path>,
    mut opts: RunOptions,
    monitor: &dyn Monitor,
) -> Result<Finished> {
    let src = match (problem, from) {
        (_, Some(archive)) => Source::recorded(archive, &mut opts)?,
        (Some(p), None) => {
            opts.problem_file = Some(p.to_path_buf());
            Source::read(p)?
        }
        (None, None) => return Err(Error::Usage("give a problem file or --from ARCHIVE".into())),
    };
    study_for(&src)?.run(&src, &opts, monitor)
}

/// `meanfield run --resume`: continues an archive whose run did not complete, in place.
pub fn resume(archive: &Path, threads: usize, monitor: &dyn Monitor) -> Result<Finished> {
    let mut opts = RunOptions {
        threads,
        existing: crate::archive::Existing::Replace,
        ..RunOptions::default()
    };
    let a = ArchiveReader::open(archive)?;
    let attr = |k: &str| ArchiveReader::str_attr(&a.file, k).unwrap_or_default();
    let (status, kind) = (attr("status"), attr("kind"));
    if status == "completed" {
        // Left as it is: not even its status is rewritten.
        return Ok(Finished {
            archive: archive.to_path_buf(),
            failed: vec![],
            summary: format!(
                "{}: every run completed; nothing to resume\n",
                archive.display()
            ),
        });
    }
    // A sweep's archive (a two-layer sweep's summary, an energy sweep, a phase diagram) is not
    // continued run by run: its sweep is run again.
    if ["sweep", "energy_sweep", "phase_diagram"].contains(&kind.as_str()) {
        let problem = attr("problem_file");
        return Err(Error::Usage(format!(
            "{} is a sweep's archive, which --resume does not continue: run the sweep again \
             with `meanfield sweep run {}`",
            archive.display(),
            if problem.is_empty() {
                "PROBLEM"
            } else {
                &problem
            }
        )));
    }
    drop(a);
    let src = Source::recorded(archive, &mut opts)?;
    opts.out = Some(archive.to_path_buf());
    study_for(&src)?.resume(&src, archive, &opts, monitor)
}

/// `meanfield sweep`: a problem's `[sweep]` table.
pub fn sweep(problem: &Path, action: SweepAction, monitor: &dyn Monitor) -> Result<SweepDone> {
    let src = Source::read(problem)?;
    study_for(&src)?.sweep(&src, action, monitor)
}

/// Sizes the global thread pool, which serves faer's GEMMs, our sweeps and the sweep tasks
/// (0: all cores). More than 8 threads per core only cost memory and start-up time (30 000 took
/// minutes), so they are capped, with a warning. Returns the count and the warning.
pub fn init_threads(threads: usize) -> (usize, Option<String>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cap = 8 * cores;
    let (threads, warning) = if threads > cap {
        let w = format!(
            "--threads {threads} is more than 8 per core ({cores} cores here); using {cap}"
        );
        (cap, Some(w))
    } else {
        (threads, None)
    };
    if threads > 0 {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
    (threads, warning)
}

/// What a finished `run` or `resume` leaves for the CLI.
#[derive(Debug, Clone)]
pub struct Finished {
    pub archive: PathBuf,
    /// The runs that did not complete, with why.
    pub failed: Vec<(String, String)>,
    /// The tables a non-quiet run prints.
    pub summary: String,
}

impl Finished {
    /// From the runs of an archive: those that did not complete are the failures.
    pub(crate) fn from_runs(archive: PathBuf, runs: &[RunSummary], summary: String) -> Finished {
        Finished {
            archive,
            failed: runs
                .iter()
                .filter(|r| !r.completed)
                .map(|r| (r.name.clone(), r.status.clone()))
                .collect(),
            summary,
        }
    }

    pub fn completed(&self) -> bool {
        self.failed.is_empty()
    }
}

/// The `sweep` subcommands.
#[derive(Debug, Clone, Copy)]
pub enum SweepAction {
    /// List the tasks.
    List,
    /// Run one task by index into its own archive (for a cluster job array).
    Task { index: usize, threads: usize },
    /// Summarize the finished tasks.
    Collect,
    /// Run every task (completed ones too with `redo`), then collect.
    Run { redo: bool },
}

/// What a sweep action leaves for the CLI.
#[derive(Debug, Clone)]
pub struct SweepDone {
    /// The table or listing to print.
    pub output: String,
    /// Whether every task it ran completed.
    pub completed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the problem's `output`.
    pub out: Option<PathBuf>,
    /// Overrides the problem's `seed`.
    pub seed: Option<u64>,
    /// Threads for GEMMs and elementwise sweeps (0: all cores). Results do not depend on it.
    pub threads: usize,
    /// The problem file the run comes from (recorded in the archive): a file, or the record
    /// `ARCHIVE#problem_resolved` of a repeated run.
    pub problem_file: Option<PathBuf>,
    /// The folder relative data paths resolve against, when it is not the problem file's (a
    /// repeated run: the folder of the problem the first run came from).
    pub data_dir: Option<PathBuf>,
    /// What to do with an archive already at the output path (`--force`: replace it).
    pub existing: crate::archive::Existing,
}

/// What one dynamics ended with, for the CLI's summary.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub name: String,
    pub kind: String,
    pub method: String,
    pub status: String,
    pub completed: bool,
    pub t_last: f64,
    pub loss_train: f64,
    pub loss_test: f64,
    pub stats: SolverStats,
}

impl RunOptions {
    /// The archive path: `--out` when given, else the problem's `output`.
    pub(crate) fn archive_path(&self, output: &Path) -> PathBuf {
        self.out.clone().unwrap_or_else(|| output.to_path_buf())
    }

    /// The folder relative data paths resolve against: `data_dir`, else the folder of `path`
    /// (the problem file).
    pub(crate) fn data_dir<'a>(&'a self, path: &'a Path) -> &'a Path {
        self.data_dir
            .as_deref()
            .or_else(|| path.parent())
            .unwrap_or(Path::new("."))
    }

    /// What a run's archive records of these options and of its problem (`text`, its
    /// `resolved` form, the seed): α and N default to none, for the caller to set.
    pub(crate) fn provenance<'a>(
        &'a self,
        text: &'a str,
        resolved: &'a str,
        seed: u64,
        describe: crate::archive::catalog::Describe,
    ) -> crate::archive::Provenance<'a> {
        crate::archive::Provenance {
            problem: text,
            problem_resolved: resolved,
            seed,
            threads: self.thread_count(),
            problem_file: self.problem_file.as_deref(),
            problem_dir: self.data_dir.as_deref(),
            alpha: None,
            width: None,
            describe,
        }
    }

    /// The thread count recorded in the archive (0 means the pool's size).
    pub(crate) fn thread_count(&self) -> usize {
        if self.threads == 0 {
            rayon::current_num_threads()
        } else {
            self.threads
        }
    }
}

/// The archive's root status: "completed", or which runs stopped and why.
pub(crate) fn overall_status(runs: &[RunSummary]) -> String {
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| !r.completed)
        .map(|r| format!("{}: {}", r.name, r.status))
        .collect();
    if failed.is_empty() {
        "completed".to_string()
    } else {
        format!("incomplete ({})", failed.join("; "))
    }
}

/// A run's status from how its integration ended: "completed", or where and why it stopped
/// with its last save; an archive write error (the observer's) is passed on, since nothing more
/// can be written.
pub(crate) fn run_status(
    stopped: Option<crate::integrate::Stopped>,
    last_save: f64,
) -> Result<(String, bool)> {
    Ok(match stopped {
        None => ("completed".to_string(), true),
        Some(s) => {
            if let Some(source) = s.source {
                return Err(source);
            }
            (
                format!(
                    "stopped at t = {}: {} (last save at t = {last_save})",
                    s.t, s.reason
                ),
                false,
            )
        }
    })
}

/// Progress callback: (run name, saves done, saves total).
pub(crate) type Progress<'a> = dyn FnMut(&str, usize, usize, Option<f64>) + 'a;

/// The family whose run wrote `archive`: the `[model] kind` of the problem it records.
fn study_of(archive: &ArchiveReader) -> Result<&'static dyn Study> {
    let text = ArchiveReader::str_attr(&archive.file, "problem_resolved").unwrap_or_default();
    let name = archive
        .path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    study_for(&Source {
        text,
        path: archive
            .path
            .with_file_name(format!("{name}#problem_resolved")),
    })
}

/// `meanfield plot ARCHIVE [--out OUT] --what W --run R --size WxH --top K`: draws the figure
/// (the family's default unless given) to OUT, by default `<archive stem>_<figure>.png` beside
/// the archive; returns where and which.
pub fn plot(
    archive: &Path,
    out: Option<PathBuf>,
    (what, run, size, top): (Option<&str>, Option<&str>, &str, usize),
) -> Result<(PathBuf, Figure)> {
    let what = what.map(Figure::parse).transpose()?;
    let opts = PlotOptions {
        what,
        run,
        size: plot::parse_size(size)?,
        top,
        ..PlotOptions::default()
    };
    let reader = ArchiveReader::open(archive)?;
    let study = study_of(&reader)?;
    let what = what.unwrap_or_else(|| study.default_figure(&reader));
    let chart = study.draw(what, &reader, &opts)?;
    drop(reader);
    let out = out.unwrap_or_else(|| {
        let stem = archive
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "archive".into());
        archive.with_file_name(format!("{stem}_{}.png", what.name()))
    });
    plot::render_to(&chart, &out, opts.size)?;
    Ok((out, what))
}

/// `meanfield derive PROBLEM [--latex]`.
pub fn derive(problem: &Path, latex: bool) -> Result<String> {
    let src = Source::read(problem)?;
    study_for(&src)?.derive(&src, latex)
}
