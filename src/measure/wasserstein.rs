//! Wasserstein-2 distances between empirical measures (particle clouds, one point per row).
//!
//! - `w2_exact`: equal-size clouds with uniform weights. The optimal coupling of two uniform
//!   measures on n points is a permutation (Birkhoff), so W2² is the optimal assignment's mean
//!   squared distance, solved exactly by `crate::measure::assignment` (auction prices, then shortest
//!   augmenting paths with potentials), the cost matrix in one GEMM.
//! - `w2_sliced`: the sliced distance (E_θ W2²(θᵀX, θᵀY))^{1/2} over random unit directions θ,
//!   exact per direction by sorting, for any sizes. It is a lower bound: SW2 ≤ W2/√D.

use crate::error::{Error, Result};
use crate::linalg::matmul;
pub use crate::measure::assignment::{assignment, assignment_dense, Assignment};
use faer::{Accum, Mat, MatRef, Par};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Squared Euclidean distances ‖x_i − y_j‖², with the cross term as one GEMM.
pub fn sq_distances(x: MatRef<'_, f64>, y: MatRef<'_, f64>, par: Par) -> Mat<f64> {
    let norm = |m: MatRef<'_, f64>, i: usize| (0..m.ncols()).map(|k| m[(i, k)].powi(2)).sum();
    let nx: Vec<f64> = (0..x.nrows()).map(|i| norm(x, i)).collect();
    let ny: Vec<f64> = (0..y.nrows()).map(|j| norm(y, j)).collect();
    let mut c = Mat::from_fn(x.nrows(), y.nrows(), |i, j| nx[i] + ny[j]);
    matmul(c.as_mut(), Accum::Add, x, y.transpose(), -2.0, par);
    // Round-off can make a zero distance slightly negative.
    for j in 0..c.ncols() {
        for i in 0..c.nrows() {
            c[(i, j)] = c[(i, j)].max(0.0);
        }
    }
    c
}

fn check_clouds(x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Result<()> {
    if x.ncols() != y.ncols() {
        return Err(Error::Usage(format!(
            "W2 needs clouds in the same dimension, got {} and {}",
            x.ncols(),
            y.ncols()
        )));
    }
    if x.nrows() == 0 || y.nrows() == 0 {
        return Err(Error::Usage("W2 of an empty cloud".into()));
    }
    Ok(())
}

/// Exact W2 between two clouds of the same size with uniform weights.
pub fn w2_exact(x: MatRef<'_, f64>, y: MatRef<'_, f64>, par: Par) -> Result<f64> {
    check_clouds(x, y)?;
    if x.nrows() != y.nrows() {
        return Err(Error::Usage(format!(
            "exact W2 by assignment needs equal sizes, got {} and {} points (use the sliced W2)",
            x.nrows(),
            y.nrows()
        )));
    }
    let a = assignment(sq_distances(x, y, par).as_ref())?;
    Ok((a.cost / x.nrows() as f64).max(0.0).sqrt())
}

/// W2² between the uniform measures on two sets of reals, any sizes: the integral of the squared
/// difference of their quantile functions, exact for step quantile functions.
pub fn w2_sq_1d(mut a: Vec<f64>, mut b: Vec<f64>) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len(), b.len());
    let (mut i, mut j, mut at, mut sum) = (0, 0, 0.0f64, 0.0);
    // Merge the breakpoints k/n and l/m of the two quantile functions.
    while i < n && j < m {
        let next = ((i + 1) as f64 / n as f64).min((j + 1) as f64 / m as f64);
        sum += (next - at) * (a[i] - b[j]).powi(2);
        at = next;
        if (i + 1) as f64 / n as f64 <= next {
            i += 1;
        }
        if (j + 1) as f64 / m as f64 <= next {
            j += 1;
        }
    }
    sum
}

/// W2² between the uniform measure on `sample` and a density that is constant on each of the
/// cells [low + i·h, low + (i+1)·h) (normalized to mass 1; negative values count as 0): the
/// integral of the squared difference of the two quantile functions, exact, since one is a
/// step and the other piecewise linear.
pub fn w2_sq_1d_cells(mut sample: Vec<f64>, low: f64, h: f64, density: &[f64]) -> f64 {
    sample.sort_by(f64::total_cmp);
    let n = sample.len();
    let total: f64 = density.iter().map(|r| r.max(0.0)).sum();
    if n == 0 || total <= 0.0 || !total.is_finite() {
        return f64::NAN;
    }
    // cdf[i]: the mass left of cell i's left edge.
    let mut cdf = Vec::with_capacity(density.len() + 1);
    cdf.push(0.0);
    for r in density {
        cdf.push(cdf.last().unwrap() + r.max(0.0) / total);
    }
    *cdf.last_mut().unwrap() = 1.0;
    let quantile = |cell: usize, u: f64| {
        let (c0, c1) = (cdf[cell], cdf[cell + 1]);
        low + h * (cell as f64 + ((u - c0) / (c1 - c0)).clamp(0.0, 1.0))
    };
    let (mut i, mut cell, mut at, mut sum) = (0, 0, 0.0f64, 0.0);
    while cell < density.len() && cdf[cell + 1] <= at {
        cell += 1;
    }
    while i < n && cell < density.len() {
        let next = ((i + 1) as f64 / n as f64).min(cdf[cell + 1]);
        // ∫ (s − Q)² over [at, next] with Q linear: (Δu/3)(A² + AB + B²).
        let (a, b) = (
            sample[i] - quantile(cell, at),
            sample[i] - quantile(cell, next),
        );
        sum += (next - at) / 3.0 * (a * a + a * b + b * b);
        at = next;
        if (i + 1) as f64 / n as f64 <= next {
            i += 1;
        }
        while cell < density.len() && cdf[cell + 1] <= next {
            cell += 1;
        }
    }
    sum
}

/// Sliced W2 over `directions` random unit directions drawn from `seed` (any cloud sizes).
pub fn w2_sliced(
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    directions: usize,
    seed: u64,
) -> Result<f64> {
    check_clouds(x, y)?;
    if directions == 0 {
        return Err(Error::Usage(
            "sliced W2 needs at least one direction".into(),
        ));
    }
    let d = x.ncols();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut total = 0.0;
    for _ in 0..directions {
        let mut theta: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
        let norm = theta.iter().map(|t| t * t).sum::<f64>().sqrt();
        theta.iter_mut().for_each(|t| *t /= norm);
        let proj = |m: MatRef<'_, f64>| -> Vec<f64> {
            (0..m.nrows())
                .map(|i| (0..d).map(|k| m[(i, k)] * theta[k]).sum())
                .collect()
        };
        total += w2_sq_1d(proj(x), proj(y));
    }
    Ok((total / directions as f64).sqrt())
}
