//! Issue 5's benchmarks at Figure 1's size (d = 500, w = 1,182,177 reduced to 2d = 1000 rows),
//! each against plain dense operations of the same size measured in the same run:
//! - one GD step (three GEMMs of 1000 × 500 × 500), against one such GEMM;
//! - one Euler step of eq. (1) (AᵀA, one symmetric eigendecomposition, five d³ GEMMs), against
//!   the eigendecomposition alone (its floor) and the paper's SVD form of the same step;
//! - GD's spectrum per save (eigenvalues of AᵀA), against a full SVD's singular values.
//!
//! The whole Figure 1 (100 steps of both, spectra at every step) is timed against numpy by
//! `benches/peer/mixed_fig1.py`; see the README.

mod common;

use criterion::{criterion_group, BatchSize, Criterion};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use meanfield::dynamics::mixed::{velocity, velocity_svd};
use meanfield::linalg::eigh;
use meanfield::model::linear_net::{
    op_norm, paper_step, singular_values, Gd, LinearNet, MatrixTask,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

const D: usize = 500;

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixed");
    g.sample_size(10);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let task = MatrixTask::draw(D, 5, &mut rng);
    let (gs, gw) = (-1.85f64, 2.25f64);
    let w = (D as f64).powf(gw) as usize;
    let s2 = (D as f64).powf(gs);
    let eta = paper_step(D, gs, gw, op_norm(task.a_star.as_ref()), 5.0);
    let net = LinearNet::reduced(D, w, s2, &mut rng).unwrap();
    let c2 = (s2 * w as f64).powi(2);
    // A state from mid-run, where the top modes have crossed the threshold.
    let mut gd = Gd::new(net);
    for _ in 0..15 {
        gd.step(task.y.as_ref(), eta, Par::rayon(0));
    }
    let a = gd.a.clone();
    let x = gd.net.x1.clone();
    g.bench_function("gemm_1000x500x500", |b| {
        b.iter(|| {
            let mut out = Mat::<f64>::zeros(D, D);
            matmul(
                out.as_mut(),
                Accum::Replace,
                x.transpose(),
                x.as_ref(),
                1.0,
                Par::rayon(0),
            );
            black_box(out)
        })
    });
    g.bench_function("gd_step", |b| {
        b.iter_batched(
            || Gd::new(gd.net.clone()),
            |mut s| {
                s.step(task.y.as_ref(), eta, Par::rayon(0));
                black_box(s)
            },
            BatchSize::LargeInput,
        )
    });
    let gram = a.transpose() * &a;
    g.bench_function("eigh_500", |b| {
        b.iter(|| black_box(eigh(gram.as_ref(), true)))
    });
    g.bench_function("faer_eigh_500", |b| {
        b.iter(|| black_box(gram.self_adjoint_eigen(faer::Side::Lower)))
    });
    g.bench_function("sc_velocity_eigh", |b| {
        b.iter(|| black_box(velocity(a.as_ref(), task.y.as_ref(), c2, Par::rayon(0))))
    });
    g.bench_function("sc_velocity_svd", |b| {
        b.iter(|| black_box(velocity_svd(a.as_ref(), task.y.as_ref(), c2)))
    });
    g.bench_function("spectrum_gram", |b| {
        b.iter(|| black_box(singular_values(a.as_ref(), Par::rayon(0))))
    });
    g.bench_function("spectrum_svd", |b| {
        b.iter(|| black_box(a.singular_values()))
    });
    g.finish();
}

fn median_ns(id: &str) -> Option<f64> {
    common::median_ns("mixed", id)
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    let ms = |id| median_ns(id).map(|v| v / 1e6);
    if let (Some(gemm), Some(gd), Some(eigh), Some(sc), Some(svd), Some(sg), Some(ss)) = (
        ms("gemm_1000x500x500"),
        ms("gd_step"),
        ms("eigh_500"),
        ms("sc_velocity_eigh"),
        ms("sc_velocity_svd"),
        ms("spectrum_gram"),
        ms("spectrum_svd"),
    ) {
        println!(
            "\nGD step: {gd:.1} ms = {:.2} × one 1000×500×500 GEMM ({gemm:.1} ms)",
            gd / gemm
        );
        println!(
            "eq. (1) step (eigh form): {sc:.1} ms = {:.2} × its eigendecomposition ({eigh:.1} ms), {:.2} × the SVD form ({svd:.1} ms)",
            sc / eigh,
            sc / svd
        );
        if let Some(f) = ms("faer_eigh_500") {
            println!(
                "eigh at d = {D}: LAPACK dsyevd {eigh:.1} ms against faer's self_adjoint_eigen {f:.1} ms: {:.2} × faster",
                f / eigh
            );
        }
        println!(
            "spectrum from AᵀA: {sg:.1} ms = {:.2} × an SVD's singular values ({ss:.1} ms)",
            sg / ss
        );
    }
}
