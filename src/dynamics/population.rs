//! The particle gradient flow on the population risk (closed forms in `limits::population`):
//! the same mean-field-time field as `ParticleFlow`, with E_x exact instead of a sample mean.

use crate::dynamics::{jacobian_by_columns, VectorField};
use crate::limits::population::PopulationRisk;
use faer::MatMut;

pub struct PopulationFlow<'a> {
    pub risk: &'a PopulationRisk,
}

impl VectorField for PopulationFlow<'_> {
    fn len(&self) -> usize {
        self.risk.n_particles * (1 + self.risk.d)
    }
    fn eval(&self, y: &[f64], out: &mut [f64]) {
        self.risk.velocity(y, out);
    }
    /// J·v by a central difference of the field: the closed forms have no second derivatives
    /// here. Only Newton iterations of the implicit solvers use it, where an O(h²) error slows
    /// convergence a little and does not move the solution.
    fn jac_mul(&self, y: &[f64], v: &[f64], out: &mut [f64]) {
        let norm_v = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm_v == 0.0 {
            out.fill(0.0);
            return;
        }
        let norm_y = y.iter().map(|x| x * x).sum::<f64>().sqrt();
        let h = f64::EPSILON.cbrt() * (1.0 + norm_y) / norm_v;
        let shifted =
            |sign: f64| -> Vec<f64> { y.iter().zip(v).map(|(y, v)| y + sign * h * v).collect() };
        let mut minus = vec![0.0; y.len()];
        self.risk.velocity(&shifted(1.0), out);
        self.risk.velocity(&shifted(-1.0), &mut minus);
        for (o, m) in out.iter_mut().zip(&minus) {
            *o = (*o - m) / (2.0 * h);
        }
    }
    fn jacobian(&self, y: &[f64], out: MatMut<'_, f64>) {
        jacobian_by_columns(self, y, out);
    }
}
