//! Mei–Montanari–Nguyen's isotropic-Gaussians example: the closed forms of the 1-D radial PDE
//! against quadrature and finite differences, its risk decreasing, and the d-dimensional
//! particle system trained by online SGD approaching it as N grows.

mod common;

use meanfield::archive::ArchiveReader;
use meanfield::dynamics::radial::RadialPde;
use meanfield::dynamics::VectorField;
use meanfield::integrate::ode;
use meanfield::measure::wasserstein::w2_sq_1d;
use meanfield::model::activation::RAMP;
use meanfield::problem::Method;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::process::Command;

/// Q(a) = E σ(aG) and Q'(a) against Simpson's rule on the Gaussian integral.
#[test]
fn ramp_gaussian_means_match_quadrature() {
    let simpson = |f: &dyn Fn(f64) -> f64, lo: f64, hi: f64| {
        let n = 240_000;
        let h = (hi - lo) / n as f64;
        let mut s = f(lo) + f(hi);
        for i in 1..n {
            s += f(lo + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0
    };
    let density = |g: f64| (-0.5 * g * g).exp() / (2.0 * std::f64::consts::PI).sqrt();
    for a in [0.2, 0.7, 1.3, 3.0] {
        let q = simpson(&|g| RAMP.value(a * g) * density(g), -12.0, 12.0);
        // σ' jumps at the kinks: integrate k·g·φ(g) over the linear piece only.
        let (lo, hi) = (RAMP.t1 / a, (RAMP.t2 / a).min(40.0));
        let dq = simpson(&|g| RAMP.k() * g * density(g), lo, hi);
        assert!((q - RAMP.gauss_mean(a)).abs() < 1e-7, "Q({a}): {q}");
        assert!(
            (dq - RAMP.gauss_mean_slope(a)).abs() < 1e-6,
            "Q'({a}): {dq}"
        );
    }
}

fn initial_radii(m: usize, d: usize, kappa: f64, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..m)
        .map(|_| {
            let s: f64 = (0..d)
                .map(|_| rng.sample::<f64, _>(StandardNormal).powi(2))
                .sum();
            kappa * (s / d as f64).sqrt()
        })
        .collect()
}

/// Gauss–Legendre nodes and weights on [−1, 1] (Newton on P_n).
fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
            loop {
                let (mut p0, mut p1) = (1.0, x);
                for k in 2..=n {
                    let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                    p0 = p1;
                    p1 = p2;
                }
                let dp = n as f64 * (x * p1 - p0) / (x * x - 1.0);
                let dx = p1 / dp;
                x -= dx;
                if dx.abs() < 1e-15 {
                    let w = 2.0 / ((1.0 - x * x) * dp * dp);
                    return (x, w);
                }
            }
        })
        .collect()
}

/// ∫_lo^hi f by 20-point Gauss–Legendre on `pieces` equal subintervals.
fn integrate(f: &dyn Fn(f64) -> f64, lo: f64, hi: f64, pieces: usize, gl: &[(f64, f64)]) -> f64 {
    let h = (hi - lo) / pieces as f64;
    (0..pieces)
        .map(|p| {
            let mid = lo + (p as f64 + 0.5) * h;
            gl.iter()
                .map(|(x, w)| w * f(mid + 0.5 * h * x))
                .sum::<f64>()
                * 0.5
                * h
        })
        .sum()
}

