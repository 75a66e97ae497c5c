//! Classification scores on labelled data (`[data] source = "hdf5"`): the network's accuracy, the
//! sign of f against the ±1 targets, and the accuracy of ridgeless kernel regression with a
//! tangent kernel, f̂(x) = K(x, X) K(X, X)⁺ Y (Arora et al.; the survey seed's table of Geiger et
//! al. scores the kernel at initialization, "lazy", and after training, "feature"). Kernel
//! regression predicts both the ±1 target and every class: one-hot targets, argmax.

use crate::data::Classes;
use crate::linalg::matmul;
use faer::{Accum, Mat, Par};

/// The fraction of samples where f has the sign of the ±1 target y (f = 0 counts as wrong).
pub(crate) fn sign_accuracy(f: &[f64], y: &[f64]) -> f64 {
    if y.is_empty() {
        return f64::NAN;
    }
    let right = f.iter().zip(y).filter(|(f, y)| **f * **y > 0.0).count();
    right as f64 / y.len() as f64
}

/// Test accuracies of kernel regression.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KernelScores {
    /// sign(f̂) against the ±1 targets.
    pub binary: f64,
    /// argmax over the classes of f̂ fitted to one-hot targets.
    pub classes: f64,
}

/// Kernel regression from the Gram matrix `k_train` = K(X, X) and `k_cross` = K(X_test, X), with
/// the pseudo-inverse of K(X, X) (round-off eigenvalues, `linalg::NULL_EIGENVALUE`, are dropped: a
/// rank-deficient kernel of a narrow network still gives the minimum-norm interpolant).
pub(crate) fn kernel_regression(
    k_train: &Mat<f64>,
    k_cross: &Mat<f64>,
    y_train: &[f64],
    y_test: &[f64],
    classes: &Classes,
) -> Result<KernelScores, String> {
    let n = y_train.len();
    let k = classes.values.len();
    // Targets: the ±1 column, then one-hot columns.
    let targets = Mat::from_fn(n, 1 + k, |i, c| match c {
        0 => y_train[i],
        c => f64::from(u8::from(classes.train[i] == c - 1)),
    });
    let (s, u) = crate::linalg::eigh(k_train.as_ref(), true)
        .map_err(|e| format!("eigendecomposition of the kernel failed: {e}"))?;
    let u = u.expect("vectors were asked for");
    let s = crate::linalg::psd_eigenvalues(&s);
    let mut proj = u.transpose() * &targets;
    for i in 0..n {
        let inv = if s[i] > 0.0 { 1.0 / s[i] } else { 0.0 };
        for c in 0..=k {
            proj[(i, c)] *= inv;
        }
    }
    let coef = &u * &proj;
    let mut pred = Mat::zeros(k_cross.nrows(), 1 + k);
    matmul(
        pred.as_mut(),
        Accum::Replace,
        k_cross.as_ref(),
        coef.as_ref(),
        1.0,
        Par::Seq,
    );
    let binary: Vec<f64> = (0..pred.nrows()).map(|i| pred[(i, 0)]).collect();
    let right = (0..pred.nrows())
        .filter(|&i| {
            let best = (0..k)
                .max_by(|&a, &b| pred[(i, 1 + a)].total_cmp(&pred[(i, 1 + b)]))
                .unwrap_or(0);
            best == classes.test[i]
        })
        .count();
    Ok(KernelScores {
        binary: sign_accuracy(&binary, y_test),
        classes: if y_test.is_empty() {
            f64::NAN
        } else {
            right as f64 / y_test.len() as f64
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_its_training_set() {
        // A Gaussian kernel on distinct points is positive definite: regression on the training
        // points returns the targets, so both accuracies are 1.
        let x: Vec<f64> = (0..12).map(|i| i as f64 * 0.7).collect();
        let kern = |a: f64, b: f64| (-(a - b) * (a - b)).exp();
        let kt = Mat::from_fn(12, 12, |i, j| kern(x[i], x[j]));
        let classes = Classes {
            values: vec![0, 1, 2],
            train: (0..12).map(|i| i % 3).collect(),
            test: (0..12).map(|i| i % 3).collect(),
        };
        let y: Vec<f64> = (0..12)
            .map(|i| if i % 3 == 1 { 1.0 } else { -1.0 })
            .collect();
        let s = kernel_regression(&kt, &kt, &y, &y, &classes).unwrap();
        assert_eq!(s.binary, 1.0);
        assert_eq!(s.classes, 1.0);
        // Swapped targets are predicted as swapped: accuracy 0.
        let wrong: Vec<f64> = y.iter().map(|v| -v).collect();
        let s = kernel_regression(&kt, &kt, &y, &wrong, &classes).unwrap();
        assert_eq!(s.binary, 0.0);
    }

    #[test]
    fn sign_accuracy_counts_zero_as_wrong() {
        assert_eq!(
            sign_accuracy(&[1.0, -2.0, 0.0, 3.0], &[1.0, 1.0, 1.0, 1.0]),
            0.5
        );
    }
}
