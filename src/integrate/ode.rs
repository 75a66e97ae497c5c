//! Adaptive integration with diffsol.
//!
//! A `VectorField` becomes diffsol equations whose Jacobian is the field's own assembled matrix
//! (GEMM-shaped), not P probes of J·v. The implicit methods factorize it with `BlockedLu`, faer's
//! blocked partial-pivoting LU: diffsol's own `FaerLU` is unblocked with full pivoting, several
//! times slower at P in the thousands (design.md §6).
//!
//! A field whose Jacobian is block-diagonal plus low rank (`VectorField::low_rank_block`) is
//! integrated with block-sparse Jacobian and Newton matrices instead (`JacobianMatrix` for
//! `FaerSparseMat`): diffsol then never forms, scales or adds a P × P array, and the low-rank
//! part travels to the linear solver beside them (`SharedLowRank`).

use super::woodbury::{SparseWoodbury, Woodbury};
use super::{all_finite, Observer, Outcome, SolverStats, Stopped};
use crate::dynamics::VectorField;
use crate::linalg::{LowRankJacobian, SparseLowRank};
use diffsol::{
    error::DiffsolError, Bdf, ConstantOp, FaerContext, FaerMat, FaerSparseMat, FaerVec, LaError,
    LaLinearOp, Matrix, MatrixCommon, NonLinearOp, NonLinearOpJacobian, OdeBuilder, OdeEquations,
    OdeEquationsRef, OdeSolverMethod, OdeSolverStopReason, Op, ParameterisedOp, Sdirk, Tableau,
    UnitCallable, Vector, VectorCommon,
};
use faer::linalg::solvers::{PartialPivLu, SolveCore};
use faer::sparse::SymbolicSparseColMat;
use faer::{Conj, Mat, MatRef};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Instant;

type Dense = FaerMat<f64>;
type Sparse = FaerSparseMat<f64>;
type V = FaerVec<f64>;

fn slice(v: &V) -> &[f64] {
    v.inner().col_as_slice(0)
}
fn slice_mut(v: &mut V) -> &mut [f64] {
    v.inner_mut().col_as_slice_mut(0)
}

/// How the Jacobian and the Newton matrices are stored: dense (any field) or block-sparse (a
/// field with a structured Jacobian, whose low-rank part goes to the solver by `SharedLowRank`).
pub(crate) trait JacobianMatrix: Matrix<T = f64, V = V, C = FaerContext> {
    /// The sparsity of a len × len matrix with diagonal blocks of `block` (None: dense).
    fn block_sparsity(len: usize, block: usize) -> Option<Self::Sparsity>;
    /// self ← blockdiag(blocks), zero elsewhere (`blocks` row-major, one after the other).
    fn set_block_diagonal(&mut self, block: usize, blocks: &[f64]);
    /// self ← the field's whole Jacobian at x; a storage that cannot hold it fills NaN, so that
    /// Newton fails and the solver says so.
    fn set_full(&mut self, field: &dyn VectorField, x: &[f64]);
    /// The diagonal blocks, laid out as `set_block_diagonal` takes them.
    fn diagonal_blocks(&self, block: usize) -> Result<Vec<f64>, String>;
    /// The matrix as a dense one, when it is stored so.
    fn as_dense(&self) -> Option<MatRef<'_, f64>>;
    /// The matrix, when it is stored sparse.
    fn as_sparse(&self) -> Option<faer::sparse::SparseColMatRef<'_, usize, f64>>;
    /// self ← the entries `values` on its sparse pattern (a dense storage fills NaN: it is
    /// never given a sparse Jacobian).
    fn set_values(&mut self, values: &[f64]);
    /// A sparsity pattern given column by column (rows ascending).
    fn pattern_sparsity(len: usize, columns: &[Vec<usize>]) -> Option<Self::Sparsity>;
}

/// faer's sparse LU with partial pivoting.
pub(crate) type SparseLu = faer::sparse::linalg::solvers::Lu<usize, f64>;

