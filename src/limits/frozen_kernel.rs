//! The NTK limit in closed form: with the kernel frozen at K₀, the residual on the training set
//! obeys ∂_t u = −(1/n) K₀ u, so with K₀ = V Λ Vᵀ (one symmetric eigendecomposition)
//!
//!   u(t) = V e^{−tΛ/n} Vᵀ u₀,
//!   f(x, t) = f(x, 0) + (1/n) K₀(x, X) V φ_t(Λ) Vᵀ u₀,   φ_t(λ) = (1 − e^{−tλ/n}) / (λ/n),
//!
//! the second line being ∂_t f(x) = (1/n) K₀(x, X) u integrated in time. Null modes (λ = 0, after
//! `linalg::psd_eigenvalues` cuts round-off) keep their residual and move no output: for a Gram
//! matrix, K₀v = 0 implies K₀(x, X)v = 0 at every x, so their φ is taken as 0, not t (which
//! would multiply K₀(x, X)v's round-off by t).

use crate::linalg::matmul;
use faer::{Accum, Mat, Par};

pub struct FrozenKernel {
    n: usize,
    /// Eigenvalues of K₀, those that are round-off set to 0 (`linalg::psd_eigenvalues`: K₀ is a
    /// Gram matrix, often of rank below n).
    lambda: Vec<f64>,
    v: Mat<f64>,
    /// Vᵀ u₀
    c: Vec<f64>,
    /// (1/n) K₀(X_test, X) V
    kv_test: Mat<f64>,
    y: Vec<f64>,
    f0_test: Vec<f64>,
}

impl FrozenKernel {
    /// `k_train` is K₀ on the n training points, `k_test` K₀(test, train); u₀ = y − f₀.
    pub fn new(
        k_train: &Mat<f64>,
        k_test: &Mat<f64>,
        y: &[f64],
        f0_train: &[f64],
        f0_test: &[f64],
        par: Par,
    ) -> Result<FrozenKernel, String> {
        let n = y.len();
        let (s, v) = crate::linalg::eigh(k_train.as_ref(), true)
            .map_err(|e| format!("eigendecomposition of the kernel failed: {e}"))?;
        let v = v.expect("vectors were asked for");
        let lambda = crate::linalg::psd_eigenvalues(&s);
        let u0: Vec<f64> = y.iter().zip(f0_train).map(|(a, b)| a - b).collect();
        let c: Vec<f64> = (0..n)
            .map(|k| (0..n).map(|i| v[(i, k)] * u0[i]).sum())
            .collect();
        let mut kv_test = Mat::zeros(k_test.nrows(), n);
        matmul(
            kv_test.as_mut(),
            Accum::Replace,
            k_test.as_ref(),
            v.as_ref(),
            1.0 / n as f64,
            par,
        );
        Ok(FrozenKernel {
            n,
            lambda,
            v,
            c,
            kv_test,
            y: y.to_vec(),
            f0_test: f0_test.to_vec(),
        })
    }

    /// Test outputs at many times at once: F = f₀ 1ᵀ + KV_test · (c ⊙ φ_t(λ))_t, one GEMM
    /// (m × n times n × T). Column k holds the outputs at times[k].
    pub fn predict_test_many(&self, times: &[f64], par: Par) -> Mat<f64> {
        let n = self.n as f64;
        let coef = Mat::from_fn(self.n, times.len(), |k, l| {
            self.c[k] * phi(self.lambda[k] / n, times[l])
        });
        let mut f = Mat::from_fn(self.kv_test.nrows(), times.len(), |i, _| self.f0_test[i]);
        matmul(
            f.as_mut(),
            Accum::Add,
            self.kv_test.as_ref(),
            coef.as_ref(),
            1.0,
            par,
        );
        f
    }

    /// Network outputs on train and test points at time t.
    pub fn predict(&self, t: f64) -> (Vec<f64>, Vec<f64>) {
        let n = self.n as f64;
        let decay: Vec<f64> = self
            .lambda
            .iter()
            .zip(&self.c)
            .map(|(l, c)| c * (-t * l / n).exp())
            .collect();
        let phi: Vec<f64> = self
            .lambda
            .iter()
            .zip(&self.c)
            .map(|(l, c)| c * phi(l / n, t))
            .collect();
        let f_train = (0..self.n)
            .map(|i| {
                let u: f64 = (0..self.n).map(|k| self.v[(i, k)] * decay[k]).sum();
                self.y[i] - u
            })
            .collect();
        let f_test = (0..self.kv_test.nrows())
            .map(|i| {
                self.f0_test[i]
                    + (0..self.n)
                        .map(|k| self.kv_test[(i, k)] * phi[k])
                        .sum::<f64>()
            })
            .collect();
        (f_train, f_test)
    }
}

