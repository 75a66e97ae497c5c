//! The limit ∂_t ρ = ∇·(ρ∇U) + TΔρ, U = V + W∗ρ, on a box (1-D or 2-D) with no-flux walls, by
//! finite volumes: cell averages ρ_k on a uniform grid, and across each inner face between
//! neighbours a → b (a step h along one axis) the Scharfetter–Gummel flux
//!
//!   J = (T/h) [B(z) ρ_a − B(−z) ρ_b],  z = (U_b − U_a)/T,  B(z) = z/(eᶻ − 1),
//!
//! which is exact for a constant drift, keeps ρ ≥ 0 (monotone in ρ), has J = 0 exactly at the
//! discrete Gibbs state ρ ∝ e^{−U/T}, and becomes the upwind flux as T → 0 (used at T = 0).
//! dρ_a/dt −= J/h and dρ_b/dt += J/h; the walls have no faces, so the mass vol·Σρ_k is conserved
//! to round-off. U_k = V(x_k) + vol Σ_j W(x_k, x_j) ρ_j (midpoint rule).
//!
//! The Jacobian is exact. Without an interaction it is the stencil's (3 entries a row in 1-D, 5
//! in 2-D), handed to the solvers as a sparse pattern that they factorize with faer's sparse LU:
//! faer because diffsol's matrices are faer's already, so the Newton matrix needs no copy or
//! conversion to another library's type. With an interaction it couples every cell, but through
//! W only: when W has low numerical rank (W = QΛQᵀ to 1e-12) the solvers get the stencil plus
//! that rank-r part and use Woodbury's identity; otherwise the dense matrix.

use super::particles::Energy;
use super::InitLaw;
use crate::dynamics::VectorField;
use faer::{Mat, MatMut};
use rayon::prelude::*;

/// One axis of the grid: [low, low + cells·h].
#[derive(Debug, Clone)]
pub struct Axis {
    pub low: f64,
    pub h: f64,
    pub cells: usize,
}

impl Axis {
    pub(crate) fn centres(&self) -> Vec<f64> {
        (0..self.cells)
            .map(|i| self.low + (i as f64 + 0.5) * self.h)
            .collect()
    }
}

/// A uniform grid on a box, cells numbered row-major (the last axis fastest).
#[derive(Debug, Clone)]
pub struct Grid {
    pub axes: Vec<Axis>,
}

/// Neighbouring cells a < b, a step h apart along one axis.
#[derive(Debug, Clone, Copy)]
struct Face {
    a: usize,
    b: usize,
    h: f64,
}

impl Grid {
    pub fn new(bounds: &[[f64; 2]], cells: &[usize]) -> Grid {
        Grid {
            axes: bounds
                .iter()
                .zip(cells)
                .map(|([lo, hi], &m)| Axis {
                    low: *lo,
                    h: (hi - lo) / m as f64,
                    cells: m,
                })
                .collect(),
        }
    }

    pub fn dim(&self) -> usize {
        self.axes.len()
    }

