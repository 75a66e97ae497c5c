//! Properties of the particle gradient flow and its Euler discretization (GD), against
//! independent truths: monotone risk, first-order convergence of GD, agreement of explicit and
//! implicit solvers, and the N^(-1/2) laziness of NTK scaling.

mod common;
use common::*;
use meanfield::dynamics::ParticleFlow;
use meanfield::integrate::{gd, ode, Outcome};
use meanfield::model::{mse, TwoLayer, Workspace};
use meanfield::problem::{Activation, Method};

struct Case {
    model: TwoLayer,
    x: faer::Mat<f64>,
    y: Vec<f64>,
    theta0: Vec<f64>,
}

fn case(act: Activation, n_particles: usize, alpha: f64, samples: usize, seed: u64) -> Case {
    let d = 4;
    let model = model(act, d, true, n_particles, alpha);
    let x = gaussian_mat(samples, d, seed);
    let (y, theta0) = smooth_problem(&x, n_particles, true, seed + 100);
    Case {
        model,
        x,
        y,
        theta0,
    }
}

/// States at the save times.
fn flow_states(c: &Case, method: Method, rtol: f64, times: &[f64]) -> (Vec<Vec<f64>>, Outcome) {
    let flow = ParticleFlow::new(&c.model, &c.x, &c.y, None);
    let mut states = vec![];
    let out = ode::run(
        &flow,
        &c.theta0,
        method,
        rtol,
        rtol * 1e-2,
        times,
        &mut |_, y| {
            states.push(y.to_vec());
            Ok(())
        },
    );
    assert!(out.stopped.is_none(), "{method:?}: {:?}", out.stopped);
    (states, out)
}

fn gd_states(c: &Case, step: f64, steps: usize, times: &[f64]) -> Vec<Vec<f64>> {
    let flow = ParticleFlow::new(&c.model, &c.x, &c.y, None);
    let at = gd::save_steps(times, step, steps);
    assert_eq!(
        at.len(),
        times.len(),
        "save times must be multiples of the step"
    );
    let mut states = vec![];
    let out = gd::run(&flow, &c.theta0, step, steps, &at, &mut |_, y| {
        states.push(y.to_vec());
        Ok(())
    });
    assert!(out.stopped.is_none());
    states
}

fn risk(c: &Case, theta: &[f64]) -> f64 {
    let mut ws = Workspace::default();
    mse(&c.y, &c.model.predict(theta, c.x.as_ref(), &mut ws))
}

#[test]
fn risk_never_increases_along_the_flow() {
    // ReLU's kinks make tight tolerances expensive; its tolerance is looser and so is its bound.
    for (act, method, rtol) in [
        (Activation::named("tanh").unwrap(), Method::Tsit45, 1e-8),
        (Activation::named("tanh").unwrap(), Method::Bdf, 1e-8),
        (Activation::named("erf").unwrap(), Method::Esdirk34, 1e-8),
        (Activation::named("relu").unwrap(), Method::Tsit45, 1e-6),
    ] {
        let c = case(act.clone(), 32, 1.0, 40, 1);
        let times: Vec<f64> = (0..=60).map(|k| k as f64 * 0.1).collect();
        let t0 = std::time::Instant::now();
        let (states, _) = flow_states(&c, method, rtol, &times);
        eprintln!("{act:?}/{method:?}: {:.2} s", t0.elapsed().as_secs_f64());
        let r: Vec<f64> = states.iter().map(|th| risk(&c, th)).collect();
        for k in 1..r.len() {
            assert!(
                r[k] <= r[k - 1] + 10.0 * rtol * r[0],
                "{act:?}/{method:?}: risk rose from {} to {} at t = {}",
                r[k - 1],
                r[k],
                times[k]
            );
        }
        assert!(
            r[r.len() - 1] < 0.9 * r[0],
            "{act:?}: the flow did not learn"
        );
    }
}

/// GD is the Euler step of the flow: its global error at fixed times is O(η).
#[test]
fn gd_converges_to_the_flow_linearly_in_the_step() {
    let c = case(Activation::named("tanh").unwrap(), 32, 1.0, 40, 2);
    let times: Vec<f64> = (0..=5).map(|k| k as f64 * 0.4).collect();
    let (reference, _) = flow_states(&c, Method::Tsit45, 1e-11, &times);
    let steps: [f64; 4] = [0.04, 0.02, 0.01, 0.005];
    let errs: Vec<f64> = steps
        .iter()
        .map(|&eta| {
            let n = (2.0 / eta).round() as usize;
            let g = gd_states(&c, eta, n, &times);
            g.iter()
                .zip(&reference)
                .map(|(a, b)| max_abs_diff(a, b))
                .fold(0.0, f64::max)
        })
        .collect();
    let slope = loglog_slope(&steps, &errs);
    assert!(
        (slope - 1.0).abs() < 0.1,
        "log-log slope of GD error vs step {slope} (errors {errs:?})"
    );
}

