//! Divide and conquer for the symmetric tridiagonal eigenproblem T = V Λ Vᵀ, with the merge of
//! LAPACK's dlaed2/dlaed3 (Cuppen; Gu–Eisenstat).
//!
//! faer's divide and conquer multiplies every merge's full eigenvector matrices, deflated
//! columns included (n³ flops at the top of an order-n problem); LAPACK multiplies only the
//! columns that did not deflate, and only the half of each that is not zero. On the tridiagonal
//! of an n = 4000 NTK Gram a quarter of the top merge deflates, and LAPACK's solve took half of
//! faer's time (1.1 against 2.0–2.3 s). Here the merges above `LEAF` are ours and the leaves
//! faer's.
//!
//! A merge of T = diag(T₁, T₂) + ρ vvᵀ (v = e_{n₁} ± e_{n₁+1}) with Tᵢ = QᵢΛᵢQᵢᵀ is the
//! eigenproblem of D + r zzᵀ, z = diag(Q₁, Q₂)ᵀv/√2, r = 2|ρ|:
//! - **deflation:** a component with r|zᵢ| ≤ tol keeps (dᵢ, Qeᵢ); two poles closer than tol
//!   (after a rotation that moves z's weight onto one of them) keep the other;
//! - **secular equation** 1/r + Σ zᵢ²/(dᵢ − λ) = 0 for the rest, each root as an offset τ from
//!   its nearer pole (so λ − dᵢ keeps its digits), by a two-pole rational model safeguarded by
//!   bisection;
//! - **Löwner's formula** recomputes ẑ from the roots (Gu–Eisenstat), so the eigenvectors
//!   uᵢⱼ = ẑᵢ/(dᵢ − λⱼ) are orthogonal to working precision however close the roots;
//! - **two GEMMs**: the top half of the merged vectors from the columns of Q₁ that reach it, the
//!   bottom half from those of Q₂ (a rotated pair reaches both).
//!
//! Every root and vector is computed on its own and the GEMMs are faer's, so the result does
//! not depend on the thread count.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd;
use faer::linalg::matmul::matmul;
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

/// Orders up to this go to faer's solver whole.
pub const LEAF: usize = 1024;

/// Eigenvalues (ascending) and eigenvectors (columns) of the symmetric tridiagonal matrix with
/// diagonal `diag` and off-diagonal `sub` (at least n − 1 entries). None if a leaf's solver
/// fails to converge.
pub fn tridiagonal_eigen(diag: &[f64], sub: &[f64], par: Par) -> Option<(Vec<f64>, Mat<f64>)> {
    scaled(diag, &sub[..diag.len().saturating_sub(1)], LEAF, par)
}

/// `solve` on T/‖T‖_max: the deflation tolerance compares eigenvalues with the unit-length z,
/// which is meant for a matrix of norm about 1 (LAPACK's dstedc scales the same way).
fn scaled(d: &[f64], e: &[f64], leaf: usize, par: Par) -> Option<(Vec<f64>, Mat<f64>)> {
    let norm = d.iter().chain(e).fold(0.0f64, |m, x| m.max(x.abs()));
    if !norm.is_finite() {
        return None;
    }
    if norm == 0.0 {
        return Some((vec![0.0; d.len()], Mat::identity(d.len(), d.len())));
    }
    let ds: Vec<f64> = d.iter().map(|x| x / norm).collect();
    let es: Vec<f64> = e.iter().map(|x| x / norm).collect();
    let (mut l, mut v) = solve(&ds, &es, leaf, par)?;
    sort_pairs(&mut l, &mut v);
    l.iter_mut().for_each(|x| *x *= norm);
    Some((l, v))
}

/// `tridiagonal_eigen` with merges down to order `leaf` (small in the tests, to reach many).
fn solve(d: &[f64], e: &[f64], leaf: usize, par: Par) -> Option<(Vec<f64>, Mat<f64>)> {
    let n = d.len();
    if n <= leaf.max(2) {
        return faer_leaf(d, e, par);
    }
    let n1 = n / 2;
    let rho = e[n1 - 1];
    let mut d1 = d[..n1].to_vec();
    let mut d2 = d[n1..].to_vec();
    d1[n1 - 1] -= rho.abs();
    d2[0] -= rho.abs();
    let (e1, e2) = (&e[..n1 - 1], &e[n1..]);
    let (top, bottom) = if par.degree() > 1 {
        rayon::join(|| solve(&d1, e1, leaf, par), || solve(&d2, e2, leaf, par))
    } else {
        (solve(&d1, e1, leaf, par), solve(&d2, e2, leaf, par))
    };
    let (top, bottom) = (top?, bottom?);
    Some(merge(top, bottom, rho, par))
}

