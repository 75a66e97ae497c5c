//! Newton systems A x = b with A = I − cJ for a structured Jacobian J = blockdiag(B_j) − L R
//! (`LowRankJacobian`), by Woodbury's identity: with D = blockdiag(I − cB_j) and W = D⁻¹L,
//!   A = D + c L R,   A⁻¹ b = y − c W (I + c R W)⁻¹ R y,   y = D⁻¹ b.
//! Factorizing costs N small LUs, P·D·r for W and P·r² for the r × r capacitance, against P³/3
//! for the dense LU (P = N·D unknowns, r samples).
//!
//! diffsol does not pass c to the linear solver; it forms A's diagonal blocks from the ones `Rhs`
//! wrote, so c is read back from them (least squares over the block entries) and checked there.

use crate::linalg::matmul;
use crate::linalg::{LowRankJacobian, SparseLowRank};
use faer::linalg::solvers::{PartialPivLu, SolveCore};
use faer::{Accum, Conj, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::rc::Rc;

pub struct Woodbury {
    structure: Rc<LowRankJacobian>,
    c: f64,
    /// (I − c B_j)⁻¹, each block × block row-major, one after the other. Explicit inverses of
    /// the small blocks: the solves are then plain loops, with no per-block call overhead
    /// (400 blocks of 10 cost 40–90 ms through faer's parallel small-matrix calls, ~2 ms so).
    inverses: Vec<f64>,
    /// W = D⁻¹ L (P × r).
    w: Mat<f64>,
    /// LU of the capacitance I + c R W (r × r).
    capacitance: PartialPivLu<f64>,
}

/// A's diagonal blocks must equal I − cJ's to this relative precision.
const MATCH_TOL: f64 = 1e-10;
/// A solve whose residual exceeds this share of ‖b‖ sends the system to the dense LU.
const RESIDUAL_TOL: f64 = 1e-9;

fn column(v: &[f64]) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(v, v.len(), 1)
}
fn column_mut(v: &mut [f64]) -> MatMut<'_, f64> {
    let n = v.len();
    MatMut::from_column_major_slice_mut(v, n, 1)
}
fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// A's diagonal blocks (`block` × `block` row-major, one after the other, as
/// `LowRankJacobian::diagonal_blocks` lays out J's), read from a dense A.
pub(crate) fn dense_diagonal_blocks(a: MatRef<'_, f64>, block: usize) -> Result<Vec<f64>, String> {
    let p = a.nrows();
    if a.ncols() != p || block == 0 || !p.is_multiple_of(block) {
        return Err(format!(
            "internal error: a {}×{} Newton matrix read in blocks of {block}",
            a.nrows(),
            a.ncols()
        ));
    }
    let b = block;
    Ok((0..p / b)
        .flat_map(|j| (0..b * b).map(move |k| a[(j * b + k / b, j * b + k % b)]))
        .collect())
}

/// One trial solve of an n × n system against the matrix's own product: whether
/// `apply(solve(b))` gives b back to `RESIDUAL_TOL` (and the solution is finite).
fn passes_trial(n: usize, solve: impl Fn(&mut [f64]), apply: impl Fn(&[f64]) -> Vec<f64>) -> bool {
    let rhs: Vec<f64> = (0..n)
        .map(|k| ((k as f64 + 1.0) * 0.618_034).fract() - 0.5)
        .collect();
    let mut x = rhs.clone();
    solve(&mut x);
    let residual = apply(&x)
        .iter()
        .zip(&rhs)
        .fold(0.0_f64, |m, (u, v)| m.max((u - v).abs()));
    // (f64::max passes NaN over: the solution's finiteness is checked on its own.)
    super::all_finite(&x) && residual <= RESIDUAL_TOL * max_abs(&rhs)
}

