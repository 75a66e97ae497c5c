//! The self-consistent ("mixed") dynamics of shallow linear networks, eq. (1) of Tu, Aranguri &
//! Jacot in the form of their code (shared/papers/mixed_dynamics.md §2.4, §3):
//!
//!   dA/dt = −(AAᵀ + c²I)^{1/2} G − G (AᵀA + c²I)^{1/2},   G = A − Y,   c = σ²w.
//!
//! Singular directions below c are lazy (rate ≈ 2c), those above are balanced (rate ≈ s_i + s_j).
//!
//! Both square roots come from one symmetric eigendecomposition AᵀA = V diag(λ) Vᵀ:
//! (AᵀA + c²I)^{1/2} = V diag(√(λ + c²)) Vᵀ, and (AAᵀ + c²I)^{1/2} = cI + (AV) diag(g) (AV)ᵀ with
//! g = 1/(√(λ + c²) + c) = (√(λ + c²) − c)/λ, which needs no division by a small singular value.
//! This is the cheaper route (eigh ≈ 45 ms against SVD ≈ 70 ms at d = 500); `velocity_svd` is
//! the paper's SVD form, kept as the independent check.

use crate::integrate::VectorField;
use crate::model::linear_net::sym_eigen;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// The velocity of eq. (1) at A and the singular values of A (descending), from one eigh.
pub fn velocity(a: MatRef<'_, f64>, y: MatRef<'_, f64>, c2: f64, par: Par) -> (Mat<f64>, Vec<f64>) {
    let d = a.ncols();
    let mut gram = Mat::zeros(d, d);
    matmul(gram.as_mut(), Accum::Replace, a.transpose(), a, 1.0, par);
    let Some((lambda, Some(v))) = sym_eigen(gram.as_ref(), true, Par::Seq) else {
        let nan = Mat::from_fn(a.nrows(), d, |_, _| f64::NAN);
        return (nan, vec![f64::NAN; d]);
    };
    let c = c2.sqrt();
    let lambda: Vec<f64> = lambda.into_iter().map(|l| l.max(0.0)).collect();
    let root: Vec<f64> = lambda.iter().map(|l| (l + c2).sqrt()).collect();
    let g: Vec<f64> = root
        .iter()
        .map(|r| if r + c > 0.0 { 1.0 / (r + c) } else { 0.0 })
        .collect();
    let g_res = a - y;
    // G (AᵀA + c²)^{1/2} = (G V) diag(√(λ + c²)) Vᵀ
    let mut gv = &g_res * &v;
    scale_columns(&mut gv, &root);
    let mut out = Mat::zeros(a.nrows(), d);
    matmul(
        out.as_mut(),
        Accum::Replace,
        gv.as_ref(),
        v.transpose(),
        -1.0,
        par,
    );
    // (AAᵀ + c²)^{1/2} G = cG + P diag(g) Pᵀ G, P = AV
    let p = a * &v;
    let mut ptg = p.transpose() * &g_res;
    for j in 0..ptg.ncols() {
        for (i, gi) in g.iter().enumerate() {
            ptg[(i, j)] *= gi;
        }
    }
    matmul(
        out.as_mut(),
        Accum::Add,
        p.as_ref(),
        ptg.as_ref(),
        -1.0,
        par,
    );
    out -= &g_res * faer::Scale(c);
    let mut s: Vec<f64> = lambda.iter().map(|l| l.sqrt()).collect();
    s.reverse();
    (out, s)
}

fn scale_columns(m: &mut Mat<f64>, by: &[f64]) {
    for (j, f) in by.iter().enumerate() {
        m.col_mut(j).iter_mut().for_each(|x| *x *= f);
    }
}

/// −(AAᵀ + c²I)^{1/2}(A − Y) − (A − Y)(AᵀA + c²I)^{1/2} from one SVD A = U diag(s) Vᵀ, as the
/// paper's code computes it.
pub fn velocity_svd(a: MatRef<'_, f64>, y: MatRef<'_, f64>, c2: f64) -> Mat<f64> {
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

/// One forward-Euler step of eq. (1) with the GD step η, as the paper's code takes it; returns
/// the singular values of A before the step.
pub fn euler_step(a: &mut Mat<f64>, y: MatRef<'_, f64>, c2: f64, eta: f64, par: Par) -> Vec<f64> {
    let (v, s) = velocity(a.as_ref(), y, c2, par);
    *a += faer::Scale(eta) * v;
    s
}

/// Eq. (1) on vec(A) (column-major), for the adaptive integrators. Its Jacobian (d² × d², for the
/// implicit methods at small d) is assembled column by column from central differences.
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
        let (v, _) = velocity(a, self.y, self.c2, Par::Seq);
        for j in 0..c {
            for i in 0..r {
                out[j * r + i] = v[(i, j)];
            }
        }
    }
    fn jac_mul(&self, state: &[f64], v: &[f64], out: &mut [f64]) {
        // Central difference, scaled to the state: only the implicit methods' Newton iterations
        // use it, so its accuracy sets their convergence, not the solution's.
        let scale = |x: &[f64]| x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let h = 1e-7 * (1.0 + scale(state)) / scale(v).max(f64::MIN_POSITIVE);
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
