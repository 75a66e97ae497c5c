//! Closed forms that sit beside the numerics (design.md §4).

pub mod kernels;
