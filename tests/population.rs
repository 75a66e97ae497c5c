//! The closed-form population risk for Gaussian inputs against independent truths: Monte-Carlo
//! estimates (within their standard error at every sample size), finite differences of the risk
//! for the velocity, a network that equals its teacher, and full runs through a problem file.

use faer::{Mat, Par};
use meanfield::limits::population::{PairKernel, PopulationRisk, Teacher};
use meanfield::problem::Activation;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn gaussian_mat(rng: &mut impl Rng, n: usize, d: usize, scale: f64) -> Mat<f64> {
    Mat::from_fn(n, d, |_, _| scale * rng.sample::<f64, _>(StandardNormal))
}

/// σ(z) = Σ b_j z^j
fn poly(b: &[f64], z: f64) -> f64 {
    b.iter().rev().fold(0.0, |acc, c| acc * z + c)
}

/// f*(x) − f(x) at one input, from the definitions.
fn gap(act: &dyn Fn(f64) -> f64, pr: &PopulationRisk, theta: &[f64], x: &[f64]) -> f64 {
    let d = x.len();
    let dot = |w: &dyn Fn(usize) -> f64| (0..d).map(|k| w(k) * x[k]).sum::<f64>();
    let t = &pr.teacher;
    let fstar: f64 = (0..t.w.nrows())
        .map(|i| t.coef[i] * act(dot(&|k| t.w[(i, k)])))
        .sum();
    let dim = d + 1;
    let f: f64 = (0..pr.n_particles)
        .map(|j| theta[j * dim] * act(dot(&|k| theta[j * dim + 1 + k])))
        .sum::<f64>()
        * pr.alpha
        / pr.n_particles as f64;
    fstar - f
}

struct Case {
    name: &'static str,
    act: Activation,
    sigma: Box<dyn Fn(f64) -> f64>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "relu",
            act: Activation::named("relu").unwrap(),
            sigma: Box::new(|z: f64| z.max(0.0)),
        },
        Case {
            name: "erf",
            act: Activation::named("erf").unwrap(),
            sigma: Box::new(|z: f64| statrs::function::erf::erf(z)),
        },
        Case {
            name: "linear",
            act: Activation::named("linear").unwrap(),
            sigma: Box::new(|z: f64| z),
        },
        Case {
            name: "quadratic",
            act: Activation::named("quadratic").unwrap(),
            sigma: Box::new(|z: f64| z * z),
        },
    ]
}

fn setup(
    act: Activation,
    seed: u64,
    nn: usize,
    d: usize,
    alpha: f64,
) -> (PopulationRisk, Vec<f64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let m = 3;
    let teacher = Teacher {
        act: act.clone(),
        w: gaussian_mat(&mut rng, m, d, 1.0 / (d as f64).sqrt()),
        coef: (0..m).map(|i| [1.0, -0.7, 0.5][i]).collect(),
    };
    let pr = PopulationRisk::new(act, nn, alpha, teacher, Par::Seq).unwrap();
    let theta: Vec<f64> = (0..nn * (d + 1))
        .map(|_| rng.sample::<f64, _>(StandardNormal) / (d as f64).sqrt())
        .collect();
    (pr, theta)
}

/// The Monte-Carlo mean of (f* − f)² agrees with the closed form within four standard errors
/// at every sample size from 10³ to 10⁶: its error shrinks like n^(−1/2) around the closed form.
#[test]
fn population_risk_matches_monte_carlo_within_its_standard_error() {
    let d = 6;
    for case in cases() {
        let (pr, theta) = setup(case.act, 11, 20, d, 1.0);
        let exact = pr.risk(&theta);
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        let (mut sum, mut sum2, mut n) = (0.0, 0.0, 0usize);
        let mut x = vec![0.0; d];
        for target in [1_000usize, 10_000, 100_000, 1_000_000] {
            while n < target {
                x.iter_mut()
                    .for_each(|v| *v = rng.sample::<f64, _>(StandardNormal));
                let g = gap(&*case.sigma, &pr, &theta, &x).powi(2);
                sum += g;
                sum2 += g * g;
                n += 1;
            }
            let mean = sum / n as f64;
            let se = ((sum2 / n as f64 - mean * mean) / n as f64).sqrt();
            assert!(
                (mean - exact).abs() <= 4.0 * se,
                "{}: n = {n}: Monte Carlo {mean} ± {se}, closed form {exact}",
                case.name
            );
            if n == 1_000_000 {
                assert!(se < 0.01 * exact, "{}: {se} vs {exact}", case.name);
            }
        }
    }
}

