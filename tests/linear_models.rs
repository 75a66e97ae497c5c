//! Ghorbani–Mei–Misiakiewicz–Montanari's linear models of a two-layer network from one problem
//! file (issue 9): random features (`params = "output"`: first layer frozen, only a trained) and
//! the neural tangent model (`params = "hidden"`: first order in the first-layer weights, a
//! frozen). Each closed form (`ntk_limit`) against the adaptive integration of its linear model
//! (`linearized`) in parameter space, at a moderate time and run to convergence; at convergence
//! the random-features fit against an independent least-squares solve by SVD.

mod common;

use faer::Mat;
use meanfield::archive::ArchiveReader;
use meanfield::family::two_layer::{run_problem, Setup};
use meanfield::family::RunOptions;
use meanfield::model::Workspace;
use meanfield::problem::Params;

fn problem(t_end: f64) -> String {
    format!(
        r#"
seed = 4
output = "unused.h5"

[data]
source = "synthetic"
input = "sphere"
d = 5
n_train = 30
n_test = 20
target = {{ kind = "single_index", activation = "tanh" }}

[model]
activation = "relu"
width = 200
bias = true
scaling = "ntk"
init = {{ b_std = 0.4, symmetric = true }}

[[dynamics]]
kind = "ntk_limit"
name = "rf"
params = "output"
t_end = {t_end}

[[dynamics]]
kind = "linearized"
name = "rf_flow"
params = "output"
method = "bdf"
rtol = 1e-11
atol = 1e-13
t_end = {t_end}

[[dynamics]]
kind = "ntk_limit"
name = "nt"
params = "hidden"
t_end = {t_end}

[[dynamics]]
kind = "linearized"
name = "nt_flow"
params = "hidden"
method = "bdf"
rtol = 1e-11
atol = 1e-13
t_end = {t_end}

[[dynamics]]
kind = "ntk_limit"
name = "ntk"
t_end = {t_end}

[save]
count = 6
spacing = "log"
particles = true
"#
    )
}

fn max_dev(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn run(t_end: f64) -> (tempfile::TempDir, std::path::PathBuf, ArchiveReader) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lm.toml");
    std::fs::write(&p, problem(t_end)).unwrap();
    let out = dir.path().join("lm.h5");
    let opts = RunOptions {
        out: Some(out.clone()),
        ..Default::default()
    };
    let report = run_problem(&p, &opts, &mut |_, _, _, _| {}).unwrap();
    assert!(report.completed(), "{:?}", report.runs);
    let a = ArchiveReader::open(&out).unwrap();
    (dir, p, a)
}

#[test]
fn random_features_and_neural_tangent_closed_forms_match_their_linear_flows() {
    for t_end in [5.0, 1e6] {
        let (_dir, p, a) = run(t_end);
        for (exact, flow) in [("rf", "rf_flow"), ("nt", "nt_flow")] {
            for ds in ["f_train", "f_test"] {
                let (_, e) = a.read(&format!("runs/{exact}/{ds}")).unwrap();
                let (_, f) = a.read(&format!("runs/{flow}/{ds}")).unwrap();
                let scale = e.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let err = max_dev(&e, &f);
                assert!(
                    err < 1e-6 * scale,
                    "t_end {t_end}, {exact} {ds}: {err} (scale {scale})"
                );
            }
            let g = a.file.group(&format!("runs/{flow}")).unwrap();
            let want = if exact == "rf" { "output" } else { "hidden" };
            assert_eq!(ArchiveReader::str_attr(&g, "params").as_deref(), Some(want));
        }
        // What each model trains: RF moves only a (column 0), NT only w and b.
        let (shape, init) = a.read("init/particles").unwrap();
        let dim = shape[1];
        for (flow, moving_a) in [("rf_flow", true), ("nt_flow", false)] {
            let (s, pts) = a.read(&format!("runs/{flow}/particles")).unwrap();
            let last = &pts[(s[0] - 1) * init.len()..];
            let moved = |col_is_a: bool| {
                (0..init.len())
                    .filter(|k| (k % dim == 0) == col_is_a)
                    .map(|k| (last[k] - init[k]).abs())
                    .fold(0.0, f64::max)
            };
            assert_eq!(moved(!moving_a), 0.0, "{flow}: frozen parameters moved");
            assert!(
                moved(moving_a) > 1e-3,
                "{flow}: trained parameters did not move"
            );
        }
        // The kernels split: K_all = K_output + K_hidden.
        let setup = Setup::load(&p, &RunOptions::default()).unwrap();
        let x = setup.data.x_train.as_ref();
        let mut ws = Workspace::default();
        let k = |params| {
            setup
                .model
                .kernel_of(&setup.theta0, x, x, params, &mut Workspace::default())
        };
        let (ka, ko, kh) = (
            setup.model.kernel(&setup.theta0, x, &mut ws),
            k(Params::Output),
            k(Params::Hidden),
        );
        let err = (&ka - (&ko + &kh)).norm_max();
        assert!(err < 1e-12 * ka.norm_max(), "kernel split: {err}");
        if t_end > 100.0 {
            converged_random_features_match_least_squares(&setup, &a);
        }
    }
}

