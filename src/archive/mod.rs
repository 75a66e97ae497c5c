//! The HDF5 archive (design.md §5), written as a run goes and flushed at every save time.
//!
//! ```text
//!     /                 attrs: format_version, meanfield_version, git_commit, problem,
//!                              problem_resolved, problem_file, problem_dir, seed, threads, status, laziness_kappa (+ _residual_norm,
//!                              _jacobian_norm, _hessian_norm), ntk_analytic_distance
//!                              (‖K₀ − K_∞‖_F/‖K_∞‖_F on the kernel points, relu/erf/linear)
//!     /data/x_train [n,d]  y_train [n]  x_test [m,d]  y_test [m]
//!           labels_train [n]  labels_test [m] (labelled data: class labels, integers)
//!     /init/particles [N,D]   attr columns
//!     /runs/<name>/t [T]  particles [T,N,D]  kernel [T,k,k]  f_train [T,n]  f_test [T,m]
//!                   loss_train [T]  loss_test [T]  kernel_distance [T]  kernel_alignment [T]
//!                   attrs: kind, method, rtol, atol, step, steps, rhs_evals, jacobian_evals,
//!                          lu_factorizations, rejected_steps, wall_seconds, saved, t_last, status
//!                          (labelled data) accuracy_train, accuracy_test, kernel_accuracy_init,
//!                          kernel_accuracy_final, kernel_class_accuracy_init, _final
//! ```
//!
//! `status` is "running" while a run writes, "completed" when it finished, otherwise the reason
//! it stopped; a file whose root status is not "completed" is not a finished run.

pub mod catalog;
mod room;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::integrate::SolverStats;
use faer::Mat;
use hdf5::types::VarLenUnicode;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayView3};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// Bumped when the layout changes incompatibly; readers refuse newer versions and read older
/// ones. 2: GD's `steps` attribute is u64 like the other runs', and a sweep summary's width,
/// seed and reference_width columns are u64 (version 1 stored them as f64).
pub(crate) const FORMAT_VERSION: i64 = 2;

fn vstr(s: &str) -> VarLenUnicode {
    // VarLenUnicode rejects interior NULs; a problem text never has them after TOML parsing.
    VarLenUnicode::from_str(&s.replace('\0', "")).unwrap_or_default()
}

pub(crate) fn set_str(loc: &hdf5::Location, name: &str, value: &str) -> hdf5::Result<()> {
    if loc.attr_names()?.iter().any(|n| n == name) {
        loc.attr(name)?.write_scalar(&vstr(value))
    } else {
        loc.new_attr::<VarLenUnicode>()
            .create(name)?
            .write_scalar(&vstr(value))
    }
}

pub(crate) fn set_num<T: hdf5::H5Type + Copy>(
    loc: &hdf5::Location,
    name: &str,
    value: T,
) -> hdf5::Result<()> {
    if loc.attr_names()?.iter().any(|n| n == name) {
        loc.attr(name)?.write_scalar(&value)
    } else {
        loc.new_attr::<T>().create(name)?.write_scalar(&value)
    }
}

/// A dataset's values as f64, whatever its numeric type (integer columns are u64 since
/// format_version 2).
fn read_floats(ds: &hdf5::Dataset) -> hdf5::Result<Vec<f64>> {
    let dtype = ds.dtype()?;
    if dtype.is::<u64>() {
        return Ok(ds
            .read_raw::<u64>()?
            .into_iter()
            .map(|v| v as f64)
            .collect());
    }
    if dtype.is::<i64>() {
        return Ok(ds
            .read_raw::<i64>()?
            .into_iter()
            .map(|v| v as f64)
            .collect());
    }
    ds.read_raw::<f64>()
}

/// A fixed float array of the given shape (row-major values) in `g`, replacing one of that name.
fn write_array(
    g: &hdf5::Group,
    shared: &Shared,
    run: Option<(&hdf5::Group, usize)>,
    name: &str,
    shape: &[usize],
    values: &[f64],
) -> Result<()> {
    let _io = shared.io();
    let path = &shared.path;
    let e = |err: hdf5::Error| Error::archive(path, format!("writing {name}: {err}"));
    let what = format!("{}/{name}", g.name().trim_end_matches('/'));
    shared.make_room(run, array_bytes(values.len()), &what)?;
    let view = ndarray::ArrayViewD::from_shape(shape.to_vec(), values)
        .map_err(|x| Error::archive(path, format!("{name}: {x}")))?;
    if g.link_exists(name) {
        g.unlink(name).map_err(e)?;
    }
    g.new_dataset_builder()
        .with_data(view)
        .create(name)
        .map_err(e)?;
    Ok(())
}

/// What every writer of one archive shares: the file and its path, whether it is at that path
/// yet, what continues it after a stop, and its room on the disk (see `Shared::make_room`).
#[derive(Clone)]
struct Shared {
    file: hdf5::File,
    path: PathBuf,
    /// While a new archive is not yet at its path: its temporary file, and whether it replaces
    /// a file there (see `ArchiveWriter::create`).
    pending: Arc<Mutex<Option<(PathBuf, bool)>>>,
    /// The command that continues the archive after a stop for want of room.
    again: Arc<Mutex<String>>,
    /// Its room on the disk; every write holds its lock from the check to the flush.
    room: Arc<room::Room>,
}

impl Shared {
    /// For the archive `file` at `path` (at its temporary name while `pending`).
    fn new(file: &hdf5::File, path: &Path, pending: Option<(PathBuf, bool)>) -> Shared {
        let written = pending.as_ref().map_or(path, |(tmp, _)| tmp.as_path());
        let fd = std::fs::OpenOptions::new().write(true).open(written).ok();
        Shared {
            file: file.clone(),
            path: path.to_path_buf(),
            room: Arc::new(room::Room::new(folder(path), fd)),
            pending: Arc::new(Mutex::new(pending)),
            again: Arc::new(Mutex::new(format!(
                "meanfield run --resume {}",
                path.display()
            ))),
        }
    }

