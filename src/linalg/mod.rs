//! Dense linear algebra behind one door: callers name `linalg`, never the backend.
//!
//! Matrices are faer's, and so are the products (`matmul`, `lower_gram`): faer's GEMM is as fast
//! as OpenBLAS's on the shapes used here. The symmetric eigendecomposition (`eigh`) is LAPACK's
//! divide and conquer, dsyevd, on the system OpenBLAS (`lapack`): numpy's `eigh` runs the same
//! routine, and on large kernels it is 1.2–1.4× faster than faer's.
//!
//! Determinism: LAPACK runs on OpenBLAS's own threads (`OPENBLAS_NUM_THREADS`, by default one
//! per core), never on meanfield's `--threads`, so eigen-based arrays are bit-identical whatever
//! `--threads` is. A different OpenBLAS thread count (or CPU) changes them in the last bits
//! (tests/lapack_threads.rs bounds that by 1e-12 relative).

mod lapack;
mod low_rank;

pub use lapack::{eigh, eigh_in_place, EighWork};
pub use low_rank::{add_block_diagonal, symmetric_low_rank, LowRankJacobian, SparseLowRank};

/// Eigenvalues of a positive semidefinite Gram matrix below this fraction of the largest are
/// round-off, taken as 0: a backward-stable eigensolver's absolute error is about n·ε·λ_max
/// (7e-13 λ_max at n = 3000). Without the cut, the null space of a rank-deficient kernel decays
/// at rates that are noise, and at large t two solvers disagree there.
pub(crate) const NULL_EIGENVALUE: f64 = 1e-12;

/// `values` with those at or below `NULL_EIGENVALUE`·max set to exactly 0.
pub(crate) fn psd_eigenvalues(values: &[f64]) -> Vec<f64> {
    let top = values.iter().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|&l| if l > NULL_EIGENVALUE * top { l } else { 0.0 })
        .collect()
}

use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::mat::{AsMatMut, AsMatRef};
use faer::{Accum, MatMut, MatRef, Par};

/// dst ← β·dst + α·A·B, β = 0 for `Accum::Replace` and 1 for `Accum::Add` (A and B as views,
/// owned matrices or references to them).
pub fn matmul(
    dst: impl AsMatMut<T = f64, Rows = usize, Cols = usize>,
    accum: Accum,
    a: impl AsMatRef<T = f64, Rows = usize, Cols = usize>,
    b: impl AsMatRef<T = f64, Rows = usize, Cols = usize>,
    alpha: f64,
    par: Par,
) {
    faer::linalg::matmul::matmul(dst, accum, a, b, alpha, par);
}

/// The lower triangle of AᵀA, all a symmetric eigensolver reads: half the flops of the full
/// product.
pub(crate) fn lower_gram(dst: MatMut<'_, f64>, a: MatRef<'_, f64>, par: Par) {
    triangular::matmul(
        dst,
        BlockStructure::TriangularLower,
        Accum::Replace,
        a.transpose(),
        BlockStructure::Rectangular,
        a,
        BlockStructure::Rectangular,
        1.0,
        par,
    );
}
