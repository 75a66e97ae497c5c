//! Distances of every sweep point to its reference, the widest run with the same α and seed
//! (same data, and by the nested draw of init::draw its first N initial particles are the
//! point's): at each time of `sweep.at`,
//! - `risk_gap`: |R_N − R_ref|, on the population risk when the problem trains on it, else on
//!   the test loss;
//! - `f_l2`: the RMS over test inputs of f_N − f_ref, the function-space L2 distance;
//! - `w2`: W2 between the two empirical measures of particles θ_j = (a_j, w_j[, b_j]): exact by
//!   optimal assignment when the reference's width is a multiple of the point's and at most
//!   `W2_EXACT_MAX` (the smaller cloud repeated to the reference's size), else sliced W2.
//!
//! - `radial_w2`: when the archive also holds a radial PDE run (Mei–Montanari–Nguyen's
//!   isotropic example), the 1-D W2 between the laws of r = ‖w‖ of the network and of the PDE,
//!   for every point, the widest included: the limit itself is the reference here.
//!
//! Mean-field theory predicts N^(−1/2) for the first two at fixed t (propagation of chaos); the
//! W2 of empirical measures in D dimensions decays more slowly, like N^(−1/D) for large D.

use super::{kind_of, Point};
use crate::archive::ArchiveReader;
use crate::error::{Error, Result};
use crate::measure::wasserstein::{w2_exact, w2_sliced, w2_sq_1d};
use faer::{Mat, MatRef, Par};
use rayon::prelude::*;
use std::path::Path;

/// Largest reference width at which W2 is exact.
pub const W2_EXACT_MAX: usize = 2048;
/// Directions of the sliced W2 beyond it.
pub const W2_SLICES: usize = 256;

/// A point's distances to its reference, one entry per time of `sweep.at` (NaN for the
/// reference itself and where an archive lacks the data).
#[derive(Debug, Clone, Default)]
pub struct ToReference {
    pub reference_width: usize,
    /// The times compared (`sweep.at`, or the reference's last save).
    pub t: Vec<f64>,
    pub risk_gap: Vec<f64>,
    pub f_l2: Vec<f64>,
    pub w2: Vec<f64>,
    /// 1-D W2 between the network's law of ‖w‖ and the radial PDE's (NaN without a PDE run).
    pub radial_w2: Vec<f64>,
    /// W2 by assignment (true) or sliced (false).
    pub w2_exact: bool,
}

/// Reads one per-time distance of a `ToReference`.
pub(crate) type Distance = fn(&ToReference) -> &Vec<f64>;

