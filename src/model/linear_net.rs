//! Shallow linear networks A = W₂W₁ (Tu, Aranguri & Jacot 2024; shared/papers/mixed_dynamics.md):
//! W₁ ∈ R^{w×d}, W₂ ∈ R^{d×w} with i.i.d. N(0, σ²) entries, trained on C(A) = ½‖A − Y‖_F² for the
//! matrix-denoising task Y = A* + E.
//!
//! State: X₁ = W₁ and X₂ = W₂ᵀ, both p × d, so A = X₂ᵀX₁. GD keeps the columns of X₁ and X₂ in the
//! span of their initial columns (left multiplication commutes with the updates), so a width-w
//! network is exactly the p = 2d network of R in the QR factorization [W₁ W₂ᵀ] = QR; R itself is
//! drawn directly by the Bartlett decomposition of the Wishart matrix RᵀR ~ W_{2d}(w, σ²I)
//! (notes §6). This is what lets w = d^2.8 run on a laptop.

use crate::linalg::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rand::Rng;
use rand_distr::{ChiSquared, StandardNormal};

/// The target of the matrix loss ½‖A − Y‖_F²: the planted A* = C Dᵀ of rank k (C, D entries
/// k^{−1/4} N(0,1), so A*_ij has unit variance) and the training target Y.
///
/// - MatrixTask (the paper's task): Y = A* + noise·E with E i.i.d. N(0,1).
/// - Regression with whitened inputs: n samples x_μ with XXᵀ = n I exactly and outputs
///   y_μ = A*x_μ + noise·ε_μ. Its loss (1/2n)‖AX − Y_out‖_F² equals ½‖A − Ŷ‖_F² + `offset` with
///   Ŷ = Y_out Xᵀ/n, so the dynamics are those of denoising Ŷ; `offset` is the part no A can fit.
pub struct MatrixTask {
    pub a_star: Mat<f64>,
    pub y: Mat<f64>,
    /// (1/2n)‖Y_out‖² − ½‖Ŷ‖²: zero for denoising.
    pub offset: f64,
}

fn gaussian(r: usize, c: usize, scale: f64, rng: &mut impl Rng) -> Mat<f64> {
    Mat::from_fn(r, c, |_, _| scale * rng.sample::<f64, _>(StandardNormal))
}

fn planted(d: usize, k: usize, rng: &mut impl Rng) -> Mat<f64> {
    let scale = (k as f64).powf(-0.25);
    let c = gaussian(d, k, scale, rng);
    let dm = gaussian(d, k, scale, rng);
    &c * dm.transpose()
}

impl MatrixTask {
    /// The paper's task with unit noise.
    pub fn draw(d: usize, k: usize, rng: &mut impl Rng) -> MatrixTask {
        MatrixTask::denoising(d, k, 1.0, rng)
    }

    pub fn denoising(d: usize, k: usize, noise: f64, rng: &mut impl Rng) -> MatrixTask {
        let a_star = planted(d, k, rng);
        let y = &a_star + gaussian(d, d, noise, rng);
        MatrixTask {
            a_star,
            y,
            offset: 0.0,
        }
    }

    /// Regression on n ≥ d whitened samples; also returns X (d × n) and Y_out (d × n).
    pub fn whitened_regression(
        d: usize,
        k: usize,
        n: usize,
        noise: f64,
        rng: &mut impl Rng,
    ) -> (MatrixTask, Mat<f64>, Mat<f64>) {
        let a_star = planted(d, k, rng);
        // Orthonormal columns Q (n × d) from a Gaussian draw; X = √n Qᵀ has XXᵀ = n I.
        let q = gaussian(n, d, 1.0, rng).qr().compute_thin_Q();
        let x = q.transpose() * faer::Scale((n as f64).sqrt());
        let y_out = &a_star * &x + gaussian(d, n, noise, rng);
        let y = &y_out * x.transpose() * faer::Scale(1.0 / n as f64);
        let offset = 0.5 * (y_out.squared_norm_l2() / n as f64 - y.squared_norm_l2());
        (MatrixTask { a_star, y, offset }, x, y_out)
    }

