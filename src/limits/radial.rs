//! Mei–Montanari–Nguyen's isotropic-Gaussians example reduced to one dimension (notes:
//! shared/papers/saddle_to_saddle.md §3.4). Data: y = ±1 with probability ½ and
//! x ~ N(0, (1 ± Δ)² I_d); neurons σ(⟨w, x⟩) with output weights fixed to 1 (f = (1/N) Σ_j
//! σ(⟨w_j, x⟩)), σ the clipped linear `RAMP`. A rotation-invariant law of w stays rotation
//! invariant, and the distributional dynamics becomes the continuity equation for the law ρ̄ of
//! r = ‖w‖; in our time (design.md §1: θ̇ = −∇Ψ, which is MMN's with ξ = ½)
//!   ∂_t ρ̄ = ∂_r(ρ̄ ∂_r ψ),   ψ(r; ρ̄) = v(r) + ∫ u(r, r') ρ̄(dr'),
//! with Q(a) = E σ(aG), q_±(r) = Q((1 ± Δ) r), v = −½(q₊ − q₋) and, as d → ∞,
//! u(r, r') = ½(q₊(r) q₊(r') + q₋(r) q₋(r')). The risk is R(ρ̄) = 1 + 2∫v dρ̄ + ½(m₊² + m₋²)
//! with m_± = ∫q_± dρ̄.
//!
//! `RadialPde` discretizes ρ̄ by M radii of mass 1/M each moving with ṙ_j = −ψ'(r_j) (a
//! Lagrangian particle scheme: mass is conserved exactly, and the radii follow the gradient flow
//! ṙ = −(M/2) ∇R of the discrete risk, so R decreases). Finite-d corrections to u (an
//! angular integral, O(1/d)) are not included.

use crate::activation::{RampShape, RAMP};
use crate::integrate::{jacobian_by_columns, VectorField};
use faer::MatMut;
use statrs::function::erf::erf;

fn phi(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn cdf(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

impl RampShape {
    /// Q(a) = E σ(aG), G ~ N(0, 1), a ≥ 0.
    pub fn gauss_mean(&self, a: f64) -> f64 {
        if a <= 0.0 {
            return self.value(0.0);
        }
        let (z1, z2) = (self.t1 / a, self.t2 / a);
        let k = self.k();
        self.s1 * cdf(z1)
            + self.s2 * (1.0 - cdf(z2))
            + (self.s1 - k * self.t1) * (cdf(z2) - cdf(z1))
            + k * a * (phi(z1) - phi(z2))
    }

    /// Q'(a) = E[σ'(aG) G] = k (φ(t₁/a) − φ(t₂/a)).
    pub fn gauss_mean_slope(&self, a: f64) -> f64 {
        if a <= 0.0 {
            return 0.0;
        }
        self.k() * (phi(self.t1 / a) - phi(self.t2 / a))
    }
}

/// The radial PDE at d = ∞ on M radii.
#[derive(Debug, Clone)]
pub struct RadialPde {
    pub delta: f64,
    pub shape: RampShape,
    /// M, the number of radii.
    pub radii: usize,
}

impl RadialPde {
    pub fn new(delta: f64, radii: usize) -> Self {
        RadialPde {
            delta,
            shape: RAMP,
            radii,
        }
    }

    /// (q₊, q₋, q₊', q₋') at r.
    fn q(&self, r: f64) -> [f64; 4] {
        let (p, m) = (1.0 + self.delta, 1.0 - self.delta);
        let s = &self.shape;
        [
            s.gauss_mean(p * r),
            s.gauss_mean(m * r),
            p * s.gauss_mean_slope(p * r),
            m * s.gauss_mean_slope(m * r),
        ]
    }

    fn moments(&self, r: &[f64]) -> (f64, f64) {
        let mm = r.len() as f64;
        r.iter().fold((0.0, 0.0), |(a, b), &ri| {
            let q = self.q(ri);
            (a + q[0] / mm, b + q[1] / mm)
        })
    }

    /// R(ρ̄) = 1 + 2∫v dρ̄ + ½(m₊² + m₋²) for the radii's empirical law.
    pub fn risk(&self, r: &[f64]) -> f64 {
        let (mp, mm) = self.moments(r);
        // ∫v dρ̄ = −½(m₊ − m₋)
        1.0 - (mp - mm) + 0.5 * (mp * mp + mm * mm)
    }

    /// ṙ_j = −ψ'(r_j) = ½(q₊' − q₋') − ½(m₊ q₊' + m₋ q₋').
    pub fn velocity(&self, r: &[f64], out: &mut [f64]) {
        let (mp, mm) = self.moments(r);
        for (o, &ri) in out.iter_mut().zip(r) {
            let q = self.q(ri);
            *o = 0.5 * (q[2] - q[3]) - 0.5 * (mp * q[2] + mm * q[3]);
        }
    }
}

impl VectorField for RadialPde {
    fn len(&self) -> usize {
        self.radii
    }
    fn eval(&self, y: &[f64], out: &mut [f64]) {
        self.velocity(y, out);
    }
    /// By central differences (the explicit solvers do not call it).
    fn jac_mul(&self, y: &[f64], v: &[f64], out: &mut [f64]) {
        let nv = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if nv == 0.0 {
            out.fill(0.0);
            return;
        }
        let h = f64::EPSILON.cbrt() * (1.0 + y.iter().map(|x| x * x).sum::<f64>().sqrt()) / nv;
        let plus: Vec<f64> = y.iter().zip(v).map(|(a, b)| a + h * b).collect();
        let minus: Vec<f64> = y.iter().zip(v).map(|(a, b)| a - h * b).collect();
        let mut m = vec![0.0; y.len()];
        self.velocity(&plus, out);
        self.velocity(&minus, &mut m);
        out.iter_mut()
            .zip(&m)
            .for_each(|(o, m)| *o = (*o - m) / (2.0 * h));
    }
    fn jacobian(&self, y: &[f64], out: MatMut<'_, f64>) {
        jacobian_by_columns(self, y, out);
    }
}
