//! Matrices that are block-diagonal plus a low-rank coupling: the Jacobians of particle flows.

use faer::{Mat, MatMut};

/// m += blockdiag(B_1, …, B_N), the blocks b × b row-major one after the other.
pub fn add_block_diagonal(mut m: MatMut<'_, f64>, b: usize, blocks: &[f64]) {
    for (j, blk) in blocks.chunks(b * b).enumerate() {
        for p in 0..b {
            for q in 0..b {
                m[(j * b + p, j * b + q)] += blk[p * b + q];
            }
        }
    }
}

/// ∂F/∂y = blockdiag(B_1, …, B_N) − L R: square blocks of size `block` on the diagonal and a
/// rank-r coupling (L is len × r, held as its transpose `left_t` so that L's rows are contiguous
/// columns, as R's are; R is r × len). A particle flow has this form with r the number
/// of samples: J = blockdiag(B_j) − (1/(nN)) ΦᵀΦ (design.md §1).
#[derive(Debug, Clone)]
pub struct LowRankJacobian {
    pub block: usize,
    /// B_j, each block × block row-major, one after the other.
    pub blocks: Vec<f64>,
    /// Lᵀ (r × len).
    pub left_t: Mat<f64>,
    pub right: Mat<f64>,
    /// J's diagonal blocks B_j − (L R)_jj, same layout (computed once: every Newton setup reads
    /// them).
    diagonal: Vec<f64>,
}

impl LowRankJacobian {
    pub fn new(block: usize, blocks: Vec<f64>, left_t: Mat<f64>, right: Mat<f64>) -> Self {
        let mut j = LowRankJacobian {
            block,
            blocks,
            left_t,
            right,
            diagonal: vec![],
        };
        j.diagonal = j.compute_diagonal_blocks();
        j
    }

    pub fn len(&self) -> usize {
        self.right.ncols()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The block-diagonal part of J: B_j − (L R)_jj, one block at a time, row-major.
    pub fn diagonal_blocks(&self) -> &[f64] {
        &self.diagonal
    }

    fn compute_diagonal_blocks(&self) -> Vec<f64> {
        use rayon::prelude::*;
        let b = self.block;
        let mut out = self.blocks.clone();
        // Plain loops per block, blocks in parallel: thousands of tiny products.
        let (left_t, right) = (self.left_t.as_ref(), self.right.as_ref());
        out.par_chunks_mut(b * b).enumerate().for_each(|(j, blk)| {
            for p in 0..b {
                for q in 0..b {
                    let (lp, rq) = (left_t.col(j * b + p), right.col(j * b + q));
                    let lr: f64 = lp.iter().zip(rq.iter()).map(|(u, v)| u * v).sum();
                    blk[p * b + q] -= lr;
                }
            }
        });
        out
    }

    /// The whole matrix, dense (for tests and the fallback solve).
    pub fn dense(&self) -> Mat<f64> {
        let mut m = -(self.left_t.transpose() * &self.right);
        add_block_diagonal(m.as_mut(), self.block, &self.blocks);
        m
    }
}

/// ∂F/∂y = S + L R: a sparse part S, given by its entries on the field's pattern
/// (`VectorField::sparsity`, column by column), and a rank-r coupling, L len × r and R r × len.
/// A grid PDE with a nonlocal interaction has this form: S the stencil's local fluxes, L R the
/// interaction's pull through a low-rank factorization of W.
#[derive(Debug, Clone)]
pub struct SparseLowRank {
    pub values: Vec<f64>,
    pub left: Mat<f64>,
    pub right: Mat<f64>,
}

/// A symmetric matrix as Q diag(λ) Qᵀ with Q orthonormal (len × r), to `tol` relative to its
/// largest eigenvalue: a randomized range finder (Y = A Ω with Gaussian Ω, doubling the
/// sample until A Ω' of fresh probes lies in span(Y) to `tol`), then the small projected
/// eigenproblem by LAPACK. None when A is not of rank below len/4 at that tolerance. The probes
/// come from a fixed seed: the same factors for the same matrix, at any thread count.
pub fn symmetric_low_rank(a: faer::MatRef<'_, f64>, tol: f64) -> Option<(Mat<f64>, Vec<f64>)> {
    use rand::SeedableRng;
    use rand_distr::Distribution;
    let n = a.nrows();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
    let mut gaussian = |cols: usize| {
        Mat::from_fn(n, cols, |_, _| -> f64 {
            rand_distr::StandardNormal.sample(&mut rng)
        })
    };
    // Sequential products: the same bits at any thread count.
    let mul = |x: faer::MatRef<'_, f64>, y: faer::MatRef<'_, f64>| {
        let mut out = Mat::zeros(x.nrows(), y.ncols());
        super::matmul(&mut out, faer::Accum::Replace, x, y, 1.0, faer::Par::Seq);
        out
    };
    let mut k = 16.min(n);
    while k <= n / 4 {
        let y = mul(a, gaussian(k).as_ref());
        let q = thin_q(y);
        // Fresh probes: how much of A Ω' lies outside span(Q).
        let probe = mul(a, gaussian(8).as_ref());
        let inside = mul(q.as_ref(), mul(q.transpose(), probe.as_ref()).as_ref());
        let outside = &probe - &inside;
        let size = probe.norm_l2();
        if size == 0.0 {
            return Some((Mat::zeros(n, 0), vec![]));
        }
        let miss = outside.norm_l2() / size;
        // A spectrum that still leaves 1e-4 out at k = 64 will not reach 1e-12 below len/4:
        // give up before the products grow (at M = 6000 they would take tens of seconds).
        if k >= 64 && miss > 1e-4 {
            return None;
        }
        if miss <= tol {
            let b = mul(mul(q.transpose(), a).as_ref(), q.as_ref());
            let (values, vectors) = super::eigh(b.as_ref(), true).ok()?;
            let u = vectors?;
            let top = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let keep: Vec<usize> = (0..values.len())
                .filter(|&i| values[i].abs() > tol * top)
                .collect();
            let qu = mul(q.as_ref(), u.as_ref());
            let basis = Mat::from_fn(n, keep.len(), |i, j| qu[(i, keep[j])]);
            return Some((basis, keep.iter().map(|&i| values[i]).collect()));
        }
        k *= 2;
    }
    None
}

/// The thin Q of a tall matrix's Householder QR, sequential (faer's `qr()` follows the global
/// thread count).
fn thin_q(mut y: Mat<f64>) -> Mat<f64> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::householder;
    use faer::linalg::qr::no_pivoting::factor as qr;
    let (n, k) = (y.nrows(), y.ncols());
    let size = n.min(k);
    let bs = qr::recommended_block_size::<f64>(n, k);
    let mut coeff = Mat::zeros(bs, size);
    let mut mem = MemBuffer::new(qr::qr_in_place_scratch::<f64>(
        n,
        k,
        bs,
        faer::Par::Seq,
        Default::default(),
    ));
    qr::qr_in_place(
        y.as_mut(),
        coeff.as_mut(),
        faer::Par::Seq,
        MemStack::new(&mut mem),
        Default::default(),
    );
    let mut q = Mat::identity(n, size);
    let mut mem = MemBuffer::new(
        householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(
            n, bs, size,
        ),
    );
    householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
        y.as_ref().subcols(0, size),
        coeff.as_ref(),
        faer::Conj::No,
        q.as_mut(),
        faer::Par::Seq,
        MemStack::new(&mut mem),
    );
    q
}
