//! Diagonal linear networks: NNLS, Algorithm 1 (the saddle-to-saddle limit), the mirror map, the
//! vector fields' Jacobians, and the flows converging to the limit as α → 0.

mod common;

use common::{gaussian_mat, gaussian_vec, max_abs_diff};
use faer::Mat;
use meanfield::dynamics::diagonal::{MirrorFlow, WeightFlow};
use meanfield::dynamics::VectorField;
use meanfield::integrate::ode::fd_jacobian;
use meanfield::limits::nnls::{nnls_gram, NnlsError};
use meanfield::limits::saddle::{loss_grad, saddle_path, SaddlePath};
use meanfield::model::diagonal::Diagonal;
use meanfield::problem::Parametrization;
use std::path::Path;

fn gram(a: &Mat<f64>, b: &[f64]) -> (Mat<f64>, Vec<f64>) {
    let q = a.transpose() * a;
    let r = a.transpose() * faer::ColRef::from_slice(b);
    (q, r.iter().copied().collect())
}

/// Objective ½‖Ax − b‖² of a candidate.
fn half_sq(a: &Mat<f64>, b: &[f64], x: &[f64]) -> f64 {
    let ax = a * faer::ColRef::from_slice(x);
    ax.iter()
        .zip(b)
        .map(|(p, q)| (p - q) * (p - q))
        .sum::<f64>()
        / 2.0
}

/// Unconstrained least squares on the columns in `set` (normal equations by faer's LU).
fn ls_on(a: &Mat<f64>, b: &[f64], set: &[usize]) -> Option<Vec<f64>> {
    use faer::linalg::solvers::SolveCore;
    let sub = Mat::from_fn(a.nrows(), set.len(), |i, j| a[(i, set[j])]);
    let (q, r) = gram(&sub, b);
    let lu = q.full_piv_lu();
    let mut rhs = Mat::from_fn(set.len(), 1, |i, _| r[i]);
    lu.solve_in_place_with_conj(faer::Conj::No, rhs.as_mut());
    let z: Vec<f64> = (0..set.len()).map(|i| rhs[(i, 0)]).collect();
    z.iter().all(|v| v.is_finite()).then_some(z)
}

/// NNLS by enumeration: the optimum is the unconstrained least-squares solution on its support,
/// so the best feasible one over all 2^m supports is the answer.
fn nnls_brute(a: &Mat<f64>, b: &[f64]) -> Vec<f64> {
    let m = a.ncols();
    let mut best = (half_sq(a, b, &vec![0.0; m]), vec![0.0; m]);
    for mask in 1u32..(1 << m) {
        let set: Vec<usize> = (0..m).filter(|&i| mask & (1 << i) != 0).collect();
        if let Some(z) = ls_on(a, b, &set) {
            if z.iter().all(|&v| v >= 0.0) {
                let mut x = vec![0.0; m];
                for (&i, &v) in set.iter().zip(&z) {
                    x[i] = v;
                }
                let f = half_sq(a, b, &x);
                if f < best.0 {
                    best = (f, x);
                }
            }
        }
    }
    best.1
}

#[test]
fn nnls_matches_enumeration_and_kkt() {
    for seed in 0..30u64 {
        let (n, m) = if seed % 2 == 0 { (12, 7) } else { (5, 4) };
        let a = gaussian_mat(n, m, 100 + seed);
        let b = gaussian_vec(n, 1.0, 200 + seed);
        let (q, r) = gram(&a, &b);
        let sol = nnls_gram(q.as_ref(), &r, None, 1e-12).unwrap();
        let brute = nnls_brute(&a, &b);
        assert!(
            max_abs_diff(&sol.x, &brute) < 1e-9,
            "seed {seed}: {:?} vs {:?}",
            sol.x,
            brute
        );
        // KKT: x ≥ 0, w = r − Qx ≤ 0, and x_i w_i = 0.
        let w: Vec<f64> = (0..m)
            .map(|i| r[i] - (0..m).map(|j| q[(i, j)] * sol.x[j]).sum::<f64>())
            .collect();
        for i in 0..m {
            assert!(sol.x[i] >= 0.0);
            assert!(w[i] < 1e-9, "seed {seed}: dual infeasible {w:?}");
            assert!((sol.x[i] * w[i]).abs() < 1e-9);
        }
        // A warm start from any feasible point reaches the same solution.
        let warm: Vec<f64> = (0..m).map(|i| (i % 3) as f64 * 0.7).collect();
        let again = nnls_gram(q.as_ref(), &r, Some(&warm), 1e-12).unwrap();
        assert!(
            max_abs_diff(&again.x, &brute) < 1e-9,
            "seed {seed}: warm start"
        );
    }
}

