//! Activations σ with their first two derivatives, evaluated elementwise in one fused pass.

use serde::{Deserialize, Serialize};
use statrs::function::erf::erf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Tanh,
    Erf,
    Sigmoid,
    Softplus,
    Quadratic,
    Linear,
    /// Mei–Montanari–Nguyen's clipped linear σ: −2.5 below 0.5, 7.5 above 1.5, linear between.
    Ramp,
}

const TWO_OVER_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

/// A clipped linear activation: s₁ below t₁, s₂ above t₂, linear between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampShape {
    pub t1: f64,
    pub t2: f64,
    pub s1: f64,
    pub s2: f64,
}

/// Mei–Montanari–Nguyen's isotropic-Gaussians activation, with the constants as the notes recall
/// them (shared/papers/saddle_to_saddle.md §3.4; not confirmed against the paper).
pub const RAMP: RampShape = RampShape {
    t1: 0.5,
    t2: 1.5,
    s1: -2.5,
    s2: 7.5,
};

impl RampShape {
    /// (s₂ − s₁)/(t₂ − t₁)
    pub fn k(&self) -> f64 {
        (self.s2 - self.s1) / (self.t2 - self.t1)
    }
    pub fn value(&self, z: f64) -> f64 {
        self.s1 + self.k() * (z.clamp(self.t1, self.t2) - self.t1)
    }
    /// σ'(z), 0 at the kinks.
    pub fn slope(&self, z: f64) -> f64 {
        if z > self.t1 && z < self.t2 {
            self.k()
        } else {
            0.0
        }
    }
}

/// tanh within 2 ulp of libm's at a third of its cost (libm goes through expm1, and the flows
/// spend half their rhs time there): Cephes' rational approximation below 0.625, where
/// 1 − 2/(e^{2|z|} + 1) would cancel, and that formula above (e^{2|z|} = ∞ gives ±1; NaN stays).
#[inline]
fn tanh(z: f64) -> f64 {
    let a = z.abs();
    if a < 0.625 {
        let s = z * z;
        let p = (-9.643_991_794_250_523e-1 * s - 9.928_772_310_019_186e1) * s
            - 1.614_687_684_417_084_5e3;
        let q = ((s + 1.128_116_784_916_329_3e2) * s + 2.235_488_390_601_004_6e3) * s
            + 4.844_063_053_251_255e3;
        (a + a * s * p / q).copysign(z)
    } else {
        (1.0 - 2.0 / ((2.0 * a).exp() + 1.0)).copysign(z)
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl Activation {
    /// σ(z)
    #[inline]
    pub fn value(self, z: f64) -> f64 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::Tanh => tanh(z),
            Activation::Erf => erf(z),
            Activation::Sigmoid => sigmoid(z),
            // log(1 + e^z) without overflow for large z
            Activation::Softplus => z.max(0.0) + (-z.abs()).exp().ln_1p(),
            Activation::Quadratic => z * z,
            Activation::Linear => z,
            Activation::Ramp => RAMP.value(z),
        }
    }

    /// (σ(z), σ'(z))
    #[inline]
    pub fn value_d1(self, z: f64) -> (f64, f64) {
        match self {
            // σ'(0) = 0: the subgradient the kink convention of most frameworks uses.
            Activation::Relu => (z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 }),
            Activation::Tanh => {
                let t = tanh(z);
                (t, 1.0 - t * t)
            }
            Activation::Erf => (erf(z), TWO_OVER_SQRT_PI * (-z * z).exp()),
            Activation::Sigmoid => {
                let s = sigmoid(z);
                (s, s * (1.0 - s))
            }
            Activation::Softplus => (self.value(z), sigmoid(z)),
            Activation::Quadratic => (z * z, 2.0 * z),
            Activation::Linear => (z, 1.0),
            Activation::Ramp => (RAMP.value(z), RAMP.slope(z)),
        }
    }

    /// (σ'(z), σ''(z)); σ'' is 0 away from the kink for relu.
    #[inline]
    pub(crate) fn d1_d2(self, z: f64) -> (f64, f64) {
        match self {
            Activation::Relu => (if z > 0.0 { 1.0 } else { 0.0 }, 0.0),
            Activation::Tanh => {
                let t = tanh(z);
                let d = 1.0 - t * t;
                (d, -2.0 * t * d)
            }
            Activation::Erf => {
                let d = TWO_OVER_SQRT_PI * (-z * z).exp();
                (d, -2.0 * z * d)
            }
            Activation::Sigmoid => {
                let s = sigmoid(z);
                let d = s * (1.0 - s);
                (d, d * (1.0 - 2.0 * s))
            }
            Activation::Softplus => {
                let s = sigmoid(z);
                (s, s * (1.0 - s))
            }
            Activation::Quadratic => (2.0 * z, 2.0),
            Activation::Linear => (1.0, 0.0),
            Activation::Ramp => (RAMP.slope(z), 0.0),
        }
    }

    /// The problem file's spelling ("relu", "tanh", …).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Erf => "erf",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus => "softplus",
            Activation::Quadratic => "quadratic",
            Activation::Linear => "linear",
            Activation::Ramp => "ramp",
        }
    }

    pub fn all() -> [Activation; 8] {
        [
            Activation::Relu,
            Activation::Tanh,
            Activation::Erf,
            Activation::Sigmoid,
            Activation::Softplus,
            Activation::Quadratic,
            Activation::Linear,
            Activation::Ramp,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-6;
        for act in Activation::all() {
            for &z in &[-2.3, -0.7, 0.31, 1.9, 4.2] {
                let fd1 = (act.value(z + h) - act.value(z - h)) / (2.0 * h);
                let (v, d1) = act.value_d1(z);
                let (d1b, d2) = act.d1_d2(z);
                let fd2 = (act.value_d1(z + h).1 - act.value_d1(z - h).1) / (2.0 * h);
                assert_eq!(v, act.value(z));
                assert_eq!(d1, d1b);
                assert!((fd1 - d1).abs() < 1e-7, "{act:?} σ' at {z}: {fd1} vs {d1}");
                assert!((fd2 - d2).abs() < 1e-6, "{act:?} σ'' at {z}: {fd2} vs {d2}");
            }
        }
    }

    #[test]
    fn tanh_matches_libm_to_two_ulp() {
        // Dense around the branch point 0.625 and over every binade from 1e-300 to overflow.
        let mut zs: Vec<f64> = (0..200_000).map(|k| (k as f64 - 1e5) * 2.5e-4).collect();
        zs.extend((-300..=3).flat_map(|e| (1..10).map(move |m| m as f64 * 1.37 * 10f64.powi(e))));
        zs.extend((0..2000).map(|k| 0.62 + k as f64 * 5e-6));
        let mut worst = 0.0f64;
        for &z in &zs {
            for z in [z, -z] {
                let (ours, libm) = (tanh(z), z.tanh());
                let err = if libm == 0.0 {
                    ours.abs()
                } else {
                    ((ours - libm) / libm).abs()
                };
                worst = worst.max(err);
            }
        }
        assert!(worst <= 2.0 * f64::EPSILON, "max relative error {worst:e}");
        assert_eq!(tanh(800.0), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert!(tanh(f64::NAN).is_nan());
        assert!(tanh(-0.0).is_sign_negative());
    }

    #[test]
    fn softplus_is_stable_for_large_inputs() {
        assert_eq!(Activation::Softplus.value(800.0), 800.0);
        assert!(Activation::Softplus.value(-800.0) >= 0.0);
    }
}