/// faer's tridiagonal solver.
fn faer_leaf(d: &[f64], e: &[f64], par: Par) -> Option<(Vec<f64>, Mat<f64>)> {
    let n = d.len();
    let mut sub = e.to_vec();
    sub.resize(n, 0.0);
    let mut s = faer::diag::Diag::<f64>::zeros(n);
    let mut u = Mat::<f64>::zeros(n, n);
    let mut buf = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        n,
        evd::ComputeEigenvectors::Yes,
        par,
        Default::default(),
    ));
    let (dc, sc) = (faer::ColRef::from_slice(d), faer::ColRef::from_slice(&sub));
    evd::tridiagonal_self_adjoint_evd(
        dc.as_diagonal(),
        sc.as_diagonal(),
        s.as_mut(),
        Some(u.as_mut()),
        par,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .ok()?;
    Some((s.column_vector().iter().copied().collect(), u))
}

/// Which halves of the merged order a column of diag(Q₁, Q₂) (or a rotated pair) touches.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Reach {
    Top,
    Both,
    Bottom,
}

/// A column of the merge's eigenvector basis: one of Q₁'s or Q₂'s, or a rotated combination.
enum Column {
    Top(usize),
    Bottom(usize),
    Explicit(Vec<f64>, Reach),
}

struct Basis<'a> {
    q1: MatRef<'a, f64>,
    q2: MatRef<'a, f64>,
    cols: Vec<Column>,
}

impl Basis<'_> {
    fn n1(&self) -> usize {
        self.q1.nrows()
    }

    fn reach(&self, c: usize) -> Reach {
        match &self.cols[c] {
            Column::Top(_) => Reach::Top,
            Column::Bottom(_) => Reach::Bottom,
            Column::Explicit(_, r) => *r,
        }
    }

    /// Entry i of column c (rows of T₁ first).
    fn at(&self, c: usize, i: usize) -> f64 {
        let n1 = self.n1();
        match &self.cols[c] {
            Column::Top(j) => {
                if i < n1 {
                    self.q1[(i, *j)]
                } else {
                    0.0
                }
            }
            Column::Bottom(j) => {
                if i >= n1 {
                    self.q2[(i - n1, *j)]
                } else {
                    0.0
                }
            }
            Column::Explicit(v, _) => v[i],
        }
    }

    fn dense(&self, c: usize) -> Vec<f64> {
        (0..self.n1() + self.q2.nrows())
            .map(|i| self.at(c, i))
            .collect()
    }

    /// (q_p, q_j) ← (c q_p + s q_j, c q_j − s q_p), LAPACK's drot in the deflation.
    fn rotate(&mut self, p: usize, j: usize, c: f64, s: f64) {
        let (vp, vj) = (self.dense(p), self.dense(j));
        let reach = if self.reach(p) == self.reach(j) {
            self.reach(p)
        } else {
            Reach::Both
        };
        let np = vp.iter().zip(&vj).map(|(a, b)| c * a + s * b).collect();
        let nj = vp.iter().zip(&vj).map(|(a, b)| c * b - s * a).collect();
        self.cols[p] = Column::Explicit(np, reach);
        self.cols[j] = Column::Explicit(nj, reach);
    }

    /// Rows `rows` (of the merged order) of column c into `dst`.
    fn copy_rows(&self, c: usize, rows: std::ops::Range<usize>, dst: &mut [f64]) {
        let n1 = self.n1();
        match &self.cols[c] {
            Column::Top(j) if rows.start == 0 && rows.end >= n1 => {
                dst[..n1].copy_from_slice(col(self.q1, *j));
                dst[n1..].fill(0.0);
            }
            Column::Bottom(j) if rows.start <= n1 && rows.end == n1 + self.q2.nrows() => {
                dst[..n1 - rows.start].fill(0.0);
                dst[n1 - rows.start..].copy_from_slice(col(self.q2, *j));
            }
            Column::Explicit(v, _) => dst.copy_from_slice(&v[rows]),
            _ => rows.zip(dst).for_each(|(i, d)| *d = self.at(c, i)),
        }
    }
}