impl JacobianMatrix for Dense {
    fn block_sparsity(_len: usize, _block: usize) -> Option<Self::Sparsity> {
        None
    }
    fn set_block_diagonal(&mut self, block: usize, blocks: &[f64]) {
        let mut m = self.inner_mut().as_mut();
        m.fill(0.0);
        crate::linalg::add_block_diagonal(m, block, blocks);
    }
    fn set_full(&mut self, field: &dyn VectorField, x: &[f64]) {
        field.jacobian(x, self.inner_mut().as_mut());
    }
    fn diagonal_blocks(&self, block: usize) -> Result<Vec<f64>, String> {
        super::woodbury::dense_diagonal_blocks(self.inner().as_ref(), block)
    }
    fn as_dense(&self) -> Option<MatRef<'_, f64>> {
        Some(self.inner().as_ref())
    }
    fn as_sparse(&self) -> Option<faer::sparse::SparseColMatRef<'_, usize, f64>> {
        None
    }
    fn set_values(&mut self, _values: &[f64]) {
        self.inner_mut().fill(f64::NAN);
    }
    fn pattern_sparsity(_len: usize, _columns: &[Vec<usize>]) -> Option<Self::Sparsity> {
        None
    }
}

/// Whether a len × len matrix splits into diagonal blocks of `block`.
fn blocks_fit(len: usize, block: usize) -> bool {
    block > 0 && len.is_multiple_of(block)
}

/// Where entry (i, j) of a block-diagonal matrix sits in its blocks laid out row-major one
/// after the other (`LowRankJacobian::diagonal_blocks`), or None outside the blocks.
fn block_entry(i: usize, j: usize, block: usize) -> Option<usize> {
    (i / block == j / block).then(|| j / block * block * block + (i % block) * block + j % block)
}

impl JacobianMatrix for Sparse {
    fn block_sparsity(len: usize, block: usize) -> Option<Self::Sparsity> {
        if !blocks_fit(len, block) {
            return None;
        }
        let col_ptr = (0..=len).map(|j| j * block).collect();
        let row_idx = (0..len)
            .flat_map(|j| (j / block * block)..(j / block * block + block))
            .collect();
        Some(SymbolicSparseColMat::new_checked(
            len, len, col_ptr, None, row_idx,
        ))
    }
    fn set_block_diagonal(&mut self, block: usize, blocks: &[f64]) {
        for m in self.inner_mut() {
            let (sym, val) = m.parts_mut();
            for j in 0..sym.ncols() {
                for k in sym.col_range(j) {
                    val[k] = block_entry(sym.row_idx()[k], j, block).map_or(0.0, |e| blocks[e]);
                }
            }
        }
    }
    fn set_full(&mut self, field: &dyn VectorField, x: &[f64]) {
        for m in self.inner_mut() {
            if !field.jacobian_values(x, m.val_mut()) {
                m.val_mut().fill(f64::NAN);
            }
        }
    }
    fn diagonal_blocks(&self, block: usize) -> Result<Vec<f64>, String> {
        let m = &self.inner()[0];
        let (sym, val) = m.parts();
        let n = sym.ncols();
        if sym.nrows() != n || !blocks_fit(n, block) {
            return Err(format!(
                "internal error: a {}×{n} sparse Newton matrix read in blocks of {block}",
                sym.nrows()
            ));
        }
        let mut out = vec![0.0; n * block];
        for j in 0..n {
            for k in sym.col_range(j) {
                let i = sym.row_idx()[k];
                if let Some(e) = block_entry(i, j, block) {
                    out[e] = val[k];
                } else if val[k] != 0.0 {
                    return Err(format!(
                        "internal error: the sparse Newton matrix has an entry outside its diagonal blocks at ({i}, {j})"
                    ));
                }
            }
        }
        Ok(out)
    }
    fn as_dense(&self) -> Option<MatRef<'_, f64>> {
        None
    }
    fn as_sparse(&self) -> Option<faer::sparse::SparseColMatRef<'_, usize, f64>> {
        Some(self.inner()[0].as_ref())
    }
    fn set_values(&mut self, values: &[f64]) {
        for m in self.inner_mut() {
            let v = m.val_mut();
            if v.len() == values.len() {
                v.copy_from_slice(values);
            } else {
                v.fill(f64::NAN);
            }
        }
    }
    fn pattern_sparsity(len: usize, columns: &[Vec<usize>]) -> Option<Self::Sparsity> {
        if columns.len() != len {
            return None;
        }
        let mut col_ptr = vec![0];
        let mut row_idx = vec![];
        for c in columns {
            row_idx.extend_from_slice(c);
            col_ptr.push(row_idx.len());
        }
        SymbolicSparseColMat::new_checked(len, len, col_ptr, None, row_idx).into()
    }
}

/// A `VectorField` with its initial state, as diffsol equations, its Jacobian stored as `JM`.
pub(crate) struct FieldEquations<'f, JM = Dense> {
    field: &'f dyn VectorField,
    y0: V,
    ctx: FaerContext,
    rhs_evals: Cell<usize>,
    jacobian_evals: Cell<usize>,
    /// The structured Jacobian of the last evaluation, shared with the linear solver, when the
    /// field has one (see `Rhs::jacobian_inplace`).
    low_rank: SharedLowRank,
    storage: PhantomData<JM>,
}