    /// Held by a write from its check to its flush (see `room::Room`).
    fn io(&self) -> std::sync::MutexGuard<'_, ()> {
        self.room.lock()
    }

    /// Whether the archive is not yet at its path.
    fn pending(&self) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.is_some()
    }

    /// Checks that `bytes` more fit on the disk, and sets them aside, before writing them (see
    /// `room`; the caller holds `Shared::io`). When they do not fit in an archive already at its
    /// path, records why at the root (and on `run`, the run group being written, with its count of
    /// saves) and flushes, within the reserve kept for it, so the archive reads as what it is:
    /// incomplete, every earlier save readable. (An archive not yet at its path is removed when its
    /// writer drops.)
    fn make_room(&self, run: Option<(&hdf5::Group, usize)>, bytes: u64, what: &str) -> Result<()> {
        let Err(message) = self.room.check(bytes, what) else {
            return Ok(());
        };
        if self.pending() {
            return Err(Error::NoRoom {
                path: self.path.clone(),
                message: format!("{message}; nothing was written"),
            });
        }
        let mut of = String::new();
        let root = match run {
            Some((g, saved)) => {
                let name = g.name();
                let name = name.rsplit('/').next().unwrap_or_default();
                of = format!("run {name}: ");
                let kept = match saved {
                    0 => "it has no saves yet".to_string(),
                    1 => "its 1 earlier save is kept".to_string(),
                    k => format!("its {k} earlier saves are kept"),
                };
                let status = format!("stopped: {message}; {kept}");
                let _ = set_str(g, "status", &status);
                format!("incomplete ({name}: {status})")
            }
            None => format!("incomplete ({message})"),
        };
        let _ = set_str(&self.file, "status", &root);
        let _ = self.file.flush();
        let again = self.again.lock().unwrap_or_else(|p| p.into_inner());
        Err(Error::NoRoom {
            path: self.path.clone(),
            message: format!(
                "{of}{message}; the archive keeps everything written before it; make room and \
             continue with `{again}`"
            ),
        })
    }

    /// `make_room` for one save at time `t` of the run `run` (its group and count of saves): a
    /// row of each of `datasets`.
    fn make_room_for_save<'a>(
        &self,
        run: (&hdf5::Group, usize),
        datasets: impl Iterator<Item = &'a hdf5::Dataset>,
        t: f64,
    ) -> Result<()> {
        let bytes = datasets.map(room::row_bytes).sum();
        self.make_room(Some(run), bytes, &format!("the save at t = {t}"))
    }
}

/// The folder of the file at `path` ("." for a bare name).
fn folder(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The bytes of `values` as f64 in a dataset of their own, metadata included.
fn array_bytes(values: usize) -> u64 {
    values as u64 * 8 + room::PER_DATASET
}

/// A time series in a run group: rows of the given shape appended along a resizable first axis,
/// chunked per row, compressed when a row has 1024 numbers or more.
fn new_series(g: &hdf5::Group, name: &str, shape: &[usize]) -> hdf5::Result<hdf5::Dataset> {
    let mut extents = vec![hdf5::Extent::resizable(0)];
    extents.extend(shape.iter().map(|&s| hdf5::Extent::fixed(s)));
    let mut chunk = vec![1usize];
    chunk.extend(shape.iter().map(|&s| s.max(1)));
    let b = g.new_dataset::<f64>().chunk(chunk).shape(extents);
    if shape.iter().product::<usize>() >= 1024 {
        b.deflate(4).create(name)
    } else {
        b.create(name)
    }
}

/// The particle series [T, N, D]: chunks of about 1 MiB (whole rows of particles), so that
/// writing a save time goes through HDF5 in small pieces, never a copy of the slice; and no
/// deflate, which saves ~4% on particle values at ~40× the write time (measured with h5py on
/// Gaussian particles, N = 10⁵, D = 101: 3.4 s against 0.08 s per slice).
fn new_particle_series(
    g: &hdf5::Group,
    n_particles: usize,
    dim: usize,
) -> hdf5::Result<hdf5::Dataset> {
    let rows = ((1 << 17) / dim.max(1)).clamp(1, n_particles.max(1));
    g.new_dataset::<f64>()
        .chunk((1, rows, dim.max(1)))
        .shape((
            hdf5::Extent::resizable(0),
            hdf5::Extent::fixed(n_particles),
            hdf5::Extent::fixed(dim),
        ))
        .create("particles")
}

/// Column-major faer matrix as a row-major ndarray (HDF5's order).
fn to_rows(m: &Mat<f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

pub struct ArchiveWriter {
    /// What every run group records besides its own attributes: seed, α and N, exactly.
    run_provenance: RunProvenance,
    /// The family's catalogue (`catalog::describe_all` at `finish`).
    describe: catalog::Describe,
    /// The file and its path, whether it is at that path yet (a new archive is published when
    /// its first run begins, or at `finish` with no runs), what continues it after a stop.
    shared: Shared,
}

impl Drop for ArchiveWriter {
    /// A new archive that never got as far as its first run (its start-up failed) is removed:
    /// there is nothing in it to keep or resume.
    fn drop(&mut self) {
        if let Some((tmp, _)) = self.shared.pending.lock().ok().and_then(|mut p| p.take()) {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// The seed (u64), α (f64) and N (u64) written once, at the root and on every run group.
#[derive(Debug, Clone, Copy, Default)]
struct RunProvenance {
    seed: Option<u64>,
    alpha: Option<f64>,
    width: Option<u64>,
}

impl RunProvenance {
    fn write(&self, loc: &hdf5::Location) -> hdf5::Result<()> {
        if let Some(seed) = self.seed {
            set_num(loc, "seed", seed)?;
        }
        if let Some(alpha) = self.alpha {
            set_num(loc, "alpha", alpha)?;
        }
        if let Some(width) = self.width {
            set_num(loc, "width", width)?;
        }
        Ok(())
    }

    /// From an archive being resumed: what its root records.
    fn read(loc: &hdf5::Location) -> RunProvenance {
        RunProvenance {
            seed: ArchiveReader::seed(loc),
            alpha: ArchiveReader::num_attr(loc, "alpha"),
            width: ArchiveReader::u64_attr(loc, "width"),
        }
    }
}

/// Root attributes recorded with every archive.
pub struct Provenance<'a> {
    pub problem: &'a str,
    pub problem_resolved: &'a str,
    pub seed: u64,
    pub threads: usize,
    /// The problem file, when the run came from one: its folder resolves relative data paths
    /// when the run is repeated from the archive (`meanfield run --from`).
    pub problem_file: Option<&'a Path>,
    /// The folder its relative data paths resolve against (default: the problem file's).
    pub problem_dir: Option<&'a Path>,
    /// The output scale α, when the problem has one (a diagonal network's: its first run's).
    pub alpha: Option<f64>,
    /// N, the number of particles (hidden units), when the problem has one.
    pub width: Option<u64>,
    /// The family's catalogue of its datasets, written on them when the archive is finished.
    pub describe: catalog::Describe,
}

/// What `ArchiveWriter::create` does with a file already at its path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Existing {
    /// Replace it, if it is a meanfield archive that no process has open for writing
    /// (`meanfield run --force`, and the library's default).
    #[default]
    Replace,
    /// Refuse (`meanfield run` without `--force`).
    Refuse,
}

/// The commit the binary was built from ("unknown" outside a git checkout, "-dirty" with local
/// changes).
pub(crate) const GIT_COMMIT: &str = env!("MEANFIELD_GIT_COMMIT");

/// Whether a file at `path` may be replaced (true), there is none (false), or neither (Err).
fn check_replaceable(path: &Path, existing: Existing) -> Result<bool> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(false);
    }
    if existing == Existing::Refuse {
        return Err(Error::archive(
            path,
            format!(
                "the file exists; give --force to replace it, or continue an unfinished run with \
                 `meanfield run --resume {}`",
                path.display()
            ),
        ));
    }
    // HDF5 locks a file it has open for writing, so a run still writing it fails both opens.
    let in_use = || {
        Error::archive(
            path,
            "cannot be replaced: another process has it open for writing (a run under way?)",
        )
    };
    match ArchiveReader::open(path) {
        Ok(_) => {}
        Err(err) if err.to_string().contains("open for writing") => return Err(in_use()),
        Err(_) => {
            return Err(Error::archive(
                path,
                "the file exists and is not a meanfield archive (an input of the run, or \
                 another program's file?), so it is not replaced even with --force",
            ))
        }
    }
    hdf5::File::open_rw(path).map_err(|_| in_use())?;
    Ok(true)
}

/// This machine's name ("host" when it has none that fits a file name).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).to_string();
    if ok && !name.is_empty() && !name.contains(['/', '\0']) {
        name
    } else {
        "host".to_string()
    }
}