/// A polynomial activation's pair kernel (Wick's theorem) against a direct Monte-Carlo mean of
/// σ(z)σ(z') for a correlated pair.
#[test]
fn polynomial_pair_kernel_matches_monte_carlo() {
    let b = [0.3, -0.5, 0.2, 0.1];
    let k = PairKernel::polynomial(&b);
    let (u, v, c): (f64, f64, f64) = (1.3, 0.6, -0.4);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let n = 2_000_000;
    let (mut s, mut s2) = (0.0, 0.0);
    for _ in 0..n {
        let g1: f64 = rng.sample(StandardNormal);
        let g2: f64 = rng.sample(StandardNormal);
        let z = u.sqrt() * g1;
        let zp = c / u.sqrt() * g1 + (v - c * c / u).sqrt() * g2;
        let p = poly(&b, z) * poly(&b, zp);
        s += p;
        s2 += p * p;
    }
    let mean = s / n as f64;
    let se = ((s2 / n as f64 - mean * mean) / n as f64).sqrt();
    let exact = k.value(u, v, c);
    assert!((mean - exact).abs() <= 4.0 * se, "{mean} ± {se} vs {exact}");
    // Hermite orthogonality: E[He_2(z) He_3(z')] = 0 and E[He_3(z) He_3(z')] = 3! c³ for unit
    // variances.
    let he2 = [-1.0, 0.0, 1.0];
    let he3 = [0.0, -3.0, 0.0, 1.0];
    let mixed = PairKernel::polynomial(&[he2[0], he2[1] + he3[1], he2[2], he3[3]]);
    let rho = 0.37;
    let want = PairKernel::polynomial(&he2).value(1.0, 1.0, rho)
        + PairKernel::polynomial(&he3).value(1.0, 1.0, rho);
    assert!((mixed.value(1.0, 1.0, rho) - want).abs() < 1e-12);
    assert!((PairKernel::polynomial(&he3).value(1.0, 1.0, rho) - 6.0 * rho.powi(3)).abs() < 1e-12);
    assert!((PairKernel::polynomial(&he2).value(1.0, 1.0, rho) - 2.0 * rho.powi(2)).abs() < 1e-12);
}

/// The velocity is −(N/(2α²)) ∇R (design.md §1), checked by central differences of R.
#[test]
fn velocity_is_the_scaled_gradient_of_the_risk() {
    for case in cases() {
        for alpha in [1.0, 3.0] {
            let nn = 7;
            let d = 5;
            let (pr, theta) = setup(case.act.clone(), 5, nn, d, alpha);
            let mut v = vec![0.0; theta.len()];
            pr.velocity(&theta, &mut v);
            let scale = nn as f64 / (2.0 * alpha * alpha);
            let h = 1e-5;
            let mut worst = 0.0f64;
            let norm = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for p in 0..theta.len() {
                let mut tp = theta.clone();
                tp[p] += h;
                let mut tm = theta.clone();
                tm[p] -= h;
                let grad = (pr.risk(&tp) - pr.risk(&tm)) / (2.0 * h);
                worst = worst.max((v[p] + scale * grad).abs());
            }
            assert!(
                worst < 1e-7 * norm.max(1.0),
                "{} α = {alpha}: {worst}",
                case.name
            );
        }
    }
}

