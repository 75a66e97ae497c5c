//! The shipped 8×8 digits (data/digits.h5, issue 9): its documented shape, labels and checksum;
//! the balanced, seeded split and the sphere normalization of `[data] source = "hdf5"`; and the
//! classification scores a run writes, checked against the frozen-kernel closed form.

use meanfield::archive::ArchiveReader;
use meanfield::error::Error;
use meanfield::family::two_layer::{run_problem, Setup};
use meanfield::family::RunOptions;
use std::path::{Path, PathBuf};

fn digits() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.h5")
}

fn fail(key: &str, message: String) -> Error {
    Error::Problem {
        file: "test".into(),
        key: key.into(),
        message,
    }
}

#[test]
fn shipped_digits_have_the_documented_shape_labels_and_checksum() {
    let t = meanfield::data::labelled::read_table(&digits(), "images", "labels", &fail).unwrap();
    assert_eq!((t.n, t.d), (1797, 64));
    let mut counts = [0usize; 10];
    for &l in &t.labels {
        counts[l as usize] += 1;
    }
    // scikit-learn's load_digits: 1797 samples, these class counts.
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    assert!(t
        .x
        .iter()
        .all(|v| (0.0..=16.0).contains(v) && v.fract() == 0.0));
    assert_eq!(t.x.iter().sum::<f64>(), 561_718.0);
    // FNV-1a 64 of the pixel bytes then the label bytes, as data/make_digits.py prints it
    // (computed there with numpy from scikit-learn's digits.csv.gz).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in
        t.x.iter()
            .map(|&v| v as u8)
            .chain(t.labels.iter().map(|&l| l as u8))
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    assert_eq!(h, 0x9975_5255_092d_82a1);
}

