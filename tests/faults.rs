//! Faults that must neither lose nor falsify data (issue 25, part): an existing archive, an
//! output path that is an input, two writers on one archive, an absurd thread count and a
//! signal during start-up. Each case checks that what was there before is byte for byte
//! unchanged, or that the archive left behind reads as what it is.

use meanfield::archive::ArchiveReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_meanfield");

/// A run of a second or two (GD on 1024 samples, 512 particles), so that another process can
/// meet it while it writes.
fn problem(steps: usize) -> String {
    format!(
        r#"
seed = 5
output = "out.h5"
[data]
source = "synthetic"
input = "sphere"
d = 16
n_train = 1024
n_test = 64
target = {{ kind = "teacher", width = 3, activation = "tanh" }}
[model]
activation = "tanh"
width = 512
scaling = "mean_field"
[[dynamics]]
kind = "gd"
step = 0.05
steps = {steps}
[save]
count = 11
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn completed(path: &Path) -> bool {
    let a = ArchiveReader::open(path).unwrap();
    ArchiveReader::str_attr(&a.file, "status").as_deref() == Some("completed")
}

#[test]
fn an_existing_archive_is_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.toml", &problem(20));
    assert!(run_in(d, &["run", "p.toml", "-q"]).status.success());
    let before = std::fs::read(d.join("out.h5")).unwrap();
    let o = run_in(d, &["run", "p.toml", "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let msg = stderr(&o);
    assert!(
        msg.contains("out.h5") && msg.contains("--force") && msg.contains("--resume"),
        "{msg}"
    );
    assert_eq!(std::fs::read(d.join("out.h5")).unwrap(), before);
    let o = run_in(d, &["run", "p.toml", "-q", "--force", "--seed", "6"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(d.join("out.h5")).unwrap(), before);
    assert!(completed(&d.join("out.h5")));
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".part")), "{names:?}");
}

/// This machine's name, as temporary archive names hold it.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    assert_eq!(
        unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) },
        0
    );
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).to_string()
}

/// A run killed during its start-up leaves its temporary file `.NAME.HOST.PID.part`; the next
/// run on that path removes it, and leaves alone one whose process is alive or that another
/// machine's run wrote.
#[test]
fn temporary_files_of_dead_runs_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.toml", &problem(20));
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let host = hostname();
    let orphan = d.join(format!(".out.h5.{host}.{dead}.part"));
    let alive = d.join(format!(".out.h5.{host}.{}.part", std::process::id()));
    let elsewhere = d.join(format!(".out.h5.other-{host}.{dead}.part"));
    for (f, text) in [(&orphan, "cut"), (&alive, "in use"), (&elsewhere, "remote")] {
        std::fs::write(f, text).unwrap();
    }
    let o = run_in(d, &["run", "p.toml", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !orphan.exists(),
        "the dead run's temporary file is still there"
    );
    assert_eq!(std::fs::read(&alive).unwrap(), b"in use");
    assert_eq!(std::fs::read(&elsewhere).unwrap(), b"remote");
}