/// Removes the temporary files `STEM PID.part` (`.NAME.HOST.`) that runs on this machine killed
/// during their start-up left in `dir` (those whose process is gone).
fn remove_orphans(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().to_string();
        let pid = file
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(".part"))
            .and_then(|pid| pid.parse::<libc::pid_t>().ok());
        // SAFETY: kill with signal 0 only asks whether the process exists.
        let gone = pid.is_some_and(|pid| {
            pid > 0
                && unsafe { libc::kill(pid, 0) } != 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        });
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Moves the finished-enough archive `tmp` to `path`: a hard link when nothing is there (it
/// fails, rather than overwrite, if another run created `path` meanwhile), a rename when
/// replacing.
fn publish(tmp: &Path, path: &Path, replace: bool) -> Result<()> {
    let fail = |what: String| {
        let _ = std::fs::remove_file(tmp);
        Error::archive(path, what)
    };
    if replace {
        // Checked again: another run may have published its own archive there since this one
        // started, and one under way is never replaced.
        if let Err(err) = check_replaceable(path, Existing::Replace) {
            let _ = std::fs::remove_file(tmp);
            return Err(err);
        }
        return std::fs::rename(tmp, path).map_err(|err| fail(format!("cannot replace: {err}")));
    }
    match std::fs::hard_link(tmp, path) {
        Ok(()) => {
            let _ = std::fs::remove_file(tmp);
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Err(fail(
            "another process created this archive while this run was starting; nothing was \
             replaced"
                .into(),
        )),
        // A file system without hard links: rename, after checking again.
        Err(_) if std::fs::symlink_metadata(path).is_err() => {
            std::fs::rename(tmp, path).map_err(|err| fail(format!("cannot create: {err}")))
        }
        Err(err) => Err(fail(format!("cannot create: {err}"))),
    }
}

impl ArchiveWriter {
    /// Creates a new archive at `path`. It is built under a temporary name in the same folder
    /// and appears at `path` only when its first run begins, with everything before it written
    /// (root attributes with `status` = "running", `/data`, `/init`), or at `finish` for an
    /// archive without runs. So no reader ever sees a half-created file, a file at `path` is
    /// untouched until then, and a start-up that fails leaves nothing behind.
    /// Only a meanfield archive that no process is writing can be replaced, and only with
    /// `Existing::Replace`: an input (problem file, data file) or a run under way never is.
    pub fn create(path: &Path, prov: &Provenance<'_>, existing: Existing) -> Result<ArchiveWriter> {
        let dir = folder(path);
        std::fs::create_dir_all(dir).map_err(|err| {
            Error::archive(
                path,
                format!("cannot create folder {}: {err}", dir.display()),
            )
        })?;
        let replace = check_replaceable(path, existing)?;
        if prov.problem_resolved.trim().is_empty() {
            return Err(Error::archive(
                path,
                "no resolved problem to record (problem_resolved)",
            ));
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // The host is in the name: another machine's processes cannot be asked if they live.
        let stem = format!(".{name}.{}.", hostname());
        remove_orphans(dir, &stem);
        let tmp = dir.join(format!("{stem}{}.part", std::process::id()));
        let header = (prov.problem.len() + prov.problem_resolved.len()) as u64;
        let room = room::Room::new(dir, None);
        room.check(header * 2 + (64 << 10), "a new archive")
            .map_err(|message| Error::NoRoom {
                path: path.to_path_buf(),
                message: format!("{message}; nothing was written"),
            })?;
        let e = |err: hdf5::Error| {
            let _ = std::fs::remove_file(&tmp);
            Error::archive(path, format!("cannot create: {err}"))
        };
        // Probe writability with a plain file first: HDF5's own message for an unwritable path
        // is a long error stack.
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(|err| {
                Error::archive(path, format!("cannot write in {}: {err}", dir.display()))
            })?;
        let file = hdf5::File::create(&tmp).map_err(e)?;
        set_num(&file, "format_version", FORMAT_VERSION).map_err(e)?;
        set_str(&file, "meanfield_version", env!("CARGO_PKG_VERSION")).map_err(e)?;
        set_str(&file, "problem", prov.problem).map_err(e)?;
        set_str(&file, "problem_resolved", prov.problem_resolved).map_err(e)?;
        let run_provenance = RunProvenance {
            seed: Some(prov.seed),
            alpha: prov.alpha,
            width: prov.width,
        };
        run_provenance.write(&file).map_err(e)?;
        set_num(&file, "threads", prov.threads as u64).map_err(e)?;
        set_str(&file, "git_commit", GIT_COMMIT).map_err(e)?;
        if let Some(p) = prov.problem_file {
            set_str(&file, "problem_file", &p.display().to_string()).map_err(e)?;
            let dir = prov
                .problem_dir
                .or_else(|| p.parent())
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            set_str(&file, "problem_dir", &dir.display().to_string()).map_err(e)?;
        }
        set_str(&file, "status", "running").map_err(e)?;
        Ok(ArchiveWriter {
            run_provenance,
            describe: prov.describe,
            shared: Shared::new(&file, path, Some((tmp, replace))),
        })
    }

    /// Moves a new archive to its path (once): from then on readers see it and `--resume`
    /// continues it.
    fn publish(&self) -> Result<()> {
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((tmp, replace)) = pending.clone() {
            // Pending until it is at its path: when the flush or the move fails, `drop` removes
            // the temporary file and leaves alone whatever is at the path (another run's).
            self.shared
                .file
                .flush()
                .map_err(self.err("writing the start of the archive"))?;
            publish(&tmp, &self.shared.path, replace)?;
            *pending = None;
        }
        Ok(())
    }

    /// The command that continues this archive after a stop for want of room, when it is not
    /// `meanfield run --resume PATH` (a sweep's archive).
    pub(crate) fn continue_with(&self, command: String) {
        *self.shared.again.lock().unwrap_or_else(|p| p.into_inner()) = command;
    }

    /// Opens an archive of ours for appending (`meanfield run --resume`), after the reader's
    /// checks (ours, not newer, readable).
    pub fn open_existing(path: &Path, describe: catalog::Describe) -> Result<ArchiveWriter> {
        drop(ArchiveReader::open(path)?);
        let file = hdf5::File::open_rw(path)
            .map_err(|e| Error::archive(path, format!("cannot open for writing: {e}")))?;
        set_str(&file, "status", "running")
            .and_then(|_| file.flush())
            .map_err(|e| Error::archive(path, format!("writing status: {e}")))?;
        let run_provenance = RunProvenance::read(&file);
        Ok(ArchiveWriter {
            run_provenance,
            describe,
            shared: Shared::new(&file, path, None),
        })
    }

    /// A run's status attribute, if the run exists.
    pub(crate) fn run_status(&self, name: &str) -> Option<String> {
        let g = self.shared.file.group(&format!("runs/{name}")).ok()?;
        ArchiveReader::str_attr(&g, "status")
    }

    /// Deletes a run group so it can be written again from the start.
    pub(crate) fn remove_run(&self, name: &str) -> Result<()> {
        if let Ok(runs) = self.shared.file.group("runs") {
            if runs.link_exists(name) {
                runs.unlink(name)
                    .map_err(self.err(&format!("removing /runs/{name}")))?;
            }
        }
        Ok(())
    }

    /// Reopens a run's series to append after its last complete save; returns the writer, the
    /// number of complete saves (rows of `t`, written last), the last saved time and particles.
    pub(crate) fn reopen_run(
        &self,
        name: &str,
    ) -> Result<(RunWriter, usize, f64, Option<Vec<f64>>)> {
        let e = self.err(&format!("reopening /runs/{name}"));
        let g = self
            .shared
            .file
            .group(&format!("runs/{name}"))
            .map_err(&e)?;
        let ds = |n: &str| g.dataset(n).ok();
        let t = g.dataset("t").map_err(&e)?;
        let times: Vec<f64> = t.read_raw().map_err(&e)?;
        let saved = times.len();
        let particles = ds("particles");
        let last = match (&particles, saved) {
            (Some(p), k) if k > 0 => {
                let shape = p.shape();
                let row: ndarray::Array3<f64> = p.read_slice(s![k - 1..k, .., ..]).map_err(&e)?;
                debug_assert_eq!(row.len(), shape[1] * shape[2]);
                Some(row.into_iter().collect())
            }
            _ => None,
        };
        set_str(&g, "status", "running").map_err(&e)?;
        let w = RunWriter {
            t,
            particles,
            kernel: ds("kernel"),
            kernel_distance: ds("kernel_distance"),
            kernel_alignment: ds("kernel_alignment"),
            f_train: g.dataset("f_train").map_err(&e)?,
            f_test: g.dataset("f_test").map_err(&e)?,
            loss_train: g.dataset("loss_train").map_err(&e)?,
            loss_test: g.dataset("loss_test").map_err(&e)?,
            group: g,
            shared: self.shared.clone(),
            saved,
        };
        Ok((w, saved, times.last().copied().unwrap_or(f64::NAN), last))
    }

    fn err(&self, what: &str) -> impl Fn(hdf5::Error) -> Error + '_ {
        let what = what.to_string();
        move |e| Error::archive(&self.shared.path, format!("{what}: {e}"))
    }

    pub(crate) fn write_data(&self, data: &Dataset) -> Result<()> {
        let _io = self.shared.io();
        let e = self.err("writing /data");
        let (n, m, d) = (data.n_train(), data.n_test(), data.d());
        let teacher = data.teacher.as_ref().map_or(0, |t| t.w.nrows() * (d + 1));
        let labels = data.classes.as_ref().map_or(0, |_| n + m);
        let bytes = [n * d, n, m * d, m, teacher, labels].map(array_bytes);
        self.shared.make_room(None, bytes.iter().sum(), "/data")?;
        let g = self.shared.file.create_group("data").map_err(&e)?;
        g.new_dataset_builder()
            .with_data(&to_rows(&data.x_train))
            .create("x_train")
            .map_err(&e)?;
        g.new_dataset_builder()
            .with_data(&Array1::from(data.y_train.clone()))
            .create("y_train")
            .map_err(&e)?;
        g.new_dataset_builder()
            .with_data(&to_rows(&data.x_test))
            .create("x_test")
            .map_err(&e)?;
        g.new_dataset_builder()
            .with_data(&Array1::from(data.y_test.clone()))
            .create("y_test")
            .map_err(&e)?;
        if let Some(teacher) = &data.teacher {
            // f*(x) = Σ_i c_i σ(⟨w_i, x⟩): one row (c_i, w_i) per neuron.
            let (m, d) = (teacher.w.nrows(), teacher.w.ncols());
            let rows = ndarray::Array2::from_shape_fn((m, d + 1), |(i, k)| {
                if k == 0 {
                    teacher.coef[i]
                } else {
                    teacher.w[(i, k - 1)]
                }
            });
            let ds = g
                .new_dataset_builder()
                .with_data(&rows)
                .create("teacher")
                .map_err(&e)?;
            let columns: Vec<String> = std::iter::once("c".to_string())
                .chain((0..d).map(|k| format!("w{k}")))
                .collect();
            set_str(&ds, "columns", &columns.join(",")).map_err(&e)?;
            set_str(&ds, "activation", &teacher.act.name()).map_err(&e)?;
        }
        if let Some(c) = &data.classes {
            // Labelled data: each sample's class label (the targets are ±1 from them).
            let label = |idx: &[usize]| Array1::from_iter(idx.iter().map(|&k| c.values[k]));
            g.new_dataset_builder()
                .with_data(&label(&c.train))
                .create("labels_train")
                .map_err(&e)?;
            g.new_dataset_builder()
                .with_data(&label(&c.test))
                .create("labels_test")
                .map_err(&e)?;
        }
        self.shared.file.flush().map_err(&e)
    }

    pub(crate) fn write_init(
        &self,
        theta: &[f64],
        n: usize,
        dd: usize,
        columns: &str,
    ) -> Result<()> {
        let _io = self.shared.io();
        let e = self.err("writing /init");
        self.shared
            .make_room(None, array_bytes(theta.len()), "/init")?;
        let g = self.shared.file.create_group("init").map_err(&e)?;
        let ds =
            g.new_dataset_builder()
                .with_data(ArrayView2::from_shape((n, dd), theta).map_err(|x| {
                    Error::archive(&self.shared.path, format!("particle shape: {x}"))
                })?)
                .create("particles")
                .map_err(&e)?;
        set_str(&ds, "columns", columns).map_err(&e)?;
        self.shared.file.flush().map_err(&e)
    }

    /// A group of named d×d-like matrices (row-major in the file, as h5py shows them) and numeric
    /// attributes, e.g. `/data` and `/init` of a linear-network problem.
    pub(crate) fn write_matrices(
        &self,
        group: &str,
        matrices: &[(&str, &Mat<f64>)],
        attrs: &[(&str, f64)],
    ) -> Result<()> {
        let _io = self.shared.io();
        let e = self.err(&format!("writing /{group}"));
        let bytes = matrices
            .iter()
            .map(|(_, m)| array_bytes(m.nrows() * m.ncols()));
        self.shared
            .make_room(None, bytes.sum(), &format!("/{group}"))?;
        let g = self.shared.file.create_group(group).map_err(&e)?;
        for (name, m) in matrices {
            g.new_dataset_builder()
                .with_data(&to_rows(m))
                .create(*name)
                .map_err(&e)?;
        }
        for (name, v) in attrs {
            set_num(&g, name, *v).map_err(&e)?;
        }
        self.shared.file.flush().map_err(&e)
    }

    /// Creates `/runs/<name>` (and `/runs` when needed) with status "running", when there is
    /// room for it and its `datasets` series.
    fn run_group(&self, name: &str, datasets: usize) -> Result<hdf5::Group> {
        let _io = self.shared.io();
        let e = self.err(&format!("creating /runs/{name}"));
        let bytes = (datasets as u64 + 2) * room::PER_DATASET;
        self.shared.make_room(None, bytes, &format!("run {name}"))?;
        self.publish()?;
        let runs = match self.shared.file.group("runs") {
            Ok(g) => g,
            Err(_) => self.shared.file.create_group("runs").map_err(&e)?,
        };
        let g = runs.create_group(name).map_err(&e)?;
        set_str(&g, "status", "running").map_err(&e)?;
        self.run_provenance.write(&g).map_err(&e)?;
        Ok(g)
    }

    pub fn run(&self, name: &str, layout: RunLayout<'_>) -> Result<RunWriter> {
        let e = self.err(&format!("creating /runs/{name}"));
        // 9: the most series a run has (t, particles, kernel and its two statistics, f_train,
        // f_test, the two losses).
        let g = self.run_group(name, 9)?;
        let series = |name: &str, shape: &[usize]| new_series(&g, name, shape);
        let w = RunWriter {
            t: series("t", &[]).map_err(&e)?,
            particles: if layout.particles {
                let p = new_particle_series(&g, layout.n_particles, layout.dim).map_err(&e)?;
                set_str(&p, "columns", layout.columns).map_err(&e)?;
                Some(p)
            } else {
                None
            },
            kernel: if layout.kernel_points > 0 {
                Some(series("kernel", &[layout.kernel_points, layout.kernel_points]).map_err(&e)?)
            } else {
                None
            },
            kernel_distance: if layout.kernel_points > 0 {
                Some(series("kernel_distance", &[]).map_err(&e)?)
            } else {
                None
            },
            kernel_alignment: if layout.kernel_points > 0 {
                Some(series("kernel_alignment", &[]).map_err(&e)?)
            } else {
                None
            },
            f_train: series("f_train", &[layout.n_train]).map_err(&e)?,
            f_test: series("f_test", &[layout.n_test]).map_err(&e)?,
            loss_train: series("loss_train", &[]).map_err(&e)?,
            loss_test: series("loss_test", &[]).map_err(&e)?,
            group: g,
            shared: self.shared.clone(),
            saved: 0,
        };
        Ok(w)
    }

    /// A numeric root attribute.
    pub(crate) fn set_number(&self, name: &str, value: f64) -> Result<()> {
        set_num(&self.shared.file, name, value).map_err(self.err(name))
    }

    /// Records the laziness ratio κ and its parts as root attributes.
    pub(crate) fn set_laziness(&self, l: &crate::model::laziness::Laziness) -> Result<()> {
        let e = self.err("writing laziness");
        set_num(&self.shared.file, "laziness_kappa", l.kappa).map_err(&e)?;
        set_num(&self.shared.file, "laziness_residual_norm", l.residual_norm).map_err(&e)?;
        set_num(&self.shared.file, "laziness_jacobian_norm", l.jacobian_norm).map_err(&e)?;
        set_num(&self.shared.file, "laziness_hessian_norm", l.hessian_norm).map_err(&e)?;
        Ok(())
    }

    /// Sets the root status ("completed" or why not) and flushes.
    pub fn finish(&self, status: &str) -> Result<()> {
        let _io = self.shared.io();
        let e = self.err("writing status");
        // The descriptions: two short attributes per dataset (measured: at most 10 KiB for a
        // whole shipped problem, about 1.3 KiB per run), so 4 KiB per run and 16 KiB besides.
        let runs = self
            .shared
            .file
            .group("runs")
            .and_then(|r| r.member_names());
        let bytes = (runs.map_or(0, |n| n.len()) as u64 + 4) * 4096;
        let what = "the datasets' descriptions";
        self.shared.make_room(None, bytes, what)?;
        catalog::describe_all(&self.shared.file, self.describe)
            .map_err(self.err("writing descriptions"))?;
        set_str(&self.shared.file, "status", status).map_err(&e)?;
        self.shared.file.flush().map_err(&e)?;
        self.publish()
    }

    pub fn file(&self) -> &hdf5::File {
        &self.shared.file
    }
}

/// Shapes of one run's time series.
pub struct RunLayout<'a> {
    pub n_particles: usize,
    pub dim: usize,
    pub particles: bool,
    /// The particles' columns, "a,w0,...,w{d-1}[,b]", as `/init/particles` records them.
    pub columns: &'a str,
    pub kernel_points: usize,
    pub n_train: usize,
    pub n_test: usize,
}

/// One save time of one run.
pub struct Record<'a> {
    pub t: f64,
    pub particles: &'a [f64],
    pub kernel: Option<&'a Mat<f64>>,
    /// ‖K_t − K_0‖_F / ‖K_0‖_F and the kernel–target alignment, when the kernel is saved.
    pub kernel_stats: Option<(f64, f64)>,
    pub f_train: &'a [f64],
    pub f_test: &'a [f64],
    pub loss_train: f64,
    pub loss_test: f64,
}