/// The angular series u_d (Mehler's formula with the sphere's moments of c) against a direct
/// quadrature of its definition: c over (−1, 1) with density ∝ (1 − c²)^((d−3)/2), G₂ in closed
/// form (a ramp of a shifted Gaussian), G₁ by Gauss–Legendre split at σ's kinks. And u_d → u_∞
/// at rate 1/d.
#[test]
fn finite_d_kernel_matches_the_angular_integral() {
    let gl = gauss_legendre(20);
    let (t1, t2, s1, k) = (RAMP.t1, RAMP.t2, RAMP.s1, RAMP.k());
    let pdf = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let cdf = |z: f64| 0.5 * (1.0 + statrs::function::erf::erf(z / std::f64::consts::SQRT_2));
    // E σ(m + τG), τ > 0
    let shifted = |m: f64, tau: f64| {
        let (a, b) = ((t1 - m) / tau, (t2 - m) / tau);
        s1 * cdf(a)
            + RAMP.s2 * (1.0 - cdf(b))
            + (s1 + k * (m - t1)) * (cdf(b) - cdf(a))
            + k * tau * (pdf(a) - pdf(b))
    };
    let delta = 0.8;
    let direct = |r1: f64, r2: f64, d: usize| {
        let e = (d as f64 - 3.0) / 2.0;
        let weight = |c: f64| (1.0 - c * c).max(0.0).powf(e);
        let z = integrate(&weight, -1.0, 1.0, 40, &gl);
        let pair = |c: f64| {
            [1.0 + delta, 1.0 - delta]
                .iter()
                .map(|a| {
                    let (x, y) = (a * r1, a * r2);
                    let tau = y * (1.0 - c * c).sqrt();
                    let inner = |g: f64| RAMP.value(x * g) * shifted(y * c * g, tau) * pdf(g);
                    let (k1, k2) = (t1 / x, t2 / x);
                    let mut cuts = vec![-14.0];
                    cuts.extend([k1, k2].iter().filter(|&&c| c.abs() < 14.0));
                    cuts.push(14.0);
                    cuts.windows(2)
                        .map(|w| integrate(&inner, w[0], w[1], 40, &gl))
                        .sum::<f64>()
                })
                .sum::<f64>()
                * 0.5
        };
        integrate(&|c| weight(c) * pair(c), -1.0, 1.0, 40, &gl) / z
    };
    let pairs = [(0.8, 0.8), (0.3, 1.7), (1.2, 0.05), (2.5, 2.0)];
    for d in [20usize, 40, 200] {
        let pde = RadialPde::finite(delta, 1, d).unwrap();
        for &(r1, r2) in &pairs {
            let (series, quad) = (pde.kernel(r1, r2), direct(r1, r2, d));
            eprintln!(
                "d = {d}, r = ({r1}, {r2}): series {series:.12} quadrature {quad:.12}, {} terms",
                pde.terms()
            );
            assert!(
                (series - quad).abs() < 1e-9,
                "d = {d} ({r1}, {r2}): {series} vs {quad}"
            );
            assert!((pde.kernel(r2, r1) - series).abs() < 1e-14);
        }
    }
    let inf = RadialPde::new(delta, 1);
    // (r = 0.05 is left out: there h₂ ≈ 0 and the 1/d² terms lead.)
    for &(r1, r2) in &[pairs[0], pairs[1], pairs[3]] {
        let gap =
            |d: usize| RadialPde::finite(delta, 1, d).unwrap().kernel(r1, r2) - inf.kernel(r1, r2);
        let ratio = gap(100) / gap(400);
        assert!((3.5..4.5).contains(&ratio), "({r1}, {r2}): {ratio}");
    }
    assert!(RadialPde::finite(delta, 1, 5).is_err());
}

/// The radii move along −(M/2)∇R (a gradient flow of the discrete risk): checked by central
/// differences at d = ∞ and d = 40; integrated, the risk falls and the radii stay in [0, ∞).
#[test]
fn radial_pde_is_the_gradient_flow_of_its_risk() {
    for pde in [
        RadialPde::new(0.8, 50),
        RadialPde::finite(0.8, 50, 40).unwrap(),
    ] {
        gradient_flow_of_risk(pde);
    }
}

fn gradient_flow_of_risk(pde: RadialPde) {
    let r = initial_radii(50, 40, 0.8, 1);
    let mut v = vec![0.0; r.len()];
    pde.velocity(&r, &mut v);
    let h = 1e-6;
    for j in 0..r.len() {
        let (mut p, mut m) = (r.clone(), r.clone());
        p[j] += h;
        m[j] -= h;
        let grad = (pde.risk(&p) - pde.risk(&m)) / (2.0 * h);
        let want = -(r.len() as f64) / 2.0 * grad;
        assert!(
            (v[j] - want).abs() < 1e-6 * (1.0 + want.abs()),
            "{j}: {} vs {want}",
            v[j]
        );
    }
    let times: Vec<f64> = (0..=20).map(|k| 0.25 * k as f64).collect();
    let mut risks = vec![];
    let out = ode::run(
        &pde,
        &r,
        Method::Tsit45,
        1e-9,
        1e-11,
        &times,
        &mut |_, y| {
            assert!(y.iter().all(|&x| x >= -1e-9));
            risks.push(pde.risk(y));
            Ok(())
        },
    );
    assert!(out.stopped.is_none());
    assert_eq!(risks.len(), times.len());
    assert!(risks.windows(2).all(|w| w[1] <= w[0] + 1e-12), "{risks:?}");
    assert!(risks.last().unwrap() < &(0.7 * risks[0]), "{risks:?}");
}

const BIN: &str = env!("CARGO_BIN_EXE_meanfield");