#[test]
fn an_output_that_is_an_input_is_refused_even_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = problem(20);
    write(d, "p.toml", &text);
    // The problem file itself.
    for force in [false, true] {
        let mut args = vec!["run", "p.toml", "-q", "--out", "p.toml"];
        if force {
            args.push("--force");
        }
        let o = run_in(d, &args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert_eq!(std::fs::read_to_string(d.join("p.toml")).unwrap(), text);
    }
    // An HDF5 data file (the shipped digits), under --force.
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.h5");
    std::fs::copy(&digits, d.join("digits.h5")).unwrap();
    let labelled = format!(
        "{}\n",
        text.replace(
            "source = \"synthetic\"\ninput = \"sphere\"\nd = 16\nn_train = 1024\nn_test = 64\ntarget = { kind = \"teacher\", width = 3, activation = \"tanh\" }",
            "source = \"hdf5\"\nfile = \"digits.h5\"\npositive = [0, 2, 4, 6, 8]\nn_train = 100\nn_test = 50",
        )
    );
    assert!(labelled.contains("digits.h5"));
    write(d, "digits.toml", &labelled);
    let o = run_in(
        d,
        &["run", "digits.toml", "-q", "--out", "digits.h5", "--force"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a meanfield archive"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(d.join("digits.h5")).unwrap(),
        std::fs::read(&digits).unwrap()
    );
    // The archive a repeat reads.
    assert!(run_in(d, &["run", "p.toml", "-q"]).status.success());
    let before = std::fs::read(d.join("out.h5")).unwrap();
    let o = run_in(
        d,
        &[
            "run", "--from", "out.h5", "--out", "out.h5", "--force", "-q",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("out.h5")).unwrap(), before);
}

#[test]
fn a_second_writer_never_touches_a_run_under_way() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.toml", &problem(600));
    let first = Command::new(BIN)
        .args(["run", "p.toml", "-q", "--threads", "1"])
        .current_dir(d)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !d.join("out.h5").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the first run never created its archive"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // It appears with its header written (HDF5's lock keeps readers out while it is written).
    assert!(std::fs::metadata(d.join("out.h5")).unwrap().len() > 0);
    for force in [false, true] {
        let mut args = vec!["run", "p.toml", "-q", "--threads", "1"];
        if force {
            args.push("--force");
        }
        let o = run_in(d, &args);
        assert_eq!(o.status.code(), Some(2), "force = {force}: {}", stderr(&o));
        let want = if force {
            "another process has it open"
        } else {
            "--force"
        };
        assert!(stderr(&o).contains(want), "force = {force}: {}", stderr(&o));
    }
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(completed(&d.join("out.h5")));
    let a = ArchiveReader::open(&d.join("out.h5")).unwrap();
    let t = a.read("runs/gd/t").unwrap().1;
    assert_eq!(t.len(), 11, "every save of the first run is there");
}

#[test]
fn absurd_thread_counts_are_capped_and_a_signal_at_start_up_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.toml", &problem(20));
    let o = run_in(d, &["run", "p.toml", "-q", "--threads", "100000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("more than 8 per core"),
        "{}",
        stderr(&o)
    );
    // SIGTERM right after start: the process ends promptly, whatever it was doing; if it got
    // as far as an archive, that archive says it did not complete.
    write(
        d,
        "long.toml",
        &problem(200_000).replace("out.h5", "long.h5"),
    );
    for delay_ms in [0u64, 20, 200] {
        let _ = std::fs::remove_file(d.join("long.h5"));
        let mut child = Command::new(BIN)
            .args(["run", "long.toml", "-q", "--threads", "100000"])
            .current_dir(d)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let start = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "SIGTERM after {delay_ms} ms did not stop the run"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(!status.success(), "delay {delay_ms} ms: {status}");
        if d.join("long.h5").exists() {
            assert!(!completed(&d.join("long.h5")));
        }
    }
}