/// φ_t(r) = (1 − e^{−tr}) / r, accurate for small tr; 0 for a null mode (see the module comment).
fn phi(r: f64, t: f64) -> f64 {
    if r == 0.0 {
        0.0
    } else if r * t < 1e-8 {
        t
    } else {
        -(-t * r).exp_m1() / r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_test_predictions_equal_one_at_a_time() {
        let n = 7;
        let b = Mat::from_fn(n, n, |i, j| ((i * 3 + j * 5) % 7) as f64 / 7.0 - 0.4);
        let mut k = Mat::zeros(n, n);
        matmul(
            k.as_mut(),
            Accum::Replace,
            b.as_ref(),
            b.transpose(),
            1.0,
            Par::Seq,
        );
        let kt = Mat::from_fn(3, n, |i, j| ((i + 2 * j) % 5) as f64 / 5.0);
        let y: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let fk = FrozenKernel::new(&k, &kt, &y, &[0.1; 7], &[0.2, -0.1, 0.0], Par::Seq).unwrap();
        let times = [0.0, 0.3, 2.0, 50.0];
        let many = fk.predict_test_many(&times, Par::Seq);
        for (l, &t) in times.iter().enumerate() {
            let (ftrain, ftest) = fk.predict(t);
            for i in 0..3 {
                assert!((many[(i, l)] - ftest[i]).abs() < 1e-12);
            }
            // At t = 0 the training outputs are f₀.
            if t == 0.0 {
                assert!(ftrain.iter().all(|f| (f - 0.1).abs() < 1e-12));
            }
        }
    }
    /// A rank-deficient kernel K = ΦΦᵀ (n = 60 points, p = 5 features): the frozen-kernel flow
    /// is gradient flow of the linear model φ(x)ᵀθ, so at t → ∞ its test outputs are
    /// f₀ + Φ_test θ* with θ* = (ΦᵀΦ)⁻¹Φᵀu₀, the least-squares fit, and its training residual
    /// is u₀'s part outside Φ's column space. Solved here by a p × p LU, independently of
    /// the eigendecomposition. The 55 null modes must move nothing, however large t is.
    #[test]
    fn null_modes_of_a_rank_deficient_kernel_stay_put_at_large_t() {
        use faer::linalg::solvers::Solve;
        let (n, p, m) = (60, 5, 4);
        let feat =
            |i: usize, k: usize| ((i * 7 + k * 13) % 17) as f64 / 17.0 - 0.45 + 0.1 * k as f64;
        let phi = Mat::from_fn(n, p, feat);
        let phi_test = Mat::from_fn(m, p, |i, k| feat(n + 3 * i + 1, k));
        let k = &phi * phi.transpose();
        let kt = &phi_test * phi.transpose();
        let y: Vec<f64> = (0..n).map(|i| (0.37 * i as f64).cos()).collect();
        let (f0, f0_test) = (vec![0.05; n], vec![-0.02; m]);
        let fk = FrozenKernel::new(&k, &kt, &y, &f0, &f0_test, Par::Seq).unwrap();
        let u0 = Mat::from_fn(n, 1, |i, _| y[i] - f0[i]);
        let theta = (phi.transpose() * &phi)
            .partial_piv_lu()
            .solve(phi.transpose() * &u0);
        let fit = &phi * &theta;
        for t in [1e12, 1e16] {
            let (f_train, f_test) = fk.predict(t);
            let many = fk.predict_test_many(&[t], Par::Seq);
            for i in 0..m {
                let want = f0_test[i] + (&phi_test * &theta)[(i, 0)];
                assert!(
                    (f_test[i] - want).abs() < 1e-10,
                    "t = {t:e}: {} against {want}",
                    f_test[i]
                );
                assert!((many[(i, 0)] - want).abs() < 1e-10);
            }
            for i in 0..n {
                assert!((f_train[i] - (f0[i] + fit[(i, 0)])).abs() < 1e-10);
            }
        }
    }
}
