//! Closed forms that sit beside the numerics (design.md §4).

pub mod frozen_kernel;
pub mod kernels;
pub mod linear_modes;
pub mod nnls;
pub mod population;
pub mod quadrature;
pub mod saddle;