/// Runs `args` in `dir` with the output file size limited to `limit` bytes (RLIMIT_FSIZE, with
/// SIGXFSZ ignored so that writes past it fail with EFBIG, as on a full disk).
fn run_with_file_limit(dir: &Path, args: &[&str], limit: u64, checked: bool) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir);
    if !checked {
        // The test hook that skips the room check (archive::room), so that a write fails
        // part-way, as when another process fills the disk between the check and the write.
        cmd.env("MEANFIELD_UNCHECKED_WRITES", "1");
    }
    // SAFETY: between fork and exec only async-signal-safe calls (signal, setrlimit).
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// A series' values; empty when the run did not get as far as creating it.
/// `h5clear --increment PATH` (hdf5-tools, installed by CI); false when the tool is missing.
fn h5clear(path: &Path) -> bool {
    match Command::new("h5clear")
        .arg("--increment")
        .arg(path)
        .output()
    {
        Ok(o) => {
            assert!(
                o.status.success(),
                "h5clear: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            true
        }
        Err(_) => {
            eprintln!("h5clear not found (apt-get install hdf5-tools): recovery not checked");
            false
        }
    }
}

fn series(path: &Path, name: &str) -> Vec<f64> {
    ArchiveReader::open(path)
        .unwrap()
        .read(name)
        .map(|r| r.1)
        .unwrap_or_default()
}

/// The GD series a fault test compares, and the uninterrupted run's values of them.
const SERIES: [&str; 3] = ["runs/gd/t", "runs/gd/loss_train", "runs/gd/particles"];

/// Asserts that every series of `out` holds, at each row below len(t), exactly the
/// uninterrupted run's values (`want`, `rows` saves); returns len(t).
fn rows_match(out: &Path, want: &[Vec<f64>], rows: usize, what: &str) -> usize {
    let got: Vec<Vec<f64>> = SERIES.iter().map(|n| series(out, n)).collect();
    let k = got[0].len();
    assert!(k <= rows, "{what}: more saves than the uninterrupted run");
    for (n, (g, w)) in SERIES.iter().zip(got.iter().zip(want)) {
        let per = w.len() / rows;
        assert!(g.len() >= k * per, "{what}: {n} has fewer rows than t");
        assert_eq!(
            g[..k * per],
            w[..k * per],
            "{what}: {n} differs within t's {k} rows"
        );
    }
    k
}

enum Resumed {
    /// Finished with the uninterrupted run's arrays bit for bit.
    Same,
    /// Refused with exit 2 (a last save that does not read back).
    Refused,
    /// HDF5 crashed on metadata cut mid-write (counted, not judged).
    Crashed,
}

/// `meanfield run --resume out`, judged against the uninterrupted run.
fn resume(dir: &Path, out: &Path, want: &[Vec<f64>], what: &str) -> Resumed {
    let o = run_in(dir, &["run", "--resume", out.to_str().unwrap(), "-q"]);
    if o.status.success() {
        for (n, w) in SERIES.iter().zip(want) {
            assert_eq!(&series(out, n), w, "{what}: resumed {n}");
        }
        Resumed::Same
    } else if o.status.code().is_none() {
        Resumed::Crashed
    } else {
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        Resumed::Refused
    }
}

/// A tmpfs of `mib` MiB mounted at `at` (created), unmounted when dropped; as root only.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(at: &Path, mib: usize) -> Tmpfs {
        std::fs::create_dir(at).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        assert!(mounted, "as root, a tmpfs is needed to test this");
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The room a run keeps for closing its archive (`archive::room::RESERVE`, 256 KiB).
const RESERVE: u64 = 256 << 10;

/// The GD problem of the full-disk tests, its uninterrupted archive `ref.h5` in `d`, that
/// archive's size and its series.
fn full_disk_reference(d: &Path) -> (u64, Vec<Vec<f64>>) {
    write(d, "p.toml", &problem(200));
    assert!(run_in(d, &["run", "p.toml", "-q", "--out", "ref.h5"])
        .status
        .success());
    let reference = d.join("ref.h5");
    let size = std::fs::metadata(&reference).unwrap().len();
    (size, SERIES.iter().map(|n| series(&reference, n)).collect())
}

/// A run that found no room for its next write (`o`, archive `out`): exit 3 saying so, and
/// either no archive and no temporary file left (nothing was written) or an archive that opens
/// as left, says why it stopped, holds the uninterrupted run's rows below len(t), and is not
/// complete. Returns len(t), or None when there is no archive.
fn stopped_for_room(o: &Output, out: &Path, want: &[Vec<f64>], what: &str) -> Option<usize> {
    let msg = stderr(o);
    assert_eq!(o.status.code(), Some(3), "{what}: {msg}");
    assert!(msg.contains("no room for"), "{what}: {msg}");
    let folder = out.parent().unwrap();
    let parts: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "{what}: left {parts:?}");
    if !out.exists() {
        assert!(msg.contains("nothing was written"), "{what}: {msg}");
        return None;
    }
    assert!(msg.contains("run --resume"), "{what}: {msg}");
    let a = ArchiveReader::open(out).unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = ArchiveReader::str_attr(&a.file, "status").unwrap_or_default();
    assert!(
        status.starts_with("incomplete") && status.contains("no room for"),
        "{what}: status {status}"
    );
    drop(a);
    Some(rows_match(out, want, want[0].len(), what))
}