fn problem(dir: &Path, extra: &str, dynamics: &str) -> PathBuf {
    let text = format!(
        r#"
seed = 3
output = "{out}"

[data]
source = "hdf5"
file = "{file}"
positive = [0, 2, 4, 6, 8]
n_train = 100
n_test = 300
normalize = "sphere"
{extra}

[model]
activation = "relu"
width = 32
scaling = "mean_field"
init = {{ a_std = 1.0, subtract_initial = true }}

{dynamics}

[save]
count = 3
kernel_points = 16
"#,
        out = dir.join("d.h5").display(),
        file = digits().display(),
    );
    let p = dir.join("d.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn split_is_balanced_seeded_and_on_the_sphere() {
    let dir = tempfile::tempdir().unwrap();
    let p = problem(
        dir.path(),
        "",
        "[[dynamics]]\nkind = \"gd\"\nstep = 0.1\nsteps = 2",
    );
    let setup = Setup::load(&p, &RunOptions::default()).unwrap();
    let data = &setup.data;
    let classes = data.classes.as_ref().unwrap();
    assert_eq!(classes.values, (0..10).collect::<Vec<i64>>());
    assert_eq!((data.n_train(), data.n_test(), data.d()), (100, 300, 64));
    for c in 0..10 {
        assert_eq!(classes.train.iter().filter(|&&k| k == c).count(), 10);
    }
    // Parity targets.
    for (y, c) in data.y_train.iter().zip(&classes.train) {
        assert_eq!(*y, if c % 2 == 0 { 1.0 } else { -1.0 });
    }
    // Centred on the training mean, every input at norm √64 = 8.
    for j in 0..64 {
        let m: f64 = (0..100).map(|i| data.x_train[(i, j)]).sum::<f64>() / 100.0;
        // The mean of the rescaled rows is not exactly 0, but small next to the norm 8.
        assert!(m.abs() < 1.0, "column {j}: {m}");
    }
    for x in [&data.x_train, &data.x_test] {
        for i in 0..x.nrows() {
            let r: f64 = (0..64).map(|j| x[(i, j)] * x[(i, j)]).sum::<f64>().sqrt();
            assert!((r - 8.0).abs() < 1e-12);
        }
    }
    // Train and test share no image: no test row equals a training row.
    for i in 0..data.n_test() {
        for k in 0..data.n_train() {
            assert!((0..64).any(|j| data.x_test[(i, j)] != data.x_train[(k, j)]));
        }
    }
    // The split depends on the seed only.
    let again = Setup::load(&p, &RunOptions::default()).unwrap();
    assert_eq!(again.data.y_test, data.y_test);
    assert_eq!(again.data.x_train, data.x_train);
    let other = Setup::load(
        &p,
        &RunOptions {
            seed: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(other.data.x_train, data.x_train);
}

#[test]
fn kernel_regression_scores_agree_with_the_frozen_kernel_limit() {
    // ntk_limit at t → ∞ with f(θ₀) subtracted is ridgeless kernel regression with K₀, computed
    // there from one eigendecomposition and the flow's closed form; the run's
    // kernel_accuracy_init comes from classify's pseudo-inverse. A lazy GD (α = 1000) stays
    // close to both, with a kernel that hardly moves, while mean-field GD moves it.
    let dir = tempfile::tempdir().unwrap();
    let dynamics = r#"
[[dynamics]]
kind = "ntk_limit"
t_end = 1e9

[[dynamics]]
kind = "gd"
name = "feature"
step = 0.25
steps = 800
"#;
    let p = problem(dir.path(), "", dynamics);
    let report = run_problem(&p, &RunOptions::default(), &mut |_, _, _, _| {}).unwrap();
    assert!(report.completed());
    let a = ArchiveReader::open(&dir.path().join("d.h5")).unwrap();
    let attr = |run: &str, name: &str| {
        let g = a.file.group(&format!("runs/{run}")).unwrap();
        ArchiveReader::num_attr(&g, name).unwrap_or_else(|| panic!("{run}: no {name}"))
    };
    let limit = attr("ntk_limit", "accuracy_test");
    assert!((limit - attr("ntk_limit", "kernel_accuracy_init")).abs() <= 1.0 / 300.0);
    assert_eq!(attr("ntk_limit", "accuracy_train"), 1.0);
    assert!(limit > 0.85, "{limit}");
    assert!(attr("feature", "kernel_class_accuracy_init") > 0.8);
    // The archive keeps the class labels, and inspect prints the scores.
    let labels = a.read_1d("data/labels_train").unwrap();
    assert_eq!(labels.iter().filter(|&&l| l == 7.0).count(), 10);
    let table = meanfield::report::inspect(&dir.path().join("d.h5")).unwrap();
    assert!(table.contains("classification") && table.contains("/data/labels_test"));
    let kd = |run: &str| {
        *a.read_1d(&format!("runs/{run}/kernel_distance"))
            .unwrap()
            .last()
            .unwrap()
    };
    assert!(kd("feature") > 0.3, "{}", kd("feature"));

    // The lazy network: the same problem at α = 1000.
    let lazy = dir.path().join("lazy");
    std::fs::create_dir(&lazy).unwrap();
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("scaling = \"mean_field\"", "scaling = { alpha = 1000.0 }")
        .replace(
            &dir.path().join("d.h5").display().to_string(),
            &lazy.join("d.h5").display().to_string(),
        );
    std::fs::write(lazy.join("d.toml"), text).unwrap();
    run_problem(
        &lazy.join("d.toml"),
        &RunOptions::default(),
        &mut |_, _, _, _| {},
    )
    .unwrap();
    let b = ArchiveReader::open(&lazy.join("d.h5")).unwrap();
    let g = b.file.group("runs/feature").unwrap();
    let acc = ArchiveReader::num_attr(&g, "accuracy_test").unwrap();
    let kd_lazy = *b
        .read_1d("runs/feature/kernel_distance")
        .unwrap()
        .last()
        .unwrap();
    assert!(kd_lazy < 0.02 * kd("feature"), "{kd_lazy}");
    assert!((acc - limit).abs() <= 0.03, "lazy {acc} vs limit {limit}");
}

#[test]
fn bad_digits_input_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let gd = "[[dynamics]]\nkind = \"gd\"\nstep = 0.1\nsteps = 2";
    let err = |from: &str, to: &str| {
        let p = problem(dir.path(), "", gd);
        let t = std::fs::read_to_string(&p).unwrap().replace(from, to);
        std::fs::write(&p, t).unwrap();
        Setup::load(&p, &RunOptions::default())
            .err()
            .unwrap()
            .to_string()
    };
    let e = err("positive =", "inputs = \"pixels\"\npositive =");
    assert!(
        e.contains("data.inputs") && e.contains("'pixels'") && e.contains("images"),
        "{e}"
    );
    let e = err("positive = [0, 2, 4, 6, 8]", "positive = [11]");
    assert!(e.contains("data.positive") && e.contains("11"), "{e}");
    let e = err("n_train = 100", "n_train = 1790");
    assert!(
        e.contains("data.n_train") && e.contains("needs 179") && e.contains("has 178"),
        "{e}"
    );
    let e = err("n_test = 300", "n_test = 5000");
    assert!(e.contains("data.n_test") && e.contains("1697"), "{e}");
    let e = err("file = \"", "file = \"nope");
    assert!(e.contains("data.file") && e.contains("no such file"), "{e}");
    let e = err("normalize = \"sphere\"", "normalize = \"unit\"");
    assert!(e.contains("data") && e.contains("unit"), "{e}");
}

/// The recorded accuracies are those of the archived outputs, for every kind of run: the
/// residual dynamics, whose state is (θ, u), as well as GD.
#[test]
fn recorded_accuracies_are_those_of_the_archived_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let dynamics = r#"
[[dynamics]]
kind = "residual"
t_end = 0.05

[[dynamics]]
kind = "gd"
step = 0.01
steps = 5
"#;
    let p = problem(dir.path(), "", dynamics);
    let report = run_problem(&p, &RunOptions::default(), &mut |_, _, _, _| {}).unwrap();
    assert!(report.completed());
    let a = ArchiveReader::open(&dir.path().join("d.h5")).unwrap();
    for (set, n) in [("train", 100), ("test", 300)] {
        let y = a.read_1d(&format!("data/y_{set}")).unwrap();
        for run in ["residual", "gd"] {
            let (_, f) = a.read(&format!("runs/{run}/f_{set}")).unwrap();
            let last = &f[f.len() - n..];
            let right = last.iter().zip(&y).filter(|(f, y)| **f * **y > 0.0).count();
            let g = a.file.group(&format!("runs/{run}")).unwrap();
            let acc = ArchiveReader::num_attr(&g, &format!("accuracy_{set}")).unwrap();
            assert_eq!(acc, right as f64 / n as f64, "{run} {set}");
        }
    }
}