/// The handle through which `Rhs` hands its structured Jacobian to `BlockedLu`.
pub(crate) type SharedLowRank = Rc<RefCell<Option<Structure>>>;

/// A Jacobian's structure beyond its stored matrix.
#[derive(Clone)]
pub(crate) enum Structure {
    /// blockdiag(B_j) − L R; the matrix holds the blocks.
    Blocks(Rc<LowRankJacobian>),
    /// S + L R; the matrix holds S on its sparse pattern.
    Sparse(Rc<SparseLowRank>),
}

impl<'f, JM> FieldEquations<'f, JM> {
    pub fn new(field: &'f dyn VectorField, y0: &[f64]) -> Self {
        let ctx = FaerContext::default();
        FieldEquations {
            field,
            y0: V::from_slice(y0, ctx),
            ctx,
            rhs_evals: Cell::new(0),
            jacobian_evals: Cell::new(0),
            low_rank: SharedLowRank::default(),
            storage: PhantomData,
        }
    }
}

pub(crate) struct Rhs<'a, 'f, JM> {
    eqn: &'a FieldEquations<'f, JM>,
}
pub(crate) struct Init<'a, 'f, JM> {
    eqn: &'a FieldEquations<'f, JM>,
}

macro_rules! field_op {
    ($name:ident) => {
        impl<JM: JacobianMatrix> Op for $name<'_, '_, JM> {
            type M = JM;
            type V = V;
            type T = f64;
            type C = FaerContext;
            fn nstates(&self) -> usize {
                self.eqn.field.len()
            }
            fn nout(&self) -> usize {
                self.eqn.field.len()
            }
            fn nparams(&self) -> usize {
                0
            }
            fn context(&self) -> &FaerContext {
                &self.eqn.ctx
            }
        }
    };
}
field_op!(Rhs);
field_op!(Init);

impl<JM: JacobianMatrix> NonLinearOp for Rhs<'_, '_, JM> {
    fn call_inplace(&self, x: &V, _t: f64, y: &mut V) {
        self.eqn.rhs_evals.set(self.eqn.rhs_evals.get() + 1);
        self.eqn.field.eval(slice(x), slice_mut(y));
    }
}

impl<JM: JacobianMatrix> NonLinearOpJacobian for Rhs<'_, '_, JM> {
    fn jac_mul_inplace(&self, x: &V, _t: f64, v: &V, y: &mut V) {
        self.eqn.field.jac_mul(slice(x), slice(v), slice_mut(y));
    }
    /// A field with a structured Jacobian J = blockdiag(B_j) − L R fills the matrix with J's
    /// diagonal blocks only and hands the whole structure to the linear solver beside it
    /// (`BlockedLu` solves with Woodbury's identity): no P × P GEMM, no P³ LU. diffsol reads
    /// this matrix only to form its Newton matrix I − cJ for that solver.
    fn jacobian_inplace(&self, x: &V, _t: f64, y: &mut JM) {
        self.eqn
            .jacobian_evals
            .set(self.eqn.jacobian_evals.get() + 1);
        if let Some(lr) = self.eqn.field.jacobian_low_rank(slice(x)) {
            y.set_block_diagonal(lr.block, lr.diagonal_blocks());
            *self.eqn.low_rank.borrow_mut() = Some(Structure::Blocks(Rc::new(lr)));
            return;
        }
        if let Some(slr) = self.eqn.field.jacobian_sparse_low_rank(slice(x)) {
            y.set_values(&slr.values);
            *self.eqn.low_rank.borrow_mut() = Some(Structure::Sparse(Rc::new(slr)));
            return;
        }
        y.set_full(self.eqn.field, slice(x));
    }
    fn jacobian_sparsity(&self) -> Option<JM::Sparsity> {
        let f = self.eqn.field;
        if let Some(columns) = f.sparsity() {
            return JM::pattern_sparsity(f.len(), columns);
        }
        f.low_rank_block()
            .and_then(|b| JM::block_sparsity(f.len(), b))
    }
}

impl<JM: JacobianMatrix> ConstantOp for Init<'_, '_, JM> {
    fn call_inplace(&self, _t: f64, y: &mut V) {
        y.copy_from(&self.eqn.y0);
    }
}

