//! Distances and summary statistics between states, kernels and runs.

pub mod assignment;
pub mod classify;
pub mod fit;
pub mod wasserstein;

use faer::Mat;

fn frobenius(m: &Mat<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            s += m[(i, j)] * m[(i, j)];
        }
    }
    s.sqrt()
}

/// ‖K − K₀‖_F / ‖K₀‖_F: how far the tangent kernel has moved from its initial value.
pub fn kernel_distance(k: &Mat<f64>, k0: &Mat<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..k.ncols() {
        for i in 0..k.nrows() {
            let d = k[(i, j)] - k0[(i, j)];
            s += d * d;
        }
    }
    s.sqrt() / frobenius(k0)
}

/// Kernel–target alignment yᵀKy / (‖K‖_F ‖y‖²) (Cristianini et al.), in [−1, 1] for symmetric
/// K; 1 when K is a positive multiple of yyᵀ.
pub(crate) fn kernel_alignment(k: &Mat<f64>, y: &[f64]) -> f64 {
    let n = y.len();
    let mut yky = 0.0;
    for j in 0..n {
        for i in 0..n {
            yky += y[i] * k[(i, j)] * y[j];
        }
    }
    let yy: f64 = y.iter().map(|v| v * v).sum();
    yky / (frobenius(k) * yy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_of_the_target_outer_product_is_one() {
        let y = [0.3, -1.2, 0.7];
        let k = Mat::from_fn(3, 3, |i, j| 2.5 * y[i] * y[j]);
        assert!((kernel_alignment(&k, &y) - 1.0).abs() < 1e-14);
        let neg = Mat::from_fn(3, 3, |i, j| -k[(i, j)]);
        assert!((kernel_alignment(&neg, &y) + 1.0).abs() < 1e-14);
    }

    #[test]
    fn kernel_distance_is_relative_frobenius() {
        let k0 = Mat::from_fn(2, 2, |i, j| if i == j { 3.0 } else { 4.0 });
        let k = Mat::from_fn(2, 2, |i, j| k0[(i, j)] * 1.5);
        assert!((kernel_distance(&k, &k0) - 0.5).abs() < 1e-15);
        assert_eq!(kernel_distance(&k0, &k0), 0.0);
    }
}
