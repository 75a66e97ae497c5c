//! E[σ(u)σ(v)] and E[σ′(u)σ′(v)] over a centred 2-D Gaussian (u, v) for any activation, by
//! quadrature, as neural-tangents' `ElementwiseNumerical` does for activations without a closed
//! form. Writing u = √Σ₁₁ ξ₁ and v = c ξ₁ + d ξ₂ (c = Σ₁₂/√Σ₁₁, d² = Σ₂₂ − c²) with ξ standard
//! normal, both integrals are iterated 1-D integrals over ξ ∈ [−L, L], L = 12 (the tails weigh
//! e^{−72}). Each is split at the activation's kinks (abs, max, relu, … of a formula, where the
//! integrand is not smooth) and every piece takes Gauss–Legendre nodes, which converge
//! geometrically on the smooth Gaussian-weighted pieces: relu to 1e-13 of its arc-cosine
//! closed form where one Gauss–Hermite rule over the kink would stall near 1e-5.

use crate::linalg::eigh;
use crate::model::activation::{Activation, Formula};
use faer::Mat;
use std::sync::Arc;

/// Half-width of the integration interval in standard deviations.
const L: f64 = 12.0;
/// Gauss–Legendre nodes per piece.
const NODES: usize = 24;
/// Fixed cuts in ξ besides the kinks: finer pieces where the Gaussian weight lives, so that a
/// narrow integrand (erf′(u)erf′(v) with wide u decays like e^{−3ξ²}) is resolved.
const CUTS: [f64; 7] = [-6.0, -3.0, -1.5, 0.0, 1.5, 3.0, 6.0];

/// Gauss–Legendre nodes and weights on [−1, 1] (Golub–Welsch: the eigenvalues of the Jacobi
/// matrix of the Legendre polynomials and the squared first components of its eigenvectors).
pub struct GaussLegendre {
    nodes: Vec<f64>,
    weights: Vec<f64>,
}

impl GaussLegendre {
    pub fn new(n: usize) -> GaussLegendre {
        let jacobi = Mat::from_fn(n, n, |i, j| {
            if i.abs_diff(j) == 1 {
                let k = i.max(j) as f64;
                k / (4.0 * k * k - 1.0).sqrt()
            } else {
                0.0
            }
        });
        let (nodes, vectors) = eigh(jacobi.as_ref(), true).expect("LAPACK dsyevd");
        let v = vectors.expect("asked for vectors");
        let weights = (0..n).map(|k| 2.0 * v[(0, k)] * v[(0, k)]).collect();
        GaussLegendre { nodes, weights }
    }

    /// Nodes ξ and weights for ∫_a^b g(ξ) φ(ξ) dξ (φ the standard normal density, folded into
    /// the weights) over the pieces between consecutive `cuts` and `CUTS`.
    fn pieces(&self, a: f64, b: f64, cuts: impl Iterator<Item = f64>) -> Vec<(f64, f64)> {
        let mut ends = vec![a];
        ends.extend(cuts.chain(CUTS).filter(|&c| c > a && c < b));
        ends.push(b);
        ends.sort_by(f64::total_cmp);
        ends.dedup();
        let mut out = Vec::with_capacity((ends.len() - 1) * self.nodes.len());
        for w in ends.windows(2) {
            let (half, mid) = (0.5 * (w[1] - w[0]), 0.5 * (w[1] + w[0]));
            for (x, wt) in self.nodes.iter().zip(&self.weights) {
                let xi = mid + half * x;
                out.push((xi, half * wt * INV_SQRT_2PI * (-0.5 * xi * xi).exp()));
            }
        }
        out
    }
}

/// An activation ready for quadrature: σ and σ′ (the activation's own, a chunk at a time) and
/// its kinks in z (from its formula; none for erf, which has no formula and no kink).
pub struct Integrand {
    act: Activation,
    kinks: Vec<f64>,
    rule: GaussLegendre,
    /// The nodes without kinks, shared by every integral of a smooth activation.
    plain: Vec<(f64, f64)>,
}

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

impl Integrand {
    pub fn new(act: &Activation) -> Integrand {
        // Kinks far out in z still matter for wide pre-activations; search wide.
        let kinks = act
            .formula()
            .map_or(vec![], |f: Arc<Formula>| f.sigma.kinks(-1e3, 1e3));
        let rule = GaussLegendre::new(NODES);
        let plain = rule.pieces(-L, L, std::iter::empty());
        Integrand {
            act: act.clone(),
            kinks,
            rule,
            plain,
        }
    }