impl<JM: JacobianMatrix> Op for FieldEquations<'_, JM> {
    type M = JM;
    type V = V;
    type T = f64;
    type C = FaerContext;
    fn nstates(&self) -> usize {
        self.field.len()
    }
    fn nout(&self) -> usize {
        self.field.len()
    }
    fn nparams(&self) -> usize {
        0
    }
    fn context(&self) -> &FaerContext {
        &self.ctx
    }
}

impl<'a, 'f, JM: JacobianMatrix> OdeEquationsRef<'a> for FieldEquations<'f, JM> {
    type Rhs = Rhs<'a, 'f, JM>;
    type Init = Init<'a, 'f, JM>;
    type Mass = ParameterisedOp<'a, UnitCallable<JM>>;
    type Root = ParameterisedOp<'a, UnitCallable<JM>>;
    type Out = ParameterisedOp<'a, UnitCallable<JM>>;
    type Reset = ParameterisedOp<'a, UnitCallable<JM>>;
}

impl<JM: JacobianMatrix> OdeEquations for FieldEquations<'_, JM> {
    fn rhs(&self) -> <Self as OdeEquationsRef<'_>>::Rhs {
        Rhs { eqn: self }
    }
    fn init(&self) -> <Self as OdeEquationsRef<'_>>::Init {
        Init { eqn: self }
    }
    fn mass(&self) -> Option<<Self as OdeEquationsRef<'_>>::Mass> {
        None
    }
    fn out(&self) -> Option<<Self as OdeEquationsRef<'_>>::Out> {
        None
    }
    fn root(&self) -> Option<<Self as OdeEquationsRef<'_>>::Root> {
        None
    }
    fn set_params(&mut self, _p: &V) {}
    fn get_params(&self, _p: &mut V) {}
}

/// diffsol `LinearSolver` over faer's blocked, partial-pivoting LU.
///
/// Coordinates the field does not couple (their column of the Newton matrix M − cJ is the unit
/// vector, as for the inactive coordinates of a diagonal network's mirror flow, whose dβ/dq is
/// ~α²) are deflated: with S the coupled columns and F the free ones, M − cJ = [[A_SS, 0],
/// [A_FS, I]], so only A_SS is factorized and x_F = b_F − A_FS x_S. A column counts as free when
/// it differs from the unit vector by at most 1e-14: the Newton iteration tolerates a matrix that
/// far off (it already runs on stale Jacobians), and the residuals it drives to zero are exact.
///
/// Given the equations' `SharedLowRank` (`BlockedLu::structured`), a structured Jacobian is
/// solved with Woodbury's identity instead (see `Woodbury`).
pub(crate) struct BlockedLu<JM = Dense> {
    matrix: Option<JM>,
    /// The factors of the last Newton matrix, or why it did not match the structure it was said
    /// to have: then every solve fails with that reason (Newton fails and the solver reports
    /// it), rather than a panic.
    lu: Option<Result<Factors, String>>,
    low_rank: Option<SharedLowRank>,
}

enum Factors {
    Dense(DeflatedLu),
    Woodbury(Woodbury),
    Sparse(Box<SparseLu>),
    SparseWoodbury(Box<SparseWoodbury>),
}

impl<JM> Default for BlockedLu<JM> {
    fn default() -> Self {
        BlockedLu {
            matrix: None,
            lu: None,
            low_rank: None,
        }
    }
}

impl<JM> BlockedLu<JM> {
    /// A solver that uses the structured Jacobians the equations' `Rhs` hands over.
    pub fn structured(low_rank: SharedLowRank) -> Self {
        BlockedLu {
            low_rank: Some(low_rank),
            ..Default::default()
        }
    }
}

/// Columns whose off-unit part is negligible.
const FREE_COLUMN_TOL: f64 = 1e-14;

/// LU factors of a square matrix with its unit columns deflated (see `BlockedLu`).
pub struct DeflatedLu {
    lu: PartialPivLu<f64>,
    /// Coupled columns S (all of them when nothing is deflated) and the free ones F.
    coupled: Vec<usize>,
    free: Vec<usize>,
    /// A_FS, when some columns are free.
    a_fs: Mat<f64>,
}

