//! The limit ∂_t ρ = ∂_x(ρ ∂_x U) + T ∂_xx ρ, U = V + W∗ρ, on a 1-D box with no-flux walls, by
//! finite volumes: cell averages ρ_i on M cells of width h, and at each inner face the
//! Scharfetter–Gummel flux
//!
//!   J_{i+½} = (T/h) [B(z) ρ_i − B(−z) ρ_{i+1}],  z = (U_{i+1} − U_i)/T,  B(z) = z/(eᶻ − 1),
//!
//! which is exact for a constant drift, keeps ρ ≥ 0 (monotone in ρ), has J = 0 exactly at the
//! discrete Gibbs state ρ ∝ e^{−U/T}, and becomes the upwind flux as T → 0 (used at T = 0).
//! dρ_i/dt = −(J_{i+½} − J_{i−½})/h with J = 0 on the walls, so the mass h Σ ρ_i is conserved
//! to round-off. U_i = V(x_i) + h Σ_k W(x_i, x_k) ρ_k (midpoint rule). The Jacobian is exact:
//! the nonlocal W makes it dense.

use super::particles::Energy;
use super::InitLaw;
use crate::dynamics::VectorField;
use faer::{Mat, MatMut};
use rayon::prelude::*;

/// The cells: [low, high] cut into `cells` equal parts.
#[derive(Debug, Clone)]
pub struct Grid {
    pub low: f64,
    pub h: f64,
    /// Cell centres.
    pub x: Vec<f64>,
}

impl Grid {
    pub fn new(low: f64, high: f64, cells: usize) -> Grid {
        let h = (high - low) / cells as f64;
        Grid {
            low,
            h,
            x: (0..cells).map(|i| low + (i as f64 + 0.5) * h).collect(),
        }
    }
}

/// The mass of a 1-D initial law outside [low, high].
pub fn outside_mass(init: &InitLaw, low: f64, high: f64) -> f64 {
    1.0 - law_mass(init, low, high)
}

/// The mass of the initial law's first coordinate on [a, b].
fn law_mass(init: &InitLaw, a: f64, b: f64) -> f64 {
    match init {
        InitLaw::Gaussian { mean, std } => {
            let phi = |t: f64| {
                0.5 * statrs::function::erf::erfc(
                    -(t - mean[0]) / (std[0] * std::f64::consts::SQRT_2),
                )
            };
            phi(b) - phi(a)
        }
        InitLaw::Uniform { low, high } => {
            let (l, h) = (low[0].max(a), high[0].min(b));
            ((h - l) / (high[0] - low[0])).max(0.0)
        }
    }
}

/// The initial law's exact cell averages, scaled to mass 1 on the box.
pub fn initial_density(init: &InitLaw, grid: &Grid) -> Vec<f64> {
    let h = grid.h;
    let rho: Vec<f64> = grid
        .x
        .iter()
        .map(|&c| law_mass(init, c - 0.5 * h, c + 0.5 * h) / h)
        .collect();
    let mass: f64 = rho.iter().sum::<f64>() * h;
    rho.into_iter().map(|r| r / mass).collect()
}

/// The semi-discrete PDE: a vector field on the cell averages.
pub struct Pde<'a> {
    pub energy: &'a Energy,
    pub grid: Grid,
    /// V at the cell centres.
    v: Vec<f64>,
    /// W(x_i, x_k), when there is an interaction.
    w: Option<Mat<f64>>,
}

impl<'a> Pde<'a> {
    pub fn new(energy: &'a Energy, grid: Grid) -> Pde<'a> {
        let v = grid.x.iter().map(|&x| energy.v.eval(&[x])).collect();
        let w = energy.w.as_ref().map(|w| {
            let m = grid.x.len();
            let rows: Vec<Vec<f64>> = grid
                .x
                .par_iter()
                .map(|&xi| grid.x.iter().map(|&xk| w.w.eval(&[xi, xk])).collect())
                .collect();
            Mat::from_fn(m, m, |i, k| rows[i][k])
        });
        Pde { energy, grid, v, w }
    }

    fn cells(&self) -> usize {
        self.grid.x.len()
    }

    /// (W ρ)_i = Σ_k W(x_i, x_k) ρ_k, each row summed in order (the same at any thread count).
    fn w_times(&self, rho: &[f64]) -> Option<Vec<f64>> {
        self.w.as_ref().map(|w| {
            (0..self.cells())
                .into_par_iter()
                .map(|i| (0..rho.len()).map(|k| w[(i, k)] * rho[k]).sum())
                .collect()
        })
    }

    /// U_i = V(x_i) + h (Wρ)_i.
    pub fn potential(&self, rho: &[f64]) -> Vec<f64> {
        let h = self.grid.h;
        match self.w_times(rho) {
            None => self.v.clone(),
            Some(wr) => self.v.iter().zip(&wr).map(|(v, c)| v + h * c).collect(),
        }
    }

    /// The inner faces' fluxes J_{i+½}, i < M − 1, with, for the Jacobian, ∂J/∂ρ_i, ∂J/∂ρ_{i+1}
    /// at fixed U and ∂J/∂(U_{i+1} − U_i).
    fn fluxes(&self, rho: &[f64], u: &[f64]) -> Vec<[f64; 4]> {
        let t = self.energy.temperature;
        let h = self.grid.h;
        (0..self.cells() - 1)
            .map(|i| {
                let du = u[i + 1] - u[i];
                let (a, b) = (rho[i], rho[i + 1]);
                if t > 0.0 {
                    let z = du / t;
                    let (bp, bm) = (bernoulli(z), bernoulli(-z));
                    let j = t / h * (bp * a - bm * b);
                    // ∂J/∂du = (T/h)(1/T)[B′(z) a + B′(−z) b]
                    let dj_du = (bernoulli_prime(z) * a + bernoulli_prime(-z) * b) / h;
                    [j, t / h * bp, -t / h * bm, dj_du]
                } else {
                    let v = -du / h;
                    if v > 0.0 {
                        [v * a, v, 0.0, -a / h]
                    } else {
                        [v * b, 0.0, v, -b / h]
                    }
                }
            })
            .collect()
    }

    /// F(ρ) = h Σ V_i ρ_i + ½ h² Σ W_ik ρ_i ρ_k + T h Σ ρ_i log ρ_i (cells with ρ ≤ 0 add no
    /// entropy).
    pub fn free_energy(&self, rho: &[f64]) -> f64 {
        let h = self.grid.h;
        let t = self.energy.temperature;
        let pot: f64 = self.v.iter().zip(rho).map(|(v, r)| v * r).sum::<f64>() * h;
        let inter = self
            .w_times(rho)
            .map(|wr| 0.5 * h * h * wr.iter().zip(rho).map(|(a, r)| a * r).sum::<f64>())
            .unwrap_or(0.0);
        let ent = if t > 0.0 {
            t * h
                * rho
                    .iter()
                    .filter(|r| **r > 0.0)
                    .map(|r| r * r.ln())
                    .sum::<f64>()
        } else {
            0.0
        };
        pot + inter + ent
    }

    pub fn mass(&self, rho: &[f64]) -> f64 {
        rho.iter().sum::<f64>() * self.grid.h
    }

    /// Mean and variance of the density (midpoint rule).
    pub fn moments(&self, rho: &[f64]) -> (f64, f64) {
        let h = self.grid.h;
        let mass = self.mass(rho);
        let mean = self.grid.x.iter().zip(rho).map(|(x, r)| x * r).sum::<f64>() * h / mass;
        let var = self
            .grid
            .x
            .iter()
            .zip(rho)
            .map(|(x, r)| (x - mean).powi(2) * r)
            .sum::<f64>()
            * h
            / mass;
        (mean, var)
    }
}

impl VectorField for Pde<'_> {
    fn len(&self) -> usize {
        self.cells()
    }