fn col(m: MatRef<'_, f64>, j: usize) -> &[f64] {
    m.col(j)
        .try_as_col_major()
        .expect("column-major eigenvectors")
        .as_slice()
}

/// Merges the eigendecompositions of T₁ and T₂ coupled by ρ (see the module comment).
fn merge(
    (l1, q1): (Vec<f64>, Mat<f64>),
    (l2, q2): (Vec<f64>, Mat<f64>),
    rho: f64,
    par: Par,
) -> (Vec<f64>, Mat<f64>) {
    let (n1, n2) = (l1.len(), l2.len());
    let n = n1 + n2;
    let sign = if rho < 0.0 { -1.0 } else { 1.0 };
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let mut z: Vec<f64> = (0..n1)
        .map(|j| h * q1[(n1 - 1, j)])
        .chain((0..n2).map(|j| sign * h * q2[(0, j)]))
        .collect();
    let mut d: Vec<f64> = l1.iter().chain(&l2).copied().collect();
    let r = 2.0 * rho.abs();
    let mut basis = Basis {
        q1: q1.as_ref(),
        q2: q2.as_ref(),
        cols: (0..n1)
            .map(Column::Top)
            .chain((0..n2).map(Column::Bottom))
            .collect(),
    };
    // Poles in ascending order (both halves already are: a merge of two sorted lists).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| d[a].total_cmp(&d[b]));
    let dmax = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let zmax = z.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let tol = 8.0 * f64::EPSILON * dmax.max(zmax);
    let mut kept: Vec<usize> = vec![];
    let mut deflated: Vec<usize> = vec![];
    let mut prev: Option<usize> = None;
    for &j in &order {
        if r * z[j].abs() <= tol {
            deflated.push(j);
            continue;
        }
        let Some(p) = prev else {
            prev = Some(j);
            continue;
        };
        // Rotate z's weight from pole p onto pole j; if the coupling it leaves is below tol,
        // p deflates.
        let tau = z[p].hypot(z[j]);
        let (c, s) = (z[j] / tau, -z[p] / tau);
        let t = d[j] - d[p];
        if (t * c * s).abs() <= tol {
            z[j] = tau;
            z[p] = 0.0;
            basis.rotate(p, j, c, s);
            let dp = d[p] * c * c + d[j] * s * s;
            d[j] = d[p] * s * s + d[j] * c * c;
            d[p] = dp;
            deflated.push(p);
        } else {
            kept.push(p);
        }
        prev = Some(j);
    }
    kept.extend(prev);
    // The rotations move poles by less than tol; the secular solve needs them in order.
    kept.sort_by(|&a, &b| d[a].total_cmp(&d[b]));
    let k = kept.len();
    let ds: Vec<f64> = kept.iter().map(|&c| d[c]).collect();
    let zs: Vec<f64> = kept.iter().map(|&c| z[c]).collect();
    let roots: Vec<(usize, f64)> = (0..k)
        .into_par_iter()
        .map(|j| secular_root(&ds, &zs, r, j))
        .collect();
    // λ_j − d_i with λ_j = d_{o_j} + τ_j.
    let gap = |j: usize, i: usize| (ds[roots[j].0] - ds[i]) + roots[j].1;
    let zhat: Vec<f64> = (0..k)
        .into_par_iter()
        .map(|i| {
            let mut prod = gap(i, i);
            for m in (0..k).filter(|&m| m != i) {
                prod *= gap(m, i) / (ds[m] - ds[i]);
            }
            prod.abs().sqrt().copysign(zs[i])
        })
        .collect();
    // The kept columns grouped by reach (Top, Both, Bottom), each group in pole order: the
    // rows of U in this order make the top product's rows Top + Both and the bottom one's
    // Both + Bottom, each a contiguous block.
    let mut group: Vec<usize> = (0..k).collect();
    group.sort_by_key(|&i| basis.reach(kept[i]));
    let count = |r: Reach| group.iter().filter(|&&i| basis.reach(kept[i]) == r).count();
    let (c_top, c_both) = (count(Reach::Top), count(Reach::Both));
    let mut u = Mat::<f64>::zeros(k, k);
    u.par_col_iter_mut().enumerate().for_each(|(j, mut uj)| {
        let mut norm = 0.0;
        for (row, &i) in group.iter().enumerate() {
            let v = zhat[i] / -gap(j, i);
            uj[row] = v;
            norm += v * v;
        }
        let inv = 1.0 / norm.sqrt();
        uj.iter_mut().for_each(|v| *v *= inv);
    });
    let gather = |rows: std::ops::Range<usize>, members: &[usize]| {
        let mut m = Mat::<f64>::zeros(rows.len(), members.len());
        m.par_col_iter_mut().zip(members).for_each(|(mut dst, &i)| {
            let dst = dst
                .rb_mut()
                .try_as_col_major_mut()
                .expect("contiguous")
                .as_slice_mut();
            basis.copy_rows(kept[i], rows.clone(), dst);
        });
        m
    };
    // Columns 0..k: the secular roots' vectors, written by the two products in place; k..n:
    // the deflated poles' columns. Left unsorted (the next merge sorts its poles itself;
    // `scaled` sorts the final result once, in place).
    let mut v = Mat::<f64>::zeros(n, n);
    let top_members = &group[..c_top + c_both];
    let bottom_members = &group[c_top..];
    if !top_members.is_empty() {
        let a = gather(0..n1, top_members);
        matmul(
            v.as_mut().submatrix_mut(0, 0, n1, k),
            Accum::Replace,
            a.as_ref(),
            u.as_ref().subrows(0, top_members.len()),
            1.0,
            par,
        );
    }
    if !bottom_members.is_empty() {
        let a = gather(n1..n, bottom_members);
        matmul(
            v.as_mut().submatrix_mut(n1, 0, n2, k),
            Accum::Replace,
            a.as_ref(),
            u.as_ref().subrows(c_top, bottom_members.len()),
            1.0,
            par,
        );
    }
    v.as_mut()
        .subcols_mut(k, n - k)
        .par_col_iter_mut()
        .zip(deflated.par_iter())
        .for_each(|(mut dst, &c)| {
            let dst = dst
                .rb_mut()
                .try_as_col_major_mut()
                .expect("contiguous")
                .as_slice_mut();
            basis.copy_rows(c, 0..n, dst);
        });
    let values = (0..k)
        .map(|j| ds[roots[j].0] + roots[j].1)
        .chain(deflated.iter().map(|&c| d[c]))
        .collect();
    (values, v)
}