pub struct RunWriter {
    group: hdf5::Group,
    t: hdf5::Dataset,
    particles: Option<hdf5::Dataset>,
    kernel: Option<hdf5::Dataset>,
    kernel_distance: Option<hdf5::Dataset>,
    kernel_alignment: Option<hdf5::Dataset>,
    f_train: hdf5::Dataset,
    f_test: hdf5::Dataset,
    loss_train: hdf5::Dataset,
    loss_test: hdf5::Dataset,
    saved: usize,
    /// Last, so that the file handles above close before the archive's room is given back.
    shared: Shared,
}

impl RunWriter {
    /// Appends one save time to every series and flushes the file.
    pub fn append(&mut self, r: &Record<'_>) -> Result<()> {
        let _io = self.shared.io();
        let path = self.shared.path.clone();
        let e =
            move |err: hdf5::Error| Error::archive(&path, format!("writing a save time: {err}"));
        let k = self.saved;
        let datasets = [
            Some(&self.t),
            self.particles.as_ref(),
            self.kernel.as_ref(),
            self.kernel_distance.as_ref(),
            self.kernel_alignment.as_ref(),
            Some(&self.f_train),
            Some(&self.f_test),
            Some(&self.loss_train),
            Some(&self.loss_test),
        ];
        let datasets = datasets.into_iter().flatten();
        self.shared
            .make_room_for_save((&self.group, k), datasets, r.t)?;
        let scalar = |ds: &hdf5::Dataset, v: f64| -> hdf5::Result<()> {
            ds.resize(k + 1)?;
            ds.write_slice(&[v], s![k..k + 1])
        };
        let row = |ds: &hdf5::Dataset, v: &[f64]| -> hdf5::Result<()> {
            ds.resize((k + 1, v.len()))?;
            ds.write_slice(ArrayView1::from(v), s![k, ..])
        };
        if let Some(ds) = &self.particles {
            let shape = ds.shape();
            ds.resize((k + 1, shape[1], shape[2])).map_err(&e)?;
            let v = ArrayView3::from_shape((1, shape[1], shape[2]), r.particles)
                .map_err(|x| Error::archive(&self.shared.path, format!("particle shape: {x}")))?;
            ds.write_slice(v, s![k..k + 1, .., ..]).map_err(&e)?;
        }
        if let (Some(ds), Some(km)) = (&self.kernel, r.kernel) {
            let a = to_rows(km);
            ds.resize((k + 1, a.nrows(), a.ncols())).map_err(&e)?;
            ds.write_slice(&a, s![k, .., ..]).map_err(&e)?;
        }
        if let (Some(dd), Some(da), Some((dist, align))) = (
            &self.kernel_distance,
            &self.kernel_alignment,
            r.kernel_stats,
        ) {
            scalar(dd, dist).map_err(&e)?;
            scalar(da, align).map_err(&e)?;
        }
        row(&self.f_train, r.f_train).map_err(&e)?;
        row(&self.f_test, r.f_test).map_err(&e)?;
        scalar(&self.loss_train, r.loss_train).map_err(&e)?;
        scalar(&self.loss_test, r.loss_test).map_err(&e)?;
        // t last, after the other rows reached the file: a reader that sees t[k] sees every
        // other series at k, even when a write fails (a full disk) in between.
        self.shared.file.flush().map_err(&e)?;
        scalar(&self.t, r.t).map_err(&e)?;
        self.saved += 1;
        set_num(&self.group, "saved", self.saved as u64).map_err(&e)?;
        set_num(&self.group, "t_last", r.t).map_err(&e)?;
        self.shared.file.flush().map_err(&e)
    }

