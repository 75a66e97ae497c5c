//! The NTK limit for any loss: the kernel frozen at K₀, the training outputs obey
//!   ∂_t f_i = (1/n) Σ_l K₀(x_i, x_l) r_l,   r_l = −½ ℓ_f(y_l, f_l),
//! (mean-field time, design convention: for the square loss r = y − f and this is the closed
//! form of `limits::frozen_kernel`). Any other point follows from R(t) = ∫₀ᵗ r ds as
//! f(x, t) = f(x, 0) + (1/n) K₀(x, X) R(t), so the state is (f on the training set, R).
//! Its Jacobian is dense: ∂ḟ/∂f = −(1/n) K₀ diag(c), ∂Ṙ/∂f = −diag(c), c = ½ ℓ_ff.

use crate::dynamics::VectorField;
use crate::model::loss::Loss;
use faer::{Mat, MatMut};
use std::sync::Arc;

pub struct FrozenFlow {
    /// K₀ on the training inputs.
    k: Mat<f64>,
    y: Vec<f64>,
    loss: Arc<dyn Loss>,
}

impl FrozenFlow {
    pub fn new(k: Mat<f64>, y: &[f64], loss: Arc<dyn Loss>) -> FrozenFlow {
        FrozenFlow {
            k,
            y: y.to_vec(),
            loss,
        }
    }

    /// The initial state: f₀ on the training set and R = 0.
    pub fn start(&self, f0: &[f64]) -> Vec<f64> {
        let mut s = f0.to_vec();
        s.resize(2 * self.y.len(), 0.0);
        s
    }

    fn n(&self) -> usize {
        self.y.len()
    }
}

impl VectorField for FrozenFlow {
    fn len(&self) -> usize {
        2 * self.n()
    }

    fn eval(&self, state: &[f64], out: &mut [f64]) {
        let n = self.n();
        let f = &state[..n];
        let r: Vec<f64> = (0..n)
            .map(|i| self.loss.residual(self.y[i], f[i], None))
            .collect();
        let (df, dr) = out.split_at_mut(n);
        for (i, dfi) in df.iter_mut().enumerate() {
            *dfi = (0..n).map(|l| self.k[(i, l)] * r[l]).sum::<f64>() / n as f64;
        }
        dr.copy_from_slice(&r);
    }

    fn jac_mul(&self, state: &[f64], v: &[f64], out: &mut [f64]) {
        let n = self.n();
        let cv: Vec<f64> = (0..n)
            .map(|i| self.loss.curvature(self.y[i], state[i], None) * v[i])
            .collect();
        let (df, dr) = out.split_at_mut(n);
        for (i, dfi) in df.iter_mut().enumerate() {
            *dfi = -(0..n).map(|l| self.k[(i, l)] * cv[l]).sum::<f64>() / n as f64;
        }
        dr.iter_mut().zip(&cv).for_each(|(o, c)| *o = -c);
    }

    fn jacobian(&self, state: &[f64], mut out: MatMut<'_, f64>) {
        let n = self.n();
        out.fill(0.0);
        for l in 0..n {
            let c = self.loss.curvature(self.y[l], state[l], None);
            for i in 0..n {
                out[(i, l)] = -self.k[(i, l)] * c / n as f64;
            }
            out[(n + l, l)] = -c;
        }
    }
}