/// Online SGD (one fresh sample per step) of the full d-dimensional network, at N = 50 and 800,
/// against the PDE (`radial_pde` with the exact u_d at d = 40, in the same problem file) from
/// the same initial law: the risk gap and the radial W2 distance to the PDE shrink as N grows.
/// (Measured: sup_t W2 0.025 → 0.0074 and the risk gap 0.058 → 0.0025; against the d = ∞ kernel
/// the N = 800 gaps were 0.016 and 0.009, the O(1/d) error of u_∞.)
#[test]
fn online_sgd_approaches_the_radial_pde_as_n_grows() {
    let (d, kappa, delta) = (40usize, 0.8, 0.8);
    let dir = tempfile::tempdir().unwrap();
    let problem = |n: usize| {
        format!(
            r#"seed = 2
output = "n{n}.h5"
[data]
source = "synthetic"
input = "gaussian"
d = {d}
n_train = 1
n_test = 20000
target = {{ kind = "isotropic_classes", delta = {delta} }}
[model]
activation = "ramp"
width = {n}
scaling = "mean_field"
output_weights = "fixed"
init = {{ a_mean = 1.0, a_std = 0.0, w_std = {} }}
[[dynamics]]
kind = "sgd"
online = true
batch = 1
step = 0.0001
steps = 20000
[[dynamics]]
kind = "radial_pde"
radii = 20000
rtol = 1e-8
atol = 1e-10
t_end = 2.0
[save]
count = 5
particles = true
"#,
            kappa / (d as f64).sqrt()
        )
    };
    let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    let m = 20_000;
    let pde = RadialPde::finite(delta, m, d).unwrap();
    let (mut gaps, mut risk_gaps) = (vec![], vec![]);
    for n in [50usize, 800] {
        std::fs::write(dir.path().join("p.toml"), problem(n)).unwrap();
        let o = Command::new(BIN)
            .current_dir(dir.path())
            .args(["run", "p.toml", "-q"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let a = ArchiveReader::open(&dir.path().join(format!("n{n}.h5"))).unwrap();
        let (rshape, r) = a.read("runs/radial_pde/radii").unwrap();
        assert_eq!(rshape, vec![5, m]);
        let pde_radii: Vec<Vec<f64>> = r.chunks(m).map(|c| c.to_vec()).collect();
        let pde_risk = a.read_1d("runs/radial_pde/loss_train").unwrap();
        assert_eq!(a.read_1d("runs/radial_pde/t").unwrap(), times.to_vec());
        for (rk, want) in pde_radii.iter().zip(&pde_risk) {
            assert!((pde.risk(rk) - want).abs() < 1e-12);
        }
        // r₀ = ‖w₀‖ with w₀ ~ N(0, κ²/d I): E r² = κ², sd of the mean ≈ 0.001.
        let r2 = pde_radii[0].iter().map(|x| x * x).sum::<f64>() / m as f64;
        assert!((r2 - kappa * kappa).abs() < 0.005, "{r2}");
        let (shape, p) = a.read("runs/sgd/particles").unwrap();
        let loss = a.read_1d("runs/sgd/loss_test").unwrap();
        let dd = shape[2];
        let mut worst = 0.0f64;
        for k in 0..shape[0] {
            let radii: Vec<f64> = (0..n)
                .map(|j| {
                    let w = &p[(k * n + j) * dd + 1..(k * n + j + 1) * dd];
                    w.iter().map(|x| x * x).sum::<f64>().sqrt()
                })
                .collect();
            let w = w2_sq_1d(radii, pde_radii[k].clone()).sqrt();
            eprintln!("N = {n}, t = {}: radial W2 {w:.4}", times[k]);
            worst = worst.max(w);
        }
        eprintln!(
            "N = {n}: sup_t radial W2 to the PDE {worst:.4}; risk SGD {:?} PDE {:?}",
            loss, pde_risk
        );
        gaps.push(worst);
        // The test loss is a Monte-Carlo estimate of the risk on 20 000 points (error ≈ 0.01).
        risk_gaps.push(
            loss.iter()
                .zip(&pde_risk)
                .skip(1)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max),
        );
    }
    assert_eq!(VectorField::len(&pde), m);
    assert!(gaps[1] < 0.5 * gaps[0], "radial W2 {gaps:?}");
    assert!(risk_gaps[1] < 0.2 * risk_gaps[0], "risk gaps {risk_gaps:?}");
    assert!(risk_gaps[1] < 0.01, "risk gaps {risk_gaps:?}");
}

/// radial_pde outside MMN's setting is refused before any work, naming the dynamics.
#[test]
fn radial_pde_outside_its_setting_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        "seed = 1\noutput = \"o.h5\"\n[data]\nsource = \"synthetic\"\ninput = \"gaussian\"\n\
                d = 5\nn_train = 10\ntarget = { kind = \"isotropic_classes\", delta = 0.8 }\n\
                [model]\nactivation = \"relu\"\nwidth = 8\nscaling = \"mean_field\"\n\
                output_weights = \"fixed\"\ninit = { a_mean = 1.0, a_std = 0.0 }\n\
                [[dynamics]]\nkind = \"radial_pde\"\nt_end = 1.0\n";
    std::fs::write(dir.path().join("p.toml"), text).unwrap();
    let o = Command::new(BIN)
        .current_dir(dir.path())
        .args(["run", "p.toml", "-q"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("dynamics[0].kind") && err.contains("ramp"),
        "{err}"
    );
    assert!(!dir.path().join("o.h5").exists());
}

/// A width sweep measures each network's law of ‖w‖ against the radial PDE in the same archive
/// (`radial_w2`, the widest point included). At t = 0 both are independent samples of the
/// initial law of ‖w₀‖, so the distance is the empirical-measure rate of one dimension,
/// N^(−1/2) (the PDE's M = 20 000 radii add ≈ 0.001).
#[test]
fn sweep_radial_distance_at_initialization_falls_like_inverse_square_root() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"seed = 1
output = "mmn.h5"
[data]
source = "synthetic"
input = "gaussian"
d = 20
n_train = 1
n_test = 100
target = { kind = "isotropic_classes", delta = 0.8 }
[model]
activation = "ramp"
width = 16
scaling = "mean_field"
output_weights = "fixed"
init = { a_mean = 1.0, a_std = 0.0, w_std = 0.2 }
[[dynamics]]
kind = "sgd"
online = true
batch = 1
step = 0.0001
steps = 10
[[dynamics]]
kind = "radial_pde"
radii = 20000
t_end = 0.001
[save]
count = 2
particles = true
[sweep]
width = [16, 64, 256, 1024]
seeds = [1, 2, 3, 4, 5]
at = [0.0]
summary = "summary.h5"
"#;
    let (points, fits) = common::sweep_in(dir.path(), text);
    assert_eq!(points.len(), 20);
    assert!(points.iter().all(|p| p.to_ref.radial_w2[0] > 0.0));
    let fit = fits
        .iter()
        .find(|f| f.quantity == "radial_w2(t=0)")
        .expect("a radial_w2 fit");
    eprintln!(
        "radial W2 at t = 0: slope {:.3} [{:.3}, {:.3}]",
        fit.slope, fit.ci_low, fit.ci_high
    );
    assert!((-0.65..=-0.35).contains(&fit.slope), "{fit:?}");
    let a = ArchiveReader::open(&dir.path().join("summary.h5")).unwrap();
    let (shape, v) = a.read("points/radial_w2").unwrap();
    assert_eq!(shape, vec![20, 1]);
    for (p, x) in points.iter().zip(&v) {
        assert_eq!(p.to_ref.radial_w2[0], *x);
    }
}

