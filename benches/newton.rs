//! One Newton-matrix setup and solve of a stiff particle flow (tanh, NTK scaling α = √N,
//! N = 400 particles of D = 10, n = 256 samples: P = 4000 unknowns), as the implicit solvers
//! do it: dense (assemble J, form I − cJ, blocked LU, solve) against structured (J as
//! blockdiag(B_j) − L R, Woodbury). The ratio dense / structured is printed after criterion's
//! report; both are measured in this run.

mod common;

use criterion::{criterion_group, Criterion};
use faer::{Mat, Par};
use meanfield::dynamics::ParticleFlow;
use meanfield::integrate::ode::DeflatedLu;
use meanfield::integrate::woodbury::Woodbury;
use meanfield::integrate::VectorField;
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
        act: Activation::Tanh,
        d: D,
        bias: true,
        n_particles: WIDTH,
        alpha: (WIDTH as f64).sqrt(),
        fixed_a: false,
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
    let mut j = Mat::zeros(p, p);
    g.bench_function("dense", |b| {
        b.iter(|| {
            flow.jacobian(&theta, j.as_mut());
            let lu = DeflatedLu::new(newton(&j).as_ref());
            let mut v = rhs.clone();
            lu.solve(&mut v);
            black_box(v)
        })
    });
    g.bench_function("structured", |b| {
        b.iter(|| {
            let lr = Rc::new(flow.jacobian_low_rank(&theta).expect("a particle flow"));
            // The Newton matrix's diagonal blocks, as diffsol forms them from `Rhs`'s.
            let blocks = lr.diagonal_blocks();
            let bs = lr.block;
            let mut a = Mat::zeros(p, p);
            for (k, blk) in blocks.chunks(bs * bs).enumerate() {
                for r in 0..bs {
                    for q in 0..bs {
                        let delta = if r == q { 1.0 } else { 0.0 };
                        a[(k * bs + r, k * bs + q)] = delta - C * blk[r * bs + q];
                    }
                }
            }
            let w = Woodbury::new(a.as_ref(), &lr)
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
    let (Some(dense), Some(structured)) = (
        common::median_ns("newton", "dense"),
        common::median_ns("newton", "structured"),
    ) else {
        return;
    };
    println!(
        "\nNewton setup + solve, P = {}: dense {:.1} ms, structured {:.1} ms, ratio {:.1}",
        WIDTH * (D + 2),
        dense / 1e6,
        structured / 1e6,
        dense / structured
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    report();
}