    /// The weighted nodes on [−L, L] cut at `cuts` (the shared ones when there are none).
    fn nodes(&self, cuts: Vec<f64>) -> std::borrow::Cow<'_, [(f64, f64)]> {
        if cuts.is_empty() {
            std::borrow::Cow::Borrowed(&self.plain)
        } else {
            std::borrow::Cow::Owned(self.rule.pieces(-L, L, cuts.into_iter()))
        }
    }

    /// (σ(z), σ′(z)) at many z.
    fn values(&self, z: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (mut s, mut d) = (z.to_vec(), vec![0.0; z.len()]);
        self.act.apply(&mut s, |_| 0.0, Some(&mut d), None);
        (s, d)
    }

    /// (E[σ(u)σ(v)], E[σ′(u)σ′(v)]) for centred Gaussian (u, v) with covariance
    /// [[s11, s12], [s12, s22]].
    pub fn moments(&self, s11: f64, s22: f64, s12: f64) -> (f64, f64) {
        let r1 = s11.max(0.0).sqrt();
        if r1 == 0.0 {
            // u ≡ 0: E[σ(0)σ(v)].
            let (s0, d0) = self.values(&[0.0]);
            let (e0, e1) = self.mean(0.0, s22.max(0.0).sqrt());
            return (s0[0] * e0, d0[0] * e1);
        }
        let c = s12 / r1;
        // d² = det Σ / Σ₁₁; a determinant within rounding of 0 (|ρ| = 1 up to the last bits of
        // √(Σ₁₁Σ₂₂)) is 0, as the closed forms clamp the correlation to [−1, 1].
        let det = s11.mul_add(s22, -s12 * s12);
        let d = if det <= 8.0 * f64::EPSILON * s11 * s22 {
            0.0
        } else {
            (det / s11).sqrt()
        };
        // The inner integral jumps (a kink of σ′) or bends (of σ) as its kink k in v crosses the
        // Gaussian, at ξ₁ = k/c over a width d/|c|: steep when u and v are nearly collinear.
        // Cuts around there keep the outer pieces smooth on their own scale.
        let mut cuts: Vec<f64> = self.kinks.iter().map(|k| k / r1).collect();
        if c != 0.0 && d < c.abs() {
            let width = d / c.abs();
            for k in &self.kinks {
                cuts.extend(
                    [-16.0, -4.0, -1.0, 0.0, 1.0, 4.0, 16.0]
                        .iter()
                        .map(|m| k / c + m * width),
                );
            }
        }
        let outer = self.nodes(cuts);
        let u: Vec<f64> = outer.iter().map(|p| r1 * p.0).collect();
        let (su, du) = self.values(&u);
        // The inner integrals over ξ₂ (v = c ξ₁ + d ξ₂) of every outer node, evaluated in one
        // pass: a formula fills whole chunks of lanes instead of one part-filled chunk per node.
        let (mut z, mut w, mut ends) = (vec![], vec![], Vec::with_capacity(outer.len()));
        for &(x1, _) in outer.iter() {
            self.inner_nodes(c * x1, d, &mut z, &mut w);
            ends.push(z.len());
        }
        let (v, dv) = self.values(&z);
        let (mut e0, mut e1, mut start) = (0.0, 0.0, 0);
        for (k, &(_, w1)) in outer.iter().enumerate() {
            let (a, b) = weighted_sums(&w, &v, &dv, start..ends[k]);
            start = ends[k];
            e0 += w1 * su[k] * a;
            e1 += w1 * du[k] * b;
        }
        (e0, e1)
    }

    /// Appends the points z = m + s ξ and weights of E[g(m + s ξ)] for standard normal ξ: m
    /// itself with weight 1 when s = 0, else the pieces cut where m + s ξ meets a kink.
    fn inner_nodes(&self, m: f64, s: f64, z: &mut Vec<f64>, w: &mut Vec<f64>) {
        if s == 0.0 {
            z.push(m);
            w.push(1.0);
            return;
        }
        let nodes = self.nodes(self.kinks.iter().map(|k| (k - m) / s).collect());
        z.extend(nodes.iter().map(|p| m + s * p.0));
        w.extend(nodes.iter().map(|p| p.1));
    }

    /// (E[σ(m + s ξ)], E[σ′(m + s ξ)]) for standard normal ξ.
    fn mean(&self, m: f64, s: f64) -> (f64, f64) {
        let (mut z, mut w) = (vec![], vec![]);
        self.inner_nodes(m, s, &mut z, &mut w);
        let (v, d) = self.values(&z);
        weighted_sums(&w, &v, &d, 0..z.len())
    }
}

/// (Σ w·v, Σ w·d) over `range`, added in order.
fn weighted_sums(w: &[f64], v: &[f64], d: &[f64], range: std::ops::Range<usize>) -> (f64, f64) {
    range.fold((0.0, 0.0), |(a, b), i| (a + w[i] * v[i], b + w[i] * d[i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relu (split at its kink) and erf (smooth) against their closed forms, over correlations
    /// from −1 to 1 and unequal variances (a bias shifts all three).
    #[test]
    fn quadrature_matches_the_closed_forms() {
        for act in ["relu", "erf", "quadratic"].map(|n| Activation::named(n).unwrap()) {
            let q = Integrand::new(&act);
            for (s11, s22) in [(1.0, 1.0), (0.3, 2.2), (1.49, 0.49), (4.0, 0.05)] {
                for rho in [-1.0, -0.83, -0.2, 0.0, 0.37, 0.9, 0.999, 1.0] {
                    let s12 = rho * f64::sqrt(s11 * s22);
                    let (c0, c1) = act.gaussian_moments(s11, s22, s12).unwrap();
                    let (e0, e1) = q.moments(s11, s22, s12);
                    assert!(
                        (e0 - c0).abs() < 1e-10 * c0.abs().max(1.0),
                        "{act:?} E[σσ] at {s11} {s22} {rho}: {e0} vs {c0}"
                    );
                    assert!(
                        (e1 - c1).abs() < 1e-10 * c1.abs().max(1.0),
                        "{act:?} E[σ′σ′] at {s11} {s22} {rho}: {e1} vs {c1}"
                    );
                }
            }
        }
    }

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        let g = GaussLegendre::new(12);
        // ∫_{-1}^{1} x^k dx for k < 24.
        for k in 0..23 {
            let q: f64 = g
                .nodes
                .iter()
                .zip(&g.weights)
                .map(|(x, w)| w * x.powi(k))
                .sum();
            let exact = if k % 2 == 1 {
                0.0
            } else {
                2.0 / (k as f64 + 1.0)
            };
            assert!((q - exact).abs() < 1e-14, "x^{k}: {q} vs {exact}");
        }
    }
}