#[test]
fn nnls_edge_cases() {
    // b in the negative cone of A's columns: x = 0.
    let a = Mat::<f64>::identity(3, 3);
    let (q, r) = gram(&a, &[-1.0, -2.0, -0.5]);
    assert_eq!(
        nnls_gram(q.as_ref(), &r, None, 1e-12).unwrap().x,
        vec![0.0; 3]
    );
    // Positive solution: plain least squares.
    let (q, r) = gram(&a, &[1.0, 2.0, 0.5]);
    let x = nnls_gram(q.as_ref(), &r, None, 1e-12).unwrap().x;
    assert!(max_abs_diff(&x, &[1.0, 2.0, 0.5]) < 1e-14);
    // Two identical columns both needed on the passive set: singular, reported as such.
    let dup = Mat::from_fn(4, 2, |i, _| 1.0 + i as f64);
    let (q, r) = gram(&dup, &[1.0, 2.0, 3.0, 4.0]);
    let warm = [0.5, 0.5];
    match nnls_gram(q.as_ref(), &r, Some(&warm), 1e-12) {
        Err(NnlsError::Singular { columns }) => assert_eq!(columns.len(), 2),
        other => panic!("expected a singular passive set, got {other:?}"),
    }
}

/// The n = 5, d = 8 instance of shared/papers/saddle_to_saddle.md §1.8 (numpy default_rng(0)).
fn notes_instance() -> (Mat<f64>, Vec<f64>) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/saddle_notes.csv"),
    )
    .unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(',').map(|v| v.trim().parse().unwrap()).collect())
        .collect();
    let x = Mat::from_fn(rows.len(), 8, |i, j| rows[i][j]);
    (x, rows.iter().map(|r| r[8]).collect())
}

fn support(b: &[f64]) -> Vec<usize> {
    (0..b.len()).filter(|&i| b[i] != 0.0).collect()
}

#[test]
fn algorithm1_reproduces_the_notes_instance() {
    // Jump times and supports as the notes report them, computed there with scipy's nnls.
    let (x, y) = notes_instance();
    let p = saddle_path(x.as_ref(), &y, 1e-10).unwrap();
    let t = p.jump_times();
    let expect = [0.999, 2.001, 4.563, 7.166, 23.23, 41.05, 54.11];
    assert_eq!(t.len(), expect.len(), "jump times {t:?}");
    for (a, b) in t.iter().zip(expect) {
        assert!((a - b).abs() < 6e-3, "jump times {t:?} vs {expect:?}");
    }
    let supports: Vec<Vec<usize>> = p.saddles[1..].iter().map(|s| support(&s.beta)).collect();
    let expect_supp: Vec<Vec<usize>> = vec![
        vec![6],
        vec![4, 6],
        vec![3, 4, 6],
        vec![3, 4, 6, 7],
        vec![0, 4, 6, 7],
        vec![0, 5, 6, 7],
        vec![0, 1, 5, 6, 7],
    ];
    assert_eq!(supports, expect_supp);
    assert_eq!(
        p.saddles[5].left,
        vec![3],
        "coordinate 3 leaves at the 5th jump"
    );
    // ‖β‖₁ along the path, as in the notes.
    let l1: Vec<f64> = p.saddles[1..]
        .iter()
        .map(|s| s.beta.iter().map(|b| b.abs()).sum())
        .collect();
    for (a, b) in l1.iter().zip([0.94, 1.10, 1.73, 2.39, 2.65, 2.98, 3.12]) {
        assert!((a - b).abs() < 6e-3, "‖β‖₁ {l1:?}");
    }
    assert!(p.saddles.last().unwrap().loss < 1e-25);
}