/// c such that A's diagonal blocks (`a_blocks`) are I − c·J's, or why they do not have that
/// form.
fn recover_c(a_blocks: &[f64], lr: &LowRankJacobian) -> Result<f64, String> {
    let b = lr.block;
    let jbd = lr.diagonal_blocks();
    if a_blocks.len() != jbd.len() || b == 0 {
        return Err(format!(
            "internal error: {} Newton-matrix block entries for a structured Jacobian of size {} in blocks of {b}",
            a_blocks.len(),
            lr.len()
        ));
    }
    let entries = || {
        a_blocks
            .iter()
            .zip(jbd)
            .enumerate()
            .map(move |(k, (a, j))| {
                let within = k % (b * b);
                let delta = if within / b == within % b { 1.0 } else { 0.0 };
                (delta - a, *j)
            })
    };
    let (num, den) = entries().fold((0.0, 0.0), |(n, d), (ia, j)| (n + ia * j, d + j * j));
    // J's blocks all zero means L R = 0 too (its diagonal is |rows|²): A = I whatever c is.
    let c = if den > 0.0 { num / den } else { 0.0 };
    let scale = 1.0 + c.abs() * max_abs(jbd);
    let mismatch = entries().fold(0.0_f64, |m, (ia, j)| m.max((ia - c * j).abs()));
    if mismatch > MATCH_TOL * scale {
        return Err(format!(
            "internal error: the Newton matrix's diagonal blocks differ from I − cJ by {mismatch:.3e} (c = {c:e})"
        ));
    }
    Ok(c)
}

/// v ← blockdiag(M_j) v (or its transpose), M_j block × block row-major.
fn apply_blocks(ms: &[f64], b: usize, v: &mut [f64], transpose: bool) {
    let mut tmp = vec![0.0; b];
    for (m, seg) in ms.chunks(b * b).zip(v.chunks_mut(b)) {
        for (r, t) in tmp.iter_mut().enumerate() {
            *t = (0..b)
                .map(|q| {
                    let mrq = if transpose {
                        m[q * b + r]
                    } else {
                        m[r * b + q]
                    };
                    mrq * seg[q]
                })
                .sum();
        }
        seg.copy_from_slice(&tmp);
    }
}

/// inv ← m⁻¹ (b × b, row-major) by Gauss–Jordan elimination with partial pivoting; false when a
/// pivot vanishes or the result is not finite.
fn invert(mut m: Vec<f64>, b: usize, inv: &mut [f64]) -> bool {
    inv.fill(0.0);
    for k in 0..b {
        inv[k * b + k] = 1.0;
    }
    for col in 0..b {
        let piv = (col..b)
            .max_by(|&i, &j| m[i * b + col].abs().total_cmp(&m[j * b + col].abs()))
            .unwrap_or(col);
        let pv = m[piv * b + col];
        if pv == 0.0 || !pv.is_finite() {
            return false;
        }
        if piv != col {
            for q in 0..b {
                m.swap(piv * b + q, col * b + q);
                inv.swap(piv * b + q, col * b + q);
            }
        }
        for q in 0..b {
            m[col * b + q] /= pv;
            inv[col * b + q] /= pv;
        }
        for r in 0..b {
            let f = m[r * b + col];
            if r != col && f != 0.0 {
                for q in 0..b {
                    m[r * b + q] -= f * m[col * b + q];
                    inv[r * b + q] -= f * inv[col * b + q];
                }
            }
        }
    }
    inv.iter().all(|v| v.is_finite())
}

impl Woodbury {
    /// Factors of A (whose diagonal blocks are I − cJ's); `None` when the blocks I − cB_j or the
    /// capacitance are too ill-conditioned for a solve to 1e-9 (then use `dense`).
    pub fn new(a: MatRef<'_, f64>, lr: &Rc<LowRankJacobian>) -> Result<Option<Woodbury>, String> {
        Woodbury::from_blocks(&dense_diagonal_blocks(a, lr.block)?, lr)
    }

