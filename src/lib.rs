//! meanfield: training dynamics of neural networks and their infinite-width limits, as
//! mean-field particle systems.
//!
//! `family` runs a problem file (one `Study` per model family, picked once from its registry);
//! below it the layers `problem` → `report`/`archive` → `integrate` → `dynamics` → `limits`,
//! `measure`, `data` → `model` → `linalg` (docs/architecture.md; `tests/layers.rs` holds them).
//! The binary (`main.rs`, `cli/`) parses arguments and is the only place that prints.

pub mod archive;
pub mod data;
pub mod dynamics;
pub mod error;
pub mod expr;
pub mod family;
pub mod integrate;
pub mod limits;
pub mod linalg;
pub mod measure;
pub mod model;
pub mod problem;
pub mod report;
pub mod rng;

pub use error::{Error, Result};