/// Path invariants: t_1 = 1/‖∇L(0)‖∞; the loss strictly decreases from saddle to saddle; |s| ≤ 1
/// with s = sign(β) on the support; and s(t_k) equals −Σ_j (t_{j+1} − t_j) ∇L(β_j), the integral
/// of the piecewise-constant gradient recomputed here from the saddles alone.
fn check_path(x: &Mat<f64>, y: &[f64], p: &SaddlePath) {
    let d = x.ncols();
    let (_, g0) = loss_grad(x.as_ref(), y, &vec![0.0; d]);
    let g0_inf = g0.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    assert!((p.saddles[1].t - 1.0 / g0_inf).abs() < 1e-12 * p.saddles[1].t);
    let mut integral = vec![0.0; d];
    for k in 1..p.saddles.len() {
        let prev = &p.saddles[k - 1];
        let cur = &p.saddles[k];
        assert!(cur.t > prev.t, "jump times increase");
        assert!(cur.loss < prev.loss, "loss decreases at jump {k}");
        let (_, g) = loss_grad(x.as_ref(), y, &prev.beta);
        for i in 0..d {
            integral[i] -= (cur.t - prev.t) * g[i];
        }
        let scale = integral.iter().fold(1.0f64, |a, v| a.max(v.abs()));
        assert!(
            max_abs_diff(&integral, &cur.s) < 1e-8 * scale,
            "s(t_{k}) is not the integrated gradient"
        );
        for i in 0..d {
            assert!(cur.s[i].abs() <= 1.0);
            if cur.beta[i] != 0.0 {
                assert_eq!(cur.s[i], cur.beta[i].signum());
            }
        }
    }
}

/// min ‖β‖₁ s.t. Xβ = y as a linear program, solved by visiting its vertices: for n < d and X
/// in general position an optimal basic solution has support n, so it is X_S⁻¹y for some S.
fn min_l1_by_vertices(x: &Mat<f64>, y: &[f64]) -> Vec<f64> {
    let (n, d) = (x.nrows(), x.ncols());
    let mut best = (f64::INFINITY, vec![]);
    let mut set: Vec<usize> = (0..n).collect();
    loop {
        if let Some(z) = ls_on(x, y, &set) {
            let l1: f64 = z.iter().map(|v| v.abs()).sum();
            if l1 < best.0 {
                let mut b = vec![0.0; d];
                for (&i, &v) in set.iter().zip(&z) {
                    b[i] = v;
                }
                best = (l1, b);
            }
        }
        // Next n-subset of 0..d in lexicographic order.
        let Some(k) = (0..n).rev().find(|&k| set[k] < d - n + k) else {
            break;
        };
        set[k] += 1;
        for j in k + 1..n {
            set[j] = set[j - 1] + 1;
        }
    }
    best.1
}

#[test]
fn last_saddle_is_the_minimum_l1_interpolator() {
    for seed in 0..12u64 {
        let (n, d) = (4 + (seed as usize % 3), 11);
        let x = gaussian_mat(n, d, 300 + seed);
        let y = gaussian_vec(n, 1.0, 400 + seed);
        let p = saddle_path(x.as_ref(), &y, 1e-11).unwrap();
        check_path(&x, &y, &p);
        let last = &p.saddles.last().unwrap().beta;
        let lp = min_l1_by_vertices(&x, &y);
        assert!(
            max_abs_diff(last, &lp) < 1e-8,
            "seed {seed}: Algorithm 1 {last:?} vs LP {lp:?}"
        );
    }
}

#[test]
fn underparametrized_path_ends_at_least_squares() {
    for seed in 0..6u64 {
        let (n, d) = (30, 6);
        let x = gaussian_mat(n, d, 500 + seed);
        let y = gaussian_vec(n, 1.0, 600 + seed);
        let p = saddle_path(x.as_ref(), &y, 1e-12).unwrap();
        check_path(&x, &y, &p);
        let ols = ls_on(&x, &y, &(0..d).collect::<Vec<_>>()).unwrap();
        assert!(max_abs_diff(&p.saddles.last().unwrap().beta, &ols) < 1e-10);
    }
}

