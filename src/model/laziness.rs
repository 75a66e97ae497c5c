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

/// A deterministic start direction (a fixed pseudo-random pattern).
fn start(p: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..p)
        .map(|k| ((k as f64 + 1.0) * 0.618_034).fract() - 0.5)
        .collect();
    normalize(&mut v);
    v
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
        .map(|(i, (fi, yi))| {
            let c = fi - batch.f0.map_or(0.0, |f0| f0[i]) - yi;
            c * c
        })
        .sum::<f64>()
        .sqrt();

    let mut v = start(p);
    let mut sigma2 = 0.0;
    let mut w = vec![0.0; p];
    for _ in 0..iterations {
        let jv = model.output_jvp(theta, x, &v, &mut ws);
        model.output_vjp(theta, x, &jv, &mut ws, &mut w);
        let s = normalize(&mut w);
        let done = (s - sigma2).abs() <= 1e-8 * s;
        sigma2 = s;
        std::mem::swap(&mut v, &mut w);
        if done {
            break;
        }
    }

    let mut v = start(p);
    let mut hessian_norm: f64 = 0.0;
    let mut hv = vec![0.0; p];
    let zeros = vec![0.0; x.nrows()];
    for _ in 0..iterations {
        let mut u = model.output_second(theta, x, &zeros, &v, &mut ws, &mut hv);
        let value = normalize(&mut u);
        let done = (value - hessian_norm).abs() <= 1e-8 * value;
        hessian_norm = hessian_norm.max(value);
        if done || value == 0.0 {
            break;
        }
        model.output_second(theta, x, &u, &v, &mut ws, &mut hv);
        if normalize(&mut hv) == 0.0 {
            break;
        }
        std::mem::swap(&mut v, &mut hv);
    }
    Laziness {
        kappa: residual_norm * hessian_norm / sigma2,
        residual_norm,
        jacobian_norm: sigma2.sqrt(),
        hessian_norm,
    }
}
