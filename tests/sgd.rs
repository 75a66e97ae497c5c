//! Stochastic gradient descent: GD as its full-batch, noiseless case; the Langevin version's
//! Gibbs fixed point against its closed form; online SGD against the population GD it
//! approximates; minibatches; refusals.

use meanfield::archive::ArchiveReader;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_meanfield");

fn run(dir: &Path, text: &str, threads: &str) -> Output {
    std::fs::write(dir.join("p.toml"), text).unwrap();
    Command::new(BIN)
        .current_dir(dir)
        .args(["run", "p.toml", "-q", "--force", "--threads", threads])
        .output()
        .unwrap()
}

fn read(dir: &Path, name: &str) -> (Vec<usize>, Vec<f64>) {
    ArchiveReader::open(&dir.join("out.h5"))
        .unwrap()
        .read(name)
        .unwrap()
}

const TWO_LAYER: &str = r#"seed = 5
output = "out.h5"
[data]
source = "synthetic"
input = "gaussian"
d = 6
n_train = 200
n_test = 100
target = { kind = "teacher", width = 3, activation = "erf" }
[model]
activation = "erf"
width = 64
scaling = "mean_field"
"#;

#[test]
fn full_batch_sgd_without_noise_is_gd_bit_for_bit_and_minibatches_descend() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = format!(
        "{TWO_LAYER}[[dynamics]]\nkind = \"gd\"\nstep = 0.05\nsteps = 200\n\
         [[dynamics]]\nkind = \"sgd\"\nstep = 0.05\nsteps = 200\n\
         [[dynamics]]\nkind = \"sgd\"\nname = \"mini\"\nbatch = 20\nstep = 0.05\nsteps = 200\n\
         [save]\ncount = 11\nparticles = true\n"
    );
    let o = run(d, &text, "2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, gd) = read(d, "runs/gd/particles");
    let (_, sgd) = read(d, "runs/sgd/particles");
    assert!(gd.iter().zip(&sgd).all(|(a, b)| a.to_bits() == b.to_bits()));
    // Minibatches of 20 of the 200 points: the training loss still falls, and the run is the
    // same on one thread.
    let (_, loss) = read(d, "runs/mini/loss_train");
    assert!(loss.last().unwrap() < &(0.5 * loss[0]), "{loss:?}");
    let (_, two) = read(d, "runs/mini/particles");
    assert!(run(d, &text, "1").status.success());
    let (_, one) = read(d, "runs/mini/particles");
    assert!(one
        .iter()
        .zip(&two)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(
        two.iter().zip(&gd).any(|(a, b)| a != b),
        "minibatches changed nothing"
    );
}

/// Solves the small dense system A z = b by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap();
        a.swap(c, p);
        b.swap(c, p);
        let pivot = a[c].clone();
        for r in c + 1..n {
            let f = a[r][c] / pivot[c];
            for (ark, pk) in a[r].iter_mut().zip(&pivot).skip(c) {
                *ark -= f * pk;
            }
            b[r] -= f * b[c];
        }
    }
    let mut z = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * z[k]).sum();
        z[r] = (b[r] - s) / a[r][r];
    }
    z
}