/// The disk fills up at many moments of a GD run (the file size limit, `ulimit -f`, cuts it at
/// 12 sizes from 5% to 98.5% of what it needs to finish): the run checks for room before each write, so it
/// stops cleanly, and `run --resume` (with room again) finishes it with the uninterrupted run's
/// arrays bit for bit. No archive needs h5clear.
#[test]
fn a_full_disk_stops_the_run_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (size, want) = full_disk_reference(d);
    let (mut injected, mut none, mut kept, mut resumed, mut saves) = (0, 0, 0, 0, vec![]);
    for i in 0..12u64 {
        // Up to 98.5% of what the run needs to finish (its archive and the room kept for
        // closing it), so that the last cut falls at the last save.
        let limit = (size + RESERVE) * (50 + 85 * i) / 1000;
        let out = d.join(format!("cut{i}.h5"));
        let args = ["run", "p.toml", "-q", "--out", out.to_str().unwrap()];
        let o = run_with_file_limit(d, &args, limit, true);
        injected += 1;
        let what = format!("limit {limit} of {size} bytes");
        let Some(k) = stopped_for_room(&o, &out, &want, &what) else {
            none += 1;
            continue;
        };
        kept += 1;
        saves.push(k);
        match resume(d, &out, &want, &what) {
            Resumed::Same => resumed += 1,
            _ => panic!("{what}: the resume did not finish the run"),
        }
    }
    eprintln!(
        "full disk (file size limit): {injected} faults, {none} stopped before the archive appeared, {kept} archives readable as left with {saves:?} saves, {resumed} resumed bit for bit"
    );
    assert!(none > 0 && kept > 5, "the limits missed the saves");
    assert_eq!(
        saves.last(),
        Some(&(want[0].len() - 1)),
        "the last cut did not fall at the last save"
    );
}

/// A real full file system (a 2 MiB tmpfs, as root; CI is), filled to leave the run less and
/// less room: it stops cleanly each time, a resume with the disk still full is refused the same
/// way with the archive unchanged, and once there is room the resume finishes bit for bit.
#[test]
fn a_full_file_system_stops_the_run_cleanly() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: no tmpfs to fill (the file size limit test covers the check)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, want) = full_disk_reference(d);
    let mount = Tmpfs::new(&d.join("fs"), 2);
    let fs = mount.0.clone();
    let filler = fs.join("filler");
    let out = fs.join("out.h5");
    let (mut injected, mut kept, mut resumed) = (0, 0, 0);
    for free_kib in [200u64, 500, 800, 1100, 1300] {
        let _ = std::fs::remove_file(&out);
        std::fs::write(&filler, vec![1u8; ((2048 - free_kib) << 10) as usize]).unwrap();
        let o = run_in(d, &["run", "p.toml", "-q", "--out", out.to_str().unwrap()]);
        injected += 1;
        let what = format!("{free_kib} KiB free");
        let Some(k) = stopped_for_room(&o, &out, &want, &what) else {
            continue;
        };
        // Nothing is left set aside past the archive's end once it stopped.
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&out).unwrap();
        assert!(
            m.blocks() * 512 < m.len() + 4096,
            "{what}: blocks held past the end"
        );
        kept += 1;
        let before: Vec<Vec<f64>> = SERIES.iter().map(|n| series(&out, n)).collect();
        let o = run_in(d, &["run", "--resume", out.to_str().unwrap(), "-q"]);
        assert_eq!(stopped_for_room(&o, &out, &want, &what), Some(k));
        // Every series as it was, fill rows included (only the statuses were rewritten).
        for (n, b) in SERIES.iter().zip(&before) {
            assert_eq!(
                &series(&out, n),
                b,
                "{what}: {n} changed by a refused resume"
            );
        }
        std::fs::remove_file(&filler).unwrap();
        if let Resumed::Same = resume(d, &out, &want, &what) {
            resumed += 1;
        } else {
            panic!("{what}: the resume did not finish the run");
        }
        let m = std::fs::metadata(&out).unwrap();
        assert!(
            m.blocks() * 512 < m.len() + 4096,
            "{what}: blocks held past the end"
        );
    }
    eprintln!(
        "full tmpfs: {injected} faults, {kept} archives readable as left, {resumed} resumed bit for bit"
    );
    assert!(kept >= 3, "the fill levels missed the saves");
}

