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
//! This is the cheaper route (a whole step 75 ms against the SVD form's 115 ms at d = 500,
//! `cargo bench --bench mixed`); `velocity_svd` is the paper's SVD form, kept as the independent
//! check.

use crate::dynamics::VectorField;
use crate::linalg::matmul;
use crate::linalg::{eigh_in_place, lower_gram, EighWork};
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// Buffers reused from step to step: at d = 500 a fresh 2 MB matrix per product costs its page
/// faults every time (measured ≈ 25 ms of a 95 ms step).
pub struct Workspace {
    /// AᵀA, then (overwritten in place by LAPACK) its eigenvectors V.
    v: Mat<f64>,
    lambda: Vec<f64>,
    /// Made at the first step (it fails only past LAPACK's 32-bit workspace, d ≳ 32 000).
    eig: Option<EighWork>,
    g_res: Mat<f64>,
    gv: Mat<f64>,
    p: Mat<f64>,
    ptg: Mat<f64>,
    /// The velocity after `velocity_into`.
    pub out: Mat<f64>,
}

impl Workspace {
    pub fn new(d: usize) -> Workspace {
        let z = || Mat::zeros(d, d);
        Workspace {
            v: z(),
            lambda: vec![0.0; d],
            eig: None,
            g_res: z(),
            gv: z(),
            p: z(),
            ptg: z(),
            out: z(),
        }
    }
}

/// The velocity of eq. (1) at A into `ws.out`, and the singular values of A (descending), from
/// one eigh; None if the eigendecomposition failed (a non-finite A).
pub(crate) fn velocity_into(
    a: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    c2: f64,
    par: Par,
    ws: &mut Workspace,
) -> Option<Vec<f64>> {
    let d = a.ncols();
    lower_gram(ws.v.as_mut(), a, par);
    if ws.eig.is_none() {
        ws.eig = Some(EighWork::new(d, true).ok()?);
    }
    eigh_in_place(ws.v.as_mut(), &mut ws.lambda, ws.eig.as_mut()?).ok()?;
    let c = c2.sqrt();
    let lambda: Vec<f64> = ws.lambda.iter().map(|l| l.max(0.0)).collect();
    let root: Vec<f64> = lambda.iter().map(|l| (l + c2).sqrt()).collect();
    let g: Vec<f64> = root
        .iter()
        .map(|r| if r + c > 0.0 { 1.0 / (r + c) } else { 0.0 })
        .collect();
    ws.g_res.copy_from(a);
    ws.g_res -= y;
    // G (AᵀA + c²)^{1/2} = (G V) diag(√(λ + c²)) Vᵀ
    matmul(
        ws.gv.as_mut(),
        Accum::Replace,
        ws.g_res.as_ref(),
        ws.v.as_ref(),
        1.0,
        par,
    );
    scale_columns(&mut ws.gv, &root);
    matmul(
        ws.out.as_mut(),
        Accum::Replace,
        ws.gv.as_ref(),
        ws.v.transpose(),
        -1.0,
        par,
    );
    // (AAᵀ + c²)^{1/2} G = cG + P diag(g) Pᵀ G, P = AV
    matmul(ws.p.as_mut(), Accum::Replace, a, ws.v.as_ref(), 1.0, par);
    matmul(
        ws.ptg.as_mut(),
        Accum::Replace,
        ws.p.transpose(),
        ws.g_res.as_ref(),
        1.0,
        par,
    );
    for j in 0..d {
        for (i, gi) in g.iter().enumerate() {
            ws.ptg[(i, j)] *= gi;
        }
    }
    matmul(
        ws.out.as_mut(),
        Accum::Add,
        ws.p.as_ref(),
        ws.ptg.as_ref(),
        -1.0,
        par,
    );
    for j in 0..d {
        for i in 0..a.nrows() {
            ws.out[(i, j)] -= c * ws.g_res[(i, j)];
        }
    }
    let mut s: Vec<f64> = lambda.iter().map(|l| l.sqrt()).collect();
    s.reverse();
    Some(s)
}

/// The velocity of eq. (1) at a square A and its singular values (descending); NaN if A is not
/// finite.
pub fn velocity(a: MatRef<'_, f64>, y: MatRef<'_, f64>, c2: f64, par: Par) -> (Mat<f64>, Vec<f64>) {
    let d = a.ncols();
    let mut ws = Workspace::new(d);
    match velocity_into(a, y, c2, par, &mut ws) {
        Some(s) => (ws.out, s),
        None => (
            Mat::from_fn(a.nrows(), d, |_, _| f64::NAN),
            vec![f64::NAN; d],
        ),
    }
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
/// the singular values of A before the step (NaN if A is not finite).
pub fn euler_step(a: &mut Mat<f64>, y: MatRef<'_, f64>, c2: f64, eta: f64, par: Par) -> Vec<f64> {
    let (v, s) = velocity(a.as_ref(), y, c2, par);
    *a += faer::Scale(eta) * v;
    s
}

/// The Euler step with reused buffers.
pub(crate) fn euler_step_with(
    a: &mut Mat<f64>,
    y: MatRef<'_, f64>,
    c2: f64,
    eta: f64,
    par: Par,
    ws: &mut Workspace,
) -> Option<Vec<f64>> {
    let s = velocity_into(a.as_ref(), y, c2, par, ws)?;
    let d = a.ncols();
    for j in 0..d {
        for i in 0..a.nrows() {
            a[(i, j)] += eta * ws.out[(i, j)];
        }
    }
    Some(s)
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
    fn jacobian(&self, state: &[f64], out: MatMut<'_, f64>) {
        crate::dynamics::jacobian_by_columns(self, state, out);
    }
}
