//! Runs that are killed or interrupted: the archive stays readable and says how far it got,
//! and `meanfield run --resume` continues it. GD continues bit for bit.

mod common;

use common::all_datasets;
use meanfield::archive::ArchiveReader;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_meanfield");

/// GD long enough to be stopped mid-run, with a flow after it (runs go in file order).
const PROBLEM: &str = r#"
seed = 5
output = "unused.h5"
[data]
source = "synthetic"
input = "gaussian"
d = 8
n_train = 200
n_test = 50
target = { kind = "teacher", width = 3, activation = "tanh" }
[model]
activation = "tanh"
width = 256
bias = true
scaling = "mean_field"
[[dynamics]]
kind = "gd"
step = 0.02
steps = 800
[[dynamics]]
kind = "gradient_flow"
method = "tsit45"
rtol = 1e-7
atol = 1e-9
t_end = 3.0
[save]
count = 50
kernel_points = 4
particles = true
"#;

fn saved(path: &Path, run: &str) -> usize {
    let a = ArchiveReader::open(path).unwrap();
    a.read_1d(&format!("runs/{run}/t")).map_or(0, |t| t.len())
}

/// Starts a run, sends `signal` once `run` has saved `saves` times (the save is on disk when
/// `--verbose` reports it), and returns the exit code. Watching the saves rather than the clock
/// keeps the kill inside the run on a fast or a loaded machine.
fn run_and_signal(dir: &Path, out: &str, run: &str, saves: usize, signal: &str) -> Option<i32> {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["run", "p.toml", "--out", out, "--verbose", "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let want = format!("[{run}] saved {saves}/");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = false;
    for line in lines.by_ref() {
        if line.unwrap().starts_with(&want) {
            seen = true;
            break;
        }
    }
    assert!(seen, "the child never reported {want}");
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    // Keep reading until the child is gone, as a terminal would.
    lines.for_each(drop);
    child.wait().unwrap().code()
}

#[test]
fn killed_and_interrupted_runs_resume_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("p.toml"), PROBLEM).unwrap();
    let full = Command::new(BIN)
        .current_dir(d)
        .args(["run", "p.toml", "--out", "full.h5", "-q", "--threads", "1"])
        .status()
        .unwrap();
    assert!(full.success());
    let reference = all_datasets(&d.join("full.h5"));
    let total_gd = saved(&d.join("full.h5"), "gd");

    // SIGKILL early and late in GD and inside the flow: every archive opens, says it did not
    // complete, and resumes to the same arrays as the uninterrupted run (GD bit for bit, the
    // flow to its tolerance).
    let mut mid_gd = 0;
    for (i, (run, saves)) in [("gd", 10), ("gd", 40), ("gradient_flow", 20)]
        .into_iter()
        .enumerate()
    {
        let out = format!("k{i}.h5");
        let code = run_and_signal(d, &out, run, saves, "-KILL");
        assert_eq!(code, None, "the child should have been killed");
        let path = d.join(&out);
        let a = ArchiveReader::open(&path).expect("a killed run leaves a readable archive");
        assert_eq!(
            ArchiveReader::str_attr(&a.file, "status").as_deref(),
            Some("running")
        );
        drop(a);
        let inspect = Command::new(BIN)
            .args(["inspect", path.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&inspect.stdout);
        assert!(text.contains("not completed"), "{text}");
        let k = saved(&path, "gd");
        if k > 0 && k < total_gd {
            mid_gd += 1;
        }
        let resumed = Command::new(BIN)
            .current_dir(d)
            .args(["run", "--resume", &out, "-q"])
            .output()
            .unwrap();
        assert!(
            resumed.status.success(),
            "{}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        let got = all_datasets(&path);
        assert_eq!(got.len(), reference.len());
        for ((name, want), (gname, have)) in reference.iter().zip(&got) {
            assert_eq!(name, gname);
            assert_eq!(want.len(), have.len(), "{name}");
            if name.starts_with("runs/gradient_flow") {
                // Restarted at a save time with the same tolerances: equal to the tolerance.
                let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                let diff = want
                    .iter()
                    .zip(have)
                    .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
                assert!(diff <= 1e-5 * scale, "{name}: {diff}");
            } else {
                assert!(
                    want.iter()
                        .zip(have)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{name} differs after resuming run {i}"
                );
            }
        }
    }
    assert!(mid_gd >= 2, "the kills did not land in the middle of GD");

    // Ctrl-C (SIGINT) mid-GD: a clean stop, exit code 3, the reason recorded, and a resume.
    let code = run_and_signal(d, "int.h5", "gd", 15, "-INT");
    assert_eq!(code, Some(3));
    let a = ArchiveReader::open(&d.join("int.h5")).unwrap();
    let status = ArchiveReader::str_attr(&a.file, "status").unwrap();
    assert!(status.contains("interrupted"), "{status}");
    let steps_before = ArchiveReader::num_attr(&a.file.group("runs/gd").unwrap(), "steps").unwrap();
    drop(a);
    let resumed = Command::new(BIN)
        .current_dir(d)
        .args(["run", "--resume", "int.h5", "-q"])
        .status()
        .unwrap();
    assert!(resumed.success());
    let got = all_datasets(&d.join("int.h5"));
    for ((name, want), (_, have)) in reference.iter().zip(&got) {
        if name.starts_with("runs/gd/") {
            assert!(
                want.iter()
                    .zip(have)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{name}"
            );
        }
    }
    // The counts: `steps` is the work of the whole run, the part before the signal plus the
    // part since the resume (which redoes the steps after the last save, so it is at least the
    // uninterrupted run's), and `counts` says so.
    let attr = |file: &str, k: &str| {
        let a = ArchiveReader::open(&d.join(file)).unwrap();
        let g = a.file.group("runs/gd").unwrap();
        ArchiveReader::num_attr(&g, k)
    };
    let whole = attr("full.h5", "steps").unwrap();
    let since = attr("int.h5", "steps_since_resume").unwrap();
    assert!(since > 0.0 && since < whole, "{since} of {whole}");
    assert_eq!(attr("int.h5", "steps"), Some(steps_before + since));
    assert!(steps_before + since >= whole);
    let a = ArchiveReader::open(&d.join("int.h5")).unwrap();
    let counts = ArchiveReader::str_attr(&a.file.group("runs/gd").unwrap(), "counts").unwrap();
    assert!(counts.starts_with("whole run"), "{counts}");
}

#[test]
fn resume_refuses_what_it_cannot_continue() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("junk.h5"), "not hdf5").unwrap();
    let o = Command::new(BIN)
        .current_dir(d)
        .args(["run", "--resume", "junk.h5"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a readable HDF5"));
    let o = Command::new(BIN)
        .current_dir(d)
        .args(["run", "--resume", "none.h5"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such file"));
}

/// A completed archive has nothing to resume: said so, exit 0, and the file is left untouched.
#[test]
fn resume_of_a_completed_archive_says_there_is_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let small = PROBLEM
        .replace("steps = 800", "steps = 20")
        .replace("t_end = 3.0", "t_end = 0.1")
        .replace("count = 50", "count = 3");
    std::fs::write(d.join("p.toml"), small).unwrap();
    let o = Command::new(BIN)
        .current_dir(d)
        .args(["run", "p.toml", "--out", "done.h5", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = std::fs::read(d.join("done.h5")).unwrap();
    let o = Command::new(BIN)
        .current_dir(d)
        .args(["run", "--resume", "done.h5"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("nothing to resume"), "{out}");
    assert_eq!(std::fs::read(d.join("done.h5")).unwrap(), before);
}

/// Diagonal and linear-network archives are recomputed from their record on resume: the result
/// has the uninterrupted run's arrays and replaces the archive.
#[test]
fn diagonal_and_linear_archives_resume_by_recomputing_their_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let linear = "seed = 2\noutput = \"lin.h5\"\n[data]\ntask = \"denoising\"\nd = 16\nrank = 2\n\
                  [model]\nkind = \"linear\"\ngamma_sigma2 = -1.5\ngamma_w = 2.0\n\
                  [training]\nsteps = 10\n[[dynamics]]\nkind = \"gd\"\n\
                  [[dynamics]]\nkind = \"self_consistent\"\n";
    let diagonal = "seed = 2\noutput = \"diag.h5\"\n[data]\nsource = \"synthetic\"\n\
                    input = \"gaussian\"\nd = 12\nn_train = 6\nn_test = 20\n\
                    target = { kind = \"sparse\", support = 2 }\n[model]\nkind = \"diagonal\"\n\
                    alpha = 1e-3\n[[dynamics]]\nkind = \"saddle_limit\"\n\
                    [[dynamics]]\nkind = \"gd\"\nstep = 0.05\nsteps = 100\n";
    for (name, text, archive) in [
        ("lin.toml", linear, "lin.h5"),
        ("diag.toml", diagonal, "diag.h5"),
    ] {
        std::fs::write(d.join(name), text).unwrap();
        let o = Command::new(BIN)
            .current_dir(d)
            .args(["run", name, "-q"])
            .status()
            .unwrap();
        assert!(o.success());
        let want = all_datasets(&d.join(archive));
        {
            // What a kill leaves: the root status still says "running".
            let f = hdf5::File::open_rw(d.join(archive)).unwrap();
            f.delete_attr("status").unwrap();
            f.new_attr::<hdf5::types::VarLenUnicode>()
                .create("status")
                .unwrap()
                .write_scalar(&"running".parse::<hdf5::types::VarLenUnicode>().unwrap())
                .unwrap();
        }
        let o = Command::new(BIN)
            .current_dir(d)
            .args(["run", "--resume", archive, "-q"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let a = ArchiveReader::open(&d.join(archive)).unwrap();
        assert_eq!(
            ArchiveReader::str_attr(&a.file, "status").as_deref(),
            Some("completed")
        );
        drop(a);
        let got = all_datasets(&d.join(archive));
        assert_eq!(want.len(), got.len());
        for ((n, x), (m, y)) in want.iter().zip(&got) {
            assert_eq!(n, m);
            assert!(
                x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits()) && x.len() == y.len(),
                "{archive}: {n}"
            );
        }
        assert!(!d.join(archive).with_extension("resume.h5").exists());
    }
}