#[test]
fn mirror_map_is_overflow_safe_and_inverts() {
    for param in [Parametrization::Uv, Parametrization::U2MinusV2] {
        let c = if param == Parametrization::Uv {
            1.0
        } else {
            2.0
        };
        // Moderate α: the log-space form equals c α² sinh(2 log(1/α) q) evaluated directly.
        let net = Diagonal::new(Mat::zeros(1, 4), vec![0.0], param, 1e-2);
        let l = (1e2f64).ln();
        let q = [-1.1, -0.3, 0.0, 0.7];
        let b = net.beta_of_q(&q);
        for (qi, bi) in q.iter().zip(&b) {
            let direct = c * 1e-4 * (2.0 * l * qi).sinh();
            assert!((bi - direct).abs() <= 1e-13 * direct.abs().max(1e-300));
        }
        let db = net.dbeta_dq(&q);
        for (qi, di) in q.iter().zip(&db) {
            let direct = c * 1e-4 * 2.0 * l * (2.0 * l * qi).cosh();
            assert!((di - direct).abs() <= 1e-13 * direct);
        }
        // Tiny α: finite everywhere, and q ↦ β ↦ q is the identity.
        for alpha in [1e-24, 1e-40, 1e-150] {
            let net = Diagonal::new(Mat::zeros(1, 6), vec![0.0], param, alpha);
            let q = [-1.2, -1.0, -0.2, 0.0, 0.9, 1.05];
            let b = net.beta_of_q(&q);
            assert!(b.iter().chain(&net.dbeta_dq(&q)).all(|v| v.is_finite()));
            let back = net.q_of_beta(&b);
            assert!(max_abs_diff(&back, &q) < 1e-12, "α = {alpha}: {back:?}");
        }
    }
}

#[test]
fn diagonal_jacobians_match_finite_differences() {
    let x = gaussian_mat(7, 5, 11);
    let y = gaussian_vec(7, 1.0, 12);
    for param in [Parametrization::Uv, Parametrization::U2MinusV2] {
        let net = Diagonal::new(x.clone(), y.clone(), param, 0.3);
        let w = gaussian_vec(10, 0.8, 13);
        let q: Vec<f64> = gaussian_vec(5, 0.6, 14);
        let weight = WeightFlow { net: &net };
        let mirror = MirrorFlow { net: &net };
        let fields: [(&dyn VectorField, &[f64]); 2] = [(&weight, &w), (&mirror, &q)];
        for (field, state) in fields {
            let p = field.len();
            let mut jac = Mat::zeros(p, p);
            field.jacobian(state, jac.as_mut());
            let fd = fd_jacobian(field, state, 1e-6);
            let err = (&jac - &fd).norm_max();
            assert!(err < 1e-7 * fd.norm_max().max(1.0), "{param:?}: {err}");
            let v = gaussian_vec(p, 1.0, 15);
            let mut jv = vec![0.0; p];
            field.jac_mul(state, &v, &mut jv);
            let dense = &jac * faer::ColRef::from_slice(&v);
            assert!(
                max_abs_diff(&jv, &dense.iter().copied().collect::<Vec<_>>())
                    < 1e-12 * (1.0 + jac.norm_max())
            );
        }
    }
}

fn run_shipped(out: &Path) -> meanfield::family::diagonal::DiagonalReport {
    use meanfield::family::diagonal::{run_diagonal, DiagonalSetup};
    use meanfield::family::RunOptions;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("problems/saddle_notes.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let opts = RunOptions {
        out: Some(out.to_path_buf()),
        ..Default::default()
    };
    let setup = DiagonalSetup::from_text(text, &path, &opts).unwrap();
    run_diagonal(&setup, &opts, &mut |_, _, _, _| {}).unwrap()
}