/// Six runs at once on one nearly full file system (a 3 MiB tmpfs with 1.6 MiB free, as root):
/// they check for room at about the same moments, and the room kept for closing an archive
/// absorbs what the others write in between. Each run completes with the uninterrupted run's
/// arrays or stops cleanly, and no archive needs h5clear.
#[test]
fn runs_sharing_a_full_disk_each_stop_cleanly() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: no tmpfs to share");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, want) = full_disk_reference(d);
    let mount = Tmpfs::new(&d.join("fs"), 3);
    let fs = mount.0.clone();
    std::fs::write(fs.join("filler"), vec![1u8; 1400 << 10]).unwrap();
    let outs: Vec<PathBuf> = (0..6).map(|j| fs.join(format!("o{j}.h5"))).collect();
    let children: Vec<_> = outs
        .iter()
        .map(|out| {
            Command::new(BIN)
                .args(["run", "p.toml", "-q", "--threads", "1", "--out"])
                .arg(out)
                .current_dir(d)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // All of them first: while one runs, its temporary file is in the folder.
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let (mut finished, mut stopped, mut kept) = (0, 0, 0);
    for (j, (o, out)) in outputs.iter().zip(&outs).enumerate() {
        let what = format!("writer {j}");
        if o.status.success() {
            finished += 1;
            for (n, w) in SERIES.iter().zip(&want) {
                assert_eq!(&series(out, n), w, "{what}: {n}");
            }
        } else {
            stopped += 1;
            kept += stopped_for_room(o, out, &want, &what).is_some() as usize;
        }
    }
    eprintln!(
        "shared full disk: 6 writers, {finished} finished, {stopped} stopped for room ({kept} \
         with an archive readable as left)"
    );
    assert!(stopped > 0, "the disk did not fill");
    assert!(kept + finished > 0, "no run got as far as saving");
}

/// Another process fills every block that comes free while a run writes (a 4 MiB tmpfs, as
/// root), from three moments after its archive appears: the run still never fails part-way. It stops
/// cleanly (the space it checked is set aside for it, and closing fits in the reserve) or
/// completes. Without the check (`MEANFIELD_UNCHECKED_WRITES=1`) the same fault ends in an HDF5
/// write error and an archive left "running".
#[test]
fn a_process_filling_the_disk_during_a_run_cannot_make_it_fail_part_way() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: no tmpfs to fill");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, want) = full_disk_reference(d);
    let mount = Tmpfs::new(&d.join("fs"), 4);
    let fs = mount.0.clone();
    let hog = fs.join("hog");
    let (mut finished, mut stopped, mut with_saves) = (0, 0, 0);
    for delay_ms in [0u64, 150, 300] {
        let _ = std::fs::remove_dir_all(&hog);
        std::fs::create_dir(&hog).unwrap();
        let out = fs.join(format!("o{delay_ms}.h5"));
        let child = Command::new(BIN)
            .args(["run", "p.toml", "-q", "--threads", "1", "--out"])
            .arg(&out)
            .current_dir(d)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // From the moment the archive is at its path (its first run began), plus the delay.
        let start = Instant::now();
        while !out.exists() && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        // The greedy process: appends 32 KiB at a time to a few files, for three seconds,
        // pausing a millisecond when the disk is full.
        use std::io::Write;
        let start = Instant::now();
        let chunk = vec![1u8; 32 << 10];
        let mut i = 0;
        while start.elapsed() < Duration::from_secs(3) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(hog.join(format!("{}", i % 8)))
                .unwrap();
            if f.write_all(&chunk).is_err() {
                std::thread::sleep(Duration::from_millis(1));
            }
            i += 1;
        }
        let o = child.wait_with_output().unwrap();
        let what = format!("filled from {delay_ms} ms");
        if o.status.success() {
            finished += 1;
            for (n, w) in SERIES.iter().zip(&want) {
                assert_eq!(&series(&out, n), w, "{what}: {n}");
            }
        } else {
            stopped += 1;
            with_saves += (stopped_for_room(&o, &out, &want, &what) > Some(0)) as usize;
        }
        let _ = std::fs::remove_file(&out);
    }
    eprintln!(
        "greedy filler: 3 faults, {finished} finished, {stopped} stopped cleanly \
         ({with_saves} after saving)"
    );
    assert!(with_saves > 0, "the filler never met a run that had saved");
}