impl DeflatedLu {
    pub fn new(a: faer::MatRef<'_, f64>) -> DeflatedLu {
        let n = a.nrows();
        let (mut coupled, mut free) = (vec![], vec![]);
        for j in 0..n {
            let col = a.col(j);
            let is_free = (0..n).all(|i| {
                let target = if i == j { 1.0 } else { 0.0 };
                (col[i] - target).abs() <= FREE_COLUMN_TOL
            });
            if is_free {
                free.push(j);
            } else {
                coupled.push(j);
            }
        }
        // Deflation pays when it removes a good share of the matrix.
        if free.len() * 5 < n {
            return DeflatedLu {
                lu: a.partial_piv_lu(),
                coupled: (0..n).collect(),
                free: vec![],
                a_fs: Mat::zeros(0, 0),
            };
        }
        let a_ss = Mat::from_fn(coupled.len(), coupled.len(), |r, c| {
            a[(coupled[r], coupled[c])]
        });
        DeflatedLu {
            lu: a_ss.partial_piv_lu(),
            a_fs: Mat::from_fn(free.len(), coupled.len(), |r, c| a[(free[r], coupled[c])]),
            coupled,
            free,
        }
    }

    /// How many columns were deflated.
    pub fn free_columns(&self) -> usize {
        self.free.len()
    }

    /// b ← A⁻¹ b
    pub fn solve(&self, b: &mut [f64]) {
        if self.free.is_empty() {
            let m = faer::MatMut::from_column_major_slice_mut(b, b.len(), 1);
            self.lu.solve_in_place_with_conj(Conj::No, m);
            return;
        }
        let mut xs = Mat::from_fn(self.coupled.len(), 1, |r, _| b[self.coupled[r]]);
        self.lu.solve_in_place_with_conj(Conj::No, xs.as_mut());
        let corr = &self.a_fs * &xs;
        for (r, &i) in self.free.iter().enumerate() {
            b[i] -= corr[(r, 0)];
        }
        for (r, &i) in self.coupled.iter().enumerate() {
            b[i] = xs[(r, 0)];
        }
    }

    /// b ← A⁻ᵀ b. With the blocks [[A_SSᵀ, A_FSᵀ], [0, I]]: x_F = b_F and
    /// A_SSᵀ x_S = b_S − A_FSᵀ b_F.
    pub fn solve_transpose(&self, b: &mut [f64]) {
        if self.free.is_empty() {
            let m = faer::MatMut::from_column_major_slice_mut(b, b.len(), 1);
            self.lu.solve_transpose_in_place_with_conj(Conj::No, m);
            return;
        }
        let bf = Mat::from_fn(self.free.len(), 1, |r, _| b[self.free[r]]);
        let corr = self.a_fs.transpose() * &bf;
        let mut xs = Mat::from_fn(self.coupled.len(), 1, |r, _| {
            b[self.coupled[r]] - corr[(r, 0)]
        });
        self.lu
            .solve_transpose_in_place_with_conj(Conj::No, xs.as_mut());
        for (r, &i) in self.coupled.iter().enumerate() {
            b[i] = xs[(r, 0)];
        }
    }
}

impl<JM> BlockedLu<JM> {
    fn factors(&self) -> Result<&Factors, LaError> {
        match &self.lu {
            None => Err(LaError::Other(
                "linear solve before factorization".to_string(),
            )),
            Some(Err(why)) => Err(LaError::Other(why.clone())),
            Some(Ok(f)) => Ok(f),
        }
    }
}

impl<JM: JacobianMatrix> diffsol_la::LinearSolver<JM> for BlockedLu<JM> {
    fn set_linearisation<C: LaLinearOp<T = f64, V = V, M = JM, C = FaerContext>>(
        &mut self,
        op: &C,
    ) {
        let matrix = self
            .matrix
            .as_mut()
            .expect("set_sparsity is called before set_linearisation");
        op.matrix_inplace(matrix);
        let structure = self.low_rank.as_ref().and_then(|h| h.borrow().clone());
        self.lu = Some(match structure {
            Some(Structure::Sparse(slr)) => match matrix.as_sparse() {
                Some(a) => {
                    SparseWoodbury::new(a, &slr).map(|f| match f {
                        Ok(w) => Factors::SparseWoodbury(Box::new(w)),
                        // An ill-conditioned capacitance: the dense LU of the assembled matrix.
                        Err(dense) => Factors::Dense(DeflatedLu::new(dense.as_ref())),
                    })
                }
                None => {
                    Err("internal error: a sparse-plus-low-rank Jacobian in dense storage".into())
                }
            },
            Some(Structure::Blocks(lr)) => matrix.diagonal_blocks(lr.block).and_then(|blocks| {
                match Woodbury::from_blocks(&blocks, &lr)? {
                    Some(w) => Ok(Factors::Woodbury(w)),
                    // Ill-conditioned blocks: the dense matrix, assembled from the structure.
                    None => Woodbury::dense_from_blocks(&blocks, &lr)
                        .map(|m| Factors::Dense(DeflatedLu::new(m.as_ref()))),
                }
            }),
            None => match (matrix.as_dense(), matrix.as_sparse()) {
                (Some(a), _) => Ok(Factors::Dense(DeflatedLu::new(a))),
                (None, Some(a)) => a
                    .sp_lu()
                    .map(|lu| Factors::Sparse(Box::new(lu)))
                    .map_err(|e| format!("sparse LU of the Newton matrix failed: {e:?}")),
                (None, None) => {
                    Err("internal error: a sparse Newton matrix without its structure".into())
                }
            },
        });
    }

