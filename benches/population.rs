//! Issue 6: one evaluation of the population-risk velocity field at N = 4096 particles in
//! d = 100 (relu and erf teachers of 3 neurons), as a ratio to a GEMM of the same shape
//! (N × d times d × N) measured in the same run. The field needs two such GEMMs (the Gram matrix
//! and the pull Σ_k m_k κ_c ω_k) and N² closed-form pair kernels between them.

mod common;

use criterion::{criterion_group, Criterion};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use meanfield::limits::population::{PopulationRisk, Teacher};
use meanfield::problem::Activation;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::hint::black_box;

const N: usize = 4096;
const D: usize = 100;

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("population");
    g.sample_size(10);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let scale = 1.0 / (D as f64).sqrt();
    let w = Mat::from_fn(N, D, |_, _| scale * rng.sample::<f64, _>(StandardNormal));
    g.bench_function("gemm", |b| {
        let mut out = Mat::<f64>::zeros(N, N);
        b.iter(|| {
            matmul(
                out.as_mut(),
                Accum::Replace,
                w.as_ref(),
                w.transpose(),
                1.0,
                Par::rayon(0),
            );
            black_box(out[(0, 0)])
        })
    });
    let theta: Vec<f64> = (0..N * (D + 1))
        .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
        .collect();
    for act in [
        Activation::named("relu").unwrap(),
        Activation::named("erf").unwrap(),
    ] {
        let teacher = Teacher {
            act: act.clone(),
            w: Mat::from_fn(3, D, |_, _| scale * rng.sample::<f64, _>(StandardNormal)),
            coef: vec![1.0, -1.0, 0.5],
        };
        let pr = PopulationRisk::new(act.clone(), N, 1.0, teacher, Par::rayon(0)).unwrap();
        let mut out = vec![0.0; theta.len()];
        g.bench_function(format!("velocity_{act:?}"), |b| {
            b.iter(|| {
                pr.velocity(&theta, &mut out);
                black_box(out[0])
            })
        });
    }
    g.finish();
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    let ms = |id: &str| common::median_ns("population", id).map(|v| v / 1e6);
    if let Some(gemm) = ms("gemm") {
        for act in ["Relu", "Erf"] {
            if let Some(v) = ms(&format!("velocity_{act}")) {
                println!(
                    "\npopulation velocity, N = {N}, d = {D}, {act}: {v:.1} ms = {:.2} × a GEMM of the same shape ({gemm:.1} ms)",
                    v / gemm
                );
            }
        }
    }
}