    pub fn d(&self) -> usize {
        self.y.nrows()
    }

    /// Train error ‖A − Y‖_F²/d² and test error ‖A − A*‖_F²/d², as the paper reports them.
    pub fn errors(&self, a: MatRef<'_, f64>) -> (f64, f64) {
        let d2 = (self.d() * self.d()) as f64;
        let sq = |m: MatRef<'_, f64>| {
            let mut acc = 0.0;
            for j in 0..a.ncols() {
                for i in 0..a.nrows() {
                    let v = a[(i, j)] - m[(i, j)];
                    acc += v * v;
                }
            }
            acc / d2
        };
        (sq(self.y.as_ref()), sq(self.a_star.as_ref()))
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

    /// A small balanced initialization aligned with Y = U diag(s) Vᵀ: W₁ = √u₀ Vᵀ and
    /// W₂ = √u₀ U padded with zero rows/columns to width 2d, so A(0) = u₀ U Vᵀ and every mode
    /// follows Saxe's trajectory under the gradient flow.
    pub fn aligned(y: MatRef<'_, f64>, u0: f64) -> Option<LinearNet> {
        let d = y.nrows();
        let svd = y.svd().ok()?;
        let r = u0.sqrt();
        let mut x1 = Mat::zeros(2 * d, d);
        let mut x2 = Mat::zeros(2 * d, d);
        x1.as_mut()
            .subrows_mut(0, d)
            .copy_from(svd.V().transpose() * faer::Scale(r));
        x2.as_mut()
            .subrows_mut(0, d)
            .copy_from(svd.U().transpose() * faer::Scale(r));
        Some(LinearNet { x1, x2 })
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

/// GD as the paper codes it, keeping A = X₂ᵀX₁ so that each step costs three GEMMs (the product
/// after a step serves both its errors and the next residual).
pub struct Gd {
    pub net: LinearNet,
    pub a: Mat<f64>,
    res: Mat<f64>,
}

impl Gd {
    pub fn new(net: LinearNet) -> Gd {
        let a = net.product();
        let res = Mat::zeros(a.nrows(), a.ncols());
        Gd { net, a, res }
    }

    /// Same update as `LinearNet::gd_step`, in place.
    pub fn step(&mut self, y: MatRef<'_, f64>, eta: f64, par: Par) {
        let LinearNet { x1, x2 } = &mut self.net;
        self.res.copy_from(&self.a);
        self.res -= y;
        matmul(x1.as_mut(), Accum::Add, x2.as_ref(), &self.res, -eta, par);
        matmul(
            x2.as_mut(),
            Accum::Add,
            x1.as_ref(),
            self.res.transpose(),
            -eta,
            par,
        );
        matmul(
            self.a.as_mut(),
            Accum::Replace,
            x2.transpose(),
            x1.as_ref(),
            1.0,
            par,
        );
    }
}

/// Singular values of a square A, descending, from the eigenvalues of AᵀA (one symmetric
/// eigenvalue solve, about 3× cheaper than an SVD at d = 500; the squares lose relative accuracy
/// only for values below ~1e-8·s_max, far under the spectra studied here).
pub fn singular_values(a: MatRef<'_, f64>, par: Par) -> Vec<f64> {
    let mut g = Mat::zeros(a.ncols(), a.ncols());
    crate::linalg::lower_gram(g.as_mut(), a, par);
    let mut s: Vec<f64> = crate::linalg::eigh(g.as_ref(), false)
        .map(|(l, _)| l.into_iter().map(|v| v.max(0.0).sqrt()).collect())
        .unwrap_or_else(|_| vec![f64::NAN; a.ncols()]);
    s.reverse();
    s
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
