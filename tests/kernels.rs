//! Analytic infinite-width kernels against Monte Carlo and against the empirical tangent kernel
//! of wide networks.

mod common;
use common::*;
use faer::Mat;
use meanfield::limits::kernels::{kernel, Kind, WeightStds};
use meanfield::model::{init, Workspace};
use meanfield::problem::{Activation, InitSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// E[σ(z)σ(z')] and E[σ'(z)σ'(z')] against sample means within 5 standard errors.
#[test]
fn gaussian_moments_match_monte_carlo() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let samples = 400_000;
    // Every named activation with closed-form moments in its registry entry.
    let closed: Vec<Activation> = Activation::all()
        .into_iter()
        .filter(|a| a.gaussian_moments(1.0, 1.0, 0.5).is_some())
        .collect();
    let names: Vec<String> = closed.iter().map(Activation::name).collect();
    assert_eq!(names, ["relu", "erf", "quadratic", "linear"]);
    for act in closed {
        for &(s11, s22, s12) in &[(1.0, 1.0, 0.3), (0.5, 2.0, -0.6), (1.5, 0.7, 1.0)] {
            // z = L g with L the Cholesky factor of the covariance.
            let l11 = f64::sqrt(s11);
            let l21 = s12 / l11;
            let l22 = (s22 - l21 * l21).sqrt();
            let (mut m0, mut m1, mut q0, mut q1) = (0.0, 0.0, 0.0, 0.0);
            for _ in 0..samples {
                let g1: f64 = rng.sample(StandardNormal);
                let g2: f64 = rng.sample(StandardNormal);
                let (z1, z2) = (l11 * g1, l21 * g1 + l22 * g2);
                let (v1, d1) = act.value_d1(z1);
                let (v2, d2) = act.value_d1(z2);
                m0 += v1 * v2;
                q0 += (v1 * v2).powi(2);
                m1 += d1 * d2;
                q1 += (d1 * d2).powi(2);
            }
            let n = samples as f64;
            let (m0, m1) = (m0 / n, m1 / n);
            let (se0, se1) = (
                ((q0 / n - m0 * m0) / n).sqrt(),
                ((q1 / n - m1 * m1) / n).sqrt(),
            );
            let (e0, e1) = act.gaussian_moments(s11, s22, s12).unwrap();
            assert!(
                (e0 - m0).abs() < 5.0 * se0 + 1e-12,
                "{act:?} E[σσ'] {e0} vs MC {m0} ± {se0}"
            );
            assert!(
                (e1 - m1).abs() < 5.0 * se1 + 1e-12,
                "{act:?} E[σ'σ'] {e1} vs MC {m1} ± {se1}"
            );
        }
    }
    assert!(Activation::named("tanh")
        .unwrap()
        .gaussian_moments(1.0, 1.0, 0.5)
        .is_none());
}