    pub(crate) fn set_str(&self, name: &str, value: &str) -> Result<()> {
        set_str(&self.group, name, value).map_err(|e| Error::archive(&self.shared.path, e))
    }
    /// A numeric attribute of the run, f64 or an exact integer (u64) as given.
    pub(crate) fn set_num<T: hdf5::H5Type + Copy>(&self, name: &str, value: T) -> Result<()> {
        set_num(&self.group, name, value).map_err(|e| Error::archive(&self.shared.path, e))
    }

    /// Records the solver statistics and the run's status, and flushes.
    pub fn finish(&self, stats: &SolverStats, status: &str) -> Result<()> {
        finish_group(
            &self.group,
            &self.shared.file,
            &self.shared.path,
            stats,
            status,
        )
    }
    /// The counts an earlier invocation recorded when it ended (None if it was killed first).
    pub(crate) fn recorded_stats(&self) -> Option<SolverStats> {
        let n = |k: &str| ArchiveReader::num_attr(&self.group, k);
        Some(SolverStats {
            steps: n("steps")? as usize,
            rhs_evals: n("rhs_evals")? as usize,
            jacobian_evals: n("jacobian_evals")? as usize,
            lu_factorizations: n("lu_factorizations")? as usize,
            rejected_steps: n("rejected_steps")? as usize,
            wall_seconds: n("wall_seconds")?,
        })
    }

