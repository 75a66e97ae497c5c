//! Vector fields of diagonal linear networks (model::diagonal): the gradient flow on the weights
//! (u, v) in raw time, and the mirror flow on the dual variable q in accelerated time.

use crate::dynamics::VectorField;
use crate::model::diagonal::Diagonal;
use faer::{ColRef, MatMut};

/// ẇ = −∇_w L(β(w)) for w = (u, v): u̇ = −(∂β/∂u) ⊙ g, v̇ = −(∂β/∂v) ⊙ g, g = ∇L(β).
pub struct WeightFlow<'a> {
    pub net: &'a Diagonal,
}

/// dq/dτ = −∇L(β(q)).
pub struct MirrorFlow<'a> {
    pub net: &'a Diagonal,
}

/// Xᵀ(X z)/n: the Gram matrix applied to z without forming it.
fn gram_mul(net: &Diagonal, z: &[f64]) -> Vec<f64> {
    let xz = &net.x * ColRef::from_slice(z);
    let g = net.x.transpose() * &xz;
    let n = net.n() as f64;
    g.iter().map(|v| v / n).collect()
}

impl VectorField for WeightFlow<'_> {
    fn len(&self) -> usize {
        2 * self.net.d()
    }
    fn eval(&self, w: &[f64], out: &mut [f64]) {
        let d = self.net.d();
        let (_, g) = self.net.loss_grad(&self.net.beta_of_state(w));
        let (bu, bv, _) = self.net.state_derivatives(w);
        for i in 0..d {
            out[i] = -bu[i] * g[i];
            out[d + i] = -bv[i] * g[i];
        }
    }
    fn jac_mul(&self, w: &[f64], v: &[f64], out: &mut [f64]) {
        // J v = −B G (Bᵀ v) − H(g) v, with B = [diag ∂β/∂u; diag ∂β/∂v].
        let d = self.net.d();
        let (_, g) = self.net.loss_grad(&self.net.beta_of_state(w));
        let (bu, bv, [huu, huv, hvv]) = self.net.state_derivatives(w);
        let z: Vec<f64> = (0..d).map(|i| bu[i] * v[i] + bv[i] * v[d + i]).collect();
        let gz = gram_mul(self.net, &z);
        for i in 0..d {
            out[i] = -bu[i] * gz[i] - g[i] * (huu * v[i] + huv * v[d + i]);
            out[d + i] = -bv[i] * gz[i] - g[i] * (huv * v[i] + hvv * v[d + i]);
        }
    }
    fn jacobian(&self, w: &[f64], mut out: MatMut<'_, f64>) {
        let d = self.net.d();
        let (_, g) = self.net.loss_grad(&self.net.beta_of_state(w));
        let (bu, bv, [huu, huv, hvv]) = self.net.state_derivatives(w);
        let gram = self.net.gram();
        for j in 0..d {
            for i in 0..d {
                let gij = gram[(i, j)];
                out[(i, j)] = -bu[i] * gij * bu[j];
                out[(i, d + j)] = -bu[i] * gij * bv[j];
                out[(d + i, j)] = -bv[i] * gij * bu[j];
                out[(d + i, d + j)] = -bv[i] * gij * bv[j];
            }
        }
        for i in 0..d {
            out[(i, i)] -= huu * g[i];
            out[(i, d + i)] -= huv * g[i];
            out[(d + i, i)] -= huv * g[i];
            out[(d + i, d + i)] -= hvv * g[i];
        }
    }
}

impl VectorField for MirrorFlow<'_> {
    fn len(&self) -> usize {
        self.net.d()
    }
    fn eval(&self, q: &[f64], out: &mut [f64]) {
        let (_, g) = self.net.loss_grad(&self.net.beta_of_q(q));
        for (o, gi) in out.iter_mut().zip(g) {
            *o = -gi;
        }
    }
    fn jac_mul(&self, q: &[f64], v: &[f64], out: &mut [f64]) {
        let db = self.net.dbeta_dq(q);
        let z: Vec<f64> = db.iter().zip(v).map(|(a, b)| a * b).collect();
        for (o, gi) in out.iter_mut().zip(gram_mul(self.net, &z)) {
            *o = -gi;
        }
    }
    fn jacobian(&self, q: &[f64], mut out: MatMut<'_, f64>) {
        // J = −G diag(dβ/dq)
        let db = self.net.dbeta_dq(q);
        let gram = self.net.gram();
        let d = self.net.d();
        for j in 0..d {
            for i in 0..d {
                out[(i, j)] = -gram[(i, j)] * db[j];
            }
        }
    }
}
