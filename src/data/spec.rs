//! What a problem file says about its data: the typed spec the generators and loaders take.

use crate::model::activation::Activation;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputLaw {
    /// x ~ N(0, I_d)
    Gaussian,
    /// x uniform on the sphere of radius √d
    Sphere,
}

/// The risk the two-layer network is trained on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// The mean over the training sample.
    #[default]
    Empirical,
    /// E_x over x ~ N(0, I_d) in closed form: no sampling noise. `loss_train` then holds this
    /// population risk E(f* − f)² (label noise does not enter it).
    Population,
}

impl Risk {
    fn is_empirical(&self) -> bool {
        *self == Risk::Empirical
    }
}

/// Where the data comes from: `source = "synthetic"` (inputs drawn from a law, targets from a
/// function of them) or `source = "csv"` (rows x_1, ..., x_d, y; no header).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    Synthetic {
        input: InputLaw,
        d: usize,
        n_train: usize,
        #[serde(default)]
        n_test: usize,
        /// Radius of the sphere for `input = "sphere"` (default √d).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        radius: Option<f64>,
        /// Standard deviation of Gaussian label noise added to the training targets.
        #[serde(default)]
        noise: f64,
        target: TargetSpec,
        /// What the particles are trained on: the sample ("empirical", the default) or the
        /// exact expectation over x ~ N(0, I_d) ("population", closed forms; design.md §4).
        #[serde(default, skip_serializing_if = "Risk::is_empirical")]
        risk: Risk,
    },
    Csv {
        /// Training rows, relative to the problem file's folder.
        train: PathBuf,
        /// Test rows, same layout.
        #[serde(default)]
        test: Option<PathBuf>,
    },
    /// A labelled dataset in an HDF5 file (inputs [n, d] and integer class labels [n], any
    /// numeric types), e.g. data/digits.h5. Targets are ±1: +1 for the classes in `positive`.
    Hdf5 {
        /// Relative to the problem file's folder.
        file: PathBuf,
        #[serde(default = "default_inputs")]
        inputs: String,
        #[serde(default = "default_labels")]
        labels: String,
        /// Classes whose target is +1 (every other class is −1): [0, 2, 4, 6, 8] is parity.
        positive: Vec<i64>,
        /// Training samples, balanced across classes (the remainder of n_train / classes goes to
        /// the lowest classes), drawn by a seeded shuffle.
        n_train: usize,
        /// Test samples from the rest (0, the default: all of the rest).
        #[serde(default)]
        n_test: usize,
        #[serde(default)]
        normalize: Normalize,
    },
}

/// How inputs read from a file are preprocessed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// As stored.
    #[default]
    None,
    /// Centred on the training mean, then each input scaled to norm √d.
    Sphere,
}

fn default_inputs() -> String {
    "images".into()
}
fn default_labels() -> String {
    "labels".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetSpec {
    /// f*(x) = Σ_{i<m0} a*_i σ(⟨w*_i, x⟩), ‖w*_i‖ = 1, a*_i = ±1 (Chizat–Oyallon–Bach).
    Teacher {
        width: usize,
        #[serde(default = "default_relu")]
        activation: Activation,
        #[serde(default = "one")]
        scale: f64,
    },
    /// f*(x) = σ(⟨w*, x⟩) with ‖w*‖ = 1.
    SingleIndex {
        #[serde(default = "default_relu")]
        activation: Activation,
    },
    /// f*(x) = ⟨β*, x⟩ with ‖β*‖ = 1.
    Linear,
    /// Mei–Montanari–Nguyen's centred isotropic Gaussians: y = ±1 with probability ½ each and
    /// x ~ N(0, (1 ± Δ)² I_d) (input = "gaussian" only; not a function of x).
    IsotropicClasses { delta: f64 },
    /// f*(x) = ⟨β*, x⟩ with a planted sparse β*: `support` coordinates drawn at random, each
    /// N(0, scale²); the rest zero. support = 0 gives pure-noise labels (y = noise).
    Sparse {
        support: usize,
        #[serde(default = "one")]
        scale: f64,
    },
}

fn default_relu() -> Activation {
    Activation::named("relu").expect("relu is a named activation")
}
fn one() -> f64 {
    1.0
}
