//! Chizat–Oyallon–Bach's relative scale κ = ‖f(θ₀) − y‖ · ‖D²f(θ₀)‖ / ‖Df(θ₀)‖² of the map
//! θ ↦ (f(x_i; θ))_i on the training set: training is lazy when κ ≪ 1.
//!
//! ‖Df‖ is the largest singular value (power iteration on DfᵀDf through J·v and Jᵀ·u products);
//! ‖D²f‖ = sup_{|v|=1} ‖D²f[v, v]‖ (for a symmetric bilinear map into a Hilbert space this is its
//! operator norm), estimated by alternating u ← D²f[v, v]/‖·‖, v ← H_u v/‖·‖ with
//! H_u = Σ_i u_i ∇²f(x_i): a lower bound that the iteration drives up. The 1/√n of the empirical
//! norm cancels between numerator and denominator.

use super::{Batch, TwoLayer, Workspace};

#[derive(Debug, Clone, Copy)]
pub struct Laziness {
    pub kappa: f64,
    pub residual_norm: f64,
    pub jacobian_norm: f64,
    pub hessian_norm: f64,
}

fn normalize(v: &mut [f64]) -> f64 {
    let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|a| *a /= n);
    }
    n
}

/// Overwrites v with a deterministic start direction (a fixed pseudo-random pattern).
fn start(v: &mut [f64]) {
    for (k, vk) in v.iter_mut().enumerate() {
        *vk = ((k as f64 + 1.0) * 0.618_034).fract() - 0.5;
    }
    normalize(v);
}

/// Estimates κ at θ for the batch (f₀ subtracted from the outputs when given).
pub fn laziness(model: &TwoLayer, theta: &[f64], batch: &Batch<'_>, iterations: usize) -> Laziness {
    let mut ws = Workspace::default();
    let x = batch.x;
    let p = model.n_params();
    let f = model.predict(theta, x, &mut ws);
    let residual_norm = f
        .iter()
        .zip(batch.y)
        .enumerate()
        .map(|(i, (&fi, &yi))| {
            // −½ℓ′: y − f(θ₀) for the square loss, κ's ‖f(θ₀) − y‖ of Chizat–Oyallon–Bach.
            let r = model.loss.residual(yi, fi, batch.f0.map(|f0| f0[i]));
            r * r
        })
        .sum::<f64>()
        .sqrt();

    // Both iterations keep one P-vector: J·v and D²f[v, v] live on the n outputs, and Jᵀ and
    // H_u (block-diagonal over particles) overwrite v in place.
    // θ is fixed: one forward pass serves every iteration of a loop.
    let mut v = vec![0.0; p];
    start(&mut v);
    let mut sigma2 = 0.0;
    model.forward(theta, x, &mut ws, false);
    for _ in 0..iterations {
        let jv = model.output_jvp_after_forward(theta, x, &v, &mut ws);
        model.output_vjp_after_forward(theta, x, &jv, &mut ws, &mut v);
        let s = normalize(&mut v);
        let done = (s - sigma2).abs() <= 1e-8 * s;
        sigma2 = s;
        if done {
            break;
        }
    }

    // A fresh workspace: the second derivative's buffers replace the vjp's instead of joining
    // them.
    ws = Workspace::default();
    model.forward(theta, x, &mut ws, true);
    start(&mut v);
    let mut hessian_norm: f64 = 0.0;
    for _ in 0..iterations {
        let mut u = model.output_second_after_forward(theta, x, None, &mut v, &mut ws);
        let value = normalize(&mut u);
        let done = (value - hessian_norm).abs() <= 1e-8 * value;
        hessian_norm = hessian_norm.max(value);
        if done || value == 0.0 {
            break;
        }
        model.output_second_after_forward(theta, x, Some(&u), &mut v, &mut ws);
        if normalize(&mut v) == 0.0 {
            break;
        }
    }
    Laziness {
        kappa: residual_norm * hessian_norm / sigma2,
        residual_norm,
        jacobian_norm: sigma2.sqrt(),
        hessian_norm,
    }
}
