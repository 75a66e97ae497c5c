//! meanfield: training dynamics of two-layer networks and their infinite-width limits.
//!
//! Layers, top to bottom (design.md §3): `problem` → `data` → `model` → `dynamics` →
//! `integrate` → `archive`; `run` wires them for one problem file and `cli` is the only place
//! that prints.

pub mod activation;
pub mod archive;
pub mod assignment;
pub mod classify;
pub mod data;
pub mod dynamics;
pub mod error;
pub mod integrate;
pub mod labelled;
pub mod limits;
pub mod linalg;
pub mod measure;
pub mod model;
pub mod phase;
pub mod plot;
pub mod problem;
pub mod report;
pub mod rng;
pub mod run;
pub mod run_diagonal;
pub mod run_linear;
pub mod sweep;
pub mod wasserstein;

pub use error::{Error, Result};
