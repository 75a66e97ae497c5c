//! Models: forward passes, gradients, tangent features and kernels. Nothing here knows time.

pub mod diagonal;
pub mod init;
pub mod laziness;
pub mod linear_net;
#[cfg(target_arch = "x86_64")]
mod relu_fused;
pub mod two_layer;

pub use two_layer::{mse, Batch, TwoLayer, Workspace};
