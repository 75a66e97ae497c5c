//! Shallow linear networks: the exact width reduction, the self-consistent dynamics of eq. (1)
//! against GD, and the closed forms (Saxe's modes, the mixed mode, the lazy limit).

use faer::Mat;
use meanfield::dynamics::mixed::{euler_step, MixedFlow};
use meanfield::integrate::ode;
use meanfield::limits::linear_modes::{lazy_solution, mixed_mode_time, saxe_mode};
use meanfield::model::linear_net::{op_norm, paper_step, LinearNet, MatrixTask};
use meanfield::problem::Method;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rel(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    (a - b).norm_l2() / b.norm_l2()
}

#[test]
fn width_reduction_is_exact() {
    // GD on the full width-200 network and on the R factor of its QR agree to round-off.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (d, w) = (12, 200);
    let task = MatrixTask::draw(d, 3, &mut rng);
    let mut full = LinearNet::full(d, w, 0.01, &mut rng);
    let mut reduced = full.reduce();
    assert_eq!(reduced.x1.nrows(), 2 * d);
    let eta = 0.05;
    let mut worst = 0.0f64;
    for _ in 0..60 {
        full.gd_step(task.y.as_ref(), eta);
        reduced.gd_step(task.y.as_ref(), eta);
        worst = worst.max(rel(&reduced.product(), &full.product()));
    }
    assert!(worst < 1e-12, "reduced vs full: {worst:e}");
    // The run did something: the train error fell.
    assert!(
        task.errors(full.product().as_ref()).0 < 0.5 * task.errors(Mat::zeros(d, d).as_ref()).0
    );
}

#[test]
fn bartlett_draw_has_the_wishart_moments() {
    // RᵀR ~ Wishart_p(w, σ²I): mean wσ²I, Var of a diagonal entry 2wσ⁴, of an off-diagonal wσ⁴.
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (d, w, s2, reps) = (3usize, 40usize, 0.5f64, 2000usize);
    let p = 2 * d;
    let mut mean = Mat::<f64>::zeros(p, p);
    for _ in 0..reps {
        let net = LinearNet::reduced(d, w, s2, &mut rng).unwrap();
        let mut r = Mat::zeros(p, p);
        r.as_mut().subcols_mut(0, d).copy_from(&net.x1);
        r.as_mut().subcols_mut(d, d).copy_from(&net.x2);
        mean += r.transpose() * &r;
    }
    mean *= faer::Scale(1.0 / reps as f64);
    for i in 0..p {
        for j in 0..p {
            let (expect, var) = if i == j {
                (w as f64 * s2, 2.0 * w as f64 * s2 * s2)
            } else {
                (0.0, w as f64 * s2 * s2)
            };
            let sd = (var / reps as f64).sqrt();
            assert!(
                (mean[(i, j)] - expect).abs() < 5.0 * sd,
                "({i},{j}): {} vs {expect} ± {sd}",
                mean[(i, j)]
            );
        }
    }
    assert!(LinearNet::reduced(d, p - 1, s2, &mut rng).is_none());
}

/// Max over 100 steps of ‖A_GD − A_SC‖_F/‖A_GD‖_F at d = 50 with Figure 1's exponents, for the
/// self-consistent dynamics with constant c².
fn gd_vs_self_consistent(c2_factor: f64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let d = 50;
    let (gs, gw) = (-1.85, 2.25);
    let task = MatrixTask::draw(d, 5, &mut rng);
    let w = (d as f64).powf(gw) as usize;
    let s2 = (d as f64).powf(gs);
    let eta = paper_step(d, gs, gw, op_norm(task.a_star.as_ref()), 5.0);
    let mut net = LinearNet::reduced(d, w, s2, &mut rng).unwrap();
    let mut b = net.product();
    let c2 = (s2 * w as f64).powi(2) * c2_factor;
    let mut worst = 0.0f64;
    for _ in 0..100 {
        net.gd_step(task.y.as_ref(), eta);
        euler_step(&mut b, task.y.as_ref(), c2, eta, faer::Par::Seq);
        worst = worst.max(rel(&b, &net.product()));
    }
    worst
}

#[test]
fn self_consistent_dynamics_tracks_gd_with_the_projects_constant() {
    // Notes §3.2: ≈ 0.10 with c² = (σ²w)², ≈ 0.50 with (σ²w)²/4.
    let ours = gd_vs_self_consistent(1.0);
    let quarter = gd_vs_self_consistent(0.25);
    assert!(ours < 0.2, "c² = (σ²w)²: {ours}");
    assert!(quarter > 2.0 * ours, "c²/4: {quarter} vs {ours}");
}