    /// After a resume: this part's counts as `<count>_since_resume`, and `counts` saying what
    /// `steps`, `rhs_evals`, … hold; returns what `finish` should record there (the totals when
    /// the earlier part's counts are known, this part's otherwise).
    pub(crate) fn record_resumed(
        &self,
        before: Option<SolverStats>,
        stats: &SolverStats,
    ) -> Result<SolverStats> {
        let e = |err: hdf5::Error| {
            Error::archive(&self.shared.path, format!("recording counts: {err}"))
        };
        let part = [
            ("steps", stats.steps),
            ("rhs_evals", stats.rhs_evals),
            ("jacobian_evals", stats.jacobian_evals),
            ("lu_factorizations", stats.lu_factorizations),
            ("rejected_steps", stats.rejected_steps),
        ];
        for (k, v) in part {
            set_num(&self.group, &format!("{k}_since_resume"), v as u64).map_err(e)?;
        }
        set_num(&self.group, "wall_seconds_since_resume", stats.wall_seconds).map_err(e)?;
        let (total, what) = match before {
            Some(b) => (
                SolverStats {
                    steps: b.steps + stats.steps,
                    rhs_evals: b.rhs_evals + stats.rhs_evals,
                    jacobian_evals: b.jacobian_evals + stats.jacobian_evals,
                    lu_factorizations: b.lu_factorizations + stats.lu_factorizations,
                    rejected_steps: b.rejected_steps + stats.rejected_steps,
                    wall_seconds: b.wall_seconds + stats.wall_seconds,
                },
                "whole run: the part before the resume plus the part since",
            ),
            None => (
                stats.clone(),
                "since the resume only: the part before was killed before it recorded its counts",
            ),
        };
        set_str(&self.group, "counts", what).map_err(e)?;
        Ok(total)
    }
}

/// A run group of named time series with free shapes, for models other than the two-layer
/// network (e.g. `beta [T,d]` for diagonal networks, design.md §5). Each save appends one row to
/// every series, `t` last, and flushes.
pub(crate) struct SeriesWriter {
    group: hdf5::Group,
    t: hdf5::Dataset,
    series: Vec<(String, hdf5::Dataset, Vec<usize>)>,
    saved: usize,
    /// Last, so that the file handles above close before the archive's room is given back.
    shared: Shared,
}

impl ArchiveWriter {
    /// Creates `/runs/<name>` with a time series `t` and the named series of the given row shapes
    /// (`&[]` for a scalar per save).
    pub(crate) fn series_run(
        &self,
        name: &str,
        series: &[(&str, &[usize])],
    ) -> Result<SeriesWriter> {
        let e = self.err(&format!("creating /runs/{name}"));
        let g = self.run_group(name, series.len() + 1)?;
        let make = |name: &str, shape: &[usize]| new_series(&g, name, shape);
        let mut list = vec![];
        for (n, shape) in series {
            list.push((n.to_string(), make(n, shape).map_err(&e)?, shape.to_vec()));
        }
        Ok(SeriesWriter {
            t: make("t", &[]).map_err(&e)?,
            series: list,
            group: g,
            shared: self.shared.clone(),
            saved: 0,
        })
    }

    /// Creates `/runs/<name>` for a result computed at once (a closed form): fixed datasets are
    /// added with `SeriesWriter::write_array`.
    pub(crate) fn result_run(&self, name: &str) -> Result<SeriesWriter> {
        self.series_run(name, &[])
    }
}

