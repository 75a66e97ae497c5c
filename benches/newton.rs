//! The Newton work of a stiff particle flow (tanh, NTK scaling α = √N, N = 400 particles of
//! D = 10, n = 256 samples: P = 4000 unknowns), dense against structured, as the implicit
//! solvers do it: a Jacobian update (assembled J against blockdiag(B_j) − L R) and a Newton
//! setup + solve for a new c (blocked LU of I − cJ against Woodbury). The ratios dense /
//! structured are printed after criterion's report; all are measured in this run.

mod common;

use criterion::{criterion_group, Criterion};
use faer::{Mat, Par};
use meanfield::dynamics::ParticleFlow;
use meanfield::dynamics::VectorField;
use meanfield::integrate::ode::DeflatedLu;
use meanfield::integrate::woodbury::Woodbury;
use meanfield::linalg::add_block_diagonal;
use meanfield::model::{init, TwoLayer};
use meanfield::problem::{Activation, InitSpec};
use std::hint::black_box;
use std::rc::Rc;

const D: usize = 8;
const WIDTH: usize = 400;
const SAMPLES: usize = 256;
/// The BDF coefficient c = hβ of a typical stiff step.
const C: f64 = 0.5;

fn benches(c: &mut Criterion) {
    let model = TwoLayer {
        act: Activation::named("tanh").unwrap(),
        d: D,
        bias: true,
        n_particles: WIDTH,
        alpha: (WIDTH as f64).sqrt(),
        fixed_a: false,
        loss: std::sync::Arc::new(meanfield::model::loss::Square),
        par: Par::rayon(0),
    };
    let x = Mat::from_fn(SAMPLES, D, |i, k| {
        ((i * 31 + k * 17) % 97) as f64 / 48.5 - 1.0
    });
    let y: Vec<f64> = (0..SAMPLES).map(|i| (i as f64 * 0.37).sin()).collect();
    let spec = InitSpec {
        b_std: 0.5,
        ..InitSpec::default()
    };
    let theta = init::draw(&spec, WIDTH, D, true, 1);
    let flow = ParticleFlow::new(&model, &x, &y, None);
    let p = flow.len();
    let rhs: Vec<f64> = (0..p).map(|k| (k as f64 * 0.11).cos()).collect();
    let newton = |j: &Mat<f64>| {
        let mut a = j * faer::Scale(-C);
        for k in 0..p {
            a[(k, k)] += 1.0;
        }
        a
    };

    let mut g = c.benchmark_group("newton");
    g.sample_size(10);
    // Per Jacobian update: the dense assembly (one P × P GEMM of the features) against the
    // structure (blocks and features).
    let mut j = Mat::zeros(p, p);
    g.bench_function("dense_jacobian", |b| {
        b.iter(|| {
            flow.jacobian(&theta, j.as_mut());
            black_box(&j);
        })
    });
    g.bench_function("structured_jacobian", |b| {
        b.iter(|| black_box(flow.jacobian_low_rank(&theta)))
    });
    // Per Newton-matrix setup (a new c) and solve: the P × P LU against Woodbury, each from the
    // matrix diffsol hands over (dense; only the diagonal blocks for the structured solver).
    let a = newton(&j);
    let lr = Rc::new(flow.jacobian_low_rank(&theta).expect("a particle flow"));
    let mut a_blocks = Mat::<f64>::identity(p, p);
    let scaled: Vec<f64> = lr.diagonal_blocks().iter().map(|v| -C * v).collect();
    add_block_diagonal(a_blocks.as_mut(), lr.block, &scaled);
    g.bench_function("dense_factor_solve", |b| {
        b.iter(|| {
            let lu = DeflatedLu::new(a.as_ref());
            let mut v = rhs.clone();
            lu.solve(&mut v);
            black_box(v)
        })
    });
    g.bench_function("structured_factor_solve", |b| {
        b.iter(|| {
            let w = Woodbury::new(a_blocks.as_ref(), &lr)
                .unwrap()
                .expect("well conditioned");
            let mut v = rhs.clone();
            w.solve(&mut v);
            black_box(v)
        })
    });
    g.finish();
}

fn report() {
    let m = |id: &str| common::median_ns("newton", id);
    println!("\nP = {}:", WIDTH * (D + 2));
    for (what, dense, structured) in [
        ("Jacobian update", "dense_jacobian", "structured_jacobian"),
        (
            "setup + solve",
            "dense_factor_solve",
            "structured_factor_solve",
        ),
    ] {
        if let (Some(d), Some(s)) = (m(dense), m(structured)) {
            println!(
                "{what:<16} dense {:>8.1} ms   structured {:>7.1} ms   ratio {:>5.1}",
                d / 1e6,
                s / 1e6,
                d / s
            );
        }
    }
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    report();
}
