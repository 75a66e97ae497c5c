//! The self-consistent ("mixed") dynamics of shallow linear networks, eq. (1) of Tu, Aranguri &
//! Jacot in the form of their code (shared/papers/mixed_dynamics.md §2.4, §3):
//!
//!   dA/dt = −(AAᵀ + c²I)^{1/2} G − G (AᵀA + c²I)^{1/2},   G = A − Y,   c = σ²w.
//!
//! Singular directions below c are lazy (rate ≈ 2c), those above are balanced (rate ≈ s_i + s_j).
//! Both square roots come from one SVD A = U diag(s) Vᵀ: (AAᵀ + c²I)^{1/2} = U diag(√(s² + c²)) Uᵀ
//! and (AᵀA + c²I)^{1/2} = V diag(√(s² + c²)) Vᵀ.

use crate::integrate::VectorField;
use faer::{Mat, MatMut, MatRef};

/// −(AAᵀ + c²I)^{1/2}(A − Y) − (A − Y)(AᵀA + c²I)^{1/2}, for square A.
pub fn velocity(a: MatRef<'_, f64>, y: MatRef<'_, f64>, c2: f64) -> Mat<f64> {
    let g = a - y;
    let svd = a.svd().expect("SVD of a finite matrix");
    let (u, v) = (svd.U(), svd.V());
    let root: Vec<f64> = svd
        .S()
        .column_vector()
        .iter()
        .map(|s| (s * s + c2).sqrt())
        .collect();
    let scaled =
        |m: MatRef<'_, f64>| Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] * root[j]);
    let left = scaled(u) * u.transpose();
    let right = scaled(v) * v.transpose();
    -(left * &g + &g * right)
}

/// One forward-Euler step of eq. (1) with the GD step η, as the paper's code takes it.
pub fn euler_step(a: &mut Mat<f64>, y: MatRef<'_, f64>, c2: f64, eta: f64) {
    let v = velocity(a.as_ref(), y, c2);
    *a = &*a + faer::Scale(eta) * v;
}

/// Eq. (1) on vec(A) (column-major), for the adaptive integrators (explicit: its Jacobian is
/// d² × d²).
pub struct MixedFlow<'a> {
    pub y: MatRef<'a, f64>,
    pub c2: f64,
}

impl VectorField for MixedFlow<'_> {
    fn len(&self) -> usize {
        self.y.nrows() * self.y.ncols()
    }
    fn eval(&self, state: &[f64], out: &mut [f64]) {
        let (r, c) = (self.y.nrows(), self.y.ncols());
        let a = MatRef::from_column_major_slice(state, r, c);
        let v = velocity(a, self.y, self.c2);
        for j in 0..c {
            for i in 0..r {
                out[j * r + i] = v[(i, j)];
            }
        }
    }
    fn jac_mul(&self, state: &[f64], v: &[f64], out: &mut [f64]) {
        // Central difference: used only by implicit methods, which this field does not offer.
        let h = 1e-7;
        let plus: Vec<f64> = state.iter().zip(v).map(|(a, b)| a + h * b).collect();
        let minus: Vec<f64> = state.iter().zip(v).map(|(a, b)| a - h * b).collect();
        let mut fp = vec![0.0; out.len()];
        self.eval(&plus, &mut fp);
        self.eval(&minus, out);
        for (o, p) in out.iter_mut().zip(fp) {
            *o = (p - *o) / (2.0 * h);
        }
    }
    fn jacobian(&self, state: &[f64], mut out: MatMut<'_, f64>) {
        let n = self.len();
        let mut e = vec![0.0; n];
        let mut col = vec![0.0; n];
        for k in 0..n {
            e[k] = 1.0;
            self.jac_mul(state, &e, &mut col);
            e[k] = 0.0;
            for i in 0..n {
                out[(i, k)] = col[i];
            }
        }
    }
}