/// Any group of an archive, for results that are not time series (a sweep's summary tables,
/// its fits): arrays with their attributes.
pub struct GroupWriter {
    group: hdf5::Group,
    shared: Shared,
}

impl ArchiveWriter {
    /// The group at `name` ("points", "fits/fit_0"), created with its parents when missing.
    pub fn group(&self, name: &str) -> Result<GroupWriter> {
        let e = |err: hdf5::Error| {
            Error::archive(&self.shared.path, format!("creating /{name}: {err}"))
        };
        let mut group = self.shared.file.as_group().map_err(e)?;
        for part in name.split('/').filter(|p| !p.is_empty()) {
            group = match group.group(part) {
                Ok(g) => g,
                Err(_) => group.create_group(part).map_err(e)?,
            };
        }
        Ok(GroupWriter {
            group,
            shared: self.shared.clone(),
        })
    }

    /// A string attribute at the root.
    pub(crate) fn set_str(&self, name: &str, value: &str) -> Result<()> {
        set_str(&self.shared.file, name, value).map_err(self.err(name))
    }
}

impl GroupWriter {
    /// A float array of the given shape (row-major values).
    pub(crate) fn write_array(&self, name: &str, shape: &[usize], values: &[f64]) -> Result<()> {
        write_array(&self.group, &self.shared, None, name, shape, values)
    }

    /// A column of exact integers (widths, seeds).
    pub(crate) fn write_u64s(&self, name: &str, values: &[u64]) -> Result<()> {
        let _io = self.shared.io();
        let e =
            |err: hdf5::Error| Error::archive(&self.shared.path, format!("writing {name}: {err}"));
        let what = format!("{}/{name}", self.group.name().trim_end_matches('/'));
        self.shared
            .make_room(None, array_bytes(values.len()), &what)?;
        self.group
            .new_dataset_builder()
            .with_data(&Array1::from(values.to_vec()))
            .create(name)
            .map_err(e)?;
        Ok(())
    }

    /// A string attribute of the group, or of its dataset `on` when given.
    pub(crate) fn set_str(&self, on: Option<&str>, name: &str, value: &str) -> Result<()> {
        let e =
            |err: hdf5::Error| Error::archive(&self.shared.path, format!("writing {name}: {err}"));
        match on {
            None => set_str(&self.group, name, value).map_err(e),
            Some(ds) => {
                let ds = self.group.dataset(ds).map_err(e)?;
                set_str(&ds, name, value).map_err(e)
            }
        }
    }

    /// A numeric attribute of the group (f64 or u64 as given).
    pub(crate) fn set_num<T: hdf5::H5Type + Copy>(&self, name: &str, value: T) -> Result<()> {
        set_num(&self.group, name, value)
            .map_err(|err| Error::archive(&self.shared.path, format!("writing {name}: {err}")))
    }
}

impl SeriesWriter {
    /// Appends one save: `values[i]` is the row of the i-th series, in creation order.
    pub fn append(&mut self, t: f64, values: &[&[f64]]) -> Result<()> {
        let _io = self.shared.io();
        let path = self.shared.path.clone();
        let e =
            move |err: hdf5::Error| Error::archive(&path, format!("writing a save time: {err}"));
        if values.len() != self.series.len() {
            return Err(Error::archive(
                &self.shared.path,
                format!(
                    "internal: {} series given, {} declared",
                    values.len(),
                    self.series.len()
                ),
            ));
        }
        let k = self.saved;
        let datasets = std::iter::once(&self.t).chain(self.series.iter().map(|(_, ds, _)| ds));
        self.shared
            .make_room_for_save((&self.group, k), datasets, t)?;
        for ((name, ds, shape), v) in self.series.iter().zip(values) {
            let count: usize = shape.iter().product();
            if v.len() != count {
                return Err(Error::archive(
                    &self.shared.path,
                    format!(
                        "internal: series {name} expects {count} values, got {}",
                        v.len()
                    ),
                ));
            }
            let mut full = vec![k + 1];
            full.extend(shape);
            ds.resize(full).map_err(&e)?;
            let mut dims = vec![1usize];
            dims.extend(shape);
            let view = ndarray::ArrayViewD::from_shape(dims, v)
                .map_err(|x| Error::archive(&self.shared.path, format!("series {name}: {x}")))?;
            ds.write_slice(
                view,
                ndarray::SliceInfo::<_, ndarray::IxDyn, ndarray::IxDyn>::try_from(
                    std::iter::once(ndarray::SliceInfoElem::from(k..k + 1))
                        .chain(shape.iter().map(|_| ndarray::SliceInfoElem::from(..)))
                        .collect::<Vec<_>>(),
                )
                .map_err(|x| Error::archive(&self.shared.path, format!("series {name}: {x}")))?,
            )
            .map_err(&e)?;
        }
        // t last, after the other rows reached the file (see `RunWriter::append`).
        self.shared.file.flush().map_err(&e)?;
        self.t.resize(k + 1).map_err(&e)?;
        self.t.write_slice(&[t], s![k..k + 1]).map_err(&e)?;
        self.saved += 1;
        set_num(&self.group, "saved", self.saved as u64).map_err(&e)?;
        set_num(&self.group, "t_last", t).map_err(&e)?;
        self.shared.file.flush().map_err(&e)
    }

    /// A fixed dataset in this run's group (row-major values of the given shape).
    pub(crate) fn write_array(&self, name: &str, shape: &[usize], values: &[f64]) -> Result<()> {
        let run = Some((&self.group, self.saved));
        write_array(&self.group, &self.shared, run, name, shape, values)
    }

    pub(crate) fn set_str(&self, name: &str, value: &str) -> Result<()> {
        set_str(&self.group, name, value).map_err(|e| Error::archive(&self.shared.path, e))
    }
    /// A string attribute of the run's dataset `on` (e.g. the `columns` of its particles).
    pub(crate) fn set_str_on(&self, on: &str, name: &str, value: &str) -> Result<()> {
        let ds = self
            .group
            .dataset(on)
            .map_err(|e| Error::archive(&self.shared.path, format!("{on}: {e}")))?;
        set_str(&ds, name, value).map_err(|e| Error::archive(&self.shared.path, e))
    }
    /// A numeric attribute of the run, f64 or an exact integer (u64) as given.
    pub(crate) fn set_num<T: hdf5::H5Type + Copy>(&self, name: &str, value: T) -> Result<()> {
        set_num(&self.group, name, value).map_err(|e| Error::archive(&self.shared.path, e))
    }

    /// Records the solver statistics and the run's status, and flushes.
    pub fn finish(&self, stats: &SolverStats, status: &str) -> Result<()> {
        finish_group(
            &self.group,
            &self.shared.file,
            &self.shared.path,
            stats,
            status,
        )
    }
}