    pub fn len(&self) -> usize {
        self.axes.iter().map(|a| a.cells).product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cell volume (a width in 1-D, an area in 2-D).
    pub(crate) fn volume(&self) -> f64 {
        self.axes.iter().map(|a| a.h).product()
    }

    /// Cell k's index along each axis.
    fn index(&self, mut k: usize) -> [usize; 2] {
        let mut idx = [0; 2];
        for (d, axis) in self.axes.iter().enumerate().rev() {
            idx[d] = k % axis.cells;
            k /= axis.cells;
        }
        idx
    }

    /// Cell k's centre (dim coordinates; the rest 0).
    pub fn centre(&self, k: usize) -> [f64; 2] {
        let idx = self.index(k);
        let mut c = [0.0; 2];
        for (d, axis) in self.axes.iter().enumerate() {
            c[d] = axis.low + (idx[d] as f64 + 0.5) * axis.h;
        }
        c
    }

    /// Whether cell k touches a wall.
    pub(crate) fn on_edge(&self, k: usize) -> bool {
        let idx = self.index(k);
        self.axes
            .iter()
            .enumerate()
            .any(|(d, a)| idx[d] == 0 || idx[d] + 1 == a.cells)
    }

    fn faces(&self) -> Vec<Face> {
        let mut out = vec![];
        // The stride of axis d in the row-major numbering.
        let strides: Vec<usize> = (0..self.dim())
            .map(|d| self.axes[d + 1..].iter().map(|a| a.cells).product())
            .collect();
        for k in 0..self.len() {
            let idx = self.index(k);
            for (d, axis) in self.axes.iter().enumerate() {
                if idx[d] + 1 < axis.cells {
                    out.push(Face {
                        a: k,
                        b: k + strides[d],
                        h: axis.h,
                    });
                }
            }
        }
        out
    }
}

/// The mass of the initial law outside the box.
pub(crate) fn outside_mass(init: &InitLaw, bounds: &[[f64; 2]]) -> f64 {
    1.0 - bounds
        .iter()
        .enumerate()
        .map(|(d, [lo, hi])| law_mass(init, d, *lo, *hi))
        .product::<f64>()
}

/// The mass of the initial law's coordinate d on [a, b] (the coordinates are independent).
fn law_mass(init: &InitLaw, d: usize, a: f64, b: f64) -> f64 {
    match init {
        InitLaw::Gaussian { mean, std } => {
            let phi = |t: f64| {
                0.5 * statrs::function::erf::erfc(
                    -(t - mean[d]) / (std[d] * std::f64::consts::SQRT_2),
                )
            };
            phi(b) - phi(a)
        }
        InitLaw::Uniform { low, high } => {
            let (l, h) = (low[d].max(a), high[d].min(b));
            ((h - l) / (high[d] - low[d])).max(0.0)
        }
    }
}

/// The initial law's exact cell averages, scaled to mass 1 on the box.
pub(crate) fn initial_density(init: &InitLaw, grid: &Grid) -> Vec<f64> {
    let vol = grid.volume();
    let rho: Vec<f64> = (0..grid.len())
        .map(|k| {
            let c = grid.centre(k);
            grid.axes
                .iter()
                .enumerate()
                .map(|(d, ax)| law_mass(init, d, c[d] - 0.5 * ax.h, c[d] + 0.5 * ax.h))
                .product::<f64>()
                / vol
        })
        .collect();
    let mass: f64 = rho.iter().sum::<f64>() * vol;
    rho.into_iter().map(|r| r / mass).collect()
}

/// The semi-discrete PDE: a vector field on the cell averages.
pub struct Pde<'a> {
    pub energy: &'a Energy,
    pub grid: Grid,
    faces: Vec<Face>,
    /// V at the cell centres.
    v: Vec<f64>,
    /// W(x_k, x_j) at (j, k) (transposed), when there is an interaction.
    w: Option<Mat<f64>>,
    /// W = Q diag(λ) Qᵀ to 1e-12 relative, when W has low rank (smooth interactions do: a
    /// Gaussian on 2000 cells has rank ~25 at that tolerance).
    w_factors: Option<(Mat<f64>, Vec<f64>)>,
    /// Without an interaction, or with a low-rank one: the stencil's pattern, column by column
    /// (rows ascending).
    pattern: Option<Vec<Vec<usize>>>,
}

/// Eigenvalues of W below this share of the largest are dropped from the Jacobian's low-rank
/// part (the right-hand side keeps the whole W).
const W_RANK_TOL: f64 = 1e-12;

