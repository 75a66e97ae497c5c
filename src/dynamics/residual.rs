//! The residual dynamics (RD) of the survey seed, integrated as its own state beside the
//! particles: the state is (θ, u) with
//!   dθ/dt = v(θ)                       (the particle flow),
//!   du/dt = −(1/n) K_θ r(y, y − u),    K_θ the tangent kernel on the n training points,
//! r = −½ ℓ_f the loss's residual (r = u for the square loss, ∂_t f = −(1/n) K ℓ′/2 in general).
//! u is never recomputed from θ, so agreement of u with y − f(θ) is a real consistency check of
//! the kernel identity ∂_t u = −E[K_t u], not a tautology.

use crate::dynamics::ParticleFlow;
use crate::dynamics::VectorField;
use crate::model::Workspace;
use faer::MatMut;
use std::cell::RefCell;

pub struct ResidualFlow<'a> {
    flow: ParticleFlow<'a>,
    p: usize,
    ws: RefCell<Workspace>,
}

impl<'a> ResidualFlow<'a> {
    pub fn new(flow: ParticleFlow<'a>) -> Self {
        let p = flow.len();
        ResidualFlow {
            flow,
            p,
            ws: RefCell::new(Workspace::default()),
        }
    }

    /// Number of particle coordinates; the residual follows them in the state.
    pub fn n_params(&self) -> usize {
        self.p
    }
}

impl VectorField for ResidualFlow<'_> {
    fn len(&self) -> usize {
        self.p + self.flow.y.len()
    }
    fn eval(&self, y: &[f64], out: &mut [f64]) {
        let (theta, u) = y.split_at(self.p);
        let (dtheta, du) = out.split_at_mut(self.p);
        self.flow.eval(theta, dtheta);
        let k = self
            .flow
            .model
            .kernel(theta, self.flow.x.as_ref(), &mut self.ws.borrow_mut());
        let n = u.len();
        let loss = &self.flow.model.loss;
        let r: Vec<f64> = if loss.unit_curvature() {
            u.to_vec()
        } else {
            let y = self.flow.y;
            (0..n)
                .map(|l| loss.residual(y[l], y[l] - u[l], None))
                .collect()
        };
        for (i, dui) in du.iter_mut().enumerate() {
            *dui = -(0..n).map(|l| k[(i, l)] * r[l]).sum::<f64>() / n as f64;
        }
    }
    // The u-block's derivative in θ involves second derivatives of the features; the residual
    // dynamics is integrated with the explicit method only (the problem validator says so).
    fn jac_mul(&self, _y: &[f64], _v: &[f64], out: &mut [f64]) {
        out.fill(f64::NAN);
    }
    fn jacobian(&self, _y: &[f64], mut out: MatMut<'_, f64>) {
        out.fill(f64::NAN);
    }
}