    fn eval(&self, rho: &[f64], out: &mut [f64]) {
        let u = self.potential(rho);
        let f = self.fluxes(rho, &u);
        let h = self.grid.h;
        for (i, o) in out.iter_mut().enumerate() {
            let right = f.get(i).map_or(0.0, |j| j[0]);
            let left = if i > 0 { f[i - 1][0] } else { 0.0 };
            *o = -(right - left) / h;
        }
    }

    fn jac_mul(&self, rho: &[f64], dv: &[f64], out: &mut [f64]) {
        let u = self.potential(rho);
        let f = self.fluxes(rho, &u);
        let h = self.grid.h;
        // δU = V-free part: h W δρ.
        let du: Vec<f64> = self
            .w_times(dv)
            .map(|wd| wd.into_iter().map(|c| h * c).collect())
            .unwrap_or_else(|| vec![0.0; dv.len()]);
        let dj: Vec<f64> = f
            .iter()
            .enumerate()
            .map(|(i, j)| j[1] * dv[i] + j[2] * dv[i + 1] + j[3] * (du[i + 1] - du[i]))
            .collect();
        for (i, o) in out.iter_mut().enumerate() {
            let right = dj.get(i).copied().unwrap_or(0.0);
            let left = if i > 0 { dj[i - 1] } else { 0.0 };
            *o = -(right - left) / h;
        }
    }

    fn jacobian(&self, rho: &[f64], mut out: MatMut<'_, f64>) {
        let m = self.cells();
        let u = self.potential(rho);
        let f = self.fluxes(rho, &u);
        let h = self.grid.h;
        for i in 0..m {
            for k in 0..m {
                out[(i, k)] = 0.0;
            }
        }
        // Face i (between cells i and i + 1) adds −∂J/h to row i and +∂J/h to row i + 1.
        for (i, j) in f.iter().enumerate() {
            for (row, sign) in [(i, -1.0 / h), (i + 1, 1.0 / h)] {
                out[(row, i)] += sign * j[1];
                out[(row, i + 1)] += sign * j[2];
                if let Some(w) = &self.w {
                    // ∂(U_{i+1} − U_i)/∂ρ_k = h (W_{i+1,k} − W_{i,k})
                    let c = sign * j[3] * h;
                    for k in 0..m {
                        out[(row, k)] += c * (w[(i + 1, k)] - w[(i, k)]);
                    }
                }
            }
        }
    }
}

/// B(z) = z/(eᶻ − 1), B(0) = 1.
fn bernoulli(z: f64) -> f64 {
    if z.abs() < 1e-8 {
        1.0 - 0.5 * z
    } else {
        z / z.exp_m1()
    }
}

/// B′(z) = B(z)(1/z + 1/(e^{−z} − 1)), by its series near 0 where that cancels.
fn bernoulli_prime(z: f64) -> f64 {
    if z.abs() < 1e-3 {
        -0.5 + z / 6.0 - z * z * z / 180.0
    } else {
        bernoulli(z) * (1.0 / z + 1.0 / (-z).exp_m1())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bernoulli_function() {
        for z in [-30.0, -2.0, -1e-3, -1e-9, 0.0, 1e-9, 1e-3, 0.5, 40.0] {
            let h = 1e-5 * (1.0 + f64::abs(z));
            let fd = (bernoulli(z + h) - bernoulli(z - h)) / (2.0 * h);
            assert!((bernoulli_prime(z) - fd).abs() < 1e-7, "z = {z}");
            // B(−z) = B(z) + z
            assert!((bernoulli(-z) - bernoulli(z) - z).abs() < 1e-12 * (1.0 + z.abs()));
        }
    }
}
