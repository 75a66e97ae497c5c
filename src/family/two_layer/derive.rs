//! The symbolic half of a two-layer problem: σ, σ′, σ″ and ℓ, ℓ_f, ℓ_ff as exmex derives them,
//! and the particle velocity and Jacobian blocks they enter (`meanfield derive`, and the root
//! attributes of every archive).
//!
//! In mean-field time the velocity of particle θ_j = (a_j, w_j, b_j) is
//! v_j = (1/(αn)) Σ_i r_i ∇_θ σ*(x_i; θ_j) with r_i = −½ ℓ_f(y_i, f(x_i)), and its Jacobian is
//! blockdiag(B_j) − (1/(nN)) Φᵀ diag(c) Φ with c_i = ½ ℓ_ff and B_j = (1/(αn)) Σ_i r_i ∇²σ*_ij
//! (model::loss and model::two_layer hold the numerics; this only writes them out).

use crate::archive::{set_str, ArchiveWriter};
use crate::error::{Error, Result};
use crate::problem::{OutputWeights, Problem};
use std::fmt::Write;
use std::path::Path;

/// σ, σ′, σ″ and ℓ, ℓ_f, ℓ_ff (text or LaTeX) and whether each set holds almost everywhere.
struct Forms {
    sigma: Vec<String>,
    loss: Vec<String>,
    sigma_ae: bool,
    loss_ae: bool,
}

fn forms(problem: &Problem, latex: bool, path: &Path) -> Result<Forms> {
    let m = &problem.model;
    let (plain, tex, sigma_ae) = m.activation.derived();
    let (lplain, ltex, loss_ae) = m.loss.derived().map_err(|e| Error::Problem {
        file: path.to_path_buf(),
        key: "model.loss".into(),
        message: e,
    })?;
    Ok(if latex {
        Forms {
            sigma: tex,
            loss: ltex,
            sigma_ae,
            loss_ae,
        }
    } else {
        Forms {
            sigma: plain,
            loss: lplain,
            sigma_ae,
            loss_ae,
        }
    })
}

const ALMOST_EVERYWHERE: &str = "hold almost everywhere: signum and heaviside count as constants (their derivative, a Dirac mass at the kink, is dropped), as relu′(0) = 0 does";