/// A sweep task that found no room is not summarized as if it had finished: `sweep collect`
/// lists it with the command that runs it, and `run --resume` on its archive then completes it
/// with the arrays of a task that had room.
#[test]
fn a_sweep_task_stopped_for_room_is_listed_by_collect() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = format!(
        "{}[sweep]\nwidth = [512]\nalpha = [1.0, 1.0]\nsummary = \"sum.h5\"\n",
        problem(200)
    );
    write(d, "p.toml", &text);
    // Two tasks with the same α and seed: the same run, so the second must match the first.
    let o = run_in(d, &["sweep", "task", "p.toml", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = d.join("sum_tasks/task_0.h5");
    let second = d.join("sum_tasks/task_1.h5");
    let size = std::fs::metadata(&first).unwrap().len();
    let want: Vec<Vec<f64>> = SERIES.iter().map(|n| series(&first, n)).collect();
    let o = run_with_file_limit(
        d,
        &["sweep", "task", "p.toml", "1"],
        (size + RESERVE) * 8 / 10,
        true,
    );
    let k = stopped_for_room(&o, &second, &want, "task 1").expect("task 1's archive");
    assert!(k > 0 && k < want[0].len(), "{k} saves");
    let o = run_in(d, &["sweep", "collect", "p.toml"]);
    let msg = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("task_1.h5") && msg.contains("no room for"),
        "{msg}"
    );
    assert!(msg.contains("meanfield sweep task p.toml 1"), "{msg}");
    assert!(!msg.contains("task_0.h5"), "{msg}");
    assert!(matches!(resume(d, &second, &want, "task 1"), Resumed::Same));
    let o = run_in(d, &["sweep", "collect", "p.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A write that fails part-way (the room check skipped, as when another process fills the disk
/// between the check and the write), at many moments of a GD run (the file limit cuts the
/// archive at 12 sizes between its header and its end): the run fails, and whatever archive is
/// left either does not open, or holds at each row k < len(t) exactly the uninterrupted run's
/// t, loss and particles. `run --resume` then either refuses (the last save does not read back)
/// or finishes with the uninterrupted run's arrays bit for bit (or, on metadata cut mid-write,
/// HDF5 crashes: counted and reported, not a pass or fail).
#[test]
fn a_write_failing_part_way_never_leaves_a_save_that_reads_as_valid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (size, want) = full_disk_reference(d);
    let rows = want[0].len();
    let (mut injected, mut opened, mut recovered, mut unrecoverable) = (0, 0, 0, 0);
    let (mut resumed, mut refused, mut crashed) = (0, 0, 0);
    for i in 0..12u64 {
        let limit = size * (5 + 8 * i) / 100;
        let out = d.join(format!("cut{i}.h5"));
        let o = run_with_file_limit(
            d,
            &["run", "p.toml", "-q", "--out", out.to_str().unwrap()],
            limit,
            false,
        );
        injected += 1;
        assert!(
            !o.status.success(),
            "limit {limit} of {size} bytes: the run succeeded"
        );
        if !out.exists() {
            continue;
        }
        if let Err(e) = ArchiveReader::open(&out) {
            // A cut superblock: HDF5's h5clear restores what was saved before the failure.
            let e = e.to_string();
            if e.contains("addr overflow") {
                // Neither HDF5 nor h5clear opens it (issue 25's residue): lost, not falsified.
                unrecoverable += 1;
                continue;
            }
            assert!(e.contains("h5clear --increment"), "{e}");
            if !h5clear(&out) {
                continue;
            }
            // h5clear does not restore every cut (metadata written past the end): such a file
            // still does not open, which is one of the outcomes allowed above.
            if ArchiveReader::open(&out).is_err() {
                unrecoverable += 1;
                continue;
            }
            recovered += 1;
        } else {
            opened += 1;
        }
        assert!(
            !completed(&out),
            "limit {limit}: a cut archive says completed"
        );
        let what = format!("limit {limit} of {size}");
        assert!(rows_match(&out, &want, rows, &what) < rows);
        match resume(d, &out, &want, &what) {
            Resumed::Same => resumed += 1,
            Resumed::Refused => refused += 1,
            // HDF5 itself can crash on metadata cut mid-write (seen when the cut falls inside
            // a run group's creation): nothing is falsified, but the run must start again.
            Resumed::Crashed => crashed += 1,
        }
    }
    eprintln!(
        "write failing part-way: {injected} faults, {opened} archives readable as left, {recovered} after \
         h5clear, {unrecoverable} unreadable even after h5clear, {resumed} resumed bit for bit, \
         {refused} refused, {crashed} crashed in HDF5"
    );
    assert!(
        opened + recovered > 0,
        "no cut left a readable archive: the limits missed the saves"
    );
}

/// SIGKILL at 8 seeded moments of a GD run: the archive left behind opens, does not claim to
/// be complete, holds the uninterrupted run's rows below len(t), and `--resume` finishes it with
/// the uninterrupted run's arrays bit for bit (or refuses a save that does not read back).
#[test]
fn kill_9_at_random_moments_loses_and_falsifies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.toml", &problem(300));
    let start = Instant::now();
    assert!(run_in(d, &["run", "p.toml", "-q", "--out", "ref.h5"])
        .status
        .success());
    let full = start.elapsed().as_secs_f64();
    let reference = d.join("ref.h5");
    let want: Vec<Vec<f64>> = SERIES.iter().map(|n| series(&reference, n)).collect();
    let rows = want[0].len();
    // A fixed LCG: the same moments on every run of the test.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let (mut killed, mut checked, mut resumed, mut refused) = (0, 0, 0, 0);
    for i in 0..8 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let frac = (state >> 11) as f64 / (1u64 << 53) as f64;
        let out = d.join(format!("k{i}.h5"));
        let mut child = Command::new(BIN)
            .args(["run", "p.toml", "-q", "--out", out.to_str().unwrap()])
            .current_dir(d)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(frac * full));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        killed += 1;
        if !out.exists() {
            continue;
        }
        drop(ArchiveReader::open(&out).unwrap_or_else(|e| panic!("kill {i} at {frac:.2}: {e}")));
        checked += 1;
        let what = format!("kill {i} at {frac:.2}");
        let k = rows_match(&out, &want, rows, &what);
        if !status.success() {
            assert!(k < rows || !completed(&out), "{what}");
        }
        match resume(d, &out, &want, &what) {
            Resumed::Same => resumed += 1,
            Resumed::Refused => refused += 1,
            Resumed::Crashed => panic!("{what}: the resume crashed"),
        }
    }
    eprintln!("kill -9: {killed} kills, {checked} archives checked, {resumed} resumed bit for bit, {refused} refused");
    assert!(checked > 0);
}

/// An output folder that cannot be written: exit 2 naming it, and nothing left in it.
#[test]
fn a_read_only_output_folder_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.toml", &problem(20));
    let ro = d.join("ro");
    std::fs::create_dir(&ro).unwrap();
    // Root ignores permission bits: mount a read-only tmpfs there instead.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mounted = root
        && Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
            .arg(&ro)
            .status()
            .is_ok_and(|s| s.success());
    if !root {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    assert!(
        mounted || !root,
        "as root, a read-only tmpfs is needed to test this"
    );
    let o = run_in(d, &["run", "p.toml", "-q", "--out", "ro/out.h5"]);
    let listing: Vec<_> = std::fs::read_dir(&ro).unwrap().collect();
    if mounted {
        let _ = Command::new("umount").arg(&ro).status();
    }
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write in"), "{}", stderr(&o));
    assert!(listing.is_empty(), "{listing:?}");
}
