//! One vector-field evaluation and one GD step at n = 2048, d = 64, N = 4096, against a plain
//! dense GEMM of the same shapes (X Wᵀ: n × d times d × N) measured in the same run.
//!
//! The field costs two such GEMMs (forward X Wᵀ and backward CWᵀ X) plus an elementwise sweep,
//! so its floating-point rate relative to the GEMM is 2 · t_gemm / t_field; 1.0 would mean the
//! sweeps and reductions are free. The ratios are printed after criterion's own report, with
//! the cost of `activation = "tanh(z)"` written as a formula against the built-in tanh.

mod common;

use criterion::{criterion_group, Criterion};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use meanfield::dynamics::ParticleFlow;
use meanfield::dynamics::VectorField;
use meanfield::model::{init, Batch, TwoLayer, Workspace};
use meanfield::problem::{Activation, InitSpec};
use std::hint::black_box;

const N_SAMPLES: usize = 2048;
const D: usize = 64;
const WIDTH: usize = 4096;

fn setup(act: Activation) -> (TwoLayer, Mat<f64>, Vec<f64>, Vec<f64>) {
    let model = TwoLayer {
        act,
        d: D,
        bias: false,
        n_particles: WIDTH,
        alpha: 1.0,
        fixed_a: false,
        loss: std::sync::Arc::new(meanfield::model::loss::Square),
        par: Par::rayon(0),
    };
    let x = Mat::from_fn(N_SAMPLES, D, |i, k| {
        ((i * 31 + k * 17) % 97) as f64 / 97.0 - 0.5
    });
    let y: Vec<f64> = (0..N_SAMPLES).map(|i| (i as f64 * 0.37).sin()).collect();
    let theta = init::draw(&InitSpec::default(), WIDTH, D, false, 1);
    (model, x, y, theta)
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("field");
    g.sample_size(10);
    let (_, x, _, _) = setup(Activation::named("relu").unwrap());
    let w = Mat::from_fn(WIDTH, D, |j, k| ((j * 13 + k * 7) % 89) as f64 / 89.0 - 0.5);
    let mut z = Mat::<f64>::zeros(N_SAMPLES, WIDTH);
    g.bench_function("gemm", |b| {
        b.iter(|| {
            matmul(
                z.as_mut(),
                Accum::Replace,
                x.as_ref(),
                w.transpose(),
                1.0,
                Par::rayon(0),
            );
            black_box(&z);
        })
    });
    let formula = Activation::parse("tanh(z)").expect("a formula");
    for (name, act) in [
        ("relu", Activation::named("relu").unwrap()),
        ("tanh", Activation::named("tanh").unwrap()),
        ("tanh_formula", formula),
    ] {
        let (model, x, y, theta) = setup(act.clone());
        let flow = ParticleFlow::new(&model, &x, &y, None);
        let mut v = vec![0.0; flow.len()];
        g.bench_function(format!("velocity_{name}"), |b| {
            b.iter(|| {
                flow.eval(&theta, &mut v);
                black_box(&v);
            })
        });
        let mut th = theta.clone();
        let mut scratch = vec![];
        g.bench_function(format!("gd_step_{name}"), |b| {
            b.iter(|| {
                flow.euler_step(&mut th, 1e-3, &mut scratch);
                black_box(&th);
            })
        });
        if act == Activation::named("relu").unwrap() {
            // The faer path the fused relu passes replace, as their same-run baseline.
            let batch = Batch {
                x: x.as_ref(),
                y: &y,
                f0: None,
            };
            let mut ws = Workspace::default();
            let mut th = theta.clone();
            g.bench_function("gd_step_relu_unfused", |b| {
                b.iter(|| {
                    model.velocity_step_unfused(&mut th, &batch, &mut ws, 1e-3);
                    black_box(&th);
                })
            });
        }
    }
    g.finish();
}

/// Criterion's median estimate for a benchmark of this run, in nanoseconds.
fn median_ns(id: &str) -> Option<f64> {
    common::median_ns("field", id)
}

fn report() {
    let Some(gemm) = median_ns("gemm") else {
        return;
    };
    let flops = 2.0 * (N_SAMPLES * D * WIDTH) as f64;
    println!(
        "\nbaseline GEMM {N_SAMPLES}×{D} · {D}×{WIDTH}: {:.1} ms, {:.1} GFLOP/s",
        gemm / 1e6,
        flops / gemm
    );
    for id in [
        "velocity_relu",
        "gd_step_relu",
        "gd_step_relu_unfused",
        "velocity_tanh",
        "gd_step_tanh",
        "gd_step_tanh_formula",
    ] {
        if let Some(t) = median_ns(id) {
            println!(
                "{id:<20} {:>7.1} ms   rate / GEMM rate = {:.2}",
                t / 1e6,
                2.0 * gemm / t
            );
        }
    }
    if let (Some(fused), Some(unfused)) =
        (median_ns("gd_step_relu"), median_ns("gd_step_relu_unfused"))
    {
        println!(
            "relu GD step: the fused passes {:.2}× faster than the faer path",
            unfused / fused
        );
    }
    if let (Some(formula), Some(builtin)) =
        (median_ns("gd_step_tanh_formula"), median_ns("gd_step_tanh"))
    {
        println!(
            "tanh GD step: activation = \"tanh(z)\" as a formula costs {:.2}× the built-in tanh (bar: 1.5)",
            formula / builtin
        );
    }
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    report();
}