    /// As `new`, from A's diagonal blocks alone (laid out as `dense_diagonal_blocks` returns
    /// them): all of A the factorization reads, so A may be stored sparse.
    pub(crate) fn from_blocks(
        a_blocks: &[f64],
        lr: &Rc<LowRankJacobian>,
    ) -> Result<Option<Woodbury>, String> {
        let c = recover_c(a_blocks, lr)?;
        let (p, b) = (lr.len(), lr.block);
        let mut inverses = vec![0.0; lr.blocks.len()];
        let invertible = inverses
            .par_chunks_mut(b * b)
            .zip(lr.blocks.par_chunks(b * b))
            .map(|(inv, blk)| {
                let m: Vec<f64> = (0..b * b)
                    .map(|k| if k / b == k % b { 1.0 } else { 0.0 } - c * blk[k])
                    .collect();
                invert(m, b, inv)
            })
            .collect::<Vec<bool>>();
        if !invertible.iter().all(|&ok| ok) {
            return Ok(None);
        }
        // W = D⁻¹ L, one small GEMM per block.
        let mut w = Mat::<f64>::zeros(p, lr.left_t.nrows());
        for (j, inv) in inverses.chunks(b * b).enumerate() {
            matmul(
                w.as_mut().subrows_mut(j * b, b),
                Accum::Replace,
                MatRef::from_row_major_slice(inv, b, b),
                lr.left_t.subcols(j * b, b).transpose(),
                1.0,
                Par::Seq,
            );
        }
        let r = lr.right.nrows();
        let mut cap = Mat::<f64>::identity(r, r);
        matmul(
            cap.as_mut(),
            Accum::Add,
            lr.right.as_ref(),
            w.as_ref(),
            c,
            faer::get_global_parallelism(),
        );
        let wb = Woodbury {
            structure: lr.clone(),
            c,
            inverses,
            w,
            capacitance: cap.partial_piv_lu(),
        };
        let ok = passes_trial(p, |x| wb.solve(x), |x| wb.apply(x));
        Ok(ok.then_some(wb))
    }

    /// A = I − c·J, dense (the fallback for ill-conditioned blocks), or why A's diagonal
    /// blocks are not I − cJ's.
    pub fn dense(a: MatRef<'_, f64>, lr: &LowRankJacobian) -> Result<Mat<f64>, String> {
        Woodbury::dense_from_blocks(&dense_diagonal_blocks(a, lr.block)?, lr)
    }

    /// As `dense`, from A's diagonal blocks.
    pub(crate) fn dense_from_blocks(
        a_blocks: &[f64],
        lr: &LowRankJacobian,
    ) -> Result<Mat<f64>, String> {
        let c = recover_c(a_blocks, lr)?;
        let mut m = lr.dense() * faer::Scale(-c);
        for k in 0..m.nrows() {
            m[(k, k)] += 1.0;
        }
        Ok(m)
    }

    /// A x = D x + c L (R x).
    fn apply(&self, x: &[f64]) -> Vec<f64> {
        let (s, b, c) = (&*self.structure, self.structure.block, self.c);
        let mut out = x.to_vec();
        for (j, blk) in s.blocks.chunks(b * b).enumerate() {
            for r in 0..b {
                let row = &blk[r * b..(r + 1) * b];
                out[j * b + r] -= c * row.iter().zip(&x[j * b..]).map(|(u, v)| u * v).sum::<f64>();
            }
        }
        let mut rx = Mat::<f64>::zeros(s.right.nrows(), 1);
        matmul(
            rx.as_mut(),
            Accum::Replace,
            s.right.as_ref(),
            column(x),
            1.0,
            Par::Seq,
        );
        let mut o = column_mut(&mut out);
        matmul(
            o.as_mut(),
            Accum::Add,
            s.left_t.transpose(),
            rx.as_ref(),
            c,
            Par::Seq,
        );
        out
    }

    fn block_solve(&self, v: &mut [f64], transpose: bool) {
        apply_blocks(&self.inverses, self.structure.block, v, transpose);
    }

