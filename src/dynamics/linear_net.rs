//! The gradient flow of a shallow linear network on ½‖X₂ᵀX₁ − Y‖_F² (X₁ = W₁, X₂ = W₂ᵀ, each
//! p × d; shared/papers/mixed_dynamics.md §3.2): Ẋ₁ = −X₂R, Ẋ₂ = −X₁Rᵀ with R = X₂ᵀX₁ − Y.
//! State: vec(X₁) then vec(X₂), column-major. GD (`model::linear_net::Gd`) is its sequential
//! Euler step.

use crate::dynamics::VectorField;
use faer::{Mat, MatMut, MatRef};

pub struct WeightFlow<'a> {
    pub y: MatRef<'a, f64>,
    /// Rows p of X₁ and X₂ (2d for the reduced network, w for the full one).
    pub p: usize,
}

impl WeightFlow<'_> {
    fn split<'s>(&self, state: &'s [f64]) -> (MatRef<'s, f64>, MatRef<'s, f64>) {
        let d = self.y.ncols();
        let (a, b) = state.split_at(self.p * d);
        (
            MatRef::from_column_major_slice(a, self.p, d),
            MatRef::from_column_major_slice(b, self.p, d),
        )
    }

    /// The state of a network.
    pub fn state(x1: MatRef<'_, f64>, x2: MatRef<'_, f64>) -> Vec<f64> {
        let mut v = Vec::with_capacity(2 * x1.nrows() * x1.ncols());
        for m in [x1, x2] {
            for j in 0..m.ncols() {
                v.extend(m.col(j).iter());
            }
        }
        v
    }

    /// A = X₂ᵀX₁ of a state.
    pub fn product(&self, state: &[f64]) -> Mat<f64> {
        let (x1, x2) = self.split(state);
        x2.transpose() * x1
    }
}

fn write(out: &mut [f64], m1: &Mat<f64>, m2: &Mat<f64>) {
    let n = m1.nrows() * m1.ncols();
    let (a, b) = out.split_at_mut(n);
    for (dst, m) in [(a, m1), (b, m2)] {
        let r = m.nrows();
        for j in 0..m.ncols() {
            for (i, v) in m.col(j).iter().enumerate() {
                dst[j * r + i] = *v;
            }
        }
    }
}

impl VectorField for WeightFlow<'_> {
    fn len(&self) -> usize {
        2 * self.p * self.y.ncols()
    }
    fn eval(&self, state: &[f64], out: &mut [f64]) {
        let (x1, x2) = self.split(state);
        let r = x2.transpose() * x1 - self.y;
        let d1 = -(x2 * &r);
        let d2 = -(x1 * r.transpose());
        write(out, &d1, &d2);
    }
    fn jac_mul(&self, state: &[f64], v: &[f64], out: &mut [f64]) {
        // R' = V₂ᵀX₁ + X₂ᵀV₁; (−X₂R)' = −V₂R − X₂R'; (−X₁Rᵀ)' = −V₁Rᵀ − X₁R'ᵀ.
        let (x1, x2) = self.split(state);
        let (v1, v2) = self.split(v);
        let r = x2.transpose() * x1 - self.y;
        let dr = v2.transpose() * x1 + x2.transpose() * v1;
        let d1 = -(v2 * &r + x2 * &dr);
        let d2 = -(v1 * r.transpose() + x1 * dr.transpose());
        write(out, &d1, &d2);
    }
    fn jacobian(&self, state: &[f64], out: MatMut<'_, f64>) {
        crate::dynamics::jacobian_by_columns(self, state, out);
    }
}