/// The empirical NTK at width N differs from the analytic one by O(N^(-1/2)): the closed forms
/// (relu, erf, linear) and the quadrature of formulas (smooth, and non-smooth with a kink), with
/// a_mean = 1 where there is a bias. The kernel that ignores a_mean (σ_a² for E[a²], as before
/// issue 22) does not converge.
#[test]
fn empirical_ntk_converges_at_rate_one_over_sqrt_width() {
    let d = 5;
    let x = gaussian_mat(12, d, 3);
    let widths = [256usize, 1024, 4096, 16384];
    let acts = [
        Activation::named("relu").unwrap(),
        Activation::named("erf").unwrap(),
        Activation::named("linear").unwrap(),
        Activation::parse("tanh(z) + 0.3*sin(2*z)").unwrap(),
        Activation::parse("z/(1 + abs(z - 0.2))").unwrap(),
    ];
    for act in acts {
        for bias in [false, true] {
            let stds = WeightStds {
                a: 1.3,
                a_mean: if bias { 1.0 } else { 0.0 },
                w: 0.7,
                b: if bias { 0.4 } else { 0.0 },
            };
            let exact = kernel(Kind::Ntk, &act, stds, bias, x.as_ref(), x.as_ref());
            let spec = InitSpec {
                a_std: stds.a,
                a_mean: stds.a_mean,
                w_std: Some(stds.w),
                b_std: stds.b,
                ..InitSpec::default()
            };
            let errors = |limit: &Mat<f64>| -> Vec<f64> {
                let norm = frob(limit, None);
                widths
                    .iter()
                    .map(|&n| {
                        // Root mean square over seeds, to steady the fit.
                        let ms: f64 = (0..6)
                            .map(|seed| {
                                let m = model(act.clone(), d, bias, n, 1.0);
                                let th = init::draw(&spec, n, d, bias, 100 + seed);
                                let k = m.kernel(&th, x.as_ref(), &mut Workspace::default());
                                (frob(&k, Some(limit)) / norm).powi(2)
                            })
                            .sum::<f64>()
                            / 6.0;
                        ms.sqrt()
                    })
                    .collect()
            };
            let w: Vec<f64> = widths.iter().map(|&n| n as f64).collect();
            let errs = errors(&exact);
            let slope = loglog_slope(&w, &errs);
            assert!(
                (-0.6..=-0.4).contains(&slope),
                "{} bias={bias}: slope {slope}, errors {errs:?}",
                act.name()
            );
            if stds.a_mean != 0.0 {
                let ignoring = WeightStds {
                    a_mean: 0.0,
                    ..stds
                };
                let old = kernel(Kind::Ntk, &act, ignoring, bias, x.as_ref(), x.as_ref());
                let errs = errors(&old);
                let slope = loglog_slope(&w, &errs);
                assert!(
                    slope > -0.2 && errs[3] > 0.05,
                    "{}: the kernel without a_mean converges too? slope {slope}, {errs:?}",
                    act.name()
                );
            }
        }
    }
}

fn frob(a: &Mat<f64>, minus: Option<&Mat<f64>>) -> f64 {
    let mut s = 0.0;
    for i in 0..a.nrows() {
        for j in 0..a.ncols() {
            let v = a[(i, j)] - minus.map_or(0.0, |b| b[(i, j)]);
            s += v * v;
        }
    }
    s.sqrt()
}

/// The analytic random-features and neural-tangent kernels (the NTK restricted to a, or to w and
/// b) sum to the NTK, and each is the limit of the empirical kernel of the same restriction: at
/// N = 16384 the relative error is a few 1/√N, and it shrinks 4× from N = 1024.
#[test]
fn restricted_analytic_kernels_are_the_limits_of_the_restricted_empirical_kernels() {
    use meanfield::problem::Params;
    let d = 5;
    let x = gaussian_mat(10, d, 4);
    for act in [
        Activation::named("relu").unwrap(),
        Activation::named("erf").unwrap(),
    ] {
        let bias = true;
        let stds = WeightStds {
            a: 1.3,
            a_mean: 0.0,
            w: 0.7,
            b: 0.4,
        };
        let k = |kind| kernel(kind, &act, stds, bias, x.as_ref(), x.as_ref());
        let (all, rf, nt) = (
            k(Kind::Ntk),
            k(Kind::RandomFeatures),
            k(Kind::NeuralTangent),
        );
        assert!(frob(&all, Some(&(&rf + &nt))) <= 1e-14 * frob(&all, None));
        let spec = InitSpec {
            a_std: stds.a,
            w_std: Some(stds.w),
            b_std: stds.b,
            ..InitSpec::default()
        };
        for (params, exact) in [(Params::Output, &rf), (Params::Hidden, &nt)] {
            assert_eq!(
                Kind::for_params(params),
                if params == Params::Output {
                    Kind::RandomFeatures
                } else {
                    Kind::NeuralTangent
                }
            );
            let err = |n: usize| {
                let ms: f64 = (0..4)
                    .map(|seed| {
                        let m = model(act.clone(), d, bias, n, 1.0);
                        let th = init::draw(&spec, n, d, bias, 200 + seed);
                        let kk = m.kernel_of(
                            &th,
                            x.as_ref(),
                            x.as_ref(),
                            params,
                            &mut Workspace::default(),
                        );
                        (frob(&kk, Some(exact)) / frob(exact, None)).powi(2)
                    })
                    .sum::<f64>()
                    / 4.0;
                ms.sqrt()
            };
            let (e1, e2) = (err(1024), err(16384));
            assert!(e2 < 5.0 / 128.0, "{act:?} {params:?}: {e2}");
            assert!(
                e1 / e2 > 2.5 && e1 / e2 < 6.5,
                "{act:?} {params:?}: {e1} → {e2}"
            );
        }
    }
}
