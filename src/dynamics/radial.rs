//! Mei–Montanari–Nguyen's isotropic-Gaussians example reduced to one dimension (notes:
//! shared/papers/saddle_to_saddle.md §3.4). Data: y = ±1 with probability ½ and
//! x ~ N(0, (1 ± Δ)² I_d); neurons σ(⟨w, x⟩) with output weights fixed to 1 (f = (1/N) Σ_j
//! σ(⟨w_j, x⟩)), σ the clipped linear `RAMP`. A rotation-invariant law of w stays rotation
//! invariant, and the distributional dynamics becomes the continuity equation for the law ρ̄ of
//! r = ‖w‖; in our time (design.md §1: θ̇ = −∇Ψ, which is MMN's with ξ = ½)
//!   ∂_t ρ̄ = ∂_r(ρ̄ ∂_r ψ),   ψ(r; ρ̄) = v(r) + ∫ u_d(r, r') ρ̄(dr'),
//! with Q(a) = E σ(aG), q_±(r) = Q(a_± r), a_± = 1 ± Δ, v = −½(q₊ − q₋) and
//!   u_d(r, r') = ½ Σ_± E_c E[σ(a_± r G₁) σ(a_± r' (c G₁ + √(1 − c²) G₂))],
//! c = ⟨e₁, U⟩ for U uniform on the sphere S^{d−1}.
//!
//! The angular integral in closed form: by Mehler's formula E[f(G₁) g(cG₁ + √(1−c²)G₂)] =
//! Σ_k c^k f_k g_k with f_k the normalized Hermite coefficients E[f(G) He_k(G)]/√k!, and the
//! odd moments of c vanish, so
//!   u_d(r, r') = ½ Σ_± Σ_m μ_{2m} h_{2m}(a_± r) h_{2m}(a_± r'),
//!   μ_{2m} = E c^{2m} = Π_{i<m} (2i + 1)/(d + 2i),   h_k(s) = E[σ(sG) He_k(G)]/√k!.
//! As d → ∞ only m = 0 stays (h₀ = Q): u_∞(r, r') = ½(q₊(r) q₊(r') + q₋(r) q₋(r')). The
//! kernel is a finite sum of products, so ψ needs only the moments H_{±,2m} = ∫h_{2m}(a_± r) ρ̄(dr),
//! and the risk is R(ρ̄) = 1 + 2∫v dρ̄ + ½ Σ_± Σ_m μ_{2m} H²_{±,2m}. The series is cut where its
//! tail is provably below `SERIES_TOL` (Σ_k h_k² = E σ² bounds it by Cauchy–Schwarz).
//!
//! `RadialPde` discretizes ρ̄ by M radii of mass 1/M each moving with ṙ_j = −ψ'(r_j) (a
//! Lagrangian particle scheme: mass is conserved exactly, and the radii follow the gradient flow
//! ṙ = −(M/2) ∇R of the discrete risk, so R decreases).

use crate::dynamics::{jacobian_by_columns, VectorField};
use crate::model::activation::{RampShape, RAMP};
use faer::MatMut;
use rayon::prelude::*;
use statrs::function::erf::erf;

/// The tail bound of the angular series kept below this, per pair of radii.
pub(crate) const SERIES_TOL: f64 = 1e-12;
/// At most this many even Hermite terms (enough for d ≥ 20).
pub(crate) const MAX_TERMS: usize = 400;

