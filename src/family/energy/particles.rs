//! The particle system of an energy: V and W from their formulas, their gradients and Hessians
//! derived symbolically (`crate::expr`), the velocity field and its exact Jacobian, the
//! discrete free energy and the initial sample.
//!
//! State: the N particles in one vector, particle i at [i·D, (i+1)·D).

use super::{EnergySpec, InitLaw};
use crate::dynamics::VectorField;
use crate::error::{Error, Result};
use crate::expr::Expr;
use faer::MatMut;
use rand_distr::Distribution;
use rayon::prelude::*;
use std::path::Path;

/// V, W and the derivatives the dynamics need, for particles in D = 1 or 2 dimensions.
#[derive(Debug, Clone)]
pub struct Energy {
    pub d: usize,
    pub temperature: f64,
    pub v: Expr,
    /// ∂V/∂x_a.
    pub grad_v: Vec<Expr>,
    /// ∂²V/∂x_a∂x_b, row-major D × D.
    pub hess_v: Vec<Expr>,
    /// None when W = 0 (no dependence on any variable and value 0).
    pub w: Option<Interaction>,
}

/// W(x, y) and its derivatives in the first argument.
#[derive(Debug, Clone)]
pub struct Interaction {
    pub w: Expr,
    /// ∂W/∂x_a.
    pub grad1: Vec<Expr>,
    /// ∂²W/∂x_a∂x_b, row-major.
    pub hess11: Vec<Expr>,
    /// ∂²W/∂x_a∂y_b, row-major.
    pub hess12: Vec<Expr>,
}

/// The variable names: x (1-D) or x1, x2; W also y or y1, y2.
pub(crate) fn variables(d: usize) -> (Vec<&'static str>, Vec<&'static str>) {
    if d == 1 {
        (vec!["x"], vec!["x", "y"])
    } else {
        (vec!["x1", "x2"], vec!["x1", "x2", "y1", "y2"])
    }
}

/// Whether a formula for W is no interaction: it depends on no variable and is 0.
fn is_zero(w: &Expr, d: usize) -> bool {
    (0..2 * d).all(|k| !w.depends_on(k)) && w.eval(&[0.0; 4]) == 0.0
}

/// Whether the text of W is no interaction (false for a text that does not parse).
pub(crate) fn no_interaction(text: &str, d: usize) -> bool {
    Expr::parse(text, &variables(d).1).is_ok_and(|w| is_zero(&w, d))
}

impl Energy {
    /// Parses and differentiates the model's formulas; errors name the key.
    pub fn build(m: &EnergySpec, file: &Path) -> Result<Energy> {
        let d = m.dimension;
        let err = |key: &str, message: String| Error::Problem {
            file: file.to_path_buf(),
            key: key.into(),
            message,
        };
        let (xv, xy) = variables(d);
        let v = Expr::parse(&m.potential, &xv).map_err(|e| err("model.potential", e))?;
        let diff = |e: &Expr, k: usize, key: &str| e.partial(k).map_err(|m| err(key, m));
        let grad_v = (0..d)
            .map(|a| diff(&v, a, "model.potential"))
            .collect::<Result<Vec<_>>>()?;
        let hess_v = (0..d * d)
            .map(|ab| diff(&grad_v[ab / d], ab % d, "model.potential"))
            .collect::<Result<Vec<_>>>()?;
        let w = Expr::parse(&m.interaction, &xy).map_err(|e| err("model.interaction", e))?;
        let w = if is_zero(&w, d) {
            None
        } else {
            let key = "model.interaction";
            let grad1 = (0..d)
                .map(|a| diff(&w, a, key))
                .collect::<Result<Vec<_>>>()?;
            let hess11 = (0..d * d)
                .map(|ab| diff(&grad1[ab / d], ab % d, key))
                .collect::<Result<Vec<_>>>()?;
            let hess12 = (0..d * d)
                .map(|ab| diff(&grad1[ab / d], d + ab % d, key))
                .collect::<Result<Vec<_>>>()?;
            Some(Interaction {
                w,
                grad1,
                hess11,
                hess12,
            })
        };
        let e = Energy {
            d,
            temperature: m.temperature,
            v,
            grad_v,
            hess_v,
            w,
        };
        e.check_symmetric(&m.init, file)?;
        Ok(e)
    }