#[test]
fn accelerated_flow_converges_to_the_limit_as_alpha_vanishes() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_shipped(&dir.path().join("s.h5"));
    assert!(report.completed());
    let limit = report.limit.as_ref().unwrap();
    let t1 = limit.saddles[1].t;
    let mirror: Vec<_> = [1e-3, 1e-6, 1e-12, 1e-24]
        .iter()
        .map(|&a| {
            report
                .comparisons
                .iter()
                .find(|c| c.run.starts_with("mirror_flow") && c.alpha == a)
                .expect("one mirror flow per α")
        })
        .collect();
    for w in mirror.windows(2) {
        assert!(
            w[1].worst < w[0].worst,
            "worst plateau distance does not fall: {} at α = {} vs {} at α = {}",
            w[1].worst,
            w[1].alpha,
            w[0].worst,
            w[0].alpha
        );
        assert!((w[1].first_jump_tau - t1).abs() < (w[0].first_jump_tau - t1).abs());
        assert!(w[1].first_jump_tau > t1, "the flow jumps after the limit");
    }
    let last = mirror.last().unwrap();
    assert!(
        last.worst < 1e-3,
        "α = 1e-24: worst distance {}",
        last.worst
    );
    assert!((last.first_jump_tau - t1).abs() < 1e-2 * t1);
    // Every plateau of the limit is compared, the last one included.
    assert_eq!(last.plateaus.len(), limit.saddles.len());
}