/// Sorts the eigenvalues ascending and permutes the vectors' columns to match, in place
/// (cycle by cycle through one column buffer).
fn sort_pairs(values: &mut [f64], v: &mut Mat<f64>) {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    // Position p receives what was at order[p].
    let sorted: Vec<f64> = order.iter().map(|&o| values[o]).collect();
    values.copy_from_slice(&sorted);
    let mut done = vec![false; n];
    let mut buf = vec![0.0; v.nrows()];
    for start in 0..n {
        if done[start] || order[start] == start {
            done[start] = true;
            continue;
        }
        buf.copy_from_slice(col(v.as_ref(), start));
        let mut p = start;
        loop {
            done[p] = true;
            let from = order[p];
            if from == start {
                col_mut(v, p).copy_from_slice(&buf);
                break;
            }
            let (dst, src) = two_cols(v, p, from);
            dst.copy_from_slice(src);
            p = from;
        }
    }
}

fn col_mut(m: &mut Mat<f64>, j: usize) -> &mut [f64] {
    m.col_mut(j)
        .try_as_col_major_mut()
        .expect("column-major")
        .as_slice_mut()
}

/// Columns p (mutable) and q ≠ p of m.
fn two_cols(m: &mut Mat<f64>, p: usize, q: usize) -> (&mut [f64], &[f64]) {
    let rows = m.nrows();
    let (lo, hi) = (p.min(q), p.max(q));
    let (left, right) = m.as_mut().split_at_col_mut(hi);
    let a = left
        .col_mut(lo)
        .try_as_col_major_mut()
        .expect("column-major")
        .as_slice_mut();
    let b = right
        .col_mut(0)
        .try_as_col_major_mut()
        .expect("column-major")
        .as_slice_mut();
    debug_assert_eq!(a.len(), rows);
    if p < q {
        (a, b)
    } else {
        (b, a)
    }
}