    /// W(x, y) = W(y, x) at points spread over the initial law: otherwise the dynamics descend
    /// no energy.
    fn check_symmetric(&self, init: &InitLaw, file: &Path) -> Result<()> {
        let Some(w) = &self.w else { return Ok(()) };
        let pts = spread_points(init, 7);
        let d = self.d;
        for p in &pts {
            for q in &pts {
                let xy: Vec<f64> = p.iter().chain(q).copied().collect();
                let yx: Vec<f64> = q.iter().chain(p).copied().collect();
                let (a, b) = (w.w.eval(&xy), w.w.eval(&yx));
                // NaN on one side only is asymmetric too; NaN on both is left to check_finite.
                let differ = if a.is_finite() && b.is_finite() {
                    (a - b).abs() > 1e-12 * (1.0 + a.abs().max(b.abs()))
                } else {
                    a.is_finite() != b.is_finite()
                };
                if differ {
                    return Err(Error::Problem {
                        file: file.to_path_buf(),
                        key: "model.interaction".into(),
                        message: format!(
                            "W is not symmetric: W({}; {}) = {a} but W({}; {}) = {b}; the flow of a non-symmetric W descends no energy",
                            fmt_point(&xy[..d]),
                            fmt_point(&xy[d..]),
                            fmt_point(&yx[..d]),
                            fmt_point(&yx[d..]),
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every formula the dynamics evaluate is finite at the initial particles (W at the pairs
    /// of the first 200).
    pub(crate) fn check_finite(&self, x: &[f64], file: &Path) -> Result<()> {
        let d = self.d;
        let bad = |key: &str, what: &str, at: &[f64], value: f64| {
            Error::Problem {
            file: file.to_path_buf(),
            key: key.into(),
            message: format!(
                "{what} is {value} at the initial particle ({}): expected a finite value on the initial law",
                fmt_point(at)
            ),
        }
        };
        for p in x.chunks(d) {
            for (e, what) in std::iter::once((&self.v, "V"))
                .chain(self.grad_v.iter().map(|g| (g, "∇V")))
                .chain(self.hess_v.iter().map(|g| (g, "the Hessian of V")))
            {
                let val = e.eval(p);
                if !val.is_finite() {
                    return Err(bad("model.potential", what, p, val));
                }
            }
        }
        if let Some(w) = &self.w {
            let m = x.len() / d;
            let k = m.min(200);
            for i in 0..k {
                for j in 0..k {
                    let xy: Vec<f64> = x[i * d..(i + 1) * d]
                        .iter()
                        .chain(&x[j * d..(j + 1) * d])
                        .copied()
                        .collect();
                    for (e, what) in std::iter::once((&w.w, "W"))
                        .chain(w.grad1.iter().map(|g| (g, "∇₁W")))
                        .chain(
                            w.hess11
                                .iter()
                                .chain(&w.hess12)
                                .map(|g| (g, "a second derivative of W")),
                        )
                    {
                        let val = e.eval(&xy);
                        if !val.is_finite() {
                            return Err(bad("model.interaction", what, &xy, val));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// F_N = (1/N) Σ V(X_i) + (1/(2N²)) Σ_{i,j} W(X_i, X_j): the energy the T = 0 particle flow
    /// descends, without the entropy.
    pub fn particle_energy(&self, x: &[f64]) -> f64 {
        let d = self.d;
        let n = x.len() / d;
        let pot: f64 = x.chunks(d).map(|p| self.v.eval(p)).sum::<f64>() / n as f64;
        let inter = match &self.w {
            None => 0.0,
            Some(w) => {
                let rows: Vec<f64> = (0..n)
                    .into_par_iter()
                    .map(|i| {
                        let mut xy = [0.0; 4];
                        xy[..d].copy_from_slice(&x[i * d..(i + 1) * d]);
                        let mut s = 0.0;
                        for j in 0..n {
                            xy[d..2 * d].copy_from_slice(&x[j * d..(j + 1) * d]);
                            s += w.w.eval(&xy[..2 * d]);
                        }
                        s
                    })
                    .collect();
                rows.iter().sum::<f64>() / (2.0 * (n * n) as f64)
            }
        };
        pot + inter
    }

    /// The velocity of particle i: −∇V(X_i) − (1/N) Σ_j ∇₁W(X_i, X_j).
    fn velocity(&self, x: &[f64], i: usize, out: &mut [f64]) {
        let d = self.d;
        let n = x.len() / d;
        let xi = &x[i * d..(i + 1) * d];
        for (o, g) in out.iter_mut().zip(&self.grad_v) {
            *o = -g.eval(xi);
        }
        if let Some(w) = &self.w {
            let mut xy = [0.0; 4];
            xy[..d].copy_from_slice(xi);
            let mut acc = [0.0; 2];
            for j in 0..n {
                xy[d..2 * d].copy_from_slice(&x[j * d..(j + 1) * d]);
                for (acc, g) in acc.iter_mut().zip(&w.grad1) {
                    *acc += g.eval(&xy[..2 * d]);
                }
            }
            for a in 0..d {
                out[a] -= acc[a] / n as f64;
            }
        }
    }

    /// The D × D blocks of ∂v_i/∂X_j for all j (row-major, D·D each, j in order).
    fn jacobian_row(&self, x: &[f64], i: usize) -> Vec<f64> {
        let d = self.d;
        let n = x.len() / d;
        let dd = d * d;
        let mut row = vec![0.0; n * dd];
        let xi = &x[i * d..(i + 1) * d];
        for ab in 0..dd {
            row[i * dd + ab] = -self.hess_v[ab].eval(xi);
        }
        if let Some(w) = &self.w {
            let inv = 1.0 / n as f64;
            let mut xy = [0.0; 4];
            xy[..d].copy_from_slice(xi);
            for j in 0..n {
                xy[d..2 * d].copy_from_slice(&x[j * d..(j + 1) * d]);
                for ab in 0..dd {
                    let h11 = w.hess11[ab].eval(&xy[..2 * d]);
                    let h12 = w.hess12[ab].eval(&xy[..2 * d]);
                    row[i * dd + ab] -= inv * h11;
                    row[j * dd + ab] -= inv * h12;
                }
            }
        }
        row
    }
}

/// The particle flow dX/dt = v(X) of an energy (T = 0).
pub struct ParticleFlow<'a> {
    pub energy: &'a Energy,
    pub n: usize,
}

impl VectorField for ParticleFlow<'_> {
    fn len(&self) -> usize {
        self.n * self.energy.d
    }

    fn eval(&self, y: &[f64], out: &mut [f64]) {
        let d = self.energy.d;
        out.par_chunks_mut(d)
            .enumerate()
            .for_each(|(i, o)| self.energy.velocity(y, i, o));
    }

    fn jac_mul(&self, y: &[f64], v: &[f64], out: &mut [f64]) {
        let d = self.energy.d;
        let dd = d * d;
        out.par_chunks_mut(d).enumerate().for_each(|(i, o)| {
            let row = self.energy.jacobian_row(y, i);
            o.fill(0.0);
            for (j, block) in row.chunks(dd).enumerate() {
                for a in 0..d {
                    for b in 0..d {
                        o[a] += block[a * d + b] * v[j * d + b];
                    }
                }
            }
        });
    }

    fn jacobian(&self, y: &[f64], mut out: MatMut<'_, f64>) {
        let d = self.energy.d;
        let dd = d * d;
        let rows: Vec<Vec<f64>> = (0..self.n)
            .into_par_iter()
            .map(|i| self.energy.jacobian_row(y, i))
            .collect();
        for (i, row) in rows.iter().enumerate() {
            for (j, block) in row.chunks(dd).enumerate() {
                for a in 0..d {
                    for b in 0..d {
                        out[(i * d + a, j * d + b)] = block[a * d + b];
                    }
                }
            }
        }
    }
}

/// N particles from the initial law, on the seed's particle stream.
pub fn sample(init: &InitLaw, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = crate::rng::stream(seed, crate::rng::Stream::Particles);
    let mut x = Vec::new();
    match init {
        InitLaw::Gaussian { mean, std } => {
            for _ in 0..n {
                for (m, s) in mean.iter().zip(std) {
                    let z: f64 = rand_distr::StandardNormal.sample(&mut rng);
                    x.push(m + s * z);
                }
            }
        }
        InitLaw::Uniform { low, high } => {
            for _ in 0..n {
                for (l, h) in low.iter().zip(high) {
                    let u: f64 = rand::Rng::random(&mut rng);
                    x.push(l + (h - l) * u);
                }
            }
        }
    }
    x
}

/// A k-per-dimension grid over the initial law's bulk (mean ± 2 std, or the uniform box).
fn spread_points(init: &InitLaw, k: usize) -> Vec<Vec<f64>> {
    let ranges: Vec<(f64, f64)> = match init {
        InitLaw::Gaussian { mean, std } => mean
            .iter()
            .zip(std)
            .map(|(m, s)| (m - 2.0 * s, m + 2.0 * s))
            .collect(),
        InitLaw::Uniform { low, high } => low.iter().copied().zip(high.iter().copied()).collect(),
    };
    let axis = |(l, h): (f64, f64)| -> Vec<f64> {
        (0..k)
            .map(|i| l + (h - l) * (i as f64 + 0.37) / k as f64)
            .collect()
    };
    let mut pts: Vec<Vec<f64>> = vec![vec![]];
    for r in ranges {
        pts = pts
            .into_iter()
            .flat_map(|p| {
                axis(r).into_iter().map(move |c| {
                    let mut q = p.clone();
                    q.push(c);
                    q
                })
            })
            .collect();
    }
    pts
}

fn fmt_point(p: &[f64]) -> String {
    p.iter()
        .map(|v| format!("{v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Kozachenko–Leonenko estimate of the entropy −∫ρ log ρ of the law the particles sample,
/// from their distances ε_i to the k-th nearest neighbour (k = 3):
/// H ≈ ψ(N) − ψ(k) + log c_D + (D/N) Σ log ε_i, c_D the volume of the unit ball (2 in 1-D, π in
/// 2-D). NaN with fewer than k + 1 particles or coincident ones.
pub(crate) fn entropy_estimate(x: &[f64], d: usize) -> f64 {
    use statrs::function::gamma::digamma;
    let n = x.len() / d;
    let k = 3;
    if n <= k {
        return f64::NAN;
    }
    let log_eps: Vec<f64> = if d == 1 {
        let mut s = x.to_vec();
        s.sort_by(f64::total_cmp);
        // In 1-D the k nearest neighbours are among the k on either side.
        (0..n)
            .map(|r| {
                let lo = r.saturating_sub(k);
                let hi = (r + k).min(n - 1);
                let mut dist: Vec<f64> = (lo..=hi)
                    .filter(|&q| q != r)
                    .map(|q| (s[q] - s[r]).abs())
                    .collect();
                dist.sort_by(f64::total_cmp);
                dist[k - 1].ln()
            })
            .collect()
    } else {
        (0..n)
            .into_par_iter()
            .map(|i| {
                let mut dist: Vec<f64> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| {
                        (0..d)
                            .map(|a| (x[i * d + a] - x[j * d + a]).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .collect();
                dist.select_nth_unstable_by(k - 1, f64::total_cmp);
                dist[k - 1].ln()
            })
            .collect()
    };
    let c_d: f64 = if d == 1 { 2.0 } else { std::f64::consts::PI };
    digamma(n as f64) - digamma(k as f64)
        + c_d.ln()
        + d as f64 * log_eps.iter().sum::<f64>() / n as f64
}