#[test]
fn flows_agree_with_each_other_and_keep_their_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.h5");
    let report = run_shipped(&out);
    let limit = report.limit.as_ref().unwrap();
    let find = |name: &str| {
        report
            .comparisons
            .iter()
            .find(|c| c.run == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    // The mirror flow in q and the weight flow in (u, v) are the same dynamics at the same α:
    // two methods, one answer (all plateaus but the last, whose midpoint depends on the end time).
    let (m, w) = (find("mirror_flow_alpha_1e-3"), find("gradient_flow"));
    for (a, b) in m
        .plateaus
        .iter()
        .zip(&w.plateaus)
        .take(m.plateaus.len() - 1)
    {
        assert!(
            (a.1 - b.1).abs() < 1e-9 && (a.2 - b.2).abs() < 1e-6,
            "{a:?} vs {b:?}"
        );
    }
    let a = meanfield::archive::ArchiveReader::open(&out).unwrap();
    // The weight flow conserves u² − v² = 2α² to solver accuracy.
    let cons = a.read_1d("runs/gradient_flow/conservation_error").unwrap();
    assert!(
        cons.iter().all(|&c| c < 1e-10),
        "max drift {:e}",
        cons.iter().fold(0.0f64, |x, &y| x.max(y))
    );
    // Gradient flows descend: the training loss never increases between saves.
    for run in [
        "gradient_flow",
        "mirror_flow_alpha_1e-24",
        "mirror_flow_alpha_1e-6",
    ] {
        let l = a.read_1d(&format!("runs/{run}/loss_train")).unwrap();
        for k in 1..l.len() {
            assert!(
                l[k] <= l[k - 1] + 1e-12 * l[0],
                "{run}: loss rises at save {k}"
            );
        }
    }
    // At α = 1e-24 the loss sits on the saddle's value in the middle of each plateau.
    let tau = a.read_1d("runs/mirror_flow_alpha_1e-24/tau").unwrap();
    let loss = a
        .read_1d("runs/mirror_flow_alpha_1e-24/loss_train")
        .unwrap();
    for (k, mid) in limit.plateau_midpoints(tau[tau.len() - 1]) {
        let j = tau
            .iter()
            .position(|&t| (t - mid).abs() < 1e-9)
            .expect("saved at the midpoint");
        let l0 = limit.saddles[0].loss;
        assert!(
            (loss[j] - limit.saddles[k].loss).abs() < 1e-3 * l0,
            "plateau {k}: flow loss {} vs saddle loss {}",
            loss[j],
            limit.saddles[k].loss
        );
    }
}

#[test]
fn gd_on_the_weights_is_first_order_in_the_step() {
    // GD's error against the flow at a fixed raw time halves when the step halves.
    use meanfield::integrate::{gd, ode};
    use meanfield::problem::Method;
    let (x, y) = notes_instance();
    let net = Diagonal::new(x, y, Parametrization::Uv, 1e-2);
    let field = WeightFlow { net: &net };
    let t_end = 20.0;
    let mut reference = vec![];
    let mut keep = |_: f64, s: &[f64]| {
        reference = s.to_vec();
        Ok(())
    };
    let out = ode::run(
        &field,
        &net.init_state(),
        Method::Bdf,
        1e-11,
        1e-14,
        &[0.0, t_end],
        &mut keep,
    );
    assert!(out.stopped.is_none());
    let error = |step: f64| {
        let steps = (t_end / step).round() as usize;
        let mut last = vec![];
        let mut keep = |_: f64, s: &[f64]| {
            last = s.to_vec();
            Ok(())
        };
        gd::run(&field, &net.init_state(), step, steps, &[steps], &mut keep);
        max_abs_diff(&net.beta_of_state(&last), &net.beta_of_state(&reference))
    };
    let (e1, e2, e3) = (error(0.02), error(0.01), error(0.005));
    for (a, b) in [(e1, e2), (e2, e3)] {
        let ratio = a / b;
        assert!((1.7..2.3).contains(&ratio), "errors {e1:e} {e2:e} {e3:e}");
    }
}

#[test]
fn sparse_planted_vector_is_recovered_by_the_limit() {
    // Noise-free y = Xβ* with a 3-sparse β* and n = 40 ≫ 3 log d: the minimum-ℓ1 interpolator is
    // β* itself (exact recovery), so the path ends on a support of size 3 with zero loss.
    use meanfield::data::Dataset;
    use meanfield::problem::{DataSpec, InputLaw, TargetSpec};
    let spec = DataSpec::Synthetic {
        input: InputLaw::Gaussian,
        d: 100,
        n_train: 40,
        n_test: 0,
        radius: None,
        noise: 0.0,
        target: TargetSpec::Sparse {
            support: 3,
            scale: 1.0,
        },
        risk: Default::default(),
    };
    let data = Dataset::build(&spec, 7, Path::new("."), Path::new("test.toml")).unwrap();
    let p = saddle_path(data.x_train.as_ref(), &data.y_train, 1e-12).unwrap();
    check_path(&data.x_train, &data.y_train, &p);
    let last = p.saddles.last().unwrap();
    assert_eq!(support(&last.beta).len(), 3, "{:?}", support(&last.beta));
    assert!(last.loss < 1e-20);
}

#[test]
fn deflated_lu_solves_like_the_dense_one() {
    use meanfield::integrate::ode::DeflatedLu;
    // I − cJ for a field that leaves 6 of 10 coordinates uncoupled: unit columns there.
    let n = 10;
    let coupled = [1usize, 4, 5, 8];
    let g = gaussian_mat(n, n, 21);
    let a = Mat::from_fn(n, n, |i, j| {
        let unit = if i == j { 1.0 } else { 0.0 };
        if coupled.contains(&j) {
            unit + 0.3 * g[(i, j)]
        } else {
            unit
        }
    });
    let full = Mat::from_fn(n, n, |i, j| g[(i, j)] + if i == j { 4.0 } else { 0.0 });
    for (m, deflated) in [(&a, 6), (&full, 0)] {
        let lu = DeflatedLu::new(m.as_ref());
        assert_eq!(lu.free_columns(), deflated);
        let b = gaussian_vec(n, 1.0, 22);
        let mut x = b.clone();
        lu.solve(&mut x);
        let ax = m * faer::ColRef::from_slice(&x);
        assert!(max_abs_diff(&ax.iter().copied().collect::<Vec<_>>(), &b) < 1e-12);
        let mut xt = b.clone();
        lu.solve_transpose(&mut xt);
        let atx = m.transpose() * faer::ColRef::from_slice(&xt);
        assert!(max_abs_diff(&atx.iter().copied().collect::<Vec<_>>(), &b) < 1e-12);
    }
}

#[test]
fn both_parametrizations_follow_their_mirror_flows() {
    // For u ⊙ v and u² − v² alike, the weight flow at raw time λ_α τ and the mirror flow at τ give
    // the same β: two state spaces, two time scales, one trajectory.
    use meanfield::integrate::ode;
    use meanfield::problem::Method;
    let (x, y) = notes_instance();
    let taus = [0.0, 0.7, 1.5, 3.0, 6.0, 12.0];
    for param in [Parametrization::Uv, Parametrization::U2MinusV2] {
        let net = Diagonal::new(x.clone(), y.clone(), param, 1e-2);
        let lambda = net.time_scale();
        let mut from_q = vec![];
        let mut keep = |_: f64, q: &[f64]| {
            from_q.push(net.beta_of_q(q));
            Ok(())
        };
        let mirror = MirrorFlow { net: &net };
        ode::run(
            &mirror,
            &[0.0; 8],
            Method::Bdf,
            1e-10,
            1e-13,
            &taus,
            &mut keep,
        );
        let mut from_w = vec![];
        let mut keep = |_: f64, w: &[f64]| {
            from_w.push(net.beta_of_state(w));
            Ok(())
        };
        let times: Vec<f64> = taus.iter().map(|t| t * lambda).collect();
        let weights = WeightFlow { net: &net };
        ode::run(
            &weights,
            &net.init_state(),
            Method::Bdf,
            1e-10,
            1e-14,
            &times,
            &mut keep,
        );
        assert_eq!(from_q.len(), taus.len());
        assert_eq!(from_w.len(), taus.len());
        for (a, b) in from_q.iter().zip(&from_w) {
            assert!(max_abs_diff(a, b) < 1e-6, "{param:?}: {a:?} vs {b:?}");
        }
    }
}

#[test]
fn mirror_flow_runs_at_astronomically_small_alpha() {
    // α = 1e-48 … 1e-300: α² underflows a double (1e-600) but the log-space mirror map does not;
    // the distance to the limit keeps falling.
    use meanfield::family::diagonal::{run_diagonal, DiagonalSetup};
    use meanfield::family::RunOptions;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("problems/saddle_notes.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "alphas = [1e-3, 1e-6, 1e-12, 1e-24]",
            "alphas = [1e-48, 1e-100, 1e-300]",
        )
        .replace(
            "kind = \"gd\"\nstep = 0.02\nsteps = 28000",
            "kind = \"gd\"\nstep = 0.02\nsteps = 10",
        );
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: Some(dir.path().join("tiny.h5")),
        ..Default::default()
    };
    let setup = DiagonalSetup::from_text(text, &path, &opts).unwrap();
    let report = run_diagonal(&setup, &opts, &mut |_, _, _, _| {}).unwrap();
    assert!(report.completed(), "{:?}", report.runs);
    let worst: Vec<f64> = report
        .comparisons
        .iter()
        .filter(|c| c.run.starts_with("mirror_flow"))
        .map(|c| c.worst)
        .collect();
    assert_eq!(worst.len(), 3);
    assert!(worst.iter().all(|w| w.is_finite()));
    assert!(worst[0] > worst[1] && worst[1] > worst[2], "{worst:?}");
    assert!(worst[2] < 1e-8, "{worst:?}");
}