/// Root j of 1/r + Σ zᵢ²/(dᵢ − λ) = 0 (poles d ascending, r > 0, no zᵢ zero) as (o, τ):
/// λ = d_o + τ with d_o the nearer of the poles around it. The model of each step keeps the two
/// poles that bracket the root exact and the rest as a constant (the "middle way" of LAPACK's
/// dlaed4); a step that leaves the bracket is a bisection instead.
fn secular_root(d: &[f64], z: &[f64], r: f64, j: usize) -> (usize, f64) {
    let k = d.len();
    let inv_r = 1.0 / r;
    let secular = |o: usize, tau: f64| {
        inv_r
            + d.iter()
                .zip(z)
                .map(|(di, zi)| zi * zi / ((di - d[o]) - tau))
                .sum::<f64>()
    };
    // The bracket (lo, hi) of τ about origin o, with g(lo) < 0 < g(hi).
    let (o, mut lo, mut hi) = if j + 1 == k {
        (j, 0.0, r * z.iter().map(|v| v * v).sum::<f64>())
    } else {
        let gap = d[j + 1] - d[j];
        let mid = 0.5 * gap;
        if secular(j, mid) >= 0.0 {
            (j, 0.0, mid)
        } else {
            (j + 1, mid - gap, 0.0)
        }
    };
    // The poles next to the root, relative to the origin.
    let a = d[j] - d[o];
    let b = if j + 1 < k {
        d[j + 1] - d[o]
    } else {
        f64::INFINITY
    };
    let mut tau = 0.5 * (lo + hi);
    for _ in 0..200 {
        let (mut psi, mut dpsi, mut phi, mut dphi) = (0.0, 0.0, 0.0, 0.0);
        for (i, (di, zi)) in d.iter().zip(z).enumerate() {
            let t = 1.0 / ((di - d[o]) - tau);
            let w = zi * zi * t;
            if i <= j {
                psi += w;
                dpsi += w * t;
            } else {
                phi += w;
                dphi += w * t;
            }
        }
        let g = inv_r + psi + phi;
        let err =
            f64::EPSILON * (8.0 * (phi - psi) + 2.0 * inv_r + 3.0 * tau.abs() * (dpsi + dphi));
        if g.abs() <= err {
            break;
        }
        if g < 0.0 {
            lo = tau;
        } else {
            hi = tau;
        }
        if hi - lo <= 2.0 * f64::EPSILON * lo.abs().max(hi.abs()) {
            break;
        }
        // ψ(x) ≈ p₁ + s₁/(a − x), φ(x) ≈ p₂ + s₂/(b − x), matched in value and slope at τ.
        let s1 = dpsi * (a - tau) * (a - tau);
        let mut c = inv_r + psi - dpsi * (a - tau);
        let next = if b.is_finite() {
            let s2 = dphi * (b - tau) * (b - tau);
            c += phi - dphi * (b - tau);
            two_pole_root(c, a, s1, b, s2)
        } else {
            a + s1 / (c + phi)
        };
        tau = if next > lo && next < hi {
            next
        } else {
            0.5 * (lo + hi)
        };
    }
    (o, tau)
}

