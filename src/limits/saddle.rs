//! The saddle-to-saddle limit of diagonal linear networks at vanishing initialization (Pesme &
//! Flammarion 2023, Algorithm 1; shared/papers/saddle_to_saddle.md §1.4).
//!
//! Notation: L(β) = ‖Xβ − y‖²/(2n), g = ∇L(β) = Xᵀ(Xβ − y)/n. The dual variable
//! s(τ) = −∫₀^τ ∇L(β°(σ)) dσ lies in the subdifferential ∂‖β°(τ)‖₁ at every accelerated time τ,
//! so |s_i| ≤ 1 and s_i = sign(β_i) on the support. Between jumps β° sits at a saddle and s moves
//! linearly; a jump happens when an inactive s_i reaches ±1 (or an active-but-zero one crosses
//! to the opposite bound), and the new saddle minimizes L on the sign face of the active set,
//! an NNLS problem.

use super::nnls::{nnls_gram, NnlsError};
pub use crate::model::diagonal::loss_grad;
use faer::{Mat, MatRef};

/// One saddle of the path: the plateau β° = beta on (t, next t).
#[derive(Debug, Clone)]
pub struct Saddle {
    /// Accelerated time at which the flow arrives at this saddle (0 for β = 0).
    pub t: f64,
    pub beta: Vec<f64>,
    /// The dual variable s(t) ∈ ∂‖β‖₁.
    pub s: Vec<f64>,
    pub loss: f64,
    /// The coordinate whose |s_i| reached 1 at this jump.
    pub entered: Option<usize>,
    /// Coordinates of the previous support that the refit set to zero.
    pub left: Vec<usize>,
}

/// The whole path: β_0 = 0, β_1, …, β_p = the minimum-ℓ1 minimizer of L.
#[derive(Debug, Clone)]
pub struct SaddlePath {
    pub saddles: Vec<Saddle>,
    /// ‖∇L(0)‖_∞; the first jump is at 1/‖∇L(0)‖_∞.
    pub grad0_inf: f64,
    /// Total least-squares solves inside NNLS.
    pub solves: usize,
}

impl SaddlePath {
    /// Jump times t_1 < t_2 < … (the saddles' arrival times after β_0).
    pub fn jump_times(&self) -> Vec<f64> {
        self.saddles[1..].iter().map(|s| s.t).collect()
    }

    /// Midpoints of the plateaus (0, t_1), (t_1, t_2), …, and (t_p, tau_end) if tau_end > t_p.
    pub fn plateau_midpoints(&self, tau_end: f64) -> Vec<(usize, f64)> {
        let s = &self.saddles;
        let mut out = vec![];
        for k in 0..s.len() {
            let end = s.get(k + 1).map(|n| n.t).unwrap_or(tau_end);
            if end > s[k].t {
                out.push((k, 0.5 * (s[k].t + end)));
            }
        }
        out
    }
}

/// Why the algorithm could not finish.
#[derive(Debug, Clone)]
pub enum SaddleError {
    Nnls {
        jump: usize,
        source: NnlsError,
    },
    /// No coordinate can move although the gradient is not zero.
    Stalled {
        jump: usize,
        grad_inf: f64,
    },
    TooManyJumps {
        jumps: usize,
    },
}

impl std::fmt::Display for SaddleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaddleError::Nnls { jump, source } => {
                write!(f, "the refit at jump {jump} failed: {source}")
            }
            SaddleError::Stalled { jump, grad_inf } => write!(
                f,
                "stalled at jump {jump}: ‖∇L‖∞ = {grad_inf:e} but no dual coordinate moves"
            ),
            SaddleError::TooManyJumps { jumps } => {
                write!(f, "no minimizer of L reached after {jumps} jumps")
            }
        }
    }
}

