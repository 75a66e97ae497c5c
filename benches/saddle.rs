//! Issue 4's benchmarks at n = 200, d = 1000 (Gaussian design, 20-sparse β*, label noise 0.5;
//! the data of problems/saddle_n200_d1000.toml), each with a plain dense operation of the same
//! data measured in the same run as the baseline:
//! - Algorithm 1 (every saddle to the minimum-ℓ1 interpolator), against the GEMM XᵀX;
//! - the mirror flow at α = 1e-24 with BDF (rtol 1e-9, atol 1e-12) over the whole path, against
//!   one dense 1000 × 1000 LU (what each Newton matrix would cost without deflation).

mod common;

use criterion::{criterion_group, Criterion};
use faer::{Mat, Par};
use meanfield::data::Dataset;
use meanfield::dynamics::diagonal::MirrorFlow;
use meanfield::integrate::ode;
use meanfield::limits::saddle::saddle_path;
use meanfield::model::diagonal::Diagonal;
use meanfield::problem::{DataSpec, InputLaw, Method, Parametrization, TargetSpec};
use std::hint::black_box;
use std::path::Path;

fn data() -> Dataset {
    let spec = DataSpec::Synthetic {
        input: InputLaw::Gaussian,
        d: 1000,
        n_train: 200,
        n_test: 0,
        radius: None,
        noise: 0.5,
        target: TargetSpec::Sparse {
            support: 20,
            scale: 1.0,
        },
        risk: Default::default(),
    };
    Dataset::build(&spec, 1, Path::new("."), Path::new("bench")).expect("synthetic data")
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("saddle");
    g.sample_size(10);
    let data = data();
    let x = data.x_train.clone();
    let y = data.y_train.clone();
    g.bench_function("gemm_xtx", |b| {
        b.iter(|| {
            let mut out = Mat::<f64>::zeros(1000, 1000);
            faer::linalg::matmul::matmul(
                out.as_mut(),
                faer::Accum::Replace,
                x.transpose(),
                x.as_ref(),
                1.0,
                Par::rayon(0),
            );
            black_box(out)
        })
    });
    g.bench_function("algorithm1", |b| {
        b.iter(|| black_box(saddle_path(x.as_ref(), &y, 1e-10).unwrap()))
    });
    let path = saddle_path(x.as_ref(), &y, 1e-10).unwrap();
    let tau_end = 1.5 * path.saddles.last().unwrap().t;
    let dense = Mat::from_fn(1000, 1000, |i, j| {
        if i == j {
            1000.0
        } else {
            ((i * 7 + j * 3) % 11) as f64
        }
    });
    g.bench_function("dense_lu_1000", |b| {
        b.iter(|| black_box(dense.partial_piv_lu()))
    });
    let net = Diagonal::new(x.clone(), y.clone(), Parametrization::Uv, 1e-24);
    g.bench_function("mirror_flow_1e-24", |b| {
        b.iter(|| {
            let field = MirrorFlow { net: &net };
            let mut last = 0.0;
            let out = ode::run(
                &field,
                &vec![0.0; 1000],
                Method::Bdf,
                1e-9,
                1e-12,
                &[0.0, tau_end],
                &mut |t, _| {
                    last = t;
                    Ok(())
                },
            );
            assert!(out.stopped.is_none());
            black_box((last, out.stats))
        })
    });
    g.finish();
    println!(
        "Algorithm 1: {} saddles; the mirror flow runs to τ = {tau_end:.1}",
        path.saddles.len()
    );
}

fn median_ns(id: &str) -> Option<f64> {
    common::median_ns("saddle", id)
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    let ms = |id| median_ns(id).map(|v| v / 1e6);
    if let (Some(g), Some(a), Some(l), Some(m)) = (
        ms("gemm_xtx"),
        ms("algorithm1"),
        ms("dense_lu_1000"),
        ms("mirror_flow_1e-24"),
    ) {
        println!(
            "\nAlgorithm 1 (n = 200, d = 1000): {a:.0} ms = {:.1} × the GEMM XᵀX ({g:.1} ms)",
            a / g
        );
        println!(
            "mirror flow at α = 1e-24, BDF: {m:.0} ms = {:.0} × one dense 1000² LU ({l:.1} ms)",
            m / l
        );
    }
}
