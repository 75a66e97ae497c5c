//! Infinite-width kernels by quadrature (activations without a closed form) against the closed
//! form of relu on the same inputs, measured in the same run: the NTK of 40 × 40 points (d = 8,
//! with a bias, a_mean = 1) for the named tanh, the formula "tanh(z)" (evaluated a chunk of lanes
//! at a time) and the kinked formula "max(z, 0)" (every integral split at its kink).

mod common;

use criterion::{criterion_group, Criterion};
use faer::Mat;
use meanfield::limits::kernels::{kernel, Kind, WeightStds};
use meanfield::problem::Activation;
use std::hint::black_box;

const N: usize = 40;
const D: usize = 8;

const CASES: [(&str, &str); 4] = [
    ("relu_closed_form", "relu"),
    ("tanh", "tanh"),
    ("tanh_formula", "tanh(z)"),
    ("max_formula", "max(z, 0)"),
];

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("quadrature");
    g.sample_size(10);
    let x = Mat::from_fn(N, D, |i, k| ((i * 31 + k * 17) % 97) as f64 / 97.0 - 0.5);
    let stds = WeightStds {
        a: 0.7,
        a_mean: 1.0,
        w: 1.0,
        b: 0.3,
    };
    for (id, text) in CASES {
        let act = Activation::parse(text).expect("a named activation or a formula");
        g.bench_function(id, |b| {
            b.iter(|| black_box(kernel(Kind::Ntk, &act, stds, true, x.as_ref(), x.as_ref())))
        });
    }
    g.finish();
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    let Some(base) = common::median_ns("quadrature", "relu_closed_form") else {
        return;
    };
    let entries = (N * (N + 1) / 2) as f64;
    println!(
        "\nNTK of {N} × {N} points by quadrature, against relu's closed form ({:.2} ms):",
        base / 1e6
    );
    for (id, _) in &CASES[1..] {
        if let Some(t) = common::median_ns("quadrature", id) {
            println!(
                "{id:<14} {:>8.1} ms   {:>7.0} × the closed form   {:.1} µs per entry",
                t / 1e6,
                t / base,
                t / 1e3 / entries
            );
        }
    }
}