/// The root in (a, b) of c + s₁/(a − x) + s₂/(b − x) = 0 (s₁, s₂ ≥ 0), or NaN.
fn two_pole_root(c: f64, a: f64, s1: f64, b: f64, s2: f64) -> f64 {
    // c x² − β x + γ = 0 with β = c(a + b) + s₁ + s₂, γ = c ab + s₁ b + s₂ a.
    let beta = c * (a + b) + s1 + s2;
    let gamma = c * a * b + s1 * b + s2 * a;
    if c == 0.0 {
        return gamma / beta;
    }
    let disc = (beta * beta - 4.0 * c * gamma).max(0.0).sqrt();
    let q = 0.5 * (beta + disc.copysign(beta));
    let (x1, x2) = (q / c, gamma / q);
    let inside = |x: f64| x > a && x < b;
    if inside(x2) {
        x2
    } else if inside(x1) {
        x1
    } else {
        f64::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn residuals(d: &[f64], e: &[f64], l: &[f64], v: &Mat<f64>) -> (f64, f64) {
        let n = d.len();
        let mut res = 0.0f64;
        for j in 0..n {
            for i in 0..n {
                let mut tv = d[i] * v[(i, j)];
                if i > 0 {
                    tv += e[i - 1] * v[(i - 1, j)];
                }
                if i + 1 < n {
                    tv += e[i] * v[(i + 1, j)];
                }
                res = res.max((tv - l[j] * v[(i, j)]).abs());
            }
        }
        let vtv = v.transpose() * v;
        let mut orth = 0.0f64;
        for j in 0..n {
            for i in 0..n {
                let want = if i == j { 1.0 } else { 0.0 };
                orth = orth.max((vtv[(i, j)] - want).abs());
            }
        }
        (res, orth)
    }

    fn check(name: &str, d: &[f64], e: &[f64], leaf: usize) {
        let n = d.len();
        let (l, v) = scaled(d, e, leaf, Par::rayon(2)).expect("converges");
        let norm = d
            .iter()
            .chain(e)
            .fold(0.0f64, |m, x| m.max(x.abs()))
            .max(f64::MIN_POSITIVE);
        let (res, orth) = residuals(d, e, &l, &v);
        let scale = n as f64 * f64::EPSILON;
        assert!(res <= 8.0 * scale * norm, "{name}: ‖TV − VΛ‖ = {res:e}");
        assert!(orth <= 8.0 * scale, "{name}: ‖VᵀV − I‖ = {orth:e}");
        assert!(l.windows(2).all(|w| w[0] <= w[1]), "{name}: not ascending");
        let (mut reference, _) = faer_leaf(d, e, Par::Seq).unwrap();
        reference.sort_by(f64::total_cmp);
        for (a, b) in l.iter().zip(&reference) {
            assert!(
                (a - b).abs() <= 8.0 * scale * norm,
                "{name}: λ {a} against faer's {b}"
            );
        }
    }

    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }
    }

    /// Random matrices, with merges from order 8 up, against the definition and faer.
    #[test]
    fn random_tridiagonals() {
        for (n, seed) in [(3, 1), (17, 2), (64, 3), (301, 4), (600, 5)] {
            let mut next = lcg(seed);
            let d: Vec<f64> = (0..n).map(|_| next()).collect();
            let e: Vec<f64> = (0..n - 1).map(|_| next()).collect();
            check(&format!("random n = {n}"), &d, &e, 8);
        }
    }

    /// Wilkinson's W⁺ (pairs of eigenvalues equal to many digits) and glued copies of it:
    /// the deflation by rotation, and eigenvalues agreeing to far below tol.
    #[test]
    fn wilkinson_and_glued_wilkinson() {
        let w = |m: usize| -> Vec<f64> {
            (0..2 * m + 1)
                .map(|i| (m as f64 - i as f64).abs())
                .collect()
        };
        let d = w(50);
        let e = vec![1.0; d.len() - 1];
        check("W+ 101", &d, &e, 8);
        let mut d = vec![];
        let mut e = vec![];
        for g in 0..6 {
            if g > 0 {
                e.push(1e-10);
            }
            d.extend(w(10));
            e.extend(vec![1.0; 20]);
        }
        check("glued W+", &d, &e, 8);
    }

    /// Zero couplings (a merge with r = 0), a diagonal with repeated values, and tiny entries.
    #[test]
    fn uncoupled_repeated_and_tiny() {
        let d: Vec<f64> = (0..40).map(|i| (i % 4) as f64).collect();
        let e = vec![0.0; 39];
        check("diagonal", &d, &e, 8);
        let d = vec![2.0; 64];
        let mut e = vec![1.0; 63];
        e[31] = 0.0;
        e[15] = 1e-300;
        check("split Toeplitz", &d, &e, 8);
        let mut next = lcg(9);
        let d: Vec<f64> = (0..100).map(|_| 1e-150 * next()).collect();
        let e: Vec<f64> = (0..99).map(|_| 1e-150 * next()).collect();
        check("tiny", &d, &e, 8);
    }

    #[test]
    fn any_thread_count_gives_the_same_bits() {
        let mut next = lcg(11);
        let d: Vec<f64> = (0..700).map(|_| next()).collect();
        let e: Vec<f64> = (0..699).map(|_| next()).collect();
        let (l1, v1) = solve(&d, &e, 64, Par::Seq).unwrap();
        let (l2, v2) = solve(&d, &e, 64, Par::rayon(2)).unwrap();
        assert_eq!(l1, l2);
        assert!(v1 == v2);
    }
}