    fn set_sparsity<C: LaLinearOp<T = f64, V = V, M = JM, C = FaerContext>>(&mut self, op: &C) {
        self.matrix = Some(JM::new_from_sparsity(
            op.nrows(),
            op.ncols(),
            op.sparsity(),
            *op.context(),
        ));
    }

    fn solve_in_place(&self, b: &mut V) -> Result<(), LaError> {
        match self.factors()? {
            Factors::Dense(lu) => lu.solve(slice_mut(b)),
            Factors::Woodbury(w) => w.solve(slice_mut(b)),
            Factors::Sparse(lu) => {
                let b = slice_mut(b);
                let n = b.len();
                lu.solve_in_place_with_conj(
                    Conj::No,
                    faer::MatMut::from_column_major_slice_mut(b, n, 1),
                );
            }
            Factors::SparseWoodbury(w) => w.solve(slice_mut(b)),
        }
        Ok(())
    }

    fn solve_transpose_in_place(&self, b: &mut V) -> Result<(), LaError> {
        match self.factors()? {
            Factors::Dense(lu) => lu.solve_transpose(slice_mut(b)),
            Factors::Woodbury(w) => w.solve_transpose(slice_mut(b)),
            Factors::Sparse(lu) => {
                let b = slice_mut(b);
                let n = b.len();
                lu.solve_transpose_in_place_with_conj(
                    Conj::No,
                    faer::MatMut::from_column_major_slice_mut(b, n, 1),
                );
            }
            Factors::SparseWoodbury(w) => w.solve_transpose(slice_mut(b)),
        }
        Ok(())
    }
}

/// Integrates dy/dt = F(y) from y0 at t = 0, calling `observe` at each of `times` (ascending,
/// starting at 0).
pub fn run(
    field: &dyn VectorField,
    y0: &[f64],
    method: Method,
    rtol: f64,
    atol: f64,
    times: &[f64],
    observe: &mut Observer<'_>,
) -> Outcome {
    run_from(field, y0, None, method, rtol, atol, times, observe)
}

/// As `run`, from y0 at `resume_at` (a resumed run's last save, with the same solver
/// settings): observes only the times after it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_from(
    field: &dyn VectorField,
    y0: &[f64],
    resume_at: Option<f64>,
    method: Method,
    rtol: f64,
    atol: f64,
    times: &[f64],
    observe: &mut Observer<'_>,
) -> Outcome {
    let start = Instant::now();
    let implicit = !matches!(method, Method::Tsit45);
    // Sparse storage for a field with a sparse pattern or a block-diagonal-plus-low-rank form.
    let sparse = implicit
        && (field.sparsity().is_some()
            || field
                .low_rank_block()
                .is_some_and(|b| blocks_fit(field.len(), b)));
    let mut out = if sparse {
        solve::<Sparse>(field, y0, resume_at, method, rtol, atol, times, observe)
    } else {
        solve::<Dense>(field, y0, resume_at, method, rtol, atol, times, observe)
    };
    out.stats.wall_seconds = start.elapsed().as_secs_f64();
    out
}