impl<'a> Pde<'a> {
    pub fn new(energy: &'a Energy, grid: Grid) -> Pde<'a> {
        let m = grid.len();
        let d = grid.dim();
        let v = (0..m)
            .map(|k| energy.v.eval(&grid.centre(k)[..d]))
            .collect();
        let w = energy.w.as_ref().map(|w| {
            // Stored transposed: column i holds W(x_i, ·), so that (Wρ)_i reads contiguous
            // memory (faer is column-major); filled in place, column by column.
            let mut mat = Mat::zeros(m, m);
            mat.par_col_iter_mut().enumerate().for_each(|(i, mut col)| {
                let mut xy = [0.0; 4];
                xy[..d].copy_from_slice(&grid.centre(i)[..d]);
                for j in 0..m {
                    xy[d..2 * d].copy_from_slice(&grid.centre(j)[..d]);
                    col[j] = w.w.eval(&xy[..2 * d]);
                }
            });
            mat
        });
        let faces = grid.faces();
        let w_factors = w
            .as_ref()
            .and_then(|w| crate::linalg::symmetric_low_rank(w.as_ref(), W_RANK_TOL));
        let pattern = (w.is_none() || w_factors.is_some()).then(|| {
            let mut cols: Vec<Vec<usize>> = (0..m).map(|k| vec![k]).collect();
            for f in &faces {
                cols[f.a].push(f.b);
                cols[f.b].push(f.a);
            }
            for c in &mut cols {
                c.sort_unstable();
            }
            cols
        });
        Pde {
            energy,
            grid,
            faces,
            v,
            w,
            w_factors,
            pattern,
        }
    }

    /// (W ρ)_k = Σ_j W(x_k, x_j) ρ_j, each row summed in order (the same at any thread count).
    fn w_times(&self, rho: &[f64]) -> Option<Vec<f64>> {
        self.w.as_ref().map(|w| {
            (0..rho.len())
                .into_par_iter()
                .map(|i| w.col(i).iter().zip(rho).map(|(a, r)| a * r).sum())
                .collect()
        })
    }

    /// U_k = V(x_k) + vol (Wρ)_k.
    pub fn potential(&self, rho: &[f64]) -> Vec<f64> {
        let vol = self.grid.volume();
        match self.w_times(rho) {
            None => self.v.clone(),
            Some(wr) => self.v.iter().zip(&wr).map(|(v, c)| v + vol * c).collect(),
        }
    }

    /// Per face: J, ∂J/∂ρ_a and ∂J/∂ρ_b at fixed U, and ∂J/∂(U_b − U_a).
    fn fluxes(&self, rho: &[f64], u: &[f64]) -> Vec<[f64; 4]> {
        let t = self.energy.temperature;
        self.faces
            .iter()
            .map(|f| {
                let du = u[f.b] - u[f.a];
                let (a, b, h) = (rho[f.a], rho[f.b], f.h);
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

    /// F(ρ) = vol Σ V_k ρ_k + ½ vol² Σ W_kj ρ_k ρ_j + T vol Σ ρ_k log ρ_k (cells with ρ ≤ 0 add
    /// no entropy).
    pub fn free_energy(&self, rho: &[f64]) -> f64 {
        let vol = self.grid.volume();
        let t = self.energy.temperature;
        let pot: f64 = self.v.iter().zip(rho).map(|(v, r)| v * r).sum::<f64>() * vol;
        let inter = self
            .w_times(rho)
            .map(|wr| 0.5 * vol * vol * wr.iter().zip(rho).map(|(a, r)| a * r).sum::<f64>())
            .unwrap_or(0.0);
        let ent = if t > 0.0 {
            t * vol
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
        rho.iter().sum::<f64>() * self.grid.volume()
    }

    /// Per axis the mean, then per axis the variance (midpoint rule).
    pub fn moments(&self, rho: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let d = self.grid.dim();
        let mass: f64 = rho.iter().sum();
        let mut mean = vec![0.0; d];
        for (k, r) in rho.iter().enumerate() {
            let c = self.grid.centre(k);
            for a in 0..d {
                mean[a] += c[a] * r / mass;
            }
        }
        let mut var = vec![0.0; d];
        for (k, r) in rho.iter().enumerate() {
            let c = self.grid.centre(k);
            for a in 0..d {
                var[a] += (c[a] - mean[a]).powi(2) * r / mass;
            }
        }
        (mean, var)
    }

    /// How the implicit solvers get the Jacobian (recorded with the run).
    pub(crate) fn jacobian_form(&self) -> &'static str {
        match (&self.w, &self.w_factors) {
            (None, _) => "exact, sparse (the stencil), faer's sparse LU",
            (Some(_), Some(_)) => "exact: the stencil (sparse) plus W's low-rank part (W = QΛQᵀ to 1e-12 relative), faer's sparse LU and Woodbury's identity",
            (Some(_), None) => "exact, dense (W couples every cell and is not of low rank)",
        }
    }

    /// The mass in the cells along the walls.
    pub(crate) fn edge_mass(&self, rho: &[f64]) -> f64 {
        rho.iter()
            .enumerate()
            .filter(|(k, _)| self.grid.on_edge(*k))
            .map(|(_, r)| r.abs())
            .sum::<f64>()
            * self.grid.volume()
    }

    /// Adds each face's −∂J/h to row a and +∂J/h to row b through `add(row, col, value)`.
    fn scatter(&self, f: &[[f64; 4]], add: &mut dyn FnMut(usize, usize, f64)) {
        for (face, j) in self.faces.iter().zip(f) {
            for (row, sign) in [(face.a, -1.0 / face.h), (face.b, 1.0 / face.h)] {
                add(row, face.a, sign * j[1]);
                add(row, face.b, sign * j[2]);
            }
        }
    }
}

impl VectorField for Pde<'_> {
    fn len(&self) -> usize {
        self.grid.len()
    }

    fn eval(&self, rho: &[f64], out: &mut [f64]) {
        let u = self.potential(rho);
        let f = self.fluxes(rho, &u);
        out.fill(0.0);
        for (face, j) in self.faces.iter().zip(&f) {
            out[face.a] -= j[0] / face.h;
            out[face.b] += j[0] / face.h;
        }
    }

    fn jac_mul(&self, rho: &[f64], dv: &[f64], out: &mut [f64]) {
        let u = self.potential(rho);
        let f = self.fluxes(rho, &u);
        let vol = self.grid.volume();
        // δU = vol W δρ (V does not depend on ρ).
        let du: Vec<f64> = self
            .w_times(dv)
            .map(|wd| wd.into_iter().map(|c| vol * c).collect())
            .unwrap_or_else(|| vec![0.0; dv.len()]);
        out.fill(0.0);
        for (face, j) in self.faces.iter().zip(&f) {
            let dj = j[1] * dv[face.a] + j[2] * dv[face.b] + j[3] * (du[face.b] - du[face.a]);
            out[face.a] -= dj / face.h;
            out[face.b] += dj / face.h;
        }
    }

    fn jacobian(&self, rho: &[f64], mut out: MatMut<'_, f64>) {
        let m = self.len();
        let u = self.potential(rho);
        let f = self.fluxes(rho, &u);
        let vol = self.grid.volume();
        out.fill(0.0);
        self.scatter(&f, &mut |r, c, v| out[(r, c)] += v);
        if let Some(w) = &self.w {
            // ∂(U_b − U_a)/∂ρ_k = vol (W_bk − W_ak)
            for (face, j) in self.faces.iter().zip(&f) {
                for (row, sign) in [(face.a, -1.0 / face.h), (face.b, 1.0 / face.h)] {
                    let c = sign * j[3] * vol;
                    for k in 0..m {
                        out[(row, k)] += c * (w[(k, face.b)] - w[(k, face.a)]);
                    }
                }
            }
        }
    }

    fn sparsity(&self) -> Option<&[Vec<usize>]> {
        self.pattern.as_deref()
    }

    fn jacobian_values(&self, rho: &[f64], values: &mut [f64]) -> bool {
        if self.w.is_some() {
            return false;
        }
        let u = self.potential(rho);
        let f = self.fluxes(rho, &u);
        self.local_values(&f, values)
    }

    /// S + L R: S the local fluxes' entries on the stencil, L R the interaction's pull,
    /// ∂(U_b − U_a)/∂ρ = vol (W_b − W_a) ≈ vol (Q_b − Q_a) diag(λ) Qᵀ.
    fn jacobian_sparse_low_rank(&self, rho: &[f64]) -> Option<crate::linalg::SparseLowRank> {
        let (q, lambda) = self.w_factors.as_ref()?;
        let pattern = self.pattern.as_ref()?;
        let u = self.potential(rho);
        let f = self.fluxes(rho, &u);
        let mut values = vec![0.0; pattern.iter().map(Vec::len).sum()];
        self.local_values(&f, &mut values);
        let (m, r) = (self.len(), lambda.len());
        let mut left = Mat::zeros(m, r);
        for (face, j) in self.faces.iter().zip(&f) {
            for (row, sign) in [(face.a, -1.0 / face.h), (face.b, 1.0 / face.h)] {
                for c in 0..r {
                    left[(row, c)] += sign * j[3] * (q[(face.b, c)] - q[(face.a, c)]);
                }
            }
        }
        let vol = self.grid.volume();
        let right = Mat::from_fn(r, m, |c, k| vol * lambda[c] * q[(k, c)]);
        Some(crate::linalg::SparseLowRank {
            values,
            left,
            right,
        })
    }
}

impl Pde<'_> {
    /// The local fluxes' Jacobian entries on the stencil pattern, column by column.
    fn local_values(&self, f: &[[f64; 4]], values: &mut [f64]) -> bool {
        let Some(pattern) = &self.pattern else {
            return false;
        };
        let mut start = Vec::with_capacity(pattern.len());
        let mut at = 0;
        for c in pattern {
            start.push(at);
            at += c.len();
        }
        values.fill(0.0);
        self.scatter(f, &mut |r, c, v| {
            let k = pattern[c]
                .binary_search(&r)
                .expect("a face's cells are in the pattern");
            values[start[c] + k] += v;
        });
        true
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

    #[test]
    fn grid_numbering_and_faces() {
        let g = Grid::new(&[[0.0, 3.0], [0.0, 2.0]], &[3, 4]);
        assert_eq!(g.len(), 12);
        assert_eq!(g.centre(5), [1.5, 0.75]);
        let faces = g.faces();
        // 2·4 faces along x1, 3·3 along x2.
        assert_eq!(faces.len(), 17);
        assert!(faces.iter().all(|f| {
            let (a, b) = (g.centre(f.a), g.centre(f.b));
            ((b[0] - a[0]) - f.h).abs() < 1e-12 && b[1] == a[1]
                || ((b[1] - a[1]) - f.h).abs() < 1e-12 && b[0] == a[0]
        }));
        assert!(g.on_edge(0) && !g.on_edge(5) && g.on_edge(11));
    }
}