/// Runs Algorithm 1 on (X, y). `rel_tol` scales with ‖∇L(0)‖_∞: the path ends when
/// ‖∇L(β)‖_∞ ≤ rel_tol·‖∇L(0)‖_∞.
pub fn saddle_path(x: MatRef<'_, f64>, y: &[f64], rel_tol: f64) -> Result<SaddlePath, SaddleError> {
    let (n, d) = (x.nrows(), x.ncols());
    let (loss0, mut g) = loss_grad(x, y, &vec![0.0; d]);
    let grad0_inf = inf_norm(&g);
    let mut saddles = vec![Saddle {
        t: 0.0,
        beta: vec![0.0; d],
        s: vec![0.0; d],
        loss: loss0,
        entered: None,
        left: vec![],
    }];
    let tol = rel_tol * grad0_inf;
    let mut solves = 0;
    let max_jumps = 20 * d + 1000;
    let (mut t, mut s, mut beta) = (0.0, vec![0.0f64; d], vec![0.0f64; d]);
    while inf_norm(&g) > tol {
        let jump = saddles.len();
        if jump > max_jumps {
            return Err(SaddleError::TooManyJumps { jumps: max_jumps });
        }
        // Time until each dual coordinate hits a bound it can cross into.
        let mut best: Option<(f64, usize)> = None;
        for i in 0..d {
            let delta = if s[i].abs() == 1.0 {
                // Active: on the support ∂_iL = 0 by KKT; at zero it may only move inwards,
                // and then reaches the opposite bound after 2/|g_i|.
                if beta[i] != 0.0 || s[i] * g[i] <= tol {
                    continue;
                }
                2.0 / g[i].abs()
            } else if g[i].abs() > tol {
                (1.0 + s[i] * g[i].signum()) / g[i].abs()
            } else {
                continue;
            };
            if best.is_none_or(|(b, _)| delta < b) {
                best = Some((delta, i));
            }
        }
        let Some((delta, hit)) = best else {
            return Err(SaddleError::Stalled {
                jump,
                grad_inf: inf_norm(&g),
            });
        };
        t += delta;
        for i in 0..d {
            if s[i].abs() == 1.0 && (beta[i] != 0.0 || s[i] * g[i] <= tol) {
                continue; // pinned at its bound
            }
            s[i] = (s[i] - delta * g[i]).clamp(-1.0, 1.0);
        }
        s[hit] = if s[hit] >= 0.0 { 1.0 } else { -1.0 };

        // Refit on the sign face: β_I = s_I ⊙ γ with γ ≥ 0, zero elsewhere.
        let active: Vec<usize> = (0..d).filter(|&i| s[i].abs() == 1.0).collect();
        let xa = Mat::from_fn(n, active.len(), |r, c| x[(r, active[c])] * s[active[c]]);
        let q = xa.transpose() * &xa * faer::Scale(1.0 / n as f64);
        let yv = faer::ColRef::from_slice(y);
        let rhs = xa.transpose() * yv;
        let r: Vec<f64> = rhs.iter().map(|v| v / n as f64).collect();
        let warm: Vec<f64> = active.iter().map(|&i| (beta[i] * s[i]).max(0.0)).collect();
        let sol = nnls_gram(q.as_ref(), &r, Some(&warm), tol)
            .map_err(|source| SaddleError::Nnls { jump, source })?;
        solves += sol.solves;
        let previous = std::mem::replace(&mut beta, vec![0.0; d]);
        for (&i, &gamma) in active.iter().zip(&sol.x) {
            beta[i] = s[i] * gamma;
        }
        let left = (0..d)
            .filter(|&i| previous[i] != 0.0 && beta[i] == 0.0)
            .collect();
        let (loss, grad) = loss_grad(x, y, &beta);
        g = grad;
        saddles.push(Saddle {
            t,
            beta: beta.clone(),
            s: s.clone(),
            loss,
            entered: Some(hit),
            left,
        });
    }
    Ok(SaddlePath {
        saddles,
        grad0_inf,
        solves,
    })
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |a, &b| a.max(b.abs()))
}
