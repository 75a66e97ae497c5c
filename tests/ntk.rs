//! The NTK limit: the closed-form frozen-kernel solution against the adaptive integration of the
//! linearized model in parameter space, which reaches the same outputs by a different route.

use meanfield::archive::ArchiveReader;
use meanfield::family::two_layer::run_problem;
use meanfield::family::RunOptions;

const PROBLEM: &str = r#"
seed = 5
output = "unused.h5"

[data]
source = "synthetic"
input = "sphere"
d = 4
n_train = 40
n_test = 15
noise = 0.1
target = { kind = "single_index", activation = "tanh" }

[model]
activation = "erf"
width = 64
bias = true
scaling = "ntk"
init = { b_std = 0.5, symmetric = true }

[[dynamics]]
kind = "ntk_limit"
t_end = 20.0

[[dynamics]]
kind = "ntk_limit"
name = "ntk_analytic"
kernel = "analytic"
t_end = 20.0

[[dynamics]]
kind = "linearized"
name = "lin_bdf"
method = "bdf"
rtol = 1e-10
atol = 1e-12
t_end = 20.0

[[dynamics]]
kind = "linearized"
name = "lin_tsit45"
method = "tsit45"
rtol = 1e-10
atol = 1e-12
t_end = 20.0

[save]
count = 11
spacing = "log"
kernel_points = 8
"#;

#[test]
fn frozen_kernel_closed_form_matches_the_integrated_linearized_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ntk.toml");
    std::fs::write(&p, PROBLEM).unwrap();
    let out = dir.path().join("ntk.h5");
    let opts = RunOptions {
        out: Some(out.clone()),
        ..Default::default()
    };
    let report = run_problem(&p, &opts, &mut |_, _, _, _| {}).unwrap();
    assert!(report.completed(), "{:?}", report.runs);
    let a = ArchiveReader::open(&out).unwrap();
    for ds in ["f_train", "f_test"] {
        let (_, exact) = a.read(&format!("runs/ntk_limit/{ds}")).unwrap();
        let scale = exact.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for lin in ["lin_bdf", "lin_tsit45"] {
            let (_, num) = a.read(&format!("runs/{lin}/{ds}")).unwrap();
            let err = exact
                .iter()
                .zip(&num)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(
                err < 1e-6 * scale,
                "{lin} {ds}: max deviation {err} (scale {scale})"
            );
        }
    }
    // The frozen kernel does not move; the training loss falls monotonically.
    let dist = a.read_1d("runs/ntk_limit/kernel_distance").unwrap();
    assert!(dist.iter().all(|v| *v == 0.0));
    let loss = a.read_1d("runs/ntk_limit/loss_train").unwrap();
    assert!(loss.windows(2).all(|w| w[1] <= w[0]), "{loss:?}");
    assert!(loss[10] < 0.5 * loss[0]);
    // The N = ∞ kernel gives a different but close prediction at width 64.
    let (_, fa) = a.read("runs/ntk_analytic/f_test").unwrap();
    let (_, fe) = a.read("runs/ntk_limit/f_test").unwrap();
    let gap = fa
        .iter()
        .zip(&fe)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = fe.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        gap > 0.0 && gap < 0.5 * scale,
        "analytic vs empirical gap {gap}"
    );
    // No particles for the closed form; particles for the linearized model.
    assert!(a.file.dataset("runs/ntk_limit/particles").is_err());
    assert!(a.file.dataset("runs/lin_bdf/particles").is_ok());
}

/// The residual dynamics integrates u separately from the particles; y − f(θ) recomputed from the
/// archived particles must agree with it to solver tolerance, in both scalings.
#[test]
fn residual_dynamics_agrees_with_the_particles() {
    use meanfield::family::two_layer::Setup;
    use meanfield::model::Workspace;
    for scaling in ["\"mean_field\"", "\"ntk\""] {
        let text = format!(
            r#"
seed = 8
output = "unused.h5"
[data]
source = "synthetic"
input = "gaussian"
d = 3
n_train = 30
n_test = 5
target = {{ kind = "teacher", width = 2, activation = "tanh" }}
[model]
activation = "tanh"
width = 20
bias = true
scaling = {scaling}
init = {{ b_std = 0.3 }}
[[dynamics]]
kind = "residual"
rtol = 1e-10
atol = 1e-12
t_end = 4.0
[save]
count = 9
"#
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rd.toml");
        std::fs::write(&p, &text).unwrap();
        let out = dir.path().join("rd.h5");
        let opts = RunOptions {
            out: Some(out.clone()),
            ..Default::default()
        };
        let report = run_problem(&p, &opts, &mut |_, _, _, _| {}).unwrap();
        assert!(report.completed(), "{:?}", report.runs);
        let setup = Setup::load(&p, &RunOptions::default()).unwrap();
        let a = ArchiveReader::open(&out).unwrap();
        let (shape, particles) = a.read("runs/residual/particles").unwrap();
        let (_, f_rd) = a.read("runs/residual/f_train").unwrap();
        let np = shape[1] * shape[2];
        let mut ws = Workspace::default();
        let mut moved = 0.0f64;
        for k in 0..shape[0] {
            let th = &particles[k * np..(k + 1) * np];
            let (f, _) = setup.outputs(th, &mut ws);
            let rd = &f_rd[k * 30..(k + 1) * 30];
            let err = f
                .iter()
                .zip(rd)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(
                err < 1e-7,
                "{scaling}: RD and particles differ by {err} at save {k}"
            );
            moved = moved.max(
                f.iter()
                    .zip(&f_rd[..30])
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max),
            );
        }
        assert!(
            moved > 0.05,
            "{scaling}: the outputs barely moved ({moved})"
        );
    }
}