#[allow(clippy::too_many_arguments)]
fn solve<JM: JacobianMatrix>(
    field: &dyn VectorField,
    y0: &[f64],
    resume_at: Option<f64>,
    method: Method,
    rtol: f64,
    atol: f64,
    times: &[f64],
    observe: &mut Observer<'_>,
) -> Outcome
where
    for<'b> &'b JM: diffsol_la::MatrixRef<JM>,
    for<'b> &'b V: diffsol_la::VectorRef<V>,
{
    let eqn = FieldEquations::<JM>::new(field, y0);
    let times: Vec<f64> = times
        .iter()
        .copied()
        .filter(|&t| resume_at.is_none_or(|r| t > r))
        .collect();
    let t0 = resume_at.unwrap_or(0.0);
    let times = &times[..];
    let mut problem = match OdeBuilder::<JM>::new()
        .t0(t0)
        .rtol(rtol)
        .atol(vec![atol; field.len()])
        .build_from_eqn(eqn)
    {
        Ok(p) => p,
        Err(e) => return setup_failed(e),
    };
    // diffsol counts Newton failures over the solver's whole life, not per step; a relu flow
    // fails Newton at many kink crossings and would hit the default limit of 50 in normal
    // operation. A solver that is truly stuck still stops at the minimum step size.
    problem.ode_options.max_nonlinear_solver_failures = usize::MAX / 2;
    // The linear solvers share the equations' handle for structured Jacobians.
    let solver = || BlockedLu::structured(problem.eqn.low_rank.clone());
    let sdirk = |tableau: Tableau<f64>| {
        let state = problem.rk_state_and_consistent::<BlockedLu<JM>>(&tableau)?;
        Sdirk::<_, _, Dense>::new(&problem, state, tableau, solver())
    };
    let mut out = match method {
        Method::Bdf => match problem
            .bdf_state::<BlockedLu<JM>>()
            .and_then(|state| Bdf::<_, _, Dense>::new(&problem, state, solver()))
        {
            Ok(s) => drive(s, times, observe),
            Err(e) => setup_failed(e),
        },
        Method::Esdirk34 => match sdirk(Tableau::esdirk34()) {
            Ok(s) => drive(s, times, observe),
            Err(e) => setup_failed(e),
        },
        Method::TrBdf2 => match sdirk(Tableau::tr_bdf2()) {
            Ok(s) => drive(s, times, observe),
            Err(e) => setup_failed(e),
        },
        Method::Tsit45 => match problem.tsit45() {
            Ok(s) => drive(s, times, observe),
            Err(e) => setup_failed(e),
        },
    };
    out.stats.rhs_evals = problem.eqn.rhs_evals.get();
    out.stats.jacobian_evals = problem.eqn.jacobian_evals.get();
    out
}

fn setup_failed(e: DiffsolError) -> Outcome {
    Outcome {
        stats: SolverStats::default(),
        stopped: Some(Stopped {
            t: 0.0,
            reason: format!("solver setup: {e}"),
            source: None,
        }),
    }
}

/// (error-test failures, Newton failures, LU factorizations, Jacobian evaluations) so far.
fn events_state<'a, JM: JacobianMatrix + 'a, S: OdeSolverMethod<'a, FieldEquations<'a, JM>>>(
    s: &S,
) -> [usize; 4]
where
    FieldEquations<'a, JM>: 'a,
{
    let st = s.get_statistics();
    [
        st.number_of_error_test_failures,
        st.number_of_nonlinear_solver_fails,
        st.number_of_linear_solver_setups,
        s.problem().eqn.jacobian_evals.get(),
    ]
}

/// Logs what one accepted step cost beyond itself: the attempts it rejected and the matrix work.
fn log_step_events<'a, JM: JacobianMatrix + 'a, S: OdeSolverMethod<'a, FieldEquations<'a, JM>>>(
    s: &S,
    before: [usize; 4],
) where
    FieldEquations<'a, JM>: 'a,
{
    let now = events_state(s);
    let names = [
        "step rejected by the error test",
        "Newton iteration failed, step retried smaller",
        "LU factorization",
        "Jacobian update",
    ];
    let st = s.state();
    for (i, name) in names.iter().enumerate() {
        let n = now[i].saturating_sub(before[i]);
        if n > 0 {
            let times = if n > 1 {
                format!(" ×{n}")
            } else {
                String::new()
            };
            super::log_event(&format!(
                "t = {:.6e}  h = {:.3e}  {name}{times}",
                st.t, st.h
            ));
        }
    }
}

fn stats_of<'a, JM: JacobianMatrix + 'a, S: OdeSolverMethod<'a, FieldEquations<'a, JM>>>(
    s: &S,
) -> SolverStats
where
    FieldEquations<'a, JM>: 'a,
{
    let st = s.get_statistics();
    SolverStats {
        steps: st.number_of_steps,
        lu_factorizations: st.number_of_linear_solver_setups,
        rejected_steps: st.number_of_error_test_failures + st.number_of_nonlinear_solver_fails,
        ..Default::default()
    }
}