/// The exact kernel needs d ≥ 20 (its angular series past 400 terms otherwise): a smaller d is
/// refused at parse time naming `large_d`, and accepted with `large_d = true`.
#[test]
fn radial_pde_at_small_d_is_refused_unless_large_d() {
    use meanfield::problem::Problem;
    let text = |d: usize, large: bool| {
        format!(
            "seed = 1\noutput = \"o.h5\"\n[data]\nsource = \"synthetic\"\ninput = \"gaussian\"\n\
             d = {d}\nn_train = 1\nn_test = 10\n\
             target = {{ kind = \"isotropic_classes\", delta = 0.8 }}\n\
             [model]\nactivation = \"ramp\"\nwidth = 8\nscaling = \"mean_field\"\n\
             output_weights = \"fixed\"\ninit = {{ a_mean = 1.0, a_std = 0.0 }}\n\
             [[dynamics]]\nkind = \"radial_pde\"\nlarge_d = {large}\nt_end = 1.0\n"
        )
    };
    let file = std::path::Path::new("p.toml");
    let err = Problem::parse(&text(10, false), file)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dynamics[0].large_d") && err.contains("d = 10") && err.contains("d ≥ 20"),
        "{err}"
    );
    assert!(Problem::parse(&text(10, true), file).is_ok());
    assert!(Problem::parse(&text(20, false), file).is_ok());
}