/// Langevin SGD with weight decay on linear neurons with fixed output weights a_j = 1:
/// Ψ(w; ρ) = −⟨b, w⟩ + ⟨w, Σ m⟩ with Σ = XᵀX/n, b = Xᵀy/n and m the particles' mean, so the Gibbs
/// measure ρ* ∝ exp(−(Ψ + λ|w|²/2)/T) is the Gaussian N((Σ + λI)⁻¹ b, (T/λ) I). The Euler–Maruyama
/// chain keeps that mean exactly and has the spread T(1 − 1/N)/(λ(1 − ηλ/2)) about the particles'
/// mean (its deviations are an Ornstein–Uhlenbeck chain of rate λ).
#[test]
fn langevin_particles_settle_on_the_gibbs_measure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (n_part, dim, temp, lambda, eta) = (1000usize, 3usize, 0.1, 1.0, 0.01);
    let text = format!(
        r#"seed = 3
output = "out.h5"
[data]
source = "synthetic"
input = "gaussian"
d = {dim}
n_train = 200
n_test = 10
target = {{ kind = "linear" }}
[model]
activation = "linear"
width = {n_part}
scaling = "mean_field"
output_weights = "fixed"
init = {{ a_mean = 1.0, a_std = 0.0 }}
[[dynamics]]
kind = "sgd"
step = {eta}
steps = 4000
temperature = {temp}
weight_decay = {lambda}
[save]
count = 41
particles = true
"#
    );
    let o = run(d, &text, "2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, x) = read(d, "data/x_train");
    let (_, y) = read(d, "data/y_train");
    let n = y.len();
    let mut a = vec![vec![0.0; dim]; dim];
    let mut b = vec![0.0; dim];
    for i in 0..n {
        for k in 0..dim {
            b[k] += x[i * dim + k] * y[i] / n as f64;
            for l in 0..dim {
                a[k][l] += x[i * dim + k] * x[i * dim + l] / n as f64;
            }
        }
    }
    for (k, row) in a.iter_mut().enumerate() {
        row[k] += lambda;
    }
    let mean_star = solve(a, b);
    let (shape, p) = read(d, "runs/sgd/particles");
    let (t, dd) = (shape[0], shape[2]);
    assert_eq!(dd, dim + 1);
    // After a burn-in of 10 relaxation times, average over the saves (about independent:
    // one time unit apart against relaxation times of 1/λ and 1/(λ + eig Σ)).
    let (mut mean, mut spread, mut used) = (vec![0.0; dim], 0.0, 0);
    for k in 10..t {
        let slice = &p[k * n_part * dd..(k + 1) * n_part * dd];
        let m: Vec<f64> = (0..dim)
            .map(|c| (0..n_part).map(|j| slice[j * dd + 1 + c]).sum::<f64>() / n_part as f64)
            .collect();
        let v: f64 = (0..n_part)
            .flat_map(|j| (0..dim).map(move |c| (j, c)))
            .map(|(j, c)| (slice[j * dd + 1 + c] - m[c]).powi(2))
            .sum::<f64>()
            / (n_part * dim) as f64;
        mean.iter_mut().zip(&m).for_each(|(a, b)| *a += b);
        spread += v;
        used += 1;
        // The output weights never moved.
        assert!((0..n_part).all(|j| slice[j * dd] == 1.0));
    }
    mean.iter_mut().for_each(|m| *m /= used as f64);
    spread /= used as f64;
    // The mean of N particles fluctuates with sd ≈ √(T/(N(1 + λ))) ≈ 0.007 per save; over 31
    // saves the standard error is ≈ 0.0013.
    for (m, want) in mean.iter().zip(&mean_star) {
        assert!(
            (m - want).abs() < 0.006,
            "mean {mean:?} vs Gibbs {mean_star:?}"
        );
    }
    // 3000 deviations per save, 31 saves: a relative standard error of about 0.5%.
    let want = temp * (1.0 - 1.0 / n_part as f64) / (lambda * (1.0 - eta * lambda / 2.0));
    eprintln!("mean {mean:?} vs Gibbs {mean_star:?}; spread {spread} vs {want}");
    assert!(
        (spread / want - 1.0).abs() < 0.02,
        "spread {spread} vs Gibbs {want}"
    );
}

/// Online SGD (fresh samples each step) on the population problem follows population GD: the
/// closed-form risk of its particles stays near GD's, with a gap from the gradient noise that
/// shrinks with the batch.
#[test]
fn online_sgd_follows_population_gd() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = TWO_LAYER.replace("n_test = 100\n", "n_test = 100\nrisk = \"population\"\n")
        + "[[dynamics]]\nkind = \"gd\"\nstep = 0.02\nsteps = 250\n\
           [[dynamics]]\nkind = \"sgd\"\nname = \"online8\"\nonline = true\nbatch = 8\nstep = 0.02\nsteps = 250\n\
           [[dynamics]]\nkind = \"sgd\"\nname = \"online128\"\nonline = true\nbatch = 128\nstep = 0.02\nsteps = 250\n\
           [save]\ncount = 11\n";
    let o = run(d, &text, "2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, gd) = read(d, "runs/gd/loss_train");
    let gap = |name: &str| {
        let (_, r) = read(d, &format!("runs/{name}/loss_train"));
        r.iter()
            .zip(&gd)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let (g8, g128) = (gap("online8"), gap("online128"));
    eprintln!("risk gaps: batch 8 {g8}, batch 128 {g128}, R(0) {}", gd[0]);
    assert!(g128 < 0.05 * gd[0], "{g128}");
    assert!(g128 < g8, "{g128} vs {g8}");
}

#[test]
fn sgd_settings_outside_their_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sgd = |extra: &str| {
        format!("{TWO_LAYER}[[dynamics]]\nkind = \"sgd\"\nstep = 0.05\nsteps = 10\n{extra}\n")
    };
    std::fs::write(d.join("rows.csv"), "1,2,3\n4,5,6\n").unwrap();
    let csv = "seed = 1\noutput = \"out.h5\"\n[data]\nsource = \"csv\"\ntrain = \"rows.csv\"\n\
               [model]\nactivation = \"erf\"\nwidth = 4\nscaling = \"mean_field\"\n\
               [[dynamics]]\nkind = \"sgd\"\nstep = 0.1\nsteps = 5\nonline = true\nbatch = 2\n";
    let fixed_linearized = TWO_LAYER.replace(
        "scaling = \"mean_field\"\n",
        "scaling = \"mean_field\"\noutput_weights = \"fixed\"\n",
    )
        + "[[dynamics]]\nkind = \"linearized\"\nmethod = \"tsit45\"\nt_end = 1.0\n";
    let cases = [
        (sgd("batch = 500"), "dynamics[0].batch"),
        (sgd("online = true"), "dynamics[0].batch"),
        (sgd("temperature = -1.0"), "dynamics[0].temperature"),
        (sgd("weight_decay = nan"), "dynamics[0].weight_decay"),
        (csv.to_string(), "dynamics[0].online"),
        (fixed_linearized, "dynamics[0].kind"),
    ];
    for (text, key) in cases {
        let o = run(d, &text, "1");
        assert_eq!(o.status.code(), Some(2), "{key}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(key), "{key}: {err}");
        assert!(!d.join("out.h5").exists(), "{key}");
    }
}