#[test]
fn aligned_modes_follow_saxe_and_the_mixed_closed_form() {
    // Y = U diag(s) Vᵀ and A(0) = U diag(u₀) Vᵀ: every mode of eq. (1) is u̇ = 2√(u² + c²)(s − u).
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let d = 6;
    let task = MatrixTask::draw(d, 2, &mut rng);
    let svd = task.y.svd().unwrap();
    let (u, v) = (svd.U().to_owned(), svd.V().to_owned());
    let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
    let u0 = 1e-3;
    let a0 = &u * Mat::<f64>::identity(d, d) * faer::Scale(u0) * v.transpose();
    let times = [0.0, 0.05, 0.1, 0.2, 0.4];
    for c in [0.0, 0.5, 3.0] {
        let field = MixedFlow {
            y: task.y.as_ref(),
            c2: c * c,
        };
        let mut saved = vec![];
        let mut keep = |_: f64, a: &[f64]| {
            saved.push(Mat::from_fn(d, d, |i, j| a[j * d + i]));
            Ok(())
        };
        let y0: Vec<f64> = (0..d * d).map(|k| a0[(k % d, k / d)]).collect();
        let out = ode::run(&field, &y0, Method::Tsit45, 1e-10, 1e-13, &times, &mut keep);
        assert!(out.stopped.is_none());
        for (a, &t) in saved.iter().zip(&times).skip(1) {
            // Modes of A(t) in the target's singular basis.
            let m = u.transpose() * a * &v;
            for i in 0..d {
                let ui = m[(i, i)];
                if c == 0.0 {
                    let expect = saxe_mode(s[i], u0, t);
                    assert!(
                        (ui - expect).abs() < 1e-7 * s[i],
                        "mode {i} at t = {t}: {ui} vs {expect}"
                    );
                } else if ui < s[i] * (1.0 - 1e-6) {
                    let tt = mixed_mode_time(s[i], c, u0, ui);
                    assert!(
                        (tt - t).abs() < 1e-6,
                        "c = {c}, mode {i}: t({ui}) = {tt} vs {t}"
                    );
                }
            }
        }
    }
}

#[test]
fn gd_from_a_small_balanced_init_follows_saxe() {
    // W₁ = diag(√u₀)Vᵀ, W₂ = U diag(√u₀): balanced and aligned with Y. GD with step η follows
    // Saxe's modes up to O(η).
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let d = 5;
    let task = MatrixTask::draw(d, 2, &mut rng);
    let svd = task.y.svd().unwrap();
    let (u, v) = (svd.U().to_owned(), svd.V().to_owned());
    let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
    let u0: f64 = 1e-4;
    let error = |eta: f64| {
        let mut net = LinearNet {
            x1: v.transpose().to_owned() * faer::Scale(u0.sqrt()),
            x2: u.transpose().to_owned() * faer::Scale(u0.sqrt()),
        };
        // Half-way up the largest mode: e^{2 s_max t} = s_max/u₀.
        let t_end = (s[0] / u0).ln() / (2.0 * s[0]);
        let steps = (t_end / eta).round() as usize;
        for _ in 0..steps {
            net.gd_step(task.y.as_ref(), eta);
        }
        let t = steps as f64 * eta;
        let m = u.transpose() * net.product() * &v;
        (0..d)
            .map(|i| {
                let expect = saxe_mode(s[i], u0, t);
                (m[(i, i)] - expect).abs() / expect
            })
            .fold(0.0f64, f64::max)
    };
    let (e1, e2) = (error(1e-3), error(5e-4));
    // First order in η, and small.
    assert!(
        (1.7..2.3).contains(&(e1 / e2)) && e1 < 0.05,
        "errors {e1} {e2}"
    );
}

#[test]
fn lazy_regime_matches_the_frozen_kernel_solution() {
    // σ²w ≫ ‖Y‖: eq. (1) and GD both follow A(t) = Y + e^{−2σ²wt}(A(0) − Y), more closely as the
    // width grows at fixed σ²: the kernel's deviation from 2σ²w·Id is O(‖A‖/(σ²w)) and
    // ‖A(0)‖_op/(σ²w) ≈ 2√(d/w).
    let d = 20;
    let mut errors = vec![];
    for gw in [1.5, 2.0, 2.5] {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let task = MatrixTask::draw(d, 5, &mut rng);
        let gs = -0.5;
        let w = (d as f64).powf(gw) as usize;
        let s2 = (d as f64).powf(gs);
        let c = s2 * w as f64;
        let eta = paper_step(d, gs, gw, op_norm(task.a_star.as_ref()), 50.0);
        let mut net = LinearNet::reduced(d, w, s2, &mut rng).unwrap();
        let a0 = net.product();
        let mut b = a0.clone();
        // Run to e^{−2ct} = 1/e.
        let steps = (0.5 / (c * eta)).round() as usize;
        for _ in 0..steps {
            net.gd_step(task.y.as_ref(), eta);
            euler_step(&mut b, task.y.as_ref(), c * c, eta, faer::Par::Seq);
        }
        // GD's step is the Euler step of the lazy ODE, whose n-th power is (1 − 2cη)^n =
        // e^{−2c t_eff}: compare at that time, so that only the kernel's deviation remains.
        let t_eff = -(steps as f64) * (1.0 - 2.0 * c * eta).ln() / (2.0 * c);
        let lazy_euler = lazy_solution(a0.as_ref(), task.y.as_ref(), c, t_eff);
        errors.push((rel(&b, &lazy_euler), rel(&net.product(), &lazy_euler)));
        assert!(t_eff > 0.0 && t_eff < 1.1 * steps as f64 * eta);
    }
    for w in errors.windows(2) {
        assert!(w[1].0 < w[0].0 && w[1].1 < w[0].1, "{errors:?}");
    }
    let last = errors.last().unwrap();
    assert!(last.0 < 0.01 && last.1 < 0.1, "{errors:?}");
}
