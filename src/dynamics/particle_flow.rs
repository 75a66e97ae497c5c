//! The particle gradient flow of the two-layer network on the empirical risk, in mean-field time:
//! dθ_j/dt = (1/α) E_x[(y − f(x; θ)) ∇_θ σ*(x; θ_j)] (design.md §1).

use crate::dynamics::VectorField;
use crate::linalg::LowRankJacobian;
use crate::model::{Batch, TwoLayer, Workspace};
use faer::{Mat, MatMut};
use std::cell::RefCell;

pub struct ParticleFlow<'a> {
    pub model: &'a TwoLayer,
    pub x: &'a Mat<f64>,
    pub y: &'a [f64],
    /// f(θ₀) on the same inputs when the model output is centred by subtraction.
    pub f0: Option<&'a [f64]>,
    ws: RefCell<Workspace>,
}

impl<'a> ParticleFlow<'a> {
    pub fn new(model: &'a TwoLayer, x: &'a Mat<f64>, y: &'a [f64], f0: Option<&'a [f64]>) -> Self {
        ParticleFlow {
            model,
            x,
            y,
            f0,
            ws: RefCell::new(Workspace::default()),
        }
    }

    fn batch(&self) -> Batch<'_> {
        Batch {
            x: self.x.as_ref(),
            y: self.y,
            f0: self.f0,
        }
    }
}

impl VectorField for ParticleFlow<'_> {
    fn len(&self) -> usize {
        self.model.n_params()
    }
    fn eval(&self, y: &[f64], out: &mut [f64]) {
        let mut ws = self.ws.borrow_mut();
        self.model.velocity(y, &self.batch(), &mut ws, out);
    }
    fn jac_mul(&self, y: &[f64], v: &[f64], out: &mut [f64]) {
        let mut ws = self.ws.borrow_mut();
        self.model.jac_mul(y, &self.batch(), v, &mut ws, out);
    }
    fn jacobian(&self, y: &[f64], out: MatMut<'_, f64>) {
        let mut ws = self.ws.borrow_mut();
        self.model.jacobian(y, &self.batch(), &mut ws, out);
    }
    fn jacobian_low_rank(&self, y: &[f64]) -> Option<LowRankJacobian> {
        let mut ws = self.ws.borrow_mut();
        Some(self.model.jacobian_low_rank(y, &self.batch(), &mut ws))
    }
    fn low_rank_block(&self) -> Option<usize> {
        Some(self.model.dim())
    }
    fn euler_step(&self, y: &mut [f64], h: f64, _scratch: &mut Vec<f64>) {
        let mut ws = self.ws.borrow_mut();
        self.model.velocity_step(y, &self.batch(), &mut ws, h);
    }
}
