//! Initial particles: Gaussian per-layer draws, with optional symmetric doubling.

use crate::rng::{stream, Stream};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// Draws N particles of dimension D = 1 + d (+1 with bias), row-major [N, D]:
/// a ~ N(0, a_std²), w ~ N(0, w_std² I_d) with w_std defaulting to 1/√d, b ~ N(0, b_std²).
/// With `symmetric`, particles N/2.. copy the first half with negated output weights, so that
/// f(θ₀) = 0 exactly (Chizat–Oyallon–Bach's doubling trick).
pub fn draw(spec: &InitSpec, n: usize, d: usize, bias: bool, seed: u64) -> Vec<f64> {
    let dd = 1 + d + usize::from(bias);
    let w_std = spec.w_std.unwrap_or(1.0 / (d as f64).sqrt());
    let mut rng = stream(seed, Stream::Particles);
    let drawn = if spec.symmetric { n / 2 } else { n };
    let mut theta = vec![0.0; n * dd];
    for j in 0..drawn {
        let p = &mut theta[j * dd..(j + 1) * dd];
        p[0] = spec.a_std * rng.sample::<f64, _>(StandardNormal);
        if spec.a_mean != 0.0 {
            p[0] += spec.a_mean;
        }
        for v in &mut p[1..=d] {
            *v = w_std * rng.sample::<f64, _>(StandardNormal);
        }
        if bias {
            p[d + 1] = spec.b_std * rng.sample::<f64, _>(StandardNormal);
        }
    }
    if spec.symmetric {
        let (first, second) = theta.split_at_mut(drawn * dd);
        second.copy_from_slice(first);
        for j in 0..drawn {
            second[j * dd] = -second[j * dd];
        }
    }
    theta
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitSpec {
    /// Std of the output weights a_j.
    #[serde(default = "one")]
    pub a_std: f64,
    /// Mean of the output weights a_j.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub a_mean: f64,
    /// Std of each input-weight coordinate; default 1/√d.
    #[serde(default)]
    pub w_std: Option<f64>,
    /// Std of the biases.
    #[serde(default)]
    pub b_std: f64,
    /// Duplicate each neuron with a negated output weight so that f(θ₀) = 0.
    #[serde(default)]
    pub symmetric: bool,
    /// Train f(θ) − f(θ₀) instead of f(θ).
    #[serde(default)]
    pub subtract_initial: bool,
}

impl Default for InitSpec {
    fn default() -> Self {
        InitSpec {
            a_std: 1.0,
            a_mean: 0.0,
            w_std: None,
            b_std: 0.0,
            symmetric: false,
            subtract_initial: false,
        }
    }
}

fn one() -> f64 {
    1.0
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}