fn phi(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn cdf(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

/// √n and 1/√n for n < len (1/√0 stored as 0): the recurrences' only divisions, tabulated.
#[derive(Debug, Clone)]
struct Roots {
    sqrt: Vec<f64>,
    inv: Vec<f64>,
}

impl Roots {
    fn new(len: usize) -> Self {
        let sqrt: Vec<f64> = (0..len).map(|n| (n as f64).sqrt()).collect();
        let inv = sqrt
            .iter()
            .map(|&x| if x > 0.0 { 1.0 / x } else { 0.0 })
            .collect();
        Roots { sqrt, inv }
    }
}

/// P_n(z) = He_n(z) φ(z)/√n! for n < out.len(), by the three-term recurrence (φ first, so no
/// overflow at large z; bounded by Cramér's inequality).
fn hermite_functions(z: f64, out: &mut [f64], roots: &Roots) {
    let Some(first) = out.first_mut() else { return };
    *first = phi(z);
    if out.len() > 1 {
        out[1] = z * out[0];
    }
    for n in 1..out.len().saturating_sub(1) {
        out[n + 1] = (z * out[n] - roots.sqrt[n] * out[n - 1]) * roots.inv[n + 1];
    }
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

    /// The normalized Hermite coefficients h_k(s) = E[σ(sG) He_k(G)]/√k! and their
    /// derivatives in s, for k < h.len(), s ≥ 0. By Stein's lemma, for k ≥ 1,
    /// h_k = s κ ∫_{t₁/s}^{t₂/s} He_{k−1} φ/√k!, and ∫He_{k−1}φ = −He_{k−2}φ (κ the slope).
    /// `scratch` holds 2·h.len() values; `roots` reaches past h.len().
    fn hermite_coeffs(
        &self,
        s: f64,
        h: &mut [f64],
        dh: &mut [f64],
        scratch: &mut [f64],
        roots: &Roots,
    ) {
        let n = h.len();
        h.fill(0.0);
        dh.fill(0.0);
        if n == 0 {
            return;
        }
        h[0] = self.gauss_mean(s);
        dh[0] = self.gauss_mean_slope(s);
        if s <= 0.0 || n == 1 {
            return;
        }
        let kappa = self.k();
        let (al, be) = (self.t1 / s, self.t2 / s);
        let (pa, pb) = scratch[..2 * n].split_at_mut(n);
        hermite_functions(al, pa, roots);
        hermite_functions(be, pb, roots);
        let mass = cdf(be) - cdf(al);
        h[1] = s * kappa * mass;
        dh[1] = kappa * mass + kappa * (al * pa[0] - be * pb[0]);
        for k in 2..n {
            let g = (pa[k - 2] - pb[k - 2]) * roots.inv[k] * roots.inv[k - 1];
            h[k] = s * kappa * g;
            dh[k] = kappa * (g + (al * pa[k - 1] - be * pb[k - 1]) * roots.inv[k]);
        }
    }
}

/// μ_{2m} = E c^{2m} for m = 0, 1, … with c a coordinate of a uniform point of S^{d−1}, as many
/// as the series needs for the tail bound `bound`·μ_{2m} ≤ `SERIES_TOL`; None past `MAX_TERMS`.
pub(crate) fn sphere_moments(d: usize, bound: f64) -> Option<Vec<f64>> {
    let mut mu = vec![1.0];
    let mut m = 0usize;
    while bound * mu[m] > SERIES_TOL {
        if mu.len() >= MAX_TERMS {
            return None;
        }
        let next = mu[m] * (2 * m + 1) as f64 / (d + 2 * m) as f64;
        mu.push(next);
        m += 1;
    }
    Some(mu)
}

/// The radial PDE on M radii, at a finite dimension d or at d = ∞.
#[derive(Debug, Clone)]
pub struct RadialPde {
    pub delta: f64,
    pub shape: RampShape,
    /// M, the number of radii.
    pub radii: usize,
    /// d, or None for d = ∞.
    pub dim: Option<usize>,
    /// μ_{2m}, m = 0 … K − 1 ([1] at d = ∞).
    mu: Vec<f64>,
    roots: Roots,
    work: Workspace,
}

/// h_{2m}(a_± r_j) and a_± h'_{2m}(a_± r_j) for all radii, m < K: row j holds the K values
/// for + then the K for −.
#[derive(Debug)]
struct Coeffs {
    k: usize,
    h: Vec<f64>,
    dh: Vec<f64>,
}

impl Coeffs {
    fn h(&self, j: usize, sign: usize) -> &[f64] {
        let o = (2 * j + sign) * self.k;
        &self.h[o..o + self.k]
    }
    fn dh(&self, j: usize, sign: usize) -> &[f64] {
        let o = (2 * j + sign) * self.k;
        &self.dh[o..o + self.k]
    }
}

/// Radii per rayon task when the coefficients are computed.
const CHUNK: usize = 256;

/// The coefficient arrays kept between evaluations: fresh 10 MB arrays per right-hand side
/// cost more in page faults than the series itself.
#[derive(Debug, Default)]
struct Workspace(std::sync::Mutex<Option<Coeffs>>);

impl Clone for Workspace {
    fn clone(&self) -> Self {
        Workspace::default()
    }
}

impl RadialPde {
    /// The d = ∞ kernel u_∞.
    pub fn new(delta: f64, radii: usize) -> Self {
        RadialPde {
            delta,
            shape: RAMP,
            radii,
            dim: None,
            mu: vec![1.0],
            roots: Roots::new(2),
            work: Workspace::default(),
        }
    }

    /// The exact kernel u_d at dimension d; an error when the angular series would need more
    /// than `MAX_TERMS` terms (small d).
    pub fn finite(delta: f64, radii: usize, d: usize) -> Result<Self, String> {
        let s = RAMP;
        let bound = s.s1.abs().max(s.s2.abs()).powi(2);
        let mu = sphere_moments(d, bound).ok_or_else(|| {
            format!(
                "the angular series of u_d at d = {d} needs more than {MAX_TERMS} terms; \
                 use d ≥ 20 or the d = ∞ kernel (large_d = true)"
            )
        })?;
        Ok(RadialPde {
            delta,
            shape: s,
            radii,
            dim: Some(d),
            roots: Roots::new(2 * mu.len()),
            mu,
            work: Workspace::default(),
        })
    }

    /// K, the number of even Hermite terms kept.
    pub fn terms(&self) -> usize {
        self.mu.len()
    }

    /// The coefficients of all radii, in `reuse`'s arrays when it has them.
    fn coeffs_into(&self, r: &[f64], reuse: Option<Coeffs>) -> Coeffs {
        let k = self.mu.len();
        let n = 2 * k - 1;
        let (mut h, mut dh) = reuse.map_or((vec![], vec![]), |c| (c.h, c.dh));
        h.resize(2 * k * r.len(), 0.0);
        dh.resize(2 * k * r.len(), 0.0);
        h.par_chunks_mut(2 * k * CHUNK)
            .zip(dh.par_chunks_mut(2 * k * CHUNK))
            .zip(r.par_chunks(CHUNK))
            .for_each(|((h, dh), r)| {
                let (mut all, mut dall) = (vec![0.0; n], vec![0.0; n]);
                let mut scratch = vec![0.0; 2 * n];
                for (j, &ri) in r.iter().enumerate() {
                    for (sign, a) in [1.0 + self.delta, 1.0 - self.delta].into_iter().enumerate() {
                        self.shape.hermite_coeffs(
                            a * ri,
                            &mut all,
                            &mut dall,
                            &mut scratch,
                            &self.roots,
                        );
                        let o = (2 * j + sign) * k;
                        for m in 0..k {
                            h[o + m] = all[2 * m];
                            dh[o + m] = a * dall[2 * m];
                        }
                    }
                }
            });
        Coeffs { k, h, dh }
    }

    fn coeffs(&self, r: &[f64]) -> Coeffs {
        self.coeffs_into(r, None)
    }

    /// H_{±,2m} = (1/M) Σ_j h_{2m}(a_± r_j), summed in order (the same at any thread count).
    fn moments(&self, c: &Coeffs, radii: usize) -> [Vec<f64>; 2] {
        let k = self.mu.len();
        let mm = radii as f64;
        let mut out = [vec![0.0; k], vec![0.0; k]];
        for j in 0..radii {
            for (s, o) in out.iter_mut().enumerate() {
                o.iter_mut().zip(c.h(j, s)).for_each(|(o, h)| *o += h / mm);
            }
        }
        out
    }

    /// R(ρ̄) = 1 + 2∫v dρ̄ + ½ Σ_± Σ_m μ_{2m} H²_{±,2m} for the radii's empirical law.
    pub fn risk(&self, r: &[f64]) -> f64 {
        let c = self.coeffs(r);
        let hm = self.moments(&c, r.len());
        // ∫v dρ̄ = −½(m₊ − m₋), m_± = H_{±,0}
        let quad: f64 = (0..2)
            .map(|s| {
                self.mu
                    .iter()
                    .zip(&hm[s])
                    .map(|(m, h)| m * h * h)
                    .sum::<f64>()
            })
            .sum();
        1.0 - (hm[0][0] - hm[1][0]) + 0.5 * quad
    }

    /// ṙ_j = −ψ'(r_j) = ½(q₊' − q₋') − ½ Σ_± Σ_m μ_{2m} H_{±,2m} a_± h'_{2m}(a_± r_j).
    pub fn velocity(&self, r: &[f64], out: &mut [f64]) {
        let mut slot = self.work.0.lock().unwrap_or_else(|e| e.into_inner());
        let c = self.coeffs_into(r, slot.take());
        let hm = self.moments(&c, r.len());
        let w: [Vec<f64>; 2] =
            [0, 1].map(|s| self.mu.iter().zip(&hm[s]).map(|(m, h)| m * h).collect());
        out.par_iter_mut().enumerate().for_each(|(j, o)| {
            let inter: f64 = (0..2)
                .map(|s| w[s].iter().zip(c.dh(j, s)).map(|(a, b)| a * b).sum::<f64>())
                .sum();
            *o = 0.5 * (c.dh(j, 0)[0] - c.dh(j, 1)[0]) - 0.5 * inter;
        });
        *slot = Some(c);
    }

    /// u_d(r₁, r₂) (u_∞ at d = ∞).
    pub fn kernel(&self, r1: f64, r2: f64) -> f64 {
        let c = self.coeffs(&[r1, r2]);
        0.5 * (0..2)
            .map(|s| {
                self.mu
                    .iter()
                    .zip(c.h(0, s).iter().zip(c.h(1, s)))
                    .map(|(m, (x, y))| m * x * y)
                    .sum::<f64>()
            })
            .sum::<f64>()
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
