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