/// A network that is its teacher (N = m* particles on the teacher's neurons, a_j = c*_j N/α) has
/// zero risk and zero velocity.
#[test]
fn a_network_equal_to_its_teacher_is_a_zero_risk_stationary_point() {
    for case in cases() {
        let (pr, _) = setup(case.act, 8, 3, 4, 2.0);
        let t = &pr.teacher;
        let mut theta = vec![];
        for i in 0..3 {
            theta.push(t.coef[i] * 3.0 / 2.0);
            theta.extend((0..4).map(|k| t.w[(i, k)]));
        }
        let r = pr.risk(&theta);
        assert!(r.abs() < 1e-13, "{}: {r}", case.name);
        let mut v = vec![0.0; theta.len()];
        pr.velocity(&theta, &mut v);
        assert!(v.iter().all(|x| x.abs() < 1e-12), "{}: {v:?}", case.name);
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_meanfield");

fn problem(activation: &str, extra_model: &str, dynamics: &str) -> String {
    format!(
        r#"seed = 4
output = "pop.h5"
[data]
source = "synthetic"
input = "gaussian"
d = 5
n_train = 10
n_test = 200
risk = "population"
target = {{ kind = "teacher", width = 2, activation = "{activation}" }}
[model]
activation = "{activation}"
width = 64
scaling = "mean_field"
{extra_model}
{dynamics}
[save]
count = 20
particles = true
"#
    )
}

const FLOW_AND_GD: &str = r#"[[dynamics]]
kind = "gradient_flow"
method = "tsit45"
rtol = 1e-9
atol = 1e-11
t_end = 4.0
[[dynamics]]
kind = "gd"
step = 0.002
steps = 2000
"#;

fn run(dir: &std::path::Path, text: &str, threads: &str) -> std::process::Output {
    std::fs::write(dir.join("p.toml"), text).unwrap();
    std::process::Command::new(BIN)
        .current_dir(dir)
        .args(["run", "p.toml", "-q", "--force", "--threads", threads])
        .output()
        .unwrap()
}

/// A problem trained on the population risk: `loss_train` is the closed-form risk of the saved
/// particles, it decreases along the flow, GD with a small step follows the flow, and the
/// numbers do not depend on the thread count.
#[test]
fn population_runs_descend_the_closed_form_risk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = run(d, &problem("erf", "", FLOW_AND_GD), "2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = meanfield::archive::ArchiveReader::open(&d.join("pop.h5")).unwrap();
    let flow = a.read_1d("runs/gradient_flow/loss_train").unwrap();
    let gd = a.read_1d("runs/gd/loss_train").unwrap();
    assert!(flow.windows(2).all(|w| w[1] <= w[0]), "{flow:?}");
    assert!(flow.last().unwrap() < &(0.5 * flow[0]), "{flow:?}");
    for (f, g) in flow.iter().zip(&gd) {
        // Euler's global error is O(η): 0.2% of the risk at η = 0.002 is ample.
        assert!((f - g).abs() <= 2e-3 * flow[0], "flow {f} gd {g}");
    }
    // The saved particles give the saved risk through the library's closed form.
    let (shape, particles) = a.read("runs/gradient_flow/particles").unwrap();
    let setup = meanfield::family::two_layer::Setup::load(
        &d.join("p.toml"),
        &meanfield::family::RunOptions {
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let pr = setup.population.as_ref().unwrap();
    let per = shape[1] * shape[2];
    for (k, want) in flow.iter().enumerate() {
        let got = pr.risk(&particles[k * per..(k + 1) * per]);
        assert!((got - want).abs() <= 1e-12 * want.max(1.0));
    }
    drop(a);
    let one = all_datasets_of(d, "pop.h5");
    let o = run(d, &problem("erf", "", FLOW_AND_GD), "1");
    assert!(o.status.success());
    assert_eq!(
        one,
        all_datasets_of(d, "pop.h5"),
        "thread count changed the numbers"
    );
}

fn all_datasets_of(d: &std::path::Path, name: &str) -> Vec<(String, Vec<u64>)> {
    let a = meanfield::archive::ArchiveReader::open(&d.join(name)).unwrap();
    ["gradient_flow", "gd"]
        .iter()
        .flat_map(|r| {
            ["particles", "loss_train", "f_test"].map(|k| {
                let name = format!("runs/{r}/{k}");
                let v = a.read(&name).unwrap().1;
                (name, v.iter().map(|x| x.to_bits()).collect())
            })
        })
        .collect()
}

/// What the closed forms do not cover is refused before any work, naming the key.
#[test]
fn population_problems_outside_the_closed_forms_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        (problem("tanh", "", FLOW_AND_GD), "model.activation"),
        (problem("relu", "bias = true", FLOW_AND_GD), "model.bias"),
        (
            problem("relu", "", FLOW_AND_GD).replace("\"gaussian\"", "\"sphere\""),
            "data.input",
        ),
        (
            problem("relu", "", FLOW_AND_GD).replace(
                "activation = \"relu\" }",
                "activation = \"erf\" }",
            ),
            "data.target",
        ),
        (
            problem(
                "relu",
                "",
                "[[dynamics]]\nkind = \"linearized\"\nmethod = \"tsit45\"\nrtol = 1e-6\natol = 1e-8\nt_end = 1.0\n",
            ),
            "dynamics[0].kind",
        ),
    ];
    for (text, key) in cases {
        let o = run(d, &text, "1");
        assert_eq!(o.status.code(), Some(2), "{key}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(key), "{key}: {err}");
        assert!(!d.join("pop.h5").exists(), "{key}: an archive was created");
    }
}
