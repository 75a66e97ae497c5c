//! Vector fields dθ/dt with their Jacobians. They know models, not solvers.

pub mod diagonal;
pub mod field;
pub mod frozen;
pub mod linear_net;
pub mod linearized;
pub mod mixed;
pub(crate) mod particle_flow;
pub mod population;
pub mod radial;
pub mod residual;
pub mod sgd;

pub use field::{jacobian_by_columns, VectorField};
pub use frozen::FrozenFlow;
pub use linearized::LinearizedFlow;
pub use particle_flow::ParticleFlow;
pub use population::PopulationFlow;
pub use residual::ResidualFlow;
