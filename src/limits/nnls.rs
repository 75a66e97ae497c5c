//! Non-negative least squares, Lawson–Hanson active-set method, in normal-equation form:
//! min_{x ≥ 0} ½ xᵀQx − rᵀx, which is min_{x ≥ 0} ½‖Ax − b‖² for Q = AᵀA and r = Aᵀb.
//!
//! The Gram form suits the saddle-to-saddle algorithm: its Q is a sub-block of XᵀX/n and changes
//! by one column between calls, so a warm start from the previous solution usually needs one
//! Cholesky solve.

use faer::linalg::solvers::SolveCore;
use faer::{Conj, Mat, MatRef, Side};

/// Why a solve failed.
#[derive(Debug, Clone, PartialEq)]
pub enum NnlsError {
    /// The passive columns are linearly dependent: the Gram sub-block is not positive definite.
    Singular { columns: Vec<usize> },
    /// The active-set loop did not finish in its iteration budget.
    NoConvergence { iterations: usize },
}

impl std::fmt::Display for NnlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NnlsError::Singular { columns } => write!(
                f,
                "the columns {columns:?} are linearly dependent (the data are not in general position)"
            ),
            NnlsError::NoConvergence { iterations } => {
                write!(f, "no convergence after {iterations} active-set iterations")
            }
        }
    }
}

/// The solution and how many least-squares solves it took.
#[derive(Debug, Clone)]
pub struct Nnls {
    pub x: Vec<f64>,
    pub solves: usize,
}

/// Solves min_{x ≥ 0} ½xᵀQx − rᵀx. `warm` is a feasible starting point (x ≥ 0, e.g. the previous
/// solution of a nearby problem); `tol` is the optimality tolerance on the gradient r − Qx.
pub fn nnls_gram(
    q: MatRef<'_, f64>,
    r: &[f64],
    warm: Option<&[f64]>,
    tol: f64,
) -> Result<Nnls, NnlsError> {
    let m = r.len();
    let mut x = match warm {
        Some(w) => w.iter().map(|&v| v.max(0.0)).collect(),
        None => vec![0.0; m],
    };
    let mut passive: Vec<usize> = (0..m).filter(|&i| x[i] > 0.0).collect();
    let mut solves = 0;
    let budget = 3 * m + 30;
    // A warm start is feasible but not optimal on its passive set: restore optimality first.
    let mut pending_inner = !passive.is_empty();
    let mut newest: Option<usize> = None;
    for _ in 0..budget {
        if pending_inner {
            // Inner loop: solve on the passive set, step back to feasibility if needed.
            loop {
                let z = solve_on(q, r, &passive)?;
                solves += 1;
                if z.iter().all(|&v| v > 0.0) {
                    for (&i, &v) in passive.iter().zip(&z) {
                        x[i] = v;
                    }
                    break;
                }
                if let Some(j) = newest {
                    let pos = passive.iter().position(|&i| i == j);
                    if let Some(p) = pos.filter(|&p| z[p] <= 0.0 && x[j] == 0.0) {
                        // Round-off: the entering column cannot move. The current x is optimal to
                        // working precision.
                        passive.remove(p);
                        return Ok(Nnls { x, solves });
                    }
                }
                // Largest step from x toward z that keeps x ≥ 0; the blocking column leaves.
                let mut step = 1.0f64;
                let mut blocking = passive[0];
                for (&i, &zi) in passive.iter().zip(&z) {
                    if zi <= 0.0 {
                        let s = x[i] / (x[i] - zi);
                        if s < step {
                            step = s;
                            blocking = i;
                        }
                    }
                }
                for (&i, &zi) in passive.iter().zip(&z) {
                    x[i] += step * (zi - x[i]);
                }
                let xmax = passive.iter().fold(0.0f64, |a, &i| a.max(x[i]));
                let zs: Vec<(usize, f64)> = passive.iter().copied().zip(z).collect();
                passive.clear();
                for (i, zi) in zs {
                    let at_zero = i == blocking || (zi <= 0.0 && x[i] <= 1e-14 * xmax);
                    if at_zero || x[i] <= 0.0 {
                        x[i] = 0.0;
                    } else {
                        passive.push(i);
                    }
                }
                newest = None;
                if passive.is_empty() {
                    break;
                }
            }
        }
        // Outer loop: the most violated dual constraint enters.
        let w = gradient(q, r, &x);
        let entering = (0..m)
            .filter(|i| !passive.contains(i))
            .max_by(|&a, &b| w[a].total_cmp(&w[b]));
        match entering {
            Some(j) if w[j] > tol => {
                passive.push(j);
                newest = Some(j);
                pending_inner = true;
            }
            _ => return Ok(Nnls { x, solves }),
        }
    }
    Err(NnlsError::NoConvergence { iterations: budget })
}

/// r − Qx: the negative gradient of the objective.
fn gradient(q: MatRef<'_, f64>, r: &[f64], x: &[f64]) -> Vec<f64> {
    let m = r.len();
    let mut w = r.to_vec();
    for (j, &xj) in x.iter().enumerate() {
        if xj != 0.0 {
            let col = q.col(j);
            for (i, wi) in w.iter_mut().enumerate().take(m) {
                *wi -= col[i] * xj;
            }
        }
    }
    w
}

/// Solves Q_PP z = r_P by Cholesky.
fn solve_on(q: MatRef<'_, f64>, r: &[f64], passive: &[usize]) -> Result<Vec<f64>, NnlsError> {
    let k = passive.len();
    let sub = Mat::from_fn(k, k, |a, b| q[(passive[a], passive[b])]);
    let singular = || NnlsError::Singular {
        columns: passive.to_vec(),
    };
    let llt = sub.llt(Side::Lower).map_err(|_| singular())?;
    // Cholesky of an exactly singular Gram matrix can succeed on round-off; a pivot that small
    // against the diagonal means the passive columns are dependent to working precision.
    let l = llt.L();
    let qmax = (0..k).map(|a| sub[(a, a)]).fold(0.0f64, f64::max);
    if (0..k).any(|a| l[(a, a)] * l[(a, a)] <= 1e-13 * qmax) {
        return Err(singular());
    }
    let mut rhs = Mat::from_fn(k, 1, |a, _| r[passive[a]]);
    llt.solve_in_place_with_conj(Conj::No, rhs.as_mut());
    Ok((0..k).map(|a| rhs[(a, 0)]).collect())
}