/// Twin columns (a duplicate and a negated duplicate) break Algorithm 1's general position: the
/// CLI warns, naming them, and the archive records them; distinct columns give no warning.
#[test]
fn twin_data_columns_are_reported_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = std::fs::read_to_string("data/saddle_notes.csv").unwrap();
    // Each row is one sample, x_1..x_8 then y: append a copy of x_3 (column 2) and −x_6
    // (column 5) as features 8 and 9, before y.
    let rows: Vec<&str> = src.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), 5);
    let twin: Vec<String> = rows
        .iter()
        .map(|r| {
            let v: Vec<f64> = r.split(',').map(|x| x.parse().unwrap()).collect();
            let mut w = v[..8].to_vec();
            w.extend([v[2], -v[5], v[8]]);
            w.iter()
                .map(|x| format!("{x:e}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    std::fs::write(d.join("twin.csv"), twin.join("\n") + "\n").unwrap();
    std::fs::write(d.join("plain.csv"), rows.join("\n") + "\n").unwrap();
    for (csv, twins) in [("plain.csv", false), ("twin.csv", true)] {
        let text = format!(
            "seed = 0\noutput = \"o.h5\"\n[data]\nsource = \"csv\"\ntrain = \"{csv}\"\n\
             [model]\nkind = \"diagonal\"\nparametrization = \"uv\"\nalpha = 1e-3\n\
             [[dynamics]]\nkind = \"saddle_limit\"\n[save]\ncount = 11\n"
        );
        std::fs::write(d.join("p.toml"), text).unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_meanfield"))
            .args(["run", "p.toml", "-q", "--force"])
            .current_dir(d)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let a = meanfield::archive::ArchiveReader::open(&d.join("o.h5")).unwrap();
        let recorded = meanfield::archive::ArchiveReader::str_attr(&a.file, "duplicate_columns");
        if twins {
            assert!(
                err.contains("data columns 2 ~ 8, 5 ~ −9 are equal or negated"),
                "{err}"
            );
            assert_eq!(recorded.as_deref(), Some("2 ~ 8, 5 ~ −9"));
        } else {
            assert!(!err.contains("warning"), "{err}");
            assert_eq!(recorded, None);
        }
    }
}

/// The weight-space flow at tiny α: its weights start at ~α, so an absolute tolerance above
/// rtol·α would let the solver ignore them (the first jump came at τ = 0.978 at α = 1e-12 and
/// never at α = 1e-24). With atol capped at rtol·α it jumps when the mirror flow, an independent
/// parametrization of the same dynamics, does, and the invariant u² − v² = 2α² holds relative to
/// the size of u² + v².
#[test]
fn weight_space_flow_at_tiny_alpha_matches_the_mirror_flow() {
    use meanfield::family::diagonal::{run_diagonal, DiagonalSetup};
    use meanfield::family::RunOptions;
    let dir = tempfile::tempdir().unwrap();
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/saddle_notes.csv");
    for alpha in [1e-12, 1e-24] {
        let out = dir.path().join(format!("a{alpha:e}.h5"));
        let text = format!(
            "seed = 0\noutput = \"{}\"\n[data]\nsource = \"csv\"\ntrain = \"{}\"\n\
             [model]\nkind = \"diagonal\"\nparametrization = \"uv\"\nalpha = {alpha:e}\n\
             [[dynamics]]\nkind = \"saddle_limit\"\n\
             [[dynamics]]\nkind = \"mirror_flow\"\nmethod = \"bdf\"\n\
             [[dynamics]]\nkind = \"gradient_flow\"\nmethod = \"bdf\"\nt_end = 100.0\n\
             [save]\ncount = 201\n",
            out.display(),
            csv.display()
        );
        let file = dir.path().join("p.toml");
        std::fs::write(&file, &text).unwrap();
        let opts = RunOptions::default();
        let setup = DiagonalSetup::from_text(text, &file, &opts).unwrap();
        let report = run_diagonal(&setup, &opts, &mut |_, _, _, _| {}).unwrap();
        assert!(report.completed());
        let jump = |run: &str| {
            report
                .comparisons
                .iter()
                .find(|c| c.run == run)
                .unwrap()
                .first_jump_tau
        };
        let (w, m) = (jump("gradient_flow"), jump("mirror_flow"));
        assert!(
            (w - m).abs() <= 1e-4 * m,
            "α = {alpha:e}: weights jump at τ = {w}, mirror at {m}"
        );
        let a = meanfield::archive::ArchiveReader::open(&out).unwrap();
        let rel = a
            .read_1d("runs/gradient_flow/conservation_error_relative")
            .unwrap();
        let worst = rel.iter().fold(0.0f64, |x, y| x.max(*y));
        assert!(
            worst < 1e-3,
            "α = {alpha:e}: relative conservation error {worst:e}"
        );
    }
}
