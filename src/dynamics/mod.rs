//! Vector fields dθ/dt with their Jacobians. They know models, not solvers.

pub mod particle_flow;

pub use particle_flow::ParticleFlow;