    /// v ← A⁻¹ v
    pub fn solve(&self, v: &mut [f64]) {
        self.block_solve(v, false);
        let mut t = Mat::<f64>::zeros(self.w.ncols(), 1);
        matmul(
            t.as_mut(),
            Accum::Replace,
            self.structure.right.as_ref(),
            column(v),
            1.0,
            Par::Seq,
        );
        self.capacitance
            .solve_in_place_with_conj(Conj::No, t.as_mut());
        matmul(
            column_mut(v),
            Accum::Add,
            self.w.as_ref(),
            t.as_ref(),
            -self.c,
            Par::Seq,
        );
    }

    /// v ← A⁻ᵀ v: with Aᵀ = Dᵀ + c Rᵀ Lᵀ and the capacitance's transpose,
    /// A⁻ᵀ v = z − c D⁻ᵀ Rᵀ (I + c R W)⁻ᵀ Lᵀ z,  z = D⁻ᵀ v.
    pub fn solve_transpose(&self, v: &mut [f64]) {
        self.block_solve(v, true);
        let mut t = Mat::<f64>::zeros(self.w.ncols(), 1);
        matmul(
            t.as_mut(),
            Accum::Replace,
            self.structure.left_t.as_ref(),
            column(v),
            1.0,
            Par::Seq,
        );
        self.capacitance
            .solve_transpose_in_place_with_conj(Conj::No, t.as_mut());
        let mut u = vec![0.0; v.len()];
        matmul(
            column_mut(&mut u),
            Accum::Replace,
            self.structure.right.transpose(),
            t.as_ref(),
            1.0,
            Par::Seq,
        );
        self.block_solve(&mut u, true);
        for (vi, ui) in v.iter_mut().zip(&u) {
            *vi -= self.c * ui;
        }
    }
}

/// Newton systems A x = b for J = S + L R (`SparseLowRank`): diffsol forms A_S = I − cS on
/// S's sparse pattern; with c read back from it, A = A_S − c L R, and by Woodbury
///   A⁻¹ b = y + c W (I − c R W)⁻¹ R y,   y = A_S⁻¹ b,  W = A_S⁻¹ L,
/// one sparse LU and r solves with it instead of a dense LU of the whole matrix.
pub(crate) struct SparseWoodbury {
    lu: super::ode::SparseLu,
    c: f64,
    /// W = A_S⁻¹ L (len × r), V = A_S⁻ᵀ Rᵀ (len × r) for the transposed solves.
    w: Mat<f64>,
    v: Mat<f64>,
    /// L and R, shared with the equations that handed them over.
    structure: Rc<SparseLowRank>,
    /// LUs of I − c R W and I − c Lᵀ V (r × r).
    capacitance: PartialPivLu<f64>,
    capacitance_t: PartialPivLu<f64>,
}

