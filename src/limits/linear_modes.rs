//! Closed forms for shallow linear networks on ½‖A − Y‖_F² (shared/papers/mixed_dynamics.md §3.3,
//! §7): one aligned mode of target singular value s, and the lazy (frozen-kernel) solution.

use faer::{Mat, MatRef};

/// Saxe–McClelland–Ganguli eq. 12 (τ = 1): a balanced mode u = ab from u₀ under u̇ = 2u(s − u),
/// u(t) = s e^{2st} / (e^{2st} − 1 + s/u₀).
pub fn saxe_mode(s: f64, u0: f64, t: f64) -> f64 {
    // Divided through by e^{2st} so that large st does not overflow.
    let decay = (-2.0 * s * t).exp();
    s / (1.0 - decay + decay * s / u0)
}

/// Time for a mode of eq. (1), u̇ = 2√(u² + c²)(s − u), to go from u₀ to u (u₀ ≤ u < s):
/// t = ½[F(u) − F(u₀)], F(u) = (1/R) ln((R√(u² + c²) + su + c²)/(s − u)), R = √(s² + c²).
pub fn mixed_mode_time(s: f64, c: f64, u0: f64, u: f64) -> f64 {
    let r = (s * s + c * c).sqrt();
    let f = |u: f64| ((r * (u * u + c * c).sqrt() + s * u + c * c) / (s - u)).ln() / r;
    0.5 * (f(u) - f(u0))
}

/// The lazy limit: A(t) = Y + e^{−2ct}(A(0) − Y), c = σ²w (the kernel frozen at 2σ²w·Id).
pub fn lazy_solution(a0: MatRef<'_, f64>, y: MatRef<'_, f64>, c: f64, t: f64) -> Mat<f64> {
    let k = (-2.0 * c * t).exp();
    Mat::from_fn(y.nrows(), y.ncols(), |i, j| {
        y[(i, j)] + k * (a0[(i, j)] - y[(i, j)])
    })
}
