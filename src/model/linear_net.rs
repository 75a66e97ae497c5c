//! Shallow linear networks A = W₂W₁ (Tu, Aranguri & Jacot 2024; shared/papers/mixed_dynamics.md):
//! W₁ ∈ R^{w×d}, W₂ ∈ R^{d×w} with i.i.d. N(0, σ²) entries, trained on C(A) = ½‖A − Y‖_F² for the
//! matrix-denoising task Y = A* + E.
//!
//! State: X₁ = W₁ and X₂ = W₂ᵀ, both p × d, so A = X₂ᵀX₁. GD keeps the columns of X₁ and X₂ in the
//! span of their initial columns (left multiplication commutes with the updates), so a width-w
//! network is exactly the p = 2d network of R in the QR factorization [W₁ W₂ᵀ] = QR; R itself is
//! drawn directly by the Bartlett decomposition of the Wishart matrix RᵀR ~ W_{2d}(w, σ²I)
//! (notes §6). This is what lets w = d^2.8 run on a laptop.

use faer::{Mat, MatRef};
use rand::Rng;
use rand_distr::{ChiSquared, StandardNormal};

/// The denoising task: A* = C Dᵀ of rank k with C, D entries k^{−1/4} N(0,1) (so A*_ij has unit
/// variance), E i.i.d. N(0,1), Y = A* + E.
pub struct Denoising {
    pub a_star: Mat<f64>,
    pub y: Mat<f64>,
}

impl Denoising {
    pub fn draw(d: usize, k: usize, rng: &mut impl Rng) -> Denoising {
        let scale = (k as f64).powf(-0.25);
        let c = Mat::from_fn(d, k, |_, _| scale * rng.sample::<f64, _>(StandardNormal));
        let dm = Mat::from_fn(d, k, |_, _| scale * rng.sample::<f64, _>(StandardNormal));
        let a_star = &c * dm.transpose();
        let e = Mat::from_fn(d, d, |_, _| rng.sample::<f64, _>(StandardNormal));
        let y = &a_star + &e;
        Denoising { a_star, y }
    }

    pub fn d(&self) -> usize {
        self.y.nrows()
    }

    /// Train error ‖A − Y‖_F²/d² and test error ‖A − A*‖_F²/d², as the paper reports them.
    pub fn errors(&self, a: MatRef<'_, f64>) -> (f64, f64) {
        let d2 = (self.d() * self.d()) as f64;
        let sq = |m: Mat<f64>| m.squared_norm_l2() / d2;
        (sq(a - &self.y), sq(a - &self.a_star))
    }
}

/// Weights of the network in the (possibly reduced) form X₁ = W₁, X₂ = W₂ᵀ, each p × d.
#[derive(Clone)]
pub struct LinearNet {
    pub x1: Mat<f64>,
    pub x2: Mat<f64>,
}

impl LinearNet {
    /// The full network: W₁, W₂ with i.i.d. N(0, σ²) entries (p = w).
    pub fn full(d: usize, w: usize, sigma2: f64, rng: &mut impl Rng) -> LinearNet {
        let s = sigma2.sqrt();
        let x1 = Mat::from_fn(w, d, |_, _| s * rng.sample::<f64, _>(StandardNormal));
        let w2 = Mat::from_fn(d, w, |_, _| s * rng.sample::<f64, _>(StandardNormal));
        LinearNet {
            x1,
            x2: w2.transpose().to_owned(),
        }
    }

    /// The exact width-2d reduction of a given network: the R factor of [X₁ X₂] = QR.
    pub fn reduce(&self) -> LinearNet {
        let d = self.x1.ncols();
        let p = self.x1.nrows();
        let mut stacked = Mat::zeros(p, 2 * d);
        stacked.as_mut().subcols_mut(0, d).copy_from(&self.x1);
        stacked.as_mut().subcols_mut(d, d).copy_from(&self.x2);
        let qr = stacked.qr();
        let r = qr.thin_R();
        LinearNet {
            x1: r.subcols(0, d).to_owned(),
            x2: r.subcols(d, d).to_owned(),
        }
    }

    /// A width-w network already reduced, drawn without forming it: R = σLᵀ with L lower
    /// triangular, L_ii = √χ²_{w−i} (i = 0, …, 2d−1) and L_ij ~ N(0,1) below the diagonal
    /// (Bartlett). Needs w ≥ 2d.
    pub fn reduced(d: usize, w: usize, sigma2: f64, rng: &mut impl Rng) -> Option<LinearNet> {
        let p = 2 * d;
        if w < p {
            return None;
        }
        let s = sigma2.sqrt();
        let mut r = Mat::<f64>::zeros(p, p);
        for i in 0..p {
            let chi = ChiSquared::new((w - i) as f64).ok()?;
            r[(i, i)] = s * rng.sample(chi).sqrt();
            for j in 0..i {
                // L_ij (i > j) is R_ji.
                r[(j, i)] = s * rng.sample::<f64, _>(StandardNormal);
            }
        }
        Some(LinearNet {
            x1: r.subcols(0, d).to_owned(),
            x2: r.subcols(d, d).to_owned(),
        })
    }

    /// A = X₂ᵀX₁ = W₂W₁.
    pub fn product(&self) -> Mat<f64> {
        self.x2.transpose() * &self.x1
    }

    /// One GD step exactly as the paper's code: sequential, W₁ first, then W₂ with the updated
    /// W₁. In X form: X₁ ← X₁ − η X₂R, X₂ ← X₂ − η X₁Rᵀ, R = A − Y.
    pub fn gd_step(&mut self, y: MatRef<'_, f64>, eta: f64) {
        let res = self.product() - y;
        self.x1 = &self.x1 - faer::Scale(eta) * (&self.x2 * &res);
        self.x2 = &self.x2 - faer::Scale(eta) * (&self.x1 * res.transpose());
    }
}

/// The paper's step-size rule: η = 1/(f σ²w) in the lazy region (γσ² + γw > 1), otherwise
/// 1/(f ‖A*‖_op); f = 5 for Figure 1 and 50 for the phase diagrams.
pub fn paper_step(d: usize, gamma_s2: f64, gamma_w: f64, a_star_op: f64, factor: f64) -> f64 {
    let (w, s2) = ((d as f64).powf(gamma_w), (d as f64).powf(gamma_s2));
    if gamma_w + gamma_s2 > 1.0 {
        1.0 / (factor * w * s2)
    } else {
        1.0 / (factor * a_star_op)
    }
}

/// Largest singular value.
pub fn op_norm(a: MatRef<'_, f64>) -> f64 {
    a.singular_values()
        .ok()
        .and_then(|s| s.first().copied())
        .unwrap_or(f64::NAN)
}
