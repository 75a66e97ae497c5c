//! The binary end to end: archive round trip, determinism across thread counts, and every bad
//! input producing one clear error, exit code 2 and no archive.

mod common;

use common::{all_datasets, assert_refused, run, stderr, write, BIN};
use meanfield::archive::ArchiveReader;
use meanfield::family::two_layer::Setup;
use meanfield::family::RunOptions;
use meanfield::model::{init, Workspace};
use std::path::{Path, PathBuf};
use std::process::Command;

const SMALL: &str = r#"
seed = 3
output = "out.h5"

[data]
source = "synthetic"
input = "gaussian"
d = 3
n_train = 20
n_test = 10
target = { kind = "teacher", width = 2, activation = "tanh" }

[model]
activation = "tanh"
width = 16
bias = true
scaling = "mean_field"
init = { b_std = 0.2 }

[[dynamics]]
kind = "gd"
step = 0.05
steps = 40

[[dynamics]]
kind = "gradient_flow"
method = "bdf"
rtol = 1e-7
atol = 1e-9
t_end = 2.0

[save]
count = 5
kernel_points = 6
"#;

/// Runs SMALL in `dir` into `dir/a.h5` and returns the archive's path.
fn run_small(dir: &Path) -> PathBuf {
    let problem = write(dir, "p.toml", SMALL);
    let archive = dir.join("a.h5");
    let o = run(&[
        "run",
        problem.to_str().unwrap(),
        "--out",
        archive.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    archive
}

#[test]
fn archive_round_trip_matches_an_independent_recomputation() {
    let dir = tempfile::tempdir().unwrap();
    let problem = write(dir.path(), "p.toml", SMALL);
    let out = dir.path().join("a.h5");
    let o = run(&[
        "run",
        problem.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let a = ArchiveReader::open(&out).unwrap();
    assert_eq!(
        ArchiveReader::str_attr(&a.file, "status").unwrap(),
        "completed"
    );
    assert_eq!(ArchiveReader::str_attr(&a.file, "problem").unwrap(), SMALL);
    assert_eq!(
        a.runs(),
        vec!["gd".to_string(), "gradient_flow".to_string()]
    );

    // The initial particles are the seeded draw.
    let setup = Setup::load(&problem, &RunOptions::default()).unwrap();
    let spec = &setup.problem.model.init;
    let theta0 = init::draw(spec, 16, 3, true, 3);
    let (shape, stored) = a.read("init/particles").unwrap();
    assert_eq!(shape, vec![16, 5]);
    assert_eq!(stored, theta0);
    let (_, xs) = a.read("data/x_train").unwrap();
    assert_eq!(xs[3 * 7 + 2], setup.data.x_train[(7, 2)]);

    for run_name in a.runs() {
        let (pshape, particles) = a.read(&format!("runs/{run_name}/particles")).unwrap();
        assert_eq!(pshape, vec![5, 16, 5]);
        let (_, f_train) = a.read(&format!("runs/{run_name}/f_train")).unwrap();
        let loss = a.read_1d(&format!("runs/{run_name}/loss_train")).unwrap();
        let (kshape, kernel) = a.read(&format!("runs/{run_name}/kernel")).unwrap();
        assert_eq!(kshape, vec![5, 6, 6]);
        let t = a.read_1d(&format!("runs/{run_name}/t")).unwrap();
        assert_eq!(t, vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        let mut ws = Workspace::default();
        for k in 0..5 {
            // Outputs and losses recomputed from the stored particles.
            let th = &particles[k * 80..(k + 1) * 80];
            let f = setup
                .model
                .predict(th, setup.data.x_train.as_ref(), &mut ws);
            assert_eq!(&f_train[k * 20..(k + 1) * 20], f.as_slice());
            let l = meanfield::model::mse(&setup.data.y_train, &f);
            assert!((loss[k] - l).abs() <= 1e-15 * l.abs().max(1.0));
            // Kernel is symmetric with a positive diagonal.
            let km = &kernel[k * 36..(k + 1) * 36];
            for i in 0..6 {
                assert!(km[i * 7] > 0.0);
                for j in 0..6 {
                    assert_eq!(km[i * 6 + j], km[j * 6 + i]);
                }
            }
        }
        // The loss decreased.
        assert!(loss[4] < loss[0]);
    }
    let o = run(&["inspect", out.to_str().unwrap()]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("/runs/gd/particles") && text.contains("[5, 16, 5]"));
    assert!(text.contains("completed"));
}

#[test]
fn same_seed_gives_identical_arrays_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let problem = write(dir.path(), "p.toml", SMALL);
    let mut archives = vec![];
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("t{threads}.h5"));
        let o = run(&[
            "run",
            problem.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--threads",
            threads,
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        archives.push(ArchiveReader::open(&out).unwrap());
    }
    for name in ["init/particles", "data/x_train", "data/y_test"] {
        assert_eq!(
            archives[0].read(name).unwrap(),
            archives[1].read(name).unwrap()
        );
    }
    for r in ["gd", "gradient_flow"] {
        for ds in [
            "particles",
            "f_train",
            "f_test",
            "kernel",
            "loss_train",
            "t",
        ] {
            let name = format!("runs/{r}/{ds}");
            let (a, b) = (
                archives[0].read(&name).unwrap(),
                archives[1].read(&name).unwrap(),
            );
            assert!(
                a.1.iter()
                    .zip(&b.1)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{name} differs between 1 and 2 threads"
            );
        }
    }
}

#[test]
fn bad_problem_files_are_refused_with_the_key() {
    // (problem text, key the error must name, words the error must contain)
    let cases: Vec<(String, &str, &str)> = vec![
        (
            SMALL.replace("width = 16", "width = 16\nwidht = 3"),
            "widht",
            "unknown key",
        ),
        (
            SMALL.replace("width = 16", "width = \"wide\""),
            "model.width",
            "integer",
        ),
        (
            SMALL.replace("width = 16", "width = 0"),
            "model.width",
            "[1,",
        ),
        (
            SMALL.replace("rtol = 1e-7", "rtol = nan"),
            "dynamics[1].rtol",
            "finite number > 0",
        ),
        (
            SMALL.replace("step = 0.05", "step = -1.0"),
            "dynamics[0].step",
            "> 0",
        ),
        (
            SMALL.replace(
                "activation = \"tanh\"\nwidth",
                "activation = \"gelu\"\nwidth",
            ),
            "model.activation",
            "unknown activation \"gelu\"; expected one of relu",
        ),
        (SMALL.replace("[model]", "[modle]"), "modle", "unknown key"),
        (
            SMALL.replace("width = 16", "width = 1000000"),
            "model.width",
            "GiB",
        ),
        (
            SMALL.replace("kernel_points = 6", "kernel_points = 60"),
            "save.kernel_points",
            "at most",
        ),
        (
            SMALL.replace(
                "[save]",
                "[[dynamics]]\nkind = \"residual\"\nmethod = \"bdf\"\nt_end = 1.0\n\n[save]",
            ),
            "dynamics[2].method",
            "tsit45",
        ),
        (
            SMALL.replace("\nd = 3\n", "\nd = 3\nradius = 2.0\n"),
            "data.radius",
            "sphere",
        ),
    ];
    for (text, key, expect) in &cases {
        assert_refused(text, key, expect);
    }
}

#[test]
fn nan_in_data_is_refused_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), "0.1,0.2,1.0\n0.3,nan,0.5\n").unwrap();
    let text = SMALL.replace(
        "source = \"synthetic\"\ninput = \"gaussian\"\nd = 3\nn_train = 20\nn_test = 10\ntarget = { kind = \"teacher\", width = 2, activation = \"tanh\" }",
        "source = \"csv\"\ntrain = \"train.csv\"",
    ).replace("kernel_points = 6", "kernel_points = 0");
    let problem = write(dir.path(), "bad.toml", &text);
    let out = dir.path().join("bad.h5");
    let o = run(&[
        "run",
        problem.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("data.train") && err.contains("train.csv:2") && err.contains("column 2"),
        "{err}"
    );
    assert!(!out.exists());

    // The same file without the NaN runs.
    std::fs::write(dir.path().join("train.csv"), "0.1,0.2,1.0\n0.3,0.1,0.5\n").unwrap();
    let o = run(&[
        "run",
        problem.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn unwritable_output_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let problem = write(dir.path(), "p.toml", SMALL);
    let blocker = write(dir.path(), "file", "not a folder");
    let out = blocker.join("a.h5");
    let o = run(&[
        "run",
        problem.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("a.h5") && err.contains("cannot"), "{err}");
}

#[test]
fn a_diverging_run_keeps_its_saves_and_says_when_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let text = SMALL
        .replace("step = 0.05\nsteps = 40", "step = 1e6\nsteps = 40")
        .replace(
            "activation = \"tanh\"\nwidth",
            "activation = \"quadratic\"\nwidth",
        );
    let problem = write(dir.path(), "p.toml", &text);
    let out = dir.path().join("a.h5");
    let o = run(&[
        "run",
        problem.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("non-finite") && err.contains("step size"),
        "{err}"
    );
    let a = ArchiveReader::open(&out).unwrap();
    let root = ArchiveReader::str_attr(&a.file, "status").unwrap();
    assert!(root.starts_with("incomplete"), "{root}");
    let g = a.file.group("runs/gd").unwrap();
    let status = ArchiveReader::str_attr(&g, "status").unwrap();
    assert!(status.contains("stopped at t ="), "{status}");
    // The first save (t = 0) is kept and readable.
    assert!(!a.read_1d("runs/gd/t").unwrap().is_empty());
    // The other dynamics still ran.
    let g = a.file.group("runs/gradient_flow").unwrap();
    assert_eq!(ArchiveReader::str_attr(&g, "status").unwrap(), "completed");
}

#[test]
fn foreign_and_missing_archives_are_refused_by_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["inspect", dir.path().join("none.h5").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no such file"));
    let junk = write(dir.path(), "junk.h5", "not hdf5 at all");
    let o = run(&["inspect", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a readable HDF5"), "{}", stderr(&o));
    let other = dir.path().join("other.h5");
    {
        // Closed before the binary opens it: HDF5 locks files that are open for writing.
        let f = hdf5::File::create(&other).unwrap();
        f.create_group("x").unwrap();
        f.close().unwrap();
    }
    let o = run(&["inspect", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not a meanfield archive"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sweep_commands_refuse_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    // No [sweep] table.
    let problem = write(dir.path(), "p.toml", SMALL);
    let o = run(&["sweep", "list", problem.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("p.toml: sweep: expected a [sweep] table"),
        "{}",
        stderr(&o)
    );
    // Out-of-range task index, non-positive α.
    let summary = dir.path().join("s.h5");
    let text = format!(
        "{SMALL}\n[sweep]\nalpha = [1.0, 2.0]\nsummary = \"{}\"\n",
        summary.display()
    );
    let problem = write(dir.path(), "s.toml", &text);
    let o = run(&["sweep", "task", problem.to_str().unwrap(), "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("out of range") && stderr(&o).contains("2 tasks"),
        "{}",
        stderr(&o)
    );
    let o = run(&["sweep", "list", problem.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("task_1.h5"));
    let bad = write(
        dir.path(),
        "b.toml",
        &text.replace("alpha = [1.0, 2.0]", "alpha = [1.0, -2.0]"),
    );
    let o = run(&["sweep", "list", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("sweep.alpha[1]"), "{}", stderr(&o));
}

const DIAGONAL: &str = r#"
seed = 2
output = "out.h5"

[data]
source = "synthetic"
input = "gaussian"
d = 12
n_train = 6
n_test = 20
target = { kind = "sparse", support = 2 }

[model]
kind = "diagonal"
alpha = 1e-3

[[dynamics]]
kind = "saddle_limit"

[[dynamics]]
kind = "mirror_flow"
alphas = [1e-3, 1e-12]

[[dynamics]]
kind = "gd"
step = 0.05
steps = 200
"#;

#[test]
fn diagonal_problem_runs_and_inspect_prints_the_saddles() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("problems/saddle_notes.toml");
    let out = dir.path().join("s.h5");
    let o = run(&[
        "run",
        shipped.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("saddle-to-saddle limit"), "{text}");
    let o = run(&["inspect", out.to_str().unwrap()]);
    assert!(o.status.success());
    let inspected = String::from_utf8_lossy(&o.stdout).to_string();
    // The table of saddles: k = 0 … 7, the 5th jump with coordinate 3 leaving.
    let rows: Vec<&str> = inspected
        .lines()
        .skip_while(|l| !l.starts_with("saddle-to-saddle limit"))
        .skip(2)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(rows.len(), 8, "{inspected}");
    let fifth: Vec<&str> = rows[5].split_whitespace().collect();
    assert_eq!(fifth[0], "5");
    assert_eq!(fifth[3], "3", "left column of the 5th jump: {}", rows[5]);
    for name in ["mirror_flow_alpha_1e-24", "gradient_flow", "gd"] {
        assert!(inspected.contains(name), "{name} missing in {inspected}");
    }
    let a = ArchiveReader::open(&out).unwrap();
    assert_eq!(a.read("runs/saddle_limit/beta").unwrap().0, vec![8, 8]);
    let (shape, _) = a.read("runs/mirror_flow_alpha_1e-6/q").unwrap();
    assert_eq!(shape[1], 8);
    assert_eq!(
        ArchiveReader::str_attr(&a.file, "status").unwrap(),
        "completed"
    );
}

#[test]
fn bad_diagonal_problems_are_refused_with_the_key() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            DIAGONAL.replace("alpha = 1e-3\n", "alpha = 2.0\n"),
            "model.alpha",
            "(0, 1)",
        ),
        (
            DIAGONAL.replace("kind = \"diagonal\"", "kind = \"diagonl\""),
            "model.kind",
            "\"diagonal\"",
        ),
        (
            DIAGONAL.replace("alphas = [1e-3, 1e-12]", "alphas = [1e-3, 0.0]"),
            "dynamics[1].alphas[1]",
            "(0, 1)",
        ),
        (
            DIAGONAL.replace(
                "{ kind = \"sparse\", support = 2 }",
                "{ kind = \"teacher\", width = 2 }",
            ),
            "data.target.kind",
            "linear targets",
        ),
        (
            DIAGONAL.replace("support = 2", "support = 20"),
            "data.target.support",
            "at most",
        ),
        (
            DIAGONAL.replace("steps = 200", "steps = 200\nmomentum = 0.9"),
            "momentum",
            "unknown key",
        ),
        (
            DIAGONAL.replace("kind = \"gd\"", "kind = \"ntk_limit\""),
            "dynamics",
            "unknown variant",
        ),
        (DIAGONAL.replace("d = 12", "d = 100000"), "data.d", "GiB"),
        // serde's words become the problem file's: the entry of an array of tables, a list
        // given as one table, a missing key, a table given as a number.
        (
            SMALL.replace("t_end = 2.0", "t_end = 2.0\nrtl = 1e-6"),
            "dynamics[1].rtl",
            "unknown key; expected one of name, method, rtol",
        ),
        (
            {
                // One [dynamics] table instead of [[dynamics]] entries.
                let (second, save) = (
                    SMALL.rfind("[[dynamics]]").unwrap(),
                    SMALL.find("[save]").unwrap(),
                );
                format!("{}{}", &SMALL[..second], &SMALL[save..])
                    .replace("[[dynamics]]", "[dynamics]")
            },
            "dynamics",
            "expected a list of tables",
        ),
        (
            SMALL.replace("width = 16\n", ""),
            "model.width",
            "required, and missing",
        ),
        (
            SMALL.replace("init = { b_std = 0.2 }", "init = 3"),
            "model.init",
            "expected a table",
        ),
    ];
    for (text, key, expect) in &cases {
        assert_refused(text, key, expect);
    }
    // Sweeps are for two-layer problems; a diagonal file gets a clear refusal.
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "diag.toml", DIAGONAL);
    let o = run(&["sweep", "list", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("model.kind"), "{}", stderr(&o));
}

const LINEAR: &str = r#"
seed = 2
output = "unused.h5"
[data]
task = "whitened_regression"
d = 12
rank = 2
n = 40
[model]
kind = "linear"
gamma_sigma2 = -1.5
gamma_w = 2.0
[training]
steps = 20
[[dynamics]]
kind = "gd"
[[dynamics]]
kind = "self_consistent"
method = "tsit45"
"#;

#[test]
fn a_run_repeats_from_its_archive_alone() {
    // `run --from` reads the resolved problem (defaults filled in), the seed and the problem's
    // folder from the archive, and gets identical arrays — for every model kind.
    for (text, name) in [
        (SMALL, "two_layer"),
        (DIAGONAL, "diagonal"),
        (LINEAR, "linear"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let problem = write(dir.path(), &format!("{name}.toml"), text);
        let first = dir.path().join("first.h5");
        let o = run(&[
            "run",
            problem.to_str().unwrap(),
            "--out",
            first.to_str().unwrap(),
            "--seed",
            "7",
            "--quiet",
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        // The problem file is gone: the archive alone must do.
        std::fs::remove_file(&problem).unwrap();
        let o = run(&["run", "--from", first.to_str().unwrap(), "--quiet"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let again = dir.path().join("first_repeat.h5");
        let (a, b) = (all_datasets(&first), all_datasets(&again));
        assert!(a.len() > 3, "{name}: {a:?}");
        assert_eq!(
            a.iter().map(|x| &x.0).collect::<Vec<_>>(),
            b.iter().map(|x| &x.0).collect::<Vec<_>>()
        );
        for ((n, x), (_, y)) in a.iter().zip(&b) {
            assert!(
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{name}: {n} differs on repeat"
            );
        }
        let r = ArchiveReader::open(&again).unwrap();
        assert_eq!(ArchiveReader::num_attr(&r.file, "seed"), Some(7.0));
        let commit = ArchiveReader::str_attr(&r.file, "git_commit").unwrap();
        assert!(!commit.is_empty(), "{name}");
    }
    // An archive without a record is refused with its path.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.h5");
    {
        let f = hdf5::File::create(&other).unwrap();
        f.new_attr::<i64>()
            .create("format_version")
            .unwrap()
            .write_scalar(&1i64)
            .unwrap();
        f.close().unwrap();
    }
    let o = run(&["run", "--from", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot be repeated"), "{}", stderr(&o));
}

#[test]
fn verbose_logs_every_solver_event_the_archive_counts() {
    let dir = tempfile::tempdir().unwrap();
    let text = SMALL.replace(
        "[save]",
        "[[dynamics]]\nkind = \"gradient_flow\"\nname = \"explicit\"\nmethod = \"tsit45\"\nrtol = 1e-9\natol = 1e-11\nt_end = 2.0\n\n[save]",
    );
    let p = write(dir.path(), "v.toml", &text);
    let out = dir.path().join("v.h5");
    let o = run(&[
        "run",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--verbose",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = stderr(&o);
    // Σ of "name ×k" (k = 1 when absent) over the lines of one run.
    let count = |run_name: &str, event: &str| -> usize {
        log.lines()
            .filter(|l| l.starts_with(&format!("[{run_name}]")) && l.contains(event))
            .map(|l| {
                l.rsplit_once('×')
                    .map_or(1, |(_, k)| k.trim().parse::<usize>().unwrap())
            })
            .sum()
    };
    let a = ArchiveReader::open(&out).unwrap();
    let attr = |run_name: &str, k: &str| {
        let g = a.file.group(&format!("runs/{run_name}")).unwrap();
        ArchiveReader::num_attr(&g, k).unwrap() as usize
    };
    // BDF: every LU factorization and Jacobian evaluation was logged, none twice.
    assert!(attr("gradient_flow", "lu_factorizations") > 0);
    assert_eq!(
        count("gradient_flow", "LU factorization"),
        attr("gradient_flow", "lu_factorizations")
    );
    assert_eq!(
        count("gradient_flow", "Jacobian update"),
        attr("gradient_flow", "jacobian_evals")
    );
    // Tsit45: rejected steps only, as many as the archive records.
    assert_eq!(
        count("explicit", "rejected") + count("explicit", "Newton"),
        attr("explicit", "rejected_steps")
    );
    assert_eq!(count("explicit", "LU factorization"), 0);
    // GD has no solver events; every run logs each of its saves.
    let gd_lines: Vec<&str> = log.lines().filter(|l| l.starts_with("[gd]")).collect();
    let saves = a.read_1d("runs/gd/t").unwrap().len();
    assert_eq!(gd_lines.len(), saves, "{gd_lines:?}");
    for (k, l) in gd_lines.iter().enumerate() {
        assert_eq!(*l, format!("[gd] saved {}/{saves}", k + 1));
    }

    // Without --verbose: no event lines.
    let o = run(&[
        "run",
        p.to_str().unwrap(),
        "--out",
        dir.path().join("q.h5").to_str().unwrap(),
    ]);
    assert!(!stderr(&o).contains("LU factorization"));
}

#[test]
fn newer_and_truncated_archives_are_refused_by_inspect_plot_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "small.toml", SMALL);
    let good = dir.path().join("good.h5");
    assert!(run(&[
        "run",
        p.to_str().unwrap(),
        "--out",
        good.to_str().unwrap(),
        "-q"
    ])
    .status
    .success());
    let bytes = std::fs::read(&good).unwrap();

    let newer = dir.path().join("newer.h5");
    std::fs::write(&newer, &bytes).unwrap();
    {
        let f = hdf5::File::open_rw(&newer).unwrap();
        f.delete_attr("format_version").unwrap();
        f.new_attr::<u64>()
            .create("format_version")
            .unwrap()
            .write_scalar(&999u64)
            .unwrap();
    }
    let truncated = dir.path().join("truncated.h5");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    for (archive, expect) in [
        (&newer, "newer than this meanfield reads"),
        (&truncated, "not a readable HDF5"),
    ] {
        let a = archive.to_str().unwrap();
        let png = dir.path().join("x.png");
        for args in [
            vec!["inspect", a],
            vec!["plot", a, "-o", png.to_str().unwrap()],
            vec!["run", "--resume", a],
        ] {
            let o = run(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains(expect), "{args:?}: {}", stderr(&o));
        }
        assert!(!png.exists());
    }
    // The refused resume left the archive as it was.
    assert_eq!(
        std::fs::read(&truncated).unwrap(),
        &bytes[..bytes.len() / 2]
    );
}

#[test]
fn seeds_above_2_pow_53_survive_the_archive_and_a_repeat() {
    // 2^60 + 3 is not a float: read back through f64 it would become 2^60, and a repeat would
    // draw other particles.
    let seed: u64 = (1 << 60) + 3;
    let dir = tempfile::tempdir().unwrap();
    let problem = write(dir.path(), "p.toml", SMALL);
    let first = dir.path().join("first.h5");
    let o = run(&[
        "run",
        problem.to_str().unwrap(),
        "--out",
        first.to_str().unwrap(),
        "--seed",
        &seed.to_string(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["run", "--from", first.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = dir.path().join("first_repeat.h5");
    for path in [&first, &again] {
        let r = ArchiveReader::open(path).unwrap();
        assert_eq!(ArchiveReader::seed(&r.file), Some(seed));
        // Every run group records seed, α and N exactly (SMALL: mean-field α = 1, N = 16).
        for name in r.runs() {
            let g = r.file.group(&format!("runs/{name}")).unwrap();
            assert_eq!(ArchiveReader::u64_attr(&g, "seed"), Some(seed), "{name}");
            assert_eq!(ArchiveReader::u64_attr(&g, "width"), Some(16), "{name}");
            assert_eq!(ArchiveReader::num_attr(&g, "alpha"), Some(1.0), "{name}");
            // Every particles dataset names its columns, as /init/particles does.
            if let Ok(p) = g.dataset("particles") {
                let init = r.file.dataset("init/particles").unwrap();
                let columns = |d: &hdf5::Dataset| ArchiveReader::str_attr(d, "columns");
                assert_eq!(columns(&p), columns(&init), "{name}");
                assert_eq!(columns(&p).as_deref(), Some("a,w0,w1,w2,b"), "{name}");
            }
        }
    }
    // Same seed, same particles: the repeat's initial particles are the original's.
    let (a, b) = (all_datasets(&first), all_datasets(&again));
    let init = |v: &[(String, Vec<f64>)]| v.iter().find(|x| x.0 == "init/particles").cloned();
    let (x, y) = (init(&a).unwrap(), init(&b).unwrap());
    assert!(x
        .1
        .iter()
        .zip(&y.1)
        .all(|(p, q)| p.to_bits() == q.to_bits()));
}

#[test]
fn a_sweep_summary_is_an_archive_with_its_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let text = SMALL.replace(
        "[save]",
        "[sweep]\nwidth = [4, 8, 16]\nsummary = \"sum.h5\"\n\n[save]",
    );
    let problem = write(dir.path(), "p.toml", &text);
    let o = Command::new(BIN)
        .args(["sweep", "run", problem.to_str().unwrap(), "--quiet"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = ArchiveReader::open(&dir.path().join("sum.h5")).unwrap();
    assert_eq!(
        ArchiveReader::str_attr(&r.file, "kind").as_deref(),
        Some("sweep")
    );
    assert_eq!(
        ArchiveReader::str_attr(&r.file, "status").as_deref(),
        Some("completed")
    );
    assert_eq!(ArchiveReader::seed(&r.file), Some(3));
    let resolved = ArchiveReader::str_attr(&r.file, "problem_resolved").unwrap();
    assert!(resolved.contains("[sweep]"), "{resolved}");
    let (_, widths) = r.read("points/width").unwrap();
    assert_eq!(widths, vec![4.0, 8.0, 16.0]);
    // The times compared are recorded (here the reference's last save, with no sweep.at).
    let (_, at) = r.read("points/at").unwrap();
    assert!(!at.is_empty() && at.iter().all(|t| *t > 0.0), "{at:?}");
    // Fits sort by name and store their line: recompute one by least squares on the columns.
    let fits = r.file.group("fits").unwrap().member_names().unwrap();
    assert!(!fits.is_empty());
    assert!(fits.iter().all(|f| f.len() == fits[0].len()), "{fits:?}");
    let (_, dist) = r.read("points/w_dist").unwrap();
    let fit = fits
        .iter()
        .map(|f| r.file.group(&format!("fits/{f}")).unwrap())
        .find(|g| ArchiveReader::str_attr(g, "quantity").as_deref() == Some("w_dist"))
        .expect("a fit of w_dist against width");
    let lx: Vec<f64> = widths.iter().map(|w| w.ln()).collect();
    let ly: Vec<f64> = dist.iter().map(|l| l.ln()).collect();
    let (mx, my) = (lx.iter().sum::<f64>() / 3.0, ly.iter().sum::<f64>() / 3.0);
    let sxy: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = lx.iter().map(|x| (x - mx) * (x - mx)).sum();
    let slope = sxy / sxx;
    let num = |n: &str| ArchiveReader::num_attr(&fit, n).unwrap();
    assert!(
        (num("slope") - slope).abs() < 1e-12,
        "{} vs {slope}",
        num("slope")
    );
    assert!((num("intercept") - (my - slope * mx)).abs() < 1e-12);
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_unknown_model_kind_lists_the_registered_families() {
    let dir = tempfile::tempdir().unwrap();
    let text = SMALL.replace("[model]\n", "[model]\nkind = \"conv\"\n");
    let problem = write(dir.path(), "p.toml", &text);
    let o = run(&["run", problem.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("model.kind"), "{e}");
    for kind in meanfield::family::REGISTRY.iter().map(|s| s.kind()) {
        assert!(
            e.contains(&format!("\"{kind}\"")),
            "{kind} missing from: {e}"
        );
    }
}

#[test]
fn a_repeat_records_its_true_source_and_finds_the_first_runs_data() {
    // The problem and its CSV data in one folder, the archive in another: the repeat reads the
    // data from the recorded problem folder and records the archive it came from.
    let dir = tempfile::tempdir().unwrap();
    let (problems, out) = (dir.path().join("problems"), dir.path().join("out"));
    std::fs::create_dir_all(&problems).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let rows: String = (0..12)
        .map(|i| {
            let x = [0.1 * i as f64, (i as f64).sin(), 0.3 - 0.05 * i as f64];
            format!("{},{},{},{}\n", x[0], x[1], x[2], (x[0] - x[1]).tanh())
        })
        .collect();
    std::fs::write(problems.join("train.csv"), rows).unwrap();
    let text = SMALL.replace(
        "source = \"synthetic\"\ninput = \"gaussian\"\nd = 3\nn_train = 20\nn_test = 10\ntarget = { kind = \"teacher\", width = 2, activation = \"tanh\" }",
        "source = \"csv\"\ntrain = \"train.csv\"",
    ).replace("kernel_points = 6", "kernel_points = 0");
    let problem = write(&problems, "csv.toml", &text);
    let first = out.join("first.h5");
    let o = run(&[
        "run",
        problem.to_str().unwrap(),
        "--out",
        first.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["run", "--from", first.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = out.join("first_repeat.h5");
    let (a, b) = (all_datasets(&first), all_datasets(&again));
    assert_eq!(a.len(), b.len());
    for ((n, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{n} differs"
        );
    }
    let r = ArchiveReader::open(&again).unwrap();
    let file = ArchiveReader::str_attr(&r.file, "problem_file").unwrap();
    assert_eq!(file, format!("{}#problem_resolved", first.display()));
    let folder = ArchiveReader::str_attr(&r.file, "problem_dir").unwrap();
    assert_eq!(
        Path::new(&folder),
        std::fs::canonicalize(&problems).unwrap()
    );
    // And a repeat of the repeat still finds the data.
    let o = run(&["run", "--from", again.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn export_writes_every_series_of_every_run_as_csv_that_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let archive = run_small(dir.path());
    let csv = dir.path().join("csv");
    let o = run(&[
        "export",
        archive.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = ArchiveReader::open(&archive).unwrap();
    for name in r.runs() {
        let text = std::fs::read_to_string(csv.join(format!("{name}.csv"))).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header[0], "t", "{name}");
        for must in ["loss_train", "loss_test", "kernel_distance"] {
            assert!(header.contains(&must), "{name}: {header:?}");
        }
        let rows: Vec<Vec<f64>> = lines
            .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
            .collect();
        for (k, column) in header.iter().enumerate() {
            let stored = r.read_1d(&format!("runs/{name}/{column}")).unwrap();
            assert_eq!(rows.len(), stored.len(), "{name}/{column}");
            for (row, v) in rows.iter().zip(&stored) {
                assert_eq!(row[k].to_bits(), v.to_bits(), "{name}/{column}");
            }
        }
    }
}

#[test]
fn the_archived_teacher_reproduces_the_noise_free_targets() {
    let dir = tempfile::tempdir().unwrap();
    let archive = run_small(dir.path());
    let r = ArchiveReader::open(&archive).unwrap();
    let ds = r.file.dataset("data/teacher").unwrap();
    assert_eq!(
        ArchiveReader::str_attr(&ds, "activation").as_deref(),
        Some("tanh")
    );
    assert_eq!(
        ArchiveReader::str_attr(&ds, "columns").as_deref(),
        Some("c,w0,w1,w2")
    );
    let (shape, teacher) = r.read("data/teacher").unwrap();
    assert_eq!(shape, vec![2, 4]);
    let (_, x) = r.read("data/x_test").unwrap();
    let y = r.read_1d("data/y_test").unwrap();
    for (i, yi) in y.iter().enumerate() {
        let f: f64 = teacher
            .chunks(4)
            .map(|row| {
                row[0]
                    * (0..3)
                        .map(|k| row[1 + k] * x[i * 3 + k])
                        .sum::<f64>()
                        .tanh()
            })
            .sum();
        assert!((f - yi).abs() < 1e-12, "sample {i}: {f} vs {yi}");
    }
}
