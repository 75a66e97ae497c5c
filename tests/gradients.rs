//! The velocity field, its J·v product and its assembled Jacobian against central finite
//! differences, for every activation, with and without bias.

mod common;
use common::*;
use faer::Mat;
use meanfield::dynamics::ParticleFlow;
use meanfield::dynamics::VectorField;
use meanfield::integrate::ode::fd_jacobian;
use meanfield::model::loss::Loss;
use meanfield::model::{mse, Batch, Workspace};
use meanfield::problem::Activation;

const N: usize = 6;
const D_IN: usize = 3;
const SAMPLES: usize = 9;

/// The flow's assembled Jacobian at θ, its worst entry against central differences of the
/// field (relative to 1 + |entry|), and J·v against the assembled J·v along a Gaussian
/// direction drawn from `seed`.
fn jacobian_errors(flow: &dyn VectorField, theta: &[f64], seed: u64) -> (Mat<f64>, f64, f64) {
    let p = flow.len();
    let mut jac = Mat::zeros(p, p);
    flow.jacobian(theta, jac.as_mut());
    let fd = fd_jacobian(flow, theta, 1e-6);
    let worst = (0..p * p)
        .map(|ik| {
            let (i, k) = (ik / p, ik % p);
            (jac[(i, k)] - fd[(i, k)]).abs() / (1.0 + fd[(i, k)].abs())
        })
        .fold(0.0, f64::max);
    let dir = gaussian_vec(p, 1.0, seed);
    let mut jv = vec![0.0; p];
    flow.jac_mul(theta, &dir, &mut jv);
    let dense: Vec<f64> = (0..p)
        .map(|i| (0..p).map(|k| jac[(i, k)] * dir[k]).sum())
        .collect();
    (jac, worst, max_abs_diff(&jv, &dense))
}

/// Central differences of `risk` at θ, one coordinate at a time (h = 1e-6).
fn risk_gradient(theta: &[f64], mut risk: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let h = 1e-6;
    let mut th = theta.to_vec();
    (0..theta.len())
        .map(|k| {
            th[k] = theta[k] + h;
            let rp = risk(&th);
            th[k] = theta[k] - h;
            let rm = risk(&th);
            th[k] = theta[k];
            (rp - rm) / (2.0 * h)
        })
        .collect()
}