/// `meanfield derive`: the formulas, in the problem's notation, as text or LaTeX.
pub(crate) fn derive(problem: &Problem, latex: bool, path: &Path) -> Result<String> {
    let f = forms(problem, latex, path)?;
    let m = &problem.model;
    let trained_a = m.output_weights == OutputWeights::Trained;
    let mut s = String::new();
    let mut line = |text: String| {
        s.push_str(&text);
        s.push('\n');
    };
    if latex {
        line("\\begin{aligned}".into());
        for (name, v) in ["\\sigma(z)", "\\sigma'(z)", "\\sigma''(z)"]
            .iter()
            .zip(&f.sigma)
        {
            line(format!("{name} &= {v} \\\\"));
        }
        for (name, v) in ["\\ell(y, f)", "\\ell_f(y, f)", "\\ell_{ff}(y, f)"]
            .iter()
            .zip(&f.loss)
        {
            line(format!("{name} &= {v} \\\\"));
        }
        line("r_i &= -\\tfrac12\\, \\ell_f(y_i, f(x_i)), \\qquad c_i = \\tfrac12\\, \\ell_{ff}(y_i, f(x_i)) \\\\".into());
        if trained_a {
            line("\\dot a_j &= \\frac{1}{\\alpha n} \\sum_i r_i\\, \\sigma(z_{ij}) \\\\".into());
        }
        line(
            "\\dot w_j &= \\frac{1}{\\alpha n} \\sum_i r_i\\, a_j \\sigma'(z_{ij})\\, x_i \\\\"
                .into(),
        );
        if m.bias {
            line(
                "\\dot b_j &= \\frac{1}{\\alpha n} \\sum_i r_i\\, a_j \\sigma'(z_{ij}) \\\\".into(),
            );
        }
        line("\\frac{\\partial v}{\\partial \\theta} &= \\operatorname{blockdiag}(B_j) - \\frac{1}{nN} \\Phi^\\top \\operatorname{diag}(c)\\, \\Phi, \\quad \\Phi_{ij} = \\nabla_\\theta \\sigma^*(x_i; \\theta_j) \\\\".into());
        line("B_j &= \\frac{1}{\\alpha n} \\sum_i r_i \\begin{pmatrix} 0 & \\sigma'(z_{ij})\\, \\tilde x_i^\\top \\\\ \\sigma'(z_{ij})\\, \\tilde x_i & a_j \\sigma''(z_{ij})\\, \\tilde x_i \\tilde x_i^\\top \\end{pmatrix}, \\quad z_{ij} = \\langle w_j, x_i \\rangle + b_j".into());
        line("\\end{aligned}".into());
    } else {
        let w = 9;
        for (name, v) in ["σ(z)", "σ′(z)", "σ″(z)"].iter().zip(&f.sigma) {
            line(format!("{name:<w$} = {v}"));
        }
        if f.sigma_ae {
            line(format!("          σ′ and σ″ {ALMOST_EVERYWHERE}"));
        }
        for (name, v) in ["ℓ(y, f)", "ℓ_f", "ℓ_ff"].iter().zip(&f.loss) {
            line(format!("{name:<w$} = {v}"));
        }
        if f.loss_ae {
            line(format!("          ℓ_f and ℓ_ff {ALMOST_EVERYWHERE}"));
        }
        line(String::new());
        line(format!(
            "particle velocity, mean-field time (dθ_j/dt = −(N/(2α²)) ∇_θj R, R = (1/n) Σ_i ℓ(y_i, f(x_i)), α = {}, N = {}):",
            m.scaling.alpha(m.width),
            m.width
        ));
        line("  z_ij = ⟨w_j, x_i⟩".to_string() + if m.bias { " + b_j" } else { "" });
        line("  r_i  = −½ ℓ_f(y_i, f(x_i))".into());
        if trained_a {
            line("  da_j/dt = (1/(αn)) Σ_i r_i σ(z_ij)".into());
        } else {
            line("  da_j/dt = 0 (output_weights = \"fixed\")".into());
        }
        line("  dw_j/dt = (1/(αn)) Σ_i r_i a_j σ′(z_ij) x_i".into());
        if m.bias {
            line("  db_j/dt = (1/(αn)) Σ_i r_i a_j σ′(z_ij)".into());
        }
        line(String::new());
        line("Jacobian (the stiff solvers' Newton matrix, Woodbury-structured):".into());
        line("  ∂v/∂θ = blockdiag(B_1, …, B_N) − (1/(nN)) Φᵀ diag(c) Φ".into());
        line(format!(
            "  Φ_ij  = ∇_θ σ*(x_i; θ_j) = ({}a_j σ′(z_ij) x̃_i),  x̃_i = {}",
            if trained_a { "σ(z_ij), " } else { "" },
            if m.bias { "(x_i, 1)" } else { "x_i" }
        ));
        line("  c_i   = ½ ℓ_ff(y_i, f(x_i))".into());
        line("  B_j   = (1/(αn)) Σ_i r_i ∇²_θ σ*(x_i; θ_j), with".into());
        if trained_a {
            line("          ∂²σ*/∂a²     = 0".into());
            line("          ∂²σ*/∂a ∂w̃   = σ′(z_ij) x̃_i".into());
        }
        line("          ∂²σ*/∂w̃ ∂w̃ᵀ  = a_j σ″(z_ij) x̃_i x̃_iᵀ".into());
    }
    Ok(s)
}

/// The formulas as root attributes of the archive (what `derive` prints, in exmex's syntax).
pub(crate) fn record(archive: &ArchiveWriter, problem: &Problem, out: &Path) -> Result<()> {
    let f = forms(problem, false, out)?;
    let file = archive.file();
    let e = |err| Error::archive(out, format!("writing the formulas: {err}"));
    for (name, v) in ["activation_formula", "activation_d1", "activation_d2"]
        .iter()
        .zip(&f.sigma)
    {
        set_str(file, name, v).map_err(e)?;
    }
    for (name, v) in ["loss_formula", "loss_d1", "loss_d2"].iter().zip(&f.loss) {
        set_str(file, name, v).map_err(e)?;
    }
    let mut syntax = String::from(
        "exmex: a unary minus binds tighter than ^, so -(x)^2.0 is (−x)²; activation_d1/d2 are σ′, σ″ in z, loss_d1/d2 are ∂ℓ/∂f, ∂²ℓ/∂f² in y and f",
    );
    if f.sigma_ae || f.loss_ae {
        let _ = write!(syntax, "; the derivatives {ALMOST_EVERYWHERE}");
    }
    set_str(file, "derivative_syntax", &syntax).map_err(e)
}