fn finish_group(
    g: &hdf5::Group,
    file: &hdf5::File,
    path: &Path,
    stats: &SolverStats,
    status: &str,
) -> Result<()> {
    let e = |err: hdf5::Error| Error::archive(path, format!("finishing a run: {err}"));
    set_num(g, "steps", stats.steps as u64).map_err(e)?;
    set_num(g, "rhs_evals", stats.rhs_evals as u64).map_err(e)?;
    set_num(g, "jacobian_evals", stats.jacobian_evals as u64).map_err(e)?;
    set_num(g, "lu_factorizations", stats.lu_factorizations as u64).map_err(e)?;
    set_num(g, "rejected_steps", stats.rejected_steps as u64).map_err(e)?;
    set_num(g, "wall_seconds", stats.wall_seconds).map_err(e)?;
    set_str(g, "status", status).map_err(e)?;
    file.flush().map_err(e)
}

/// An archive opened for reading, after checking it is ours and not from a newer format.
/// The classification scores of a run on labelled data that sweeps and `inspect` report: the
/// network's test accuracy, its final kernel distance, and kernel regression's test accuracy
/// with its tangent kernel at θ₀ and at the end, on the ±1 target and on the classes.
pub(crate) const CLASS_SCORES: [&str; 6] = [
    "accuracy_test",
    "kernel_distance",
    "kernel_accuracy_init",
    "kernel_accuracy_final",
    "kernel_class_accuracy_init",
    "kernel_class_accuracy_final",
];

pub struct ArchiveReader {
    pub file: hdf5::File,
    pub path: PathBuf,
}

impl ArchiveReader {
    pub fn open(path: &Path) -> Result<ArchiveReader> {
        if !path.exists() {
            return Err(Error::archive(path, "no such file"));
        }
        let file = hdf5::File::open(path).map_err(|e| {
            // A write that failed (a full disk) leaves the superblock claiming more than the file
            // holds; the saves before it are intact and HDF5's own tool makes them readable.
            let raw = e.to_string();
            let message = if raw.contains("lock file") {
                "another process has it open for writing (a run under way?); open it when that \
                 run has finished"
                    .to_string()
            } else if raw.contains("truncated file") {
                format!(
                    "not a readable HDF5 file: it is cut short (a write that failed, e.g. on a \
                     full disk?). The saves \
                     before it can be recovered with `h5clear --increment {}`, from hdf5-tools",
                    path.display()
                )
            } else {
                format!(
                    "not a readable HDF5 file (truncated or not HDF5?): {}",
                    crate::error::hdf5_reason(&e)
                )
            };
            Error::archive(path, message)
        })?;
        let version: i64 = file
            .attr("format_version")
            .and_then(|a| a.read_scalar())
            .map_err(|_| {
                Error::archive(
                    path,
                    "not a meanfield archive: the root has no format_version attribute",
                )
            })?;
        if version > FORMAT_VERSION {
            return Err(Error::archive(
                path,
                format!(
                    "format_version {version} is newer than this meanfield reads ({FORMAT_VERSION}); upgrade meanfield"
                ),
            ));
        }
        Ok(ArchiveReader {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The last value of a run's per-save series `runs/<run>/<series>` (None when it is absent
    /// or empty).
    pub(crate) fn last_saved(&self, run: &str, series: &str) -> Option<f64> {
        self.read_1d(&format!("runs/{run}/{series}"))
            .ok()
            .and_then(|v| v.last().copied())
    }

    /// A run's classification scores on labelled data, `CLASS_SCORES` in order (run attributes
    /// written by `run`, and the final kernel distance); None for a run without them.
    pub(crate) fn class_scores(&self, run: &str) -> Option<[f64; CLASS_SCORES.len()]> {
        let g = self.file.group(&format!("runs/{run}")).ok()?;
        Self::num_attr(&g, "accuracy_test")?;
        Some(CLASS_SCORES.map(|c| {
            match c {
                "kernel_distance" => self.last_saved(run, c),
                c => Self::num_attr(&g, c),
            }
            .unwrap_or(f64::NAN)
        }))
    }

    /// The particle columns' names (init/particles' `columns`: a, w0 … w{d−1}[, b]); empty when
    /// the archive has no particles.
    pub(crate) fn particle_columns(&self) -> Vec<String> {
        self.file
            .dataset("init/particles")
            .ok()
            .and_then(|d| Self::str_attr(&d, "columns"))
            .map(|c| c.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Indices of the first-layer weight columns w… among the particle columns.
    pub(crate) fn weight_columns(&self) -> Vec<usize> {
        self.particle_columns()
            .iter()
            .enumerate()
            .filter(|(_, c)| c.starts_with('w'))
            .map(|(i, _)| i)
            .collect()
    }

    pub fn str_attr(loc: &hdf5::Location, name: &str) -> Option<String> {
        loc.attr(name)
            .and_then(|a| a.read_scalar::<VarLenUnicode>())
            .ok()
            .map(|s| s.as_str().to_string())
    }

    /// An integer attribute read exactly (a seed above 2^53 survives; `num_attr` would round it
    /// through f64). Archives that stored it as a float give it back when it is integral.
    pub fn u64_attr(loc: &hdf5::Location, name: &str) -> Option<u64> {
        let a = loc.attr(name).ok()?;
        if a.dtype().ok()?.is::<f64>() {
            let v = a.read_scalar::<f64>().ok()?;
            return (v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64).then_some(v as u64);
        }
        a.read_scalar::<u64>().ok().or_else(|| {
            a.read_scalar::<i64>()
                .ok()
                .and_then(|v| u64::try_from(v).ok())
        })
    }

    /// The master seed the archive was written with.
    pub fn seed(loc: &hdf5::Location) -> Option<u64> {
        Self::u64_attr(loc, "seed")
    }

    pub fn num_attr(loc: &hdf5::Location, name: &str) -> Option<f64> {
        let a = loc.attr(name).ok()?;
        a.read_scalar::<f64>()
            .ok()
            .or_else(|| a.read_scalar::<u64>().ok().map(|v| v as f64))
            .or_else(|| a.read_scalar::<i64>().ok().map(|v| v as f64))
    }

    /// Names of the runs, in the file's order.
    pub fn runs(&self) -> Vec<String> {
        self.file
            .group("runs")
            .and_then(|g| g.member_names())
            .unwrap_or_default()
    }

    pub fn read_1d(&self, name: &str) -> Result<Vec<f64>> {
        let ds = self
            .file
            .dataset(name)
            .map_err(|e| Error::archive(&self.path, format!("{name}: {e}")))?;
        read_floats(&ds).map_err(|e| Error::archive(&self.path, format!("{name}: {e}")))
    }

    /// A dataset's shape and its values flattened in row-major order.
    pub fn read(&self, name: &str) -> Result<(Vec<usize>, Vec<f64>)> {
        let ds = self
            .file
            .dataset(name)
            .map_err(|e| Error::archive(&self.path, format!("{name}: {e}")))?;
        let v = read_floats(&ds).map_err(|e| Error::archive(&self.path, format!("{name}: {e}")))?;
        Ok((ds.shape(), v))
    }
}
