//! Issue 3's kernel benchmarks, each as a ratio to a plain dense operation of the same size
//! measured in the same run:
//! - analytic relu NTK Gram + symmetric eigendecomposition for n = 4000 points (d = 64),
//!   against the eigendecomposition alone (the floor) and a GEMM X Xᵀ of the same shape;
//! - `linalg::eigh` (LAPACK's dsyevd on OpenBLAS) against faer's `self_adjoint_eigen` on the
//!   same kernel matrix;
//! - frozen-kernel predictions on 1000 test points at 100 times, against a GEMM of the same
//!   shape (1000 × 4000 times 4000 × 100).

mod common;

use criterion::{criterion_group, Criterion};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par, Side};
use meanfield::limits::frozen_kernel::FrozenKernel;
use meanfield::limits::kernels::{kernel, Kind, WeightStds};
use meanfield::linalg::eigh;
use meanfield::problem::Activation;
use std::hint::black_box;

const N: usize = 4000;
const D: usize = 64;
const M: usize = 1000;
const T: usize = 100;

fn inputs(n: usize, seed: usize) -> Mat<f64> {
    Mat::from_fn(n, D, |i, k| {
        (((i + seed) * 31 + k * 17) % 97) as f64 / 97.0 - 0.5
    })
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernels");
    g.sample_size(10);
    let x = inputs(N, 0);
    let xt = inputs(M, 7);
    let stds = WeightStds {
        a: 1.0,
        a_mean: 0.0,
        w: 1.0 / (D as f64).sqrt(),
        b: 0.0,
    };
    let k = kernel(
        Kind::Ntk,
        &Activation::named("relu").unwrap(),
        stds,
        false,
        x.as_ref(),
        x.as_ref(),
    );
    g.bench_function("gemm_xxt", |b| {
        let mut out = Mat::<f64>::zeros(N, N);
        b.iter(|| {
            matmul(
                out.as_mut(),
                Accum::Replace,
                x.as_ref(),
                x.transpose(),
                1.0,
                Par::rayon(0),
            );
            black_box(&out);
        })
    });
    g.bench_function("eigh", |b| {
        b.iter(|| black_box(eigh(k.as_ref(), true).unwrap()))
    });
    g.bench_function("faer_eigh", |b| {
        b.iter(|| black_box(k.self_adjoint_eigen(Side::Lower).unwrap()))
    });
    g.bench_function("ntk_gram_and_eigh", |b| {
        b.iter(|| {
            let k = kernel(
                Kind::Ntk,
                &Activation::named("relu").unwrap(),
                stds,
                false,
                x.as_ref(),
                x.as_ref(),
            );
            black_box(eigh(k.as_ref(), true).unwrap())
        })
    });
    let kt = kernel(
        Kind::Ntk,
        &Activation::named("relu").unwrap(),
        stds,
        false,
        xt.as_ref(),
        x.as_ref(),
    );
    let y: Vec<f64> = (0..N).map(|i| (i as f64 * 0.1).sin()).collect();
    let fk = FrozenKernel::new(&k, &kt, &y, &vec![0.0; N], &vec![0.0; M], Par::rayon(0)).unwrap();
    let times: Vec<f64> = (0..T).map(|l| l as f64 * 0.1).collect();
    g.bench_function("frozen_predict_1000x100", |b| {
        b.iter(|| black_box(fk.predict_test_many(&times, Par::rayon(0))))
    });
    let a = Mat::from_fn(M, N, |i, j| ((i + j) % 13) as f64);
    let bm = Mat::from_fn(N, T, |i, j| ((i * j) % 11) as f64);
    g.bench_function("gemm_1000x4000x100", |b| {
        let mut out = Mat::<f64>::zeros(M, T);
        b.iter(|| {
            matmul(
                out.as_mut(),
                Accum::Replace,
                a.as_ref(),
                bm.as_ref(),
                1.0,
                Par::rayon(0),
            );
            black_box(&out);
        })
    });
    g.finish();
}

fn median_ns(id: &str) -> Option<f64> {
    common::median_ns("kernels", id)
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    let ms = |id| median_ns(id).map(|v| v / 1e6);
    if let (Some(g), Some(e), Some(k), Some(p), Some(g2)) = (
        ms("gemm_xxt"),
        ms("eigh"),
        ms("ntk_gram_and_eigh"),
        ms("frozen_predict_1000x100"),
        ms("gemm_1000x4000x100"),
    ) {
        println!("\nanalytic NTK Gram + eigh (n = {N}): {k:.0} ms = {:.2} × eigh alone ({e:.0} ms), {:.1} × GEMM X·Xᵀ ({g:.0} ms)", k / e, k / g);
        if let Some(f) = ms("faer_eigh") {
            println!("linalg::eigh (LAPACK dsyevd): {e:.0} ms against faer's self_adjoint_eigen {f:.0} ms: {:.2} × faster", f / e);
        }
        println!("frozen-kernel predictions ({M} × {T}): {p:.1} ms = {:.2} × a GEMM of the same shape ({g2:.1} ms)", p / g2);
    }
}