impl SparseWoodbury {
    /// The factors, or Ok(Err(A)) with A assembled dense when a trial solve misses (an
    /// ill-conditioned capacitance), or Err when A is not I − cJ's sparse part.
    pub fn new(
        a: faer::sparse::SparseColMatRef<'_, usize, f64>,
        j: &Rc<SparseLowRank>,
    ) -> Result<Result<SparseWoodbury, Mat<f64>>, String> {
        let n = a.nrows();
        let vals = a.val();
        if vals.len() != j.values.len() || j.left.nrows() != n || j.right.ncols() != n {
            return Err(format!(
                "internal error: a sparse Newton matrix with {} entries for a Jacobian with {} on its pattern",
                vals.len(),
                j.values.len()
            ));
        }
        // A_S = I − cS entry by entry: c by least squares, then checked.
        let sym = a.symbolic();
        let diag: Vec<f64> = (0..n)
            .flat_map(|col| sym.col_range(col).map(move |k| (k, col)))
            .map(|(k, col)| if sym.row_idx()[k] == col { 1.0 } else { 0.0 })
            .collect();
        let (mut num, mut den) = (0.0, 0.0);
        for k in 0..vals.len() {
            num += (diag[k] - vals[k]) * j.values[k];
            den += j.values[k] * j.values[k];
        }
        let c = if den > 0.0 { num / den } else { 0.0 };
        for k in 0..vals.len() {
            let expect = diag[k] - c * j.values[k];
            if (vals[k] - expect).abs() > MATCH_TOL * (1.0 + vals[k].abs()) {
                return Err(format!(
                    "internal error: the sparse Newton matrix is not I − cJ's sparse part (entry {k}: {} against {expect})",
                    vals[k]
                ));
            }
        }
        let lu = a
            .sp_lu()
            .map_err(|e| format!("sparse LU of the Newton matrix failed: {e:?}"))?;
        let r = j.left.ncols();
        let mut w = j.left.clone();
        lu.solve_in_place_with_conj(Conj::No, w.as_mut());
        let mut v = j.right.transpose().to_owned();
        lu.solve_transpose_in_place_with_conj(Conj::No, v.as_mut());
        let (mut cap, mut cap_t) = (Mat::<f64>::identity(r, r), Mat::<f64>::identity(r, r));
        matmul(
            cap.as_mut(),
            Accum::Add,
            j.right.as_ref(),
            w.as_ref(),
            -c,
            Par::Seq,
        );
        matmul(
            cap_t.as_mut(),
            Accum::Add,
            j.left.transpose(),
            v.as_ref(),
            -c,
            Par::Seq,
        );
        let wb = SparseWoodbury {
            lu,
            c,
            w,
            v,
            structure: j.clone(),
            capacitance: cap.partial_piv_lu(),
            capacitance_t: cap_t.partial_piv_lu(),
        };
        // A = A_S − c L R applied directly.
        let apply = |x: &[f64]| {
            let mut ax = vec![0.0; n];
            for (col, xc) in x.iter().enumerate() {
                for k in sym.col_range(col) {
                    ax[sym.row_idx()[k]] += vals[k] * xc;
                }
            }
            let mut rx = Mat::zeros(r, 1);
            matmul(
                &mut rx,
                Accum::Replace,
                j.right.as_ref(),
                column(x),
                1.0,
                Par::Seq,
            );
            matmul(
                column_mut(&mut ax),
                Accum::Add,
                j.left.as_ref(),
                rx.as_ref(),
                -c,
                Par::Seq,
            );
            ax
        };
        if passes_trial(n, |x| wb.solve(x), apply) {
            return Ok(Ok(wb));
        }
        let mut dense = &j.left * &j.right * faer::Scale(-c);
        for col in 0..n {
            for k in sym.col_range(col) {
                dense[(sym.row_idx()[k], col)] += vals[k];
            }
        }
        Ok(Err(dense))
    }

    /// b ← A⁻¹ b
    pub fn solve(&self, b: &mut [f64]) {
        self.lu.solve_in_place_with_conj(Conj::No, column_mut(b));
        let mut z = Mat::zeros(self.structure.right.nrows(), 1);
        matmul(
            &mut z,
            Accum::Replace,
            self.structure.right.as_ref(),
            column(b),
            1.0,
            Par::Seq,
        );
        self.capacitance
            .solve_in_place_with_conj(Conj::No, z.as_mut());
        matmul(
            column_mut(b),
            Accum::Add,
            self.w.as_ref(),
            z.as_ref(),
            self.c,
            Par::Seq,
        );
    }

    /// b ← A⁻ᵀ b: Aᵀ = A_Sᵀ − c Rᵀ Lᵀ, so with y = A_S⁻ᵀ b and V = A_S⁻ᵀ Rᵀ,
    /// A⁻ᵀ b = y + c V (I − c Lᵀ V)⁻¹ Lᵀ y.
    pub fn solve_transpose(&self, b: &mut [f64]) {
        self.lu
            .solve_transpose_in_place_with_conj(Conj::No, column_mut(b));
        let mut z = Mat::zeros(self.structure.left.ncols(), 1);
        matmul(
            &mut z,
            Accum::Replace,
            self.structure.left.transpose(),
            column(b),
            1.0,
            Par::Seq,
        );
        self.capacitance_t
            .solve_in_place_with_conj(Conj::No, z.as_mut());
        matmul(
            column_mut(b),
            Accum::Add,
            self.v.as_ref(),
            z.as_ref(),
            self.c,
            Par::Seq,
        );
    }
}
