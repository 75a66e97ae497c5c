//! The NTK limit in closed form: with the kernel frozen at K₀, the residual on the training set
//! obeys ∂_t u = −(1/n) K₀ u, so with K₀ = V Λ Vᵀ (one symmetric eigendecomposition)
//!
//!   u(t) = V e^{−tΛ/n} Vᵀ u₀,
//!   f(x, t) = f(x, 0) + (1/n) K₀(x, X) V φ_t(Λ) Vᵀ u₀,   φ_t(λ) = (1 − e^{−tλ/n}) / (λ/n),
//!
//! the second line being ∂_t f(x) = (1/n) K₀(x, X) u integrated in time (φ_t(0) = t).

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};

pub struct FrozenKernel {
    n: usize,
    /// Eigenvalues of K₀ (clamped at 0: K₀ is a Gram matrix; negative values are round-off).
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
        let (s, v) = crate::sym_eigen::sym_eigen(k_train.as_ref(), true, par).ok_or(
            "eigendecomposition of the kernel failed: the tridiagonal solver did not converge",
        )?;
        let v = v.expect("vectors were asked for");
        let lambda: Vec<f64> = s.iter().map(|l| l.max(0.0)).collect();
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
            let (r, t) = (self.lambda[k] / n, times[l]);
            self.c[k]
                * if r * t < 1e-8 {
                    t
                } else {
                    -(-t * r).exp_m1() / r
                }
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
            .map(|(l, c)| {
                let r = l / n;
                // (1 − e^{−tr}) / r, accurate for small tr
                c * if r * t < 1e-8 {
                    t
                } else {
                    -(-t * r).exp_m1() / r
                }
            })
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
}
