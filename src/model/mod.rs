//! Models: forward passes, gradients, tangent features and kernels. Nothing here knows time.

pub mod activation;
pub mod diagonal;
pub mod init;
pub mod laziness;
pub mod linear_net;
pub mod loss;
#[cfg(target_arch = "x86_64")]
mod relu_fused;
pub mod two_layer;

pub use two_layer::{mse, Batch, TwoLayer, Workspace};

/// α/N, the factor in f(x) = (α/N) Σ_j a_j σ(⟨w_j, x⟩ + b_j): its one home.
pub(crate) fn output_scale(alpha: f64, n_particles: usize) -> f64 {
    alpha / n_particles as f64
}

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// α = 1
    MeanField,
    /// α = √N
    Ntk,
    /// α given
    Alpha(f64),
    /// α = N^β
    AlphaExponent(f64),
}

impl Scaling {
    pub fn alpha(self, width: usize) -> f64 {
        let n = width as f64;
        match self {
            Scaling::MeanField => 1.0,
            Scaling::Ntk => n.sqrt(),
            Scaling::Alpha(a) => a,
            Scaling::AlphaExponent(b) => n.powf(b),
        }
    }
}

/// The parameters a linear model of the network trains (Ghorbani–Mei–Misiakiewicz–Montanari's
/// models, survey seed §5): `all` the tangent model of every parameter (the NTK), `output` the
/// random-features model (first layer frozen at θ₀, only a trained: the network is linear in a),
/// `hidden` the neural-tangent model F_NT (first-order in the first-layer weights w [, b], a
/// frozen at a₀).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Params {
    #[default]
    All,
    Output,
    Hidden,
}

impl Params {
    pub(crate) fn is_all(&self) -> bool {
        *self == Params::All
    }
    pub fn name(self) -> &'static str {
        match self {
            Params::All => "all",
            Params::Output => "output",
            Params::Hidden => "hidden",
        }
    }
    /// Whether the output weights a, and the first-layer weights, are trained.
    pub fn trains(self) -> (bool, bool) {
        match self {
            Params::All => (true, true),
            Params::Output => (true, false),
            Params::Hidden => (false, true),
        }
    }
}