impl ToReference {
    /// The per-time distances by name, as the summary archives and the fits read them.
    pub(crate) const PER_TIME: [(&'static str, Distance); 4] = [
        ("risk_gap", |r| &r.risk_gap),
        ("f_l2", |r| &r.f_l2),
        ("w2", |r| &r.w2),
        ("radial_w2", |r| &r.radial_w2),
    ];
}

/// The first gd or gradient_flow run of an archive: the network's own dynamics.
pub(crate) fn nonlinear_run(a: &ArchiveReader, path: &Path) -> Result<String> {
    a.runs()
        .into_iter()
        .find(|r| matches!(kind_of(a, r).as_str(), "gd" | "sgd" | "gradient_flow"))
        .ok_or_else(|| Error::archive(path, "no gd, sgd or gradient_flow run to summarize"))
}

/// What one archive holds at the sweep's times.
struct Slices {
    width: usize,
    t: Vec<f64>,
    risk: Vec<f64>,
    f_test: Vec<Vec<f64>>,
    /// [N, D] particles per time, when saved.
    particles: Option<Vec<Mat<f64>>>,
    /// ‖w_j‖ of the network and the radial PDE's radii per time, when both are saved.
    radial: Option<RadialPair>,
}

/// Per time: the network's ‖w_j‖ and the radial PDE's radii.
type RadialPair = (Vec<Vec<f64>>, Vec<Vec<f64>>);

/// The radial PDE run's radii at `times`, and the network's ‖w_j‖ there (w… columns of
/// init/particles' `columns`).
fn radial(
    a: &ArchiveReader,
    path: &Path,
    times: &[f64],
    particles: &[Mat<f64>],
) -> Result<Option<RadialPair>> {
    let Some(pde) = a
        .runs()
        .into_iter()
        .find(|r| a.file.dataset(&format!("runs/{r}/radii")).is_ok())
    else {
        return Ok(None);
    };
    let t = a.read_1d(&format!("runs/{pde}/t"))?;
    let (shape, radii) = a.read(&format!("runs/{pde}/radii"))?;
    let m = shape.get(1).copied().unwrap_or(0);
    let w_cols = a.weight_columns();
    let mut pde_r = vec![];
    for &tau in times {
        let k = t
            .iter()
            .position(|s| (s - tau).abs() <= 1e-9 * (1.0 + tau.abs()))
            .ok_or_else(|| {
                Error::archive(
                    path,
                    format!("run {pde} has no save at t = {tau}: give it the network's t_end"),
                )
            })?;
        pde_r.push(radii[k * m..(k + 1) * m].to_vec());
    }
    let net_r = particles
        .iter()
        .map(|p| {
            (0..p.nrows())
                .map(|j| {
                    w_cols
                        .iter()
                        .map(|&c| p[(j, c)] * p[(j, c)])
                        .sum::<f64>()
                        .sqrt()
                })
                .collect()
        })
        .collect();
    Ok(Some((net_r, pde_r)))
}

fn slices(path: &Path, at: &[f64], population: bool) -> Result<Slices> {
    let a = ArchiveReader::open(path)?;
    let run = nonlinear_run(&a, path)?;
    let t = a.read_1d(&format!("runs/{run}/t"))?;
    let times = if at.is_empty() {
        vec![*t.last().ok_or_else(|| Error::archive(path, "no saves"))?]
    } else {
        at.to_vec()
    };
    let index = |tau: f64| -> Result<usize> {
        t.iter()
            .position(|s| (s - tau).abs() <= 1e-9 * (1.0 + tau.abs()))
            .ok_or_else(|| {
                Error::archive(
                    path,
                    format!("run {run} has no save at t = {tau} (sweep.at must list save times)"),
                )
            })
    };
    let ks: Vec<usize> = times.iter().map(|&tau| index(tau)).collect::<Result<_>>()?;
    let loss = a.read_1d(&format!(
        "runs/{run}/{}",
        if population {
            "loss_train"
        } else {
            "loss_test"
        }
    ))?;
    let (fshape, f) = a.read(&format!("runs/{run}/f_test"))?;
    let m = fshape.get(1).copied().unwrap_or(0);
    let particles = a.read(&format!("runs/{run}/particles")).ok();
    let width = particles
        .as_ref()
        .map(|(s, _)| s[1])
        .or_else(|| a.read("init/particles").ok().map(|(s, _)| s[0]))
        .unwrap_or(0);
    let particles: Option<Vec<Mat<f64>>> = particles.map(|(s, p)| {
        let (nn, dd) = (s[1], s[2]);
        ks.iter()
            .map(|&k| {
                MatRef::from_row_major_slice(&p[k * nn * dd..(k + 1) * nn * dd], nn, dd).to_owned()
            })
            .collect()
    });
    let radial = match &particles {
        Some(p) => radial(&a, path, &times, p)?,
        None => None,
    };
    Ok(Slices {
        width,
        t: times,
        risk: ks.iter().map(|&k| loss[k]).collect(),
        f_test: ks.iter().map(|&k| f[k * m..(k + 1) * m].to_vec()).collect(),
        particles,
        radial,
    })
}

fn w2(x: &Mat<f64>, reference: &Mat<f64>) -> Result<(f64, bool)> {
    let (n, m) = (x.nrows(), reference.nrows());
    if m <= W2_EXACT_MAX && n > 0 && m.is_multiple_of(n) {
        let rep = m / n;
        let xx = Mat::from_fn(m, x.ncols(), |i, k| x[(i / rep, k)]);
        Ok((w2_exact(xx.as_ref(), reference.as_ref(), Par::Seq)?, true))
    } else {
        Ok((
            w2_sliced(x.as_ref(), reference.as_ref(), W2_SLICES, 0)?,
            false,
        ))
    }
}

/// Fills `to_ref` of every point from the archives: each point against the widest point of
/// its (α, seed) group.
pub fn distances(points: &mut [Point], at: &[f64], population: bool) -> Result<()> {
    let cache: Vec<Slices> = points
        .iter()
        .map(|p| slices(&p.task.archive, at, population))
        .collect::<Result<_>>()?;
    let times = at.len().max(1);
    let key = |p: &Point| (p.task.alpha.to_bits(), p.task.seed);
    let refs: Vec<usize> = (0..points.len())
        .map(|i| {
            (0..points.len())
                .filter(|&j| key(&points[j]) == key(&points[i]))
                .max_by_key(|&j| (points[j].task.width, std::cmp::Reverse(j)))
                .unwrap_or(i)
        })
        .collect();
    // Each point's distances are independent (W2 by assignment dominates): one task each.
    let found: Vec<ToReference> = (0..points.len())
        .into_par_iter()
        .map(|i| -> Result<ToReference> {
            let (me, rf) = (&cache[i], &cache[refs[i]]);
            let mut out = ToReference {
                reference_width: rf.width,
                t: rf.t.clone(),
                risk_gap: vec![f64::NAN; times],
                f_l2: vec![f64::NAN; times],
                w2: vec![f64::NAN; times],
                radial_w2: vec![f64::NAN; times],
                w2_exact: false,
            };
            if let Some((net, pde)) = &me.radial {
                for (k, (x, y)) in net.iter().zip(pde).enumerate() {
                    out.radial_w2[k] = w2_sq_1d(x.clone(), y.clone()).sqrt();
                }
            }
            if refs[i] == i {
                return Ok(out);
            }
            for k in 0..times {
                out.risk_gap[k] = (me.risk[k] - rf.risk[k]).abs();
                let (f, g) = (&me.f_test[k], &rf.f_test[k]);
                if !f.is_empty() && f.len() == g.len() {
                    let s: f64 = f.iter().zip(g).map(|(x, y)| (x - y) * (x - y)).sum();
                    out.f_l2[k] = (s / f.len() as f64).sqrt();
                }
                if let (Some(p), Some(q)) = (&me.particles, &rf.particles) {
                    let (d, exact) = w2(&p[k], &q[k])?;
                    out.w2[k] = d;
                    out.w2_exact = exact;
                }
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    for (p, r) in points.iter_mut().zip(found) {
        p.to_ref = r;
    }
    Ok(())
}
