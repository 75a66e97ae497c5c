//! The vector-field trait every dynamics implements and every integrator takes.

use crate::linalg::{LowRankJacobian, SparseLowRank};
use faer::MatMut;

/// dy/dt = F(y): the autonomous vector fields of the dynamics layer.
pub trait VectorField {
    /// Length of the state.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// out = F(y)
    fn eval(&self, y: &[f64], out: &mut [f64]);
    /// out = ∂F/∂y · v
    fn jac_mul(&self, y: &[f64], v: &[f64], out: &mut [f64]);
    /// out = ∂F/∂y, assembled (len × len).
    fn jacobian(&self, y: &[f64], out: MatMut<'_, f64>);
    /// ∂F/∂y in the structured form `LowRankJacobian`, when the field has one: the implicit
    /// solvers then solve their Newton systems by Woodbury's identity instead of a dense LU.
    fn jacobian_low_rank(&self, _y: &[f64]) -> Option<LowRankJacobian> {
        None
    }
    /// Some(b) when `jacobian_low_rank` gives the structure at every state, with blocks of b:
    /// the implicit solvers then store their Jacobian and Newton matrices block-sparse (no
    /// len × len array at all).
    fn low_rank_block(&self) -> Option<usize> {
        None
    }
    /// The pattern of ∂F/∂y when it is sparse (a grid's stencil): for each column its rows,
    /// ascending, the diagonal included. The implicit solvers then store the Jacobian and Newton
    /// matrices sparse and factorize them with faer's sparse LU.
    fn sparsity(&self) -> Option<&[Vec<usize>]> {
        None
    }
    /// ∂F/∂y's entries on the `sparsity` pattern, column after column in its order; false when
    /// the field has no sparse Jacobian.
    fn jacobian_values(&self, _y: &[f64], _values: &mut [f64]) -> bool {
        false
    }
    /// ∂F/∂y = S + L R, S on the `sparsity` pattern and L R of low rank, when the field has
    /// that form (a grid with a nonlocal interaction): the implicit solvers then factorize the
    /// sparse part and add the coupling by Woodbury's identity.
    fn jacobian_sparse_low_rank(&self, _y: &[f64]) -> Option<SparseLowRank> {
        None
    }
    /// y ← y + h F(y), one explicit Euler (GD) step. `scratch` holds F(y) unless the field
    /// overrides this with a step taken in place (no second state-sized buffer).
    fn euler_step(&self, y: &mut [f64], h: f64, scratch: &mut Vec<f64>) {
        scratch.resize(y.len(), 0.0);
        self.eval(y, scratch);
        for (yi, vi) in y.iter_mut().zip(scratch.iter()) {
            *yi += h * vi;
        }
    }
}

/// ∂F/∂y assembled one column at a time from J·e_k: for small states whose field has an exact
/// J·v but no cheaper assembly.
pub fn jacobian_by_columns(field: &dyn VectorField, y: &[f64], mut out: MatMut<'_, f64>) {
    let n = field.len();
    let mut e = vec![0.0; n];
    let mut col = vec![0.0; n];
    for k in 0..n {
        e[k] = 1.0;
        field.jac_mul(y, &e, &mut col);
        e[k] = 0.0;
        for (i, c) in col.iter().enumerate() {
            out[(i, k)] = *c;
        }
    }
}