/// At t = 10⁶ the RF model has converged: it interpolates the training set (30 points, 200
/// features), and its test outputs are the minimum-norm least-squares fit, here solved from the
/// features' SVD (not the kernel's eigendecomposition that `ntk_limit` uses).
fn converged_random_features_match_least_squares(setup: &Setup, a: &ArchiveReader) {
    let loss = a.read_1d("runs/rf/loss_train").unwrap();
    eprintln!("RF training loss over time: {loss:?}");
    assert!(*loss.last().unwrap() < 1e-14, "{loss:?}");
    let mut ws = Workspace::default();
    let dim = setup.model.dim();
    let feats = |x: faer::MatRef<'_, f64>, ws: &mut Workspace| {
        setup.model.forward(&setup.theta0, x, ws, false);
        let phi = setup.model.tangent_features(&setup.theta0, x, ws);
        Mat::from_fn(phi.nrows(), phi.ncols() / dim, |i, j| phi[(i, j * dim)])
    };
    let s_train = feats(setup.data.x_train.as_ref(), &mut ws);
    let s_test = feats(setup.data.x_test.as_ref(), &mut ws);
    let (f0, f0_test) = &setup.out0;
    let u0 = Mat::from_fn(s_train.nrows(), 1, |i, _| setup.data.y_train[i] - f0[i]);
    let svd = s_train.svd().unwrap();
    let (u, sv, v) = (svd.U(), svd.S().column_vector(), svd.V());
    let cut = sv[0] * 1e-12;
    let mut coef = Mat::<f64>::zeros(s_train.ncols(), 1);
    for k in 0..sv.nrows() {
        if sv[k] > cut {
            let proj = (u.col(k).transpose() * u0.col(0)) / sv[k];
            for j in 0..coef.nrows() {
                coef[(j, 0)] += v[(j, k)] * proj;
            }
        }
    }
    let pred = &s_test * &coef;
    let (shape, f_rf) = a.read("runs/rf/f_test").unwrap();
    let last = &f_rf[(shape[0] - 1) * shape[1]..];
    let want: Vec<f64> = (0..pred.nrows())
        .map(|i| f0_test[i] + pred[(i, 0)])
        .collect();
    let err = max_dev(last, &want);
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    // (measured 1.1e-7: what is left of the slowest kernel mode, e^{−tλ_min/n}, magnified by
    // 1/λ_min in the test predictions)
    assert!(
        err < 1e-6 * scale.max(1.0),
        "RF at convergence vs SVD least squares: {err}"
    );
}

/// A width sweep of the network beside its random-features and neural-tangent models at
/// t → ∞ (`ntk_limit`, t = 10⁹) on a single neuron f*(x) = relu(⟨w*, x⟩) on the sphere: the
/// summary holds every run's final test loss (`/points/loss_test_by_run`, names in `runs`),
/// equal to each task archive's, and fits each against width. (Whether the network beats both
/// is not asserted: on this problem it fits the neuron to 1e-6 for seed 1 but stalls at 0.02 …
/// 0.03 for seeds 2 and 3 by t = 8000; see the issue notes.)
#[test]
fn sweep_summary_holds_each_models_test_loss() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"seed = 1
output = "sn.h5"
[data]
source = "synthetic"
input = "sphere"
d = 6
n_train = 300
n_test = 300
target = { kind = "single_index", activation = "relu" }
[model]
activation = "relu"
width = 16
scaling = "mean_field"
init = { symmetric = true }
[[dynamics]]
kind = "gd"
name = "network"
step = 2.0
steps = 200
[[dynamics]]
kind = "ntk_limit"
name = "rf"
params = "output"
t_end = 1e9
[[dynamics]]
kind = "ntk_limit"
name = "nt"
params = "hidden"
t_end = 1e9
[save]
count = 3
spacing = "log"
[sweep]
width = [16, 64, 256]
seeds = [1]
summary = "summary.h5"
"#;
    let (points, fits) = common::sweep_in(dir.path(), text);
    let a = ArchiveReader::open(&dir.path().join("summary.h5")).unwrap();
    let ds = a.file.dataset("points/loss_test_by_run").unwrap();
    let names = ArchiveReader::str_attr(&ds, "runs").unwrap();
    let names: Vec<&str> = names.split(',').collect();
    let (shape, v) = a.read("points/loss_test_by_run").unwrap();
    assert_eq!(shape, vec![3, 3]);
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["network", "nt", "rf"]);
    let col = |name: &str| names.iter().position(|n| *n == name).unwrap();
    for (i, pt) in points.iter().enumerate() {
        // each entry is its task archive's last test loss
        let t = ArchiveReader::open(&pt.task.archive).unwrap();
        for (k, name) in names.iter().enumerate() {
            let l = t.read_1d(&format!("runs/{name}/loss_test")).unwrap();
            assert_eq!(v[i * 3 + k], *l.last().unwrap());
        }
        assert_eq!(pt.run_loss_test[col("rf")].0, "rf");
    }
    for q in ["loss_test[rf]", "loss_test[nt]", "loss_test[network]"] {
        assert!(fits.iter().any(|f| f.quantity == q), "no fit of {q}");
    }
}

/// Bad `params`: an unknown value is refused with the values expected.
#[test]
fn bad_params_are_refused_naming_the_key() {
    use meanfield::problem::Problem;
    let file = std::path::Path::new("p.toml");
    let with = |dynamics: &str| {
        problem(5.0).replace(
            "[[dynamics]]\nkind = \"ntk_limit\"\nname = \"rf\"\nparams = \"output\"",
            dynamics,
        )
    };
    let err = Problem::parse(
        &with("[[dynamics]]\nkind = \"ntk_limit\"\nname = \"rf\"\nparams = \"first\""),
        file,
    )
    .unwrap_err()
    .to_string();
    // (serde names the table, `dynamics`, and the values it expected)
    assert!(
        err.contains("dynamics") && err.contains("`all`, `output`, `hidden`"),
        "{err}"
    );
    // The analytic kernel restricts too (the infinite-width random-features kernel).
    assert!(Problem::parse(
        &with("[[dynamics]]\nkind = \"ntk_limit\"\nname = \"rf\"\nkernel = \"analytic\"\nparams = \"output\""),
        file,
    )
    .is_ok());
}