/// Four methods with different error controllers agree at tight tolerances.
#[test]
fn explicit_and_implicit_solvers_agree() {
    let c = case(Activation::named("tanh").unwrap(), 24, 2.0, 30, 3);
    let times = [0.0, 1.0, 3.0];
    let (reference, _) = flow_states(&c, Method::Tsit45, 1e-10, &times);
    for method in [Method::Bdf, Method::Esdirk34, Method::TrBdf2] {
        let (states, out) = flow_states(&c, method, 1e-9, &times);
        let err = max_abs_diff(&states[2], &reference[2]);
        assert!(err < 1e-5, "{method:?} differs from Tsit45 by {err}");
        assert!(out.stats.jacobian_evals > 0, "{method:?} never assembled J");
        assert!(out.stats.lu_factorizations > 0);
    }
}

fn relative_displacement(c: &Case, t: f64) -> f64 {
    let (states, _) = flow_states(c, Method::Tsit45, 1e-7, &[0.0, t]);
    let num: f64 = states[1]
        .iter()
        .zip(&c.theta0)
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    let den: f64 = c.theta0.iter().map(|a| a * a).sum();
    (num / den).sqrt()
}

/// Under `ntk` scaling (α = √N) particles move O(1/√N): lazy. Under `mean_field` (α = 1) they
/// move O(1) whatever N.
#[test]
fn ntk_scaling_is_lazy_and_mean_field_is_not() {
    let widths = [64usize, 256, 1024, 4096];
    let mut ntk = vec![];
    let mut mf = vec![];
    for &n in &widths {
        let c = case(
            Activation::named("tanh").unwrap(),
            n,
            (n as f64).sqrt(),
            48,
            4,
        );
        ntk.push(relative_displacement(&c, 1.0));
        let c = case(Activation::named("tanh").unwrap(), n, 1.0, 48, 4);
        mf.push(relative_displacement(&c, 1.0));
    }
    let w: Vec<f64> = widths.iter().map(|&n| n as f64).collect();
    let s_ntk = loglog_slope(&w, &ntk);
    let s_mf = loglog_slope(&w, &mf);
    assert!(
        (-0.6..=-0.4).contains(&s_ntk),
        "ntk displacement slope {s_ntk} ({ntk:?})"
    );
    assert!(
        s_mf.abs() < 0.1,
        "mean-field displacement slope {s_mf} ({mf:?})"
    );
    assert!(
        mf.iter().all(|&v| v > 0.02),
        "mean-field particles barely moved: {mf:?}"
    );
}

/// Both centering options make the network output exactly zero at initialization.
#[test]
fn centering_gives_zero_initial_output() {
    use meanfield::family::two_layer::Setup;
    use meanfield::family::RunOptions;
    let dir = tempfile::tempdir().unwrap();
    for (init, expect_raw_zero) in [
        ("{ symmetric = true }", true),
        ("{ subtract_initial = true }", false),
    ] {
        let text = format!(
            r#"output = "o.h5"
[data]
source = "synthetic"
input = "sphere"
d = 5
n_train = 30
n_test = 7
target = {{ kind = "single_index", activation = "tanh" }}
[model]
activation = "erf"
width = 12
scaling = "ntk"
init = {init}
[[dynamics]]
kind = "gd"
step = 0.1
steps = 3
"#
        );
        let p = dir.path().join("p.toml");
        std::fs::write(&p, text).unwrap();
        let s = Setup::load(&p, &RunOptions::default()).unwrap();
        let mut ws = Workspace::default();
        let raw = s.model.predict(&s.theta0, s.data.x_train.as_ref(), &mut ws);
        // Symmetric pairs cancel up to the rounding of the sum over neurons.
        let small = raw.iter().all(|v| v.abs() < 1e-14);
        assert_eq!(small, expect_raw_zero, "{init}: {raw:?}");
        let (ft, fs) = s.outputs(&s.theta0, &mut ws);
        assert!(
            ft.iter().chain(&fs).all(|v| v.abs() < 1e-14),
            "{init}: {ft:?}"
        );
        // Sphere inputs have norm √d.
        let norm: f64 = (0..5)
            .map(|k| s.data.x_test[(3, k)].powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((norm - 5f64.sqrt()).abs() < 1e-12);
    }
}

/// Chizat–Oyallon–Bach's κ shrinks like N^(-1/2) under `ntk` scaling and stays O(1) under
/// `mean_field` (‖Df‖² ~ α²/N, ‖D²f‖ ~ α/N).
#[test]
fn laziness_ratio_scales_with_width_as_theory_says() {
    use meanfield::model::laziness::laziness;
    use meanfield::model::Batch;
    let widths = [64usize, 256, 1024, 4096];
    let mut ntk = vec![];
    let mut mf = vec![];
    for &n in &widths {
        for (alpha, out) in [((n as f64).sqrt(), &mut ntk), (1.0, &mut mf)] {
            let c = case(Activation::named("tanh").unwrap(), n, alpha, 48, 6);
            let b = Batch {
                x: c.x.as_ref(),
                y: &c.y,
                f0: None,
            };
            out.push(laziness(&c.model, &c.theta0, &b, 60).kappa);
        }
    }
    let w: Vec<f64> = widths.iter().map(|&n| n as f64).collect();
    let (s_ntk, s_mf) = (loglog_slope(&w, &ntk), loglog_slope(&w, &mf));
    assert!(
        (-0.65..=-0.35).contains(&s_ntk),
        "ntk κ slope {s_ntk}: {ntk:?}"
    );
    assert!(s_mf.abs() < 0.2, "mean-field κ slope {s_mf}: {mf:?}");
}