/// The velocity is −(N / (2α²)) ∇R with R the empirical risk: check it against the finite
/// difference gradient of R itself, which shares no code with the backward pass.
#[test]
fn velocity_is_scaled_negative_risk_gradient() {
    for act in Activation::all() {
        for bias in [false, true] {
            for alpha in [1.0, 3.7] {
                let m = model(act.clone(), D_IN, bias, N, alpha);
                let x = gaussian_mat(SAMPLES, D_IN, 1);
                let y = gaussian_vec(SAMPLES, 1.0, 2);
                let theta = gaussian_vec(m.n_params(), 0.8, 3);
                let mut ws = Workspace::default();
                let risk = |th: &[f64], ws: &mut Workspace| mse(&y, &m.predict(th, x.as_ref(), ws));
                let mut v = vec![0.0; m.n_params()];
                let batch = Batch {
                    x: x.as_ref(),
                    y: &y,
                    f0: None,
                };
                m.velocity(&theta, &batch, &mut ws, &mut v);
                let scale = -(N as f64) / (2.0 * alpha * alpha);
                let grad = risk_gradient(&theta, |th| risk(th, &mut ws));
                for k in 0..theta.len() {
                    let fd = scale * grad[k];
                    assert!(
                        (fd - v[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                        "{act:?} bias={bias} α={alpha} coord {k}: fd {fd} vs {}",
                        v[k]
                    );
                }
            }
        }
    }
}

#[test]
fn jacobian_and_jvp_match_finite_differences() {
    for act in Activation::all() {
        for bias in [false, true] {
            for f0 in [false, true] {
                let m = model(act.clone(), D_IN, bias, N, 1.3);
                let x = gaussian_mat(SAMPLES, D_IN, 4);
                let y = gaussian_vec(SAMPLES, 1.0, 5);
                let theta = gaussian_vec(m.n_params(), 0.8, 6);
                let f0v = gaussian_vec(SAMPLES, 0.3, 7);
                let flow = ParticleFlow::new(&m, &x, &y, f0.then_some(f0v.as_slice()));
                let (_, worst, err) = jacobian_errors(&flow, &theta, 8);
                assert!(
                    worst < 1e-6,
                    "{act:?} bias={bias} f0={f0}: Jacobian off by {worst}"
                );
                assert!(err < 1e-10, "{act:?} bias={bias}: J·v off by {err}");
            }
        }
    }
}

/// Df·v, Dfᵀ·u, H_u·v and D²f[v,v] of the output map against finite differences of the forward
/// pass; κ's Jacobian norm against the dense singular value, its Hessian norm against random
/// directions (it is a sup).
#[test]
fn output_derivatives_and_laziness_ratio() {
    use meanfield::model::laziness::laziness;
    for act in [
        Activation::named("tanh").unwrap(),
        Activation::named("erf").unwrap(),
        Activation::named("softplus").unwrap(),
        Activation::named("quadratic").unwrap(),
    ] {
        for bias in [false, true] {
            let m = model(act.clone(), D_IN, bias, N, 2.0);
            let x = gaussian_mat(SAMPLES, D_IN, 11);
            let y = gaussian_vec(SAMPLES, 1.0, 12);
            let theta = gaussian_vec(m.n_params(), 0.7, 13);
            let p = m.n_params();
            let mut ws = Workspace::default();
            let v = gaussian_vec(p, 1.0, 14);
            let u = gaussian_vec(SAMPLES, 1.0, 15);
            let h = 1e-5;
            let shifted = |s: f64, ws: &mut Workspace| {
                let th: Vec<f64> = theta.iter().zip(&v).map(|(t, d)| t + s * d).collect();
                m.predict(&th, x.as_ref(), ws)
            };
            let (fp, f0, fm) = (
                shifted(h, &mut ws),
                shifted(0.0, &mut ws),
                shifted(-h, &mut ws),
            );
            let jv = m.output_jvp(&theta, x.as_ref(), &v, &mut ws);
            for i in 0..SAMPLES {
                let fd1 = (fp[i] - fm[i]) / (2.0 * h);
                let fd2 = (fp[i] - 2.0 * f0[i] + fm[i]) / (h * h);
                assert!(
                    (fd1 - jv[i]).abs() < 1e-7 * (1.0 + fd1.abs()),
                    "{act:?} Df·v"
                );
                let mut hv = vec![0.0; p];
                let vv = m.output_second(&theta, x.as_ref(), &u, &v, &mut ws, &mut hv);
                assert!(
                    (fd2 - vv[i]).abs() < 1e-3 * (1.0 + fd2.abs()),
                    "{act:?} D²f[v,v]: {fd2} vs {}",
                    vv[i]
                );
            }
            // ⟨u, Df v⟩ = ⟨Dfᵀ u, v⟩
            let mut vjp = vec![0.0; p];
            m.output_vjp(&theta, x.as_ref(), &u, &mut ws, &mut vjp);
            let lhs: f64 = u.iter().zip(&jv).map(|(a, b)| a * b).sum();
            let rhs: f64 = vjp.iter().zip(&v).map(|(a, b)| a * b).sum();
            assert!(
                (lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()),
                "{act:?} adjoint"
            );
            // H_u v against the finite difference of Dfᵀu along v.
            let mut hv = vec![0.0; p];
            m.output_second(&theta, x.as_ref(), &u, &v, &mut ws, &mut hv);
            let (mut gp, mut gm) = (vec![0.0; p], vec![0.0; p]);
            let thp: Vec<f64> = theta.iter().zip(&v).map(|(t, d)| t + h * d).collect();
            let thm: Vec<f64> = theta.iter().zip(&v).map(|(t, d)| t - h * d).collect();
            m.output_vjp(&thp, x.as_ref(), &u, &mut ws, &mut gp);
            m.output_vjp(&thm, x.as_ref(), &u, &mut ws, &mut gm);
            for k in 0..p {
                let fd = (gp[k] - gm[k]) / (2.0 * h);
                assert!(
                    (fd - hv[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{act:?} H_u v[{k}]: {fd} vs {}",
                    hv[k]
                );
            }

            // κ pieces.
            let batch = Batch {
                x: x.as_ref(),
                y: &y,
                f0: None,
            };
            let l = laziness(&m, &theta, &batch, 200);
            // Dense Df and its largest singular value.
            let mut jac = faer::Mat::<f64>::zeros(SAMPLES, p);
            for k in 0..p {
                let mut e = vec![0.0; p];
                e[k] = 1.0;
                let col = m.output_jvp(&theta, x.as_ref(), &e, &mut ws);
                for i in 0..SAMPLES {
                    jac[(i, k)] = col[i];
                }
            }
            let smax = jac.singular_values().unwrap()[0];
            assert!(
                (l.jacobian_norm - smax).abs() < 1e-6 * smax,
                "{act:?} ‖Df‖ {} vs {smax}",
                l.jacobian_norm
            );
            for seed in 0..200 {
                let mut d = gaussian_vec(p, 1.0, 1000 + seed);
                let n = d.iter().map(|a| a * a).sum::<f64>().sqrt();
                d.iter_mut().for_each(|a| *a /= n);
                let mut hv = vec![0.0; p];
                let q = m.output_second(&theta, x.as_ref(), &[0.0; SAMPLES], &d, &mut ws, &mut hv);
                let val = q.iter().map(|a| a * a).sum::<f64>().sqrt();
                assert!(
                    val <= l.hessian_norm * (1.0 + 1e-9),
                    "{act:?}: random direction beats ‖D²f‖ estimate"
                );
            }
            let r: f64 = f0
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
            assert!((l.kappa - r * l.hessian_norm / (smax * smax)).abs() < 1e-6 * l.kappa);
        }
    }
}

/// With N = 4096 the velocity runs by chunks of 128 samples: 300 samples take three chunks,
/// the last one short. Checked against the mean of the one-sample velocities (a batch of one
/// sample with d = 3 takes the whole-batch pass), for tanh along random directions against the
/// finite-difference risk gradient too (the subtracted outputs f₀ act as a shifted target; relu's
/// kinks spoil finite differences at this size), and the in-place GD step against θ + h v.
#[test]
fn chunked_velocity_matches_the_risk_gradient() {
    let (nn, d, samples, alpha) = (4096, 3, 300, 2.0);
    for act in [
        Activation::named("relu").unwrap(),
        Activation::named("tanh").unwrap(),
    ] {
        let m = model(act.clone(), d, true, nn, alpha);
        let x = gaussian_mat(samples, d, 5);
        let y = gaussian_vec(samples, 1.0, 6);
        let f0 = gaussian_vec(samples, 0.3, 7);
        let target: Vec<f64> = y.iter().zip(&f0).map(|(a, b)| a + b).collect();
        let theta = gaussian_vec(m.n_params(), 0.8, 8);
        let batch = Batch {
            x: x.as_ref(),
            y: &y,
            f0: Some(&f0),
        };
        let mut ws = Workspace::default();
        let mut v = vec![0.0; m.n_params()];
        m.velocity(&theta, &batch, &mut ws, &mut v);
        let mut mean = vec![0.0; m.n_params()];
        let mut vi = vec![0.0; m.n_params()];
        for i in 0..samples {
            let xi = x.subrows(i, 1);
            let one = Batch {
                x: xi,
                y: &y[i..i + 1],
                f0: Some(&f0[i..i + 1]),
            };
            m.velocity(&theta, &one, &mut ws, &mut vi);
            for (a, b) in mean.iter_mut().zip(&vi) {
                *a += b / samples as f64;
            }
        }
        let vmax = v.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        assert!(
            max_abs_diff(&v, &mean) < 1e-12 * vmax,
            "{act:?}: {:e} against {vmax:e}",
            max_abs_diff(&v, &mean)
        );
        let risk = |th: &[f64], ws: &mut Workspace| mse(&target, &m.predict(th, x.as_ref(), ws));
        let scale = -(nn as f64) / (2.0 * alpha * alpha);
        let h = 1e-5;
        let directions = if act == Activation::named("tanh").unwrap() {
            3
        } else {
            0
        };
        for seed in 0..directions {
            let u = gaussian_vec(m.n_params(), 1.0, 100 + seed);
            let shifted =
                |s: f64| -> Vec<f64> { theta.iter().zip(&u).map(|(t, ui)| t + s * ui).collect() };
            let fd = scale * (risk(&shifted(h), &mut ws) - risk(&shifted(-h), &mut ws)) / (2.0 * h);
            let vu: f64 = v.iter().zip(&u).map(|(a, b)| a * b).sum();
            assert!(
                (fd - vu).abs() < 1e-6 * (1.0 + fd.abs()),
                "{act:?} direction {seed}: fd {fd} vs {vu}"
            );
        }
        let step = 0.3;
        let mut stepped = theta.clone();
        m.velocity_step(&mut stepped, &batch, &mut ws, step);
        let expected: Vec<f64> = theta.iter().zip(&v).map(|(t, vi)| t + step * vi).collect();
        assert!(max_abs_diff(&stepped, &expected) < 1e-13, "{act:?}");
    }
}

/// ℓ(y, f) = log(1 + exp(−y f)), the logistic loss, written here and nowhere in the crate: a
/// loss the model knows only through the `Loss` trait.
#[derive(Debug)]
struct Logistic;

impl Loss for Logistic {
    fn name(&self) -> &str {
        "logistic"
    }
    fn value(&self, y: f64, f: f64) -> f64 {
        (-y * f).exp().ln_1p()
    }
    fn residual(&self, y: f64, f: f64, f0: Option<f64>) -> f64 {
        let u = f - f0.unwrap_or(0.0);
        0.5 * y / (1.0 + (y * u).exp())
    }
    fn curvature(&self, y: f64, f: f64, f0: Option<f64>) -> f64 {
        let u = f - f0.unwrap_or(0.0);
        let s = 1.0 / (1.0 + (y * u).exp());
        0.5 * y * y * s * (1.0 - s)
    }
}

/// Another loss through the same trait: the velocity is −(N/(2α²))∇R with R = E ℓ(y, f − f₀)
/// (finite differences of R, which share no code with the backward pass), and the Jacobian, its
/// structured form and J·v match finite differences of the velocity.
#[test]
fn a_loss_given_as_a_trait_gives_the_velocity_and_jacobian_of_its_risk() {
    for act in [
        Activation::named("tanh").unwrap(),
        Activation::named("erf").unwrap(),
        Activation::named("softplus").unwrap(),
    ] {
        check_loss(act, std::sync::Arc::new(Logistic));
    }
}

/// Activations and a loss written as formulas, their derivatives derived by exmex, including
/// abs's almost-everywhere one: the same checks against finite differences of the risk, whose
/// value here is the logistic loss written by hand.
#[test]
fn formula_activations_and_losses_give_the_velocity_and_jacobian_of_their_risk() {
    let loss = meanfield::model::loss::LossSpec::parse("log(1 + exp(-y*f))")
        .unwrap()
        .build();
    for (a, b) in [(0.3, -1.2), (-2.0, 0.7)] {
        assert!((loss.value(a, b) - Logistic.value(a, b)).abs() < 1e-15);
    }
    for text in [
        "z/(1 + abs(z))",
        "tanh(z) + 0.1*z^3",
        "exp(-z^2/2)*sin(2*z)",
    ] {
        check_loss(Activation::parse(text).unwrap(), loss.clone());
    }
}

fn check_loss(act: Activation, loss: std::sync::Arc<dyn meanfield::model::loss::Loss>) {
    {
        for (bias, centred) in [(false, false), (true, true)] {
            let mut m = model(act.clone(), D_IN, bias, N, 1.7);
            m.loss = loss.clone();
            let x = gaussian_mat(SAMPLES, D_IN, 11);
            let y: Vec<f64> = gaussian_vec(SAMPLES, 1.0, 12)
                .iter()
                .map(|v| v.signum())
                .collect();
            let theta = gaussian_vec(m.n_params(), 0.8, 13);
            let f0v = gaussian_vec(SAMPLES, 0.3, 14);
            let f0 = centred.then_some(f0v.as_slice());
            let mut ws = Workspace::default();
            let risk = |th: &[f64], ws: &mut Workspace| {
                let f = m.predict(th, x.as_ref(), ws);
                let u: Vec<f64> = (0..SAMPLES)
                    .map(|i| f[i] - f0.map_or(0.0, |f0| f0[i]))
                    .collect();
                Logistic.mean(&y, &u)
            };
            let batch = Batch {
                x: x.as_ref(),
                y: &y,
                f0,
            };
            let mut v = vec![0.0; m.n_params()];
            m.velocity(&theta, &batch, &mut ws, &mut v);
            let scale = -(N as f64) / (2.0 * 1.7 * 1.7);
            let grad = risk_gradient(&theta, |th| risk(th, &mut ws));
            for k in 0..theta.len() {
                let fd = scale * grad[k];
                assert!(
                    (fd - v[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{act:?} bias={bias} coord {k}: fd {fd} vs {}",
                    v[k]
                );
            }
            let flow = ParticleFlow::new(&m, &x, &y, f0);
            let (jac, worst, err) = jacobian_errors(&flow, &theta, 15);
            let structured = flow.jacobian_low_rank(&theta).unwrap().dense();
            let p = flow.len();
            let apart = (0..p * p)
                .map(|ik| (jac[(ik / p, ik % p)] - structured[(ik / p, ik % p)]).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-6, "{act:?} bias={bias}: Jacobian off by {worst}");
            assert!(
                apart < 1e-12,
                "{act:?} bias={bias}: structured form off by {apart}"
            );
            assert!(err < 1e-10, "{act:?} bias={bias}: J·v off by {err}");
        }
    }
}

/// The linearized model on another loss: its field is −(N/(2α²))∇R_lin with
/// R_lin(θ) = E ℓ(y, f_lin(θ)) and f_lin(θ) = f(θ₀) + ∂_h f(θ₀ + h(θ − θ₀)) at h = 0, both by
/// finite differences of the network's own output (no tangent features), and its Jacobian and
/// J·v match finite differences of the field (the Jacobian now weighted by ℓ_ff).
#[test]
fn the_linearized_model_follows_a_loss_given_as_a_trait() {
    use meanfield::dynamics::linearized::LinearizedFlow;
    let alpha = 1.7;
    let mut m = model(Activation::named("tanh").unwrap(), D_IN, true, N, alpha);
    m.loss = std::sync::Arc::new(Logistic);
    let x = gaussian_mat(SAMPLES, D_IN, 21);
    let y: Vec<f64> = gaussian_vec(SAMPLES, 1.0, 22)
        .iter()
        .map(|v| v.signum())
        .collect();
    let theta0 = gaussian_vec(m.n_params(), 0.8, 23);
    let mut ws = Workspace::default();
    let f0 = m.predict(&theta0, x.as_ref(), &mut ws);
    let flow = LinearizedFlow::new(&m, &theta0, &x, &y, &f0, meanfield::model::Params::All);
    let theta: Vec<f64> = theta0
        .iter()
        .zip(gaussian_vec(m.n_params(), 0.3, 24))
        .map(|(a, b)| a + b)
        .collect();
    let f_lin = |th: &[f64], ws: &mut Workspace| -> Vec<f64> {
        let h = 1e-4;
        let at = |s: f64| -> Vec<f64> {
            theta0
                .iter()
                .zip(th)
                .map(|(t0, t)| t0 + s * (t - t0))
                .collect()
        };
        let (fp, fm) = (
            m.predict(&at(h), x.as_ref(), ws),
            m.predict(&at(-h), x.as_ref(), ws),
        );
        (0..SAMPLES)
            .map(|i| f0[i] + (fp[i] - fm[i]) / (2.0 * h))
            .collect()
    };
    let grad = risk_gradient(&theta, |th| {
        let f = f_lin(th, &mut ws);
        Logistic.mean(&y, &f)
    });
    let mut v = vec![0.0; flow.len()];
    flow.eval(&theta, &mut v);
    let scale = -(N as f64) / (2.0 * alpha * alpha);
    for k in 0..theta.len() {
        let fd = scale * grad[k];
        assert!(
            (fd - v[k]).abs() < 1e-5 * (1.0 + fd.abs()),
            "coord {k}: fd {fd} vs {}",
            v[k]
        );
    }
    let (jac, worst, err) = jacobian_errors(&flow, &theta, 25);
    assert!(worst < 1e-6, "Jacobian off by {worst}");
    assert!(err < 1e-10, "J·v off by {err}");
    let p = flow.len();
    // The loss's curvature matters: the square loss's Jacobian (c ≡ 1) is not this one.
    let mut square = m.clone();
    square.loss = std::sync::Arc::new(meanfield::model::loss::Square);
    let plain = LinearizedFlow::new(&square, &theta0, &x, &y, &f0, meanfield::model::Params::All);
    let mut jac_sq = Mat::zeros(p, p);
    plain.jacobian(&theta, jac_sq.as_mut());
    let apart = (0..p * p)
        .map(|ik| (jac[(ik / p, ik % p)] - jac_sq[(ik / p, ik % p)]).abs())
        .fold(0.0, f64::max);
    assert!(
        apart > 1e-3,
        "the logistic Jacobian equals the square loss's: {apart}"
    );
}
