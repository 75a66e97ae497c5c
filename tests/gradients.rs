//! The velocity field, its J·v product and its assembled Jacobian against central finite
//! differences, for every activation, with and without bias.

mod common;
use common::*;
use faer::Mat;
use meanfield::dynamics::ParticleFlow;
use meanfield::integrate::ode::fd_jacobian;
use meanfield::integrate::VectorField;
use meanfield::model::{mse, Batch, Workspace};
use meanfield::problem::Activation;

const N: usize = 6;
const D_IN: usize = 3;
const SAMPLES: usize = 9;

/// The velocity is −(N / (2α²)) ∇R with R the empirical risk: check it against the finite
/// difference gradient of R itself, which shares no code with the backward pass.
#[test]
fn velocity_is_scaled_negative_risk_gradient() {
    for act in Activation::all() {
        for bias in [false, true] {
            for alpha in [1.0, 3.7] {
                let m = model(act, D_IN, bias, N, alpha);
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
                let h = 1e-6;
                let scale = -(N as f64) / (2.0 * alpha * alpha);
                let mut th = theta.clone();
                for k in 0..theta.len() {
                    th[k] = theta[k] + h;
                    let rp = risk(&th, &mut ws);
                    th[k] = theta[k] - h;
                    let rm = risk(&th, &mut ws);
                    th[k] = theta[k];
                    let fd = scale * (rp - rm) / (2.0 * h);
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
                let m = model(act, D_IN, bias, N, 1.3);
                let x = gaussian_mat(SAMPLES, D_IN, 4);
                let y = gaussian_vec(SAMPLES, 1.0, 5);
                let theta = gaussian_vec(m.n_params(), 0.8, 6);
                let f0v = gaussian_vec(SAMPLES, 0.3, 7);
                let flow = ParticleFlow::new(&m, &x, &y, f0.then_some(f0v.as_slice()));
                let p = flow.len();
                let mut jac = Mat::zeros(p, p);
                flow.jacobian(&theta, jac.as_mut());
                let fd = fd_jacobian(&flow, &theta, 1e-6);
                let mut worst: f64 = 0.0;
                for i in 0..p {
                    for k in 0..p {
                        worst =
                            worst.max((jac[(i, k)] - fd[(i, k)]).abs() / (1.0 + fd[(i, k)].abs()));
                    }
                }
                assert!(
                    worst < 1e-6,
                    "{act:?} bias={bias} f0={f0}: Jacobian off by {worst}"
                );

                let dir = gaussian_vec(p, 1.0, 8);
                let mut jv = vec![0.0; p];
                flow.jac_mul(&theta, &dir, &mut jv);
                let dense: Vec<f64> = (0..p)
                    .map(|i| (0..p).map(|k| jac[(i, k)] * dir[k]).sum())
                    .collect();
                let err = max_abs_diff(&jv, &dense);
                assert!(err < 1e-10, "{act:?} bias={bias}: J·v off by {err}");
            }
        }
    }
}
