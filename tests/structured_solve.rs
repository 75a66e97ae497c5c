//! The structured Newton solve of stiff particle flows: J = blockdiag(B_j) − L R against the
//! assembled Jacobian, Woodbury's solve against a dense LU of the same matrix, its fallback and
//! its refusal, and whole BDF / ESDIRK34 integrations with and without the structure.

mod common;
use common::*;
use faer::{Mat, MatMut};
use meanfield::dynamics::ParticleFlow;
use meanfield::dynamics::VectorField;
use meanfield::integrate::ode::{self, DeflatedLu};
use meanfield::integrate::woodbury::Woodbury;
use meanfield::linalg::LowRankJacobian;
use meanfield::problem::{Activation, Method};
use std::rc::Rc;

/// A field that hides its structure: the implicit solvers then assemble and LU the dense J.
struct Dense<'a>(&'a dyn VectorField);

impl VectorField for Dense<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn eval(&self, y: &[f64], out: &mut [f64]) {
        self.0.eval(y, out)
    }
    fn jac_mul(&self, y: &[f64], v: &[f64], out: &mut [f64]) {
        self.0.jac_mul(y, v, out)
    }
    fn jacobian(&self, y: &[f64], out: MatMut<'_, f64>) {
        self.0.jacobian(y, out)
    }
}

struct Case {
    model: meanfield::model::TwoLayer,
    x: Mat<f64>,
    y: Vec<f64>,
    theta: Vec<f64>,
}

fn case(act: Activation, bias: bool, fixed_a: bool, n: usize, alpha: f64, samples: usize) -> Case {
    let d = 5;
    let mut model = model(act, d, bias, n, alpha);
    model.fixed_a = fixed_a;
    let x = gaussian_mat(samples, d, 3);
    let (y, theta) = smooth_problem(&x, n, bias, 17);
    Case { model, x, y, theta }
}

fn newton_matrix(j: &Mat<f64>, c: f64) -> Mat<f64> {
    let mut a = j * faer::Scale(-c);
    for k in 0..a.nrows() {
        a[(k, k)] += 1.0;
    }
    a
}

fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    max_abs_diff(a, b) / scale
}

#[test]
fn structured_jacobian_is_the_assembled_one() {
    for (act, bias, fixed_a) in [
        (Activation::named("tanh").unwrap(), true, false),
        (Activation::named("erf").unwrap(), false, false),
        (Activation::named("tanh").unwrap(), true, true),
    ] {
        let c = case(act.clone(), bias, fixed_a, 12, 12f64.sqrt(), 30);
        let flow = ParticleFlow::new(&c.model, &c.x, &c.y, None);
        let p = flow.len();
        let mut dense = Mat::zeros(p, p);
        flow.jacobian(&c.theta, dense.as_mut());
        let lr = flow.jacobian_low_rank(&c.theta).unwrap();
        assert_eq!(lr.block, c.model.dim());
        assert_eq!(lr.left_t.nrows(), 30, "rank = samples");
        let s = lr.dense();
        let scale = dense.norm_max();
        let diff = (&s - &dense).norm_max();
        assert!(
            diff <= 1e-13 * scale,
            "{act:?} bias {bias} fixed_a {fixed_a}: {diff:e}"
        );
    }
}

#[test]
fn woodbury_solves_what_a_dense_lu_solves() {
    // Fixed a makes the blocks and L R unsymmetric (zero a-rows), so a transposition slip in
    // either shows.
    for fixed_a in [false, true] {
        woodbury_against_dense(fixed_a);
    }
}

