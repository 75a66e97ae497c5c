//! The linearized (tangent) model around θ₀, trained by the same mean-field-time gradient flow:
//!   f_lin(x; θ) = f(x; θ₀) + (α/N) ∇_θ f₁(x; θ₀)·(θ − θ₀),  with Φ₀ the tangent features,
//!   dθ/dt = (1/(αn)) Φ₀ᵀ r(y, f_lin),   J = −(1/(nN)) Φ₀ᵀ diag(c) Φ₀,
//! with r = −½ ∂ℓ/∂f and c = ½ ∂²ℓ/∂f² of the model's loss (r = y − f and a constant J for the
//! square loss). Its outputs obey ∂_t f = (1/n) K₀ r(y, f) exactly: the frozen-kernel dynamics.

use crate::dynamics::VectorField;
use crate::linalg::matmul;
use crate::model::loss::Loss;
use crate::model::Params;
use crate::model::{TwoLayer, Workspace};
use faer::{Accum, Mat, MatMut};
use std::sync::Arc;

pub struct LinearizedFlow {
    phi0: Mat<f64>,
    theta0: Vec<f64>,
    /// y − f(θ₀) on the training set (f(θ₀) centred away when the model subtracts it).
    u0: Vec<f64>,
    /// y and f(θ₀) (as `u0`), and the loss when it is not the square loss: r and c then come
    /// from it. The square loss keeps u0 − Δf, its arrays as they were before losses.
    y: Vec<f64>,
    f0: Vec<f64>,
    loss: Option<Arc<dyn Loss>>,
    /// α/N
    out_scale: f64,
    /// 1/(αn)
    field_scale: f64,
}

impl LinearizedFlow {
    /// `f0` is the model output at θ₀ on x, as the runs report it (0 when centred); only the
    /// parameters `params` trains move (the others' feature columns are zero).
    pub fn new(
        model: &TwoLayer,
        theta0: &[f64],
        x: &Mat<f64>,
        y: &[f64],
        f0: &[f64],
        params: Params,
    ) -> Self {
        let mut ws = Workspace::default();
        model.forward(theta0, x.as_ref(), &mut ws, false);
        let mut phi0 = model.tangent_features(theta0, x.as_ref(), &ws);
        Self::restrict(&mut phi0, model.dim(), params);
        let n = x.nrows() as f64;
        LinearizedFlow {
            phi0,
            theta0: theta0.to_vec(),
            u0: y.iter().zip(f0).map(|(a, b)| a - b).collect(),
            y: y.to_vec(),
            f0: f0.to_vec(),
            loss: (!model.loss.unit_curvature()).then(|| model.loss.clone()),
            out_scale: model.output_scale(),
            field_scale: 1.0 / (model.alpha * n),
        }
    }

    /// Zeroes the feature columns of the parameters `params` does not train (particle layout
    /// (a, w…, b) of `dim` columns).
    pub(crate) fn restrict(phi: &mut Mat<f64>, dim: usize, params: Params) {
        let (out, hidden) = params.trains();
        for col in 0..phi.ncols() {
            let is_a = col % dim == 0;
            if (is_a && !out) || (!is_a && !hidden) {
                phi.col_mut(col).fill(0.0);
            }
        }
    }

    /// The linear model's output change (α/N) Φ (θ − θ₀) for features Φ on any inputs.
    pub(crate) fn delta_output(
        phi: &Mat<f64>,
        theta: &[f64],
        theta0: &[f64],
        out_scale: f64,
    ) -> Vec<f64> {
        let dth = Mat::from_fn(theta.len(), 1, |k, _| theta[k] - theta0[k]);
        let mut f = Mat::zeros(phi.nrows(), 1);
        matmul(
            f.as_mut(),
            Accum::Replace,
            phi.as_ref(),
            dth.as_ref(),
            out_scale,
            faer::Par::Seq,
        );
        (0..phi.nrows()).map(|i| f[(i, 0)]).collect()
    }

    /// The tangent features Φ₀ on the training inputs.
    pub fn features(&self) -> &Mat<f64> {
        &self.phi0
    }

    /// r(y, f_lin(θ)) on the training set.
    fn residual(&self, theta: &[f64]) -> Vec<f64> {
        let df = Self::delta_output(&self.phi0, theta, &self.theta0, self.out_scale);
        match &self.loss {
            None => self.u0.iter().zip(&df).map(|(u, d)| u - d).collect(),
            Some(loss) => (0..df.len())
                .map(|i| loss.residual(self.y[i], self.f0[i] + df[i], None))
                .collect(),
        }
    }

    /// c(y, f_lin(θ)) on the training set; None for the square loss (c ≡ 1).
    fn curvature(&self, theta: &[f64]) -> Option<Vec<f64>> {
        let loss = self.loss.as_ref()?;
        let df = Self::delta_output(&self.phi0, theta, &self.theta0, self.out_scale);
        Some(
            (0..df.len())
                .map(|i| loss.curvature(self.y[i], self.f0[i] + df[i], None))
                .collect(),
        )
    }

    fn pull_back(&self, r: &[f64], scale: f64, out: &mut [f64]) {
        let rm = Mat::from_fn(r.len(), 1, |i, _| r[i]);
        let mut o = Mat::zeros(out.len(), 1);
        matmul(
            o.as_mut(),
            Accum::Replace,
            self.phi0.transpose(),
            rm.as_ref(),
            scale,
            faer::Par::Seq,
        );
        for (k, v) in out.iter_mut().enumerate() {
            *v = o[(k, 0)];
        }
    }
}

impl VectorField for LinearizedFlow {
    fn len(&self) -> usize {
        self.theta0.len()
    }
    fn eval(&self, y: &[f64], out: &mut [f64]) {
        let r = self.residual(y);
        self.pull_back(&r, self.field_scale, out);
    }
    fn jac_mul(&self, y: &[f64], v: &[f64], out: &mut [f64]) {
        let mut dv = Self::delta_output(&self.phi0, v, &vec![0.0; v.len()], self.out_scale);
        if let Some(c) = self.curvature(y) {
            dv.iter_mut().zip(&c).for_each(|(d, c)| *d *= c);
        }
        self.pull_back(&dv, -self.field_scale, out);
    }
    fn jacobian(&self, y: &[f64], out: MatMut<'_, f64>) {
        let scale = -self.field_scale * self.out_scale;
        match self.curvature(y) {
            None => matmul(
                out,
                Accum::Replace,
                self.phi0.transpose(),
                self.phi0.as_ref(),
                scale,
                faer::Par::Seq,
            ),
            Some(c) => {
                let weighted = Mat::from_fn(self.phi0.nrows(), self.phi0.ncols(), |i, k| {
                    c[i] * self.phi0[(i, k)]
                });
                matmul(
                    out,
                    Accum::Replace,
                    self.phi0.transpose(),
                    weighted.as_ref(),
                    scale,
                    faer::Par::Seq,
                );
            }
        }
    }
}