fn drive<'a, JM: JacobianMatrix + 'a, S: OdeSolverMethod<'a, FieldEquations<'a, JM>>>(
    mut solver: S,
    times: &[f64],
    observe: &mut Observer<'_>,
) -> Outcome
where
    FieldEquations<'a, JM>: 'a,
{
    let stopped = |solver: &S, reason: String, source| Outcome {
        stats: stats_of(solver),
        stopped: Some(Stopped {
            t: solver.state().t,
            reason,
            source,
        }),
    };
    // Save times in between are read off the solver's interpolant, not hit by shortened steps:
    // stopping at every save costs steps, and a step that lands within the minimum step size of
    // a stop time makes BDF fail ("step size is too small"). Only the last time is stopped at,
    // so the field is never evaluated past it.
    let Some(&t_last) = times.last() else {
        return Outcome {
            stats: stats_of(&solver),
            stopped: None,
        };
    };
    if t_last > solver.state().t {
        if let Err(e) = solver.set_stop_time(t_last) {
            return stopped(&solver, e.to_string(), None);
        }
    }
    let mut at_end = t_last <= solver.state().t;
    // The implicit solvers' first Jacobian and LU come with their construction; they are logged
    // before the first step (after the first save, which names the run).
    let mut initial_logged = !super::logging_events();
    for &t in times {
        while !at_end && solver.state().t < t {
            if super::stop_requested() {
                return stopped(&solver, super::INTERRUPTED.into(), None);
            }
            if !initial_logged {
                log_step_events(&solver, [0; 4]);
                initial_logged = true;
            }
            let before = super::logging_events().then(|| events_state(&solver));
            match solver.step() {
                Ok(OdeSolverStopReason::TstopReached) => at_end = true,
                Ok(_) => {}
                Err(e) => return stopped(&solver, format!("solver failed: {e}"), None),
            }
            if let Some(before) = before {
                log_step_events(&solver, before);
            }
            if !all_finite(slice(solver.state().y)) {
                return stopped(&solver, "the state became non-finite".to_string(), None);
            }
        }
        let y = if t == solver.state().t || (at_end && t == t_last) {
            slice(solver.state().y).to_vec()
        } else {
            match solver.interpolate(t) {
                Ok(v) => slice(&v).to_vec(),
                Err(e) => return stopped(&solver, format!("interpolation at t = {t}: {e}"), None),
            }
        };
        if let Err(e) = observe(t, &y) {
            return stopped(&solver, e.to_string(), Some(e));
        }
    }
    Outcome {
        stats: stats_of(&solver),
        stopped: None,
    }
}

/// Dense Jacobian of a field by central differences: for tests of `VectorField::jacobian`.
pub fn fd_jacobian(field: &dyn VectorField, y: &[f64], h: f64) -> Mat<f64> {
    let n = field.len();
    let mut jac = Mat::zeros(n, n);
    let (mut yp, mut fp, mut fm) = (y.to_vec(), vec![0.0; n], vec![0.0; n]);
    for k in 0..n {
        yp[k] = y[k] + h;
        field.eval(&yp, &mut fp);
        yp[k] = y[k] - h;
        field.eval(&yp, &mut fm);
        yp[k] = y[k];
        for i in 0..n {
            jac[(i, k)] = (fp[i] - fm[i]) / (2.0 * h);
        }
    }
    jac
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both storages hold the same block diagonal and read back the same blocks; the sparse one
    /// keeps nothing outside its blocks.
    #[test]
    fn block_storages_agree() {
        let (b, n) = (3, 12);
        let blocks: Vec<f64> = (0..n * b).map(|k| (k as f64 * 0.7).sin()).collect();
        let sym = Sparse::block_sparsity(n, b).unwrap();
        assert_eq!(sym.compute_nnz(), n * b);
        let mut sparse = Sparse::new_from_sparsity(n, n, Some(sym), FaerContext::default());
        sparse.set_block_diagonal(b, &blocks);
        let mut dense = Dense::zeros(n, n, FaerContext::default());
        dense.set_block_diagonal(b, &blocks);
        assert_eq!(sparse.diagonal_blocks(b).unwrap(), blocks);
        assert_eq!(dense.diagonal_blocks(b).unwrap(), blocks);
        // The dense form has the blocks in place and zeros elsewhere.
        let a = dense.as_dense().unwrap();
        assert_eq!(a[(4, 5)], blocks[b * b + b + 2]);
        assert_eq!(a[(2, 3)], 0.0);
        assert!(sparse.as_dense().is_none());
        assert!(Sparse::block_sparsity(10, 3).is_none());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Bdf,
    Esdirk34,
    TrBdf2,
    Tsit45,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Bdf => "bdf",
            Method::Esdirk34 => "esdirk34",
            Method::TrBdf2 => "tr_bdf2",
            Method::Tsit45 => "tsit45",
        }
    }
}