fn woodbury_against_dense(fixed_a: bool) {
    let c = case(
        Activation::named("tanh").unwrap(),
        true,
        fixed_a,
        40,
        40f64.sqrt(),
        24,
    );
    let flow = ParticleFlow::new(&c.model, &c.x, &c.y, None);
    let lr = Rc::new(flow.jacobian_low_rank(&c.theta).unwrap());
    let j = lr.dense();
    let p = j.nrows();
    let b = gaussian_vec(p, 1.0, 9);
    // c from tiny (A ≈ I) to large (A ≈ c·(L R − B), the stiff regime).
    for cc in [1e-6, 0.1, 10.0, 1e4] {
        let a = newton_matrix(&j, cc);
        let w = Woodbury::new(a.as_ref(), &lr)
            .unwrap()
            .expect("well conditioned");
        let lu = DeflatedLu::new(a.as_ref());
        let (mut x, mut y) = (b.clone(), b.clone());
        w.solve(&mut x);
        lu.solve(&mut y);
        assert!(
            rel_diff(&x, &y) < 1e-9,
            "c = {cc}, fixed a {fixed_a}: {:e}",
            rel_diff(&x, &y)
        );
        let (mut x, mut y) = (b.clone(), b.clone());
        w.solve_transpose(&mut x);
        lu.solve_transpose(&mut y);
        assert!(
            rel_diff(&x, &y) < 1e-9,
            "c = {cc} (transpose): {:e}",
            rel_diff(&x, &y)
        );
    }
}

#[test]
fn singular_blocks_fall_back_and_a_foreign_matrix_is_refused() {
    // Blocks of 2: I − c B_0 is singular at c = 1 (B_0 = diag(1, 0)), while A = D + c L R is not.
    // Dyadic entries, so that c is read back as exactly 1 and the block is exactly singular.
    let lr = Rc::new(LowRankJacobian::new(
        2,
        vec![1.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, -1.0],
        Mat::from_fn(1, 4, |_, k| [1.0, 0.5, -0.25, 0.25][k]),
        Mat::from_fn(1, 4, |_, k| [1.0, 0.5, -0.25, 0.25][k]),
    ));
    let a = newton_matrix(&lr.dense(), 1.0);
    // A itself is invertible: its dense LU solves A x = b to round-off.
    let b = [1.0, -2.0, 0.5, 3.0];
    let mut x = b.to_vec();
    DeflatedLu::new(a.as_ref()).solve(&mut x);
    let ax = &a * Mat::from_fn(4, 1, |i, _| x[i]);
    assert!((0..4).all(|i| (ax[(i, 0)] - b[i]).abs() < 1e-12), "{x:?}");
    assert!(Woodbury::new(a.as_ref(), &lr).unwrap().is_none());
    let back = Woodbury::dense(a.as_ref(), &lr).unwrap();
    assert!((&back - &a).norm_max() < 1e-15);
    // A matrix whose blocks are not I − cJ's for any c: refused with a reason.
    let mut wrong = a.clone();
    wrong[(1, 1)] += 0.25;
    let why = Woodbury::new(wrong.as_ref(), &lr).err().unwrap();
    assert!(why.contains("I − cJ"), "{why}");
}

#[test]
fn stiff_flows_agree_with_and_without_the_structure() {
    // NTK scaling (α = √N): stiff, with 320 unknowns coupled through 48 samples.
    let c = case(
        Activation::named("tanh").unwrap(),
        true,
        false,
        40,
        40f64.sqrt(),
        48,
    );
    let flow = ParticleFlow::new(&c.model, &c.x, &c.y, None);
    let times = [0.0, 1.0, 5.0];
    for method in [Method::Bdf, Method::Esdirk34] {
        let run = |field: &dyn VectorField| {
            let mut last = vec![];
            let out = ode::run(field, &c.theta, method, 1e-8, 1e-10, &times, &mut |_, y| {
                last = y.to_vec();
                Ok(())
            });
            assert!(out.stopped.is_none(), "{method:?}: {:?}", out.stopped);
            (last, out.stats)
        };
        let (structured, s) = run(&flow);
        let (dense, d) = run(&Dense(&flow));
        let diff = rel_diff(&structured, &dense);
        assert!(diff < 1e-7, "{method:?}: {diff:e}");
        // Same Newton iterations, up to rounding: the step counts agree within a few.
        assert!(s.steps.abs_diff(d.steps) <= 2, "{method:?}: {s:?} vs {d:?}");
        assert!(s.jacobian_evals > 0 && s.lu_factorizations > 0, "{s:?}");
    }
}
