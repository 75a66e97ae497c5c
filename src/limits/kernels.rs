//! Infinite-width kernels of the two-layer network in our normalization.
//!
//! With θ = (a, w, b), a ~ N(0, σ_a²), w ~ N(0, σ_w² I_d), b ~ N(0, σ_b²) and z = ⟨w, x⟩ + b,
//! the tangent kernel K(x, x') = (1/N) Σ_j ⟨∇_θ σ*(x; θ_j), ∇_θ σ*(x'; θ_j)⟩ tends as N → ∞ to
//!
//!   NTK(x, x') = E[σ(z) σ(z')] + E[a²] E[σ'(z) σ'(z')] (⟨x, x'⟩ + 1_bias),
//!
//! and the output of the `ntk`-scaled network at initialization is a Gaussian process with
//! covariance NNGP(x, x') = σ_a² E[σ(z) σ(z')]. (z, z') is centred Gaussian with
//! Σ₁₁ = σ_w²|x|² + σ_b², Σ₂₂ = σ_w²|x'|² + σ_b², Σ₁₂ = σ_w²⟨x, x'⟩ + σ_b².
//! The two expectations are closed forms for relu (arc-cosine, Cho & Saul), erf (Williams) and
//! linear activations, and Gauss–Legendre quadrature of the activation's formula otherwise
//! (`quadrature`). With a_mean ≠ 0 the first-layer part weighs E[σ′σ′] by E[a²] = a_mean² + σ_a²;
//! the NNGP keeps σ_a², the output's fluctuation (its mean grows like √N unless a_mean = 0).

use super::quadrature::Integrand;
use crate::linalg::matmul;
use crate::model::activation::Activation;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

/// Standard deviations of the initial weights (and the output weights' mean).
#[derive(Debug, Clone, Copy)]
pub struct WeightStds {
    pub a: f64,
    /// E[a]: the hidden-layer part of the NTK weighs E[σ′σ′] by E[a²] = a_mean² + a².
    pub a_mean: f64,
    pub w: f64,
    /// 0 when the model has no bias.
    pub b: f64,
}

/// Which kernel to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ntk,
    Nngp,
    /// The output-weight part of the NTK, E_w[σ(⟨w, x⟩ + b) σ(⟨w, x'⟩ + b)]: the infinite-width
    /// random-features kernel (`params = "output"`).
    RandomFeatures,
    /// The first-layer part, E[a²] E_w[σ'σ'] (⟨x, x'⟩ + 1_bias): the infinite-width neural
    /// tangent model F_NT (`params = "hidden"`). Ntk = RandomFeatures + NeuralTangent.
    NeuralTangent,
}

impl Kind {
    /// The NTK restricted to the parameters a linear model trains.
    pub fn for_params(params: crate::model::Params) -> Kind {
        match params {
            crate::model::Params::All => Kind::Ntk,
            crate::model::Params::Output => Kind::RandomFeatures,
            crate::model::Params::Hidden => Kind::NeuralTangent,
        }
    }
}

/// The infinite-width kernel between the rows of x1 and x2: the closed forms for relu, erf and
/// linear, Gauss–Legendre quadrature of the activation's formula otherwise (`quadrature`).
pub fn kernel(
    kind: Kind,
    act: &Activation,
    stds: WeightStds,
    bias: bool,
    x1: MatRef<'_, f64>,
    x2: MatRef<'_, f64>,
) -> Mat<f64> {
    let integrand = act
        .gaussian_moments(1.0, 1.0, 0.5)
        .is_none()
        .then(|| Integrand::new(act));
    let moments = |s11: f64, s22: f64, s12: f64| {
        act.gaussian_moments(s11, s22, s12)
            .or_else(|| integrand.as_ref().map(|q| q.moments(s11, s22, s12)))
            .unwrap_or((f64::NAN, f64::NAN))
    };
    let (vw, vb, va) = (
        stds.w * stds.w,
        if bias { stds.b * stds.b } else { 0.0 },
        stds.a * stds.a,
    );
    // E[a²]: what the first-layer part of ⟨∇σ*, ∇σ*⟩ = a² σ′σ′ (⟨x, x'⟩ + 1) averages.
    let ea2 = va + stds.a_mean * stds.a_mean;
    // ⟨x, x'⟩ for all pairs by one GEMM; the closed form is then elementwise.
    let mut gram = Mat::<f64>::zeros(x1.nrows(), x2.nrows());
    matmul(
        gram.as_mut(),
        Accum::Replace,
        x1,
        x2.transpose(),
        1.0,
        Par::rayon(0),
    );
    let sq =
        |x: MatRef<'_, f64>, i: usize| (0..x.ncols()).map(|k| x[(i, k)] * x[(i, k)]).sum::<f64>();
    let n1: Vec<f64> = (0..x1.nrows()).map(|i| sq(x1, i)).collect();
    let n2: Vec<f64> = (0..x2.nrows()).map(|j| sq(x2, j)).collect();
    let off = if bias { 1.0 } else { 0.0 };
    let entry = |i: usize, j: usize, xx: f64| {
        let (e0, e1) = moments(vw * n1[i] + vb, vw * n2[j] + vb, vw * xx + vb);
        match kind {
            Kind::Nngp => va * e0,
            Kind::Ntk => e0 + ea2 * e1 * (xx + off),
            Kind::RandomFeatures => e0,
            Kind::NeuralTangent => ea2 * e1 * (xx + off),
        }
    };
    // K(x, x'): the closed form is symmetric in its two points, so a kernel of one set with
    // itself is computed on the lower triangle and mirrored (half the transcendental work).
    let same = x1.as_ptr() == x2.as_ptr()
        && x1.shape() == x2.shape()
        && x1.row_stride() == x2.row_stride()
        && x1.col_stride() == x2.col_stride();
    // Columns in parallel: each entry is computed alone, so the result is thread-count free.
    gram.par_col_iter_mut().enumerate().for_each(|(j, col)| {
        let from = if same { j } else { 0 };
        for (i, v) in col.iter_mut().enumerate().skip(from) {
            *v = entry(i, j, *v);
        }
    });
    if same {
        // By 64 × 64 tiles: a plain row read strides a whole column per entry.
        const T: usize = 64;
        let n = gram.ncols();
        for jb in (0..n).step_by(T) {
            for ib in (0..=jb).step_by(T) {
                for j in jb..(jb + T).min(n) {
                    for i in ib..(ib + T).min(j) {
                        gram[(i, j)] = gram[(j, i)];
                    }
                }
            }
        }
    }
    gram
}
