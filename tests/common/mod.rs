//! Helpers shared by the integration tests.
#![allow(dead_code)]

use faer::{Mat, Par};
use meanfield::model::TwoLayer;
use meanfield::problem::Activation;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::path::{Path, PathBuf};

pub fn gaussian_mat(n: usize, d: usize, seed: u64) -> Mat<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Mat::from_fn(n, d, |_, _| rng.sample(StandardNormal))
}

pub fn gaussian_vec(n: usize, scale: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
        .collect()
}

pub fn model(act: Activation, d: usize, bias: bool, n: usize, alpha: f64) -> TwoLayer {
    TwoLayer {
        act,
        d,
        bias,
        n_particles: n,
        alpha,
        fixed_a: false,
        loss: std::sync::Arc::new(meanfield::model::loss::Square),
        par: Par::Seq,
    }
}

/// A fixed smooth target of the inputs, y = tanh(x₀ − x₁/2) + 0.3 x₂, and particles drawn with
/// biases of std 0.3: the smooth test problem of the flow tests.
pub fn smooth_problem(x: &Mat<f64>, n: usize, bias: bool, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let y = (0..x.nrows())
        .map(|i| (x[(i, 0)] - 0.5 * x[(i, 1)]).tanh() + 0.3 * x[(i, 2)])
        .collect();
    let spec = meanfield::problem::InitSpec {
        b_std: 0.3,
        ..Default::default()
    };
    (
        y,
        meanfield::model::init::draw(&spec, n, x.ncols(), bias, seed),
    )
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Least-squares slope of log y against log x (the sweep's fit).
pub fn loglog_slope(x: &[f64], y: &[f64]) -> f64 {
    meanfield::family::two_layer::sweep::loglog_fit(x, y)
        .expect("at least 3 distinct x with positive y")
        .slope
}

/// Every dataset of an archive, by path, as f64 values.
pub fn all_datasets(path: &std::path::Path) -> Vec<(String, Vec<f64>)> {
    fn walk(g: &hdf5::Group, prefix: &str, out: &mut Vec<String>) {
        for name in g.member_names().unwrap() {
            let full = format!("{prefix}{name}");
            if let Ok(sub) = g.group(&name) {
                walk(&sub, &format!("{full}/"), out);
            } else {
                out.push(full);
            }
        }
    }
    let a = meanfield::archive::ArchiveReader::open(path).unwrap();
    let mut names = vec![];
    walk(&a.file, "", &mut names);
    names
        .into_iter()
        .map(|n| {
            let v = a.read(&n).unwrap().1;
            (n, v)
        })
        .collect()
}

/// Writes `text` to `dir/p.toml`, runs its sweep with the summary at `dir/summary.h5` (paths in
/// a problem file are relative to the working directory, so the summary is moved here), checks
/// every task completed, and collects the points and fits.
pub fn sweep_in(
    dir: &std::path::Path,
    text: &str,
) -> (
    Vec<meanfield::family::two_layer::sweep::Point>,
    Vec<meanfield::family::two_layer::sweep::Fit>,
) {
    use meanfield::family::two_layer::sweep;
    use meanfield::problem::Problem;
    let file = dir.join("p.toml");
    std::fs::write(&file, text).unwrap();
    let mut p = Problem::parse(text, &file).unwrap();
    p.sweep.as_mut().unwrap().summary = dir.join("summary.h5");
    let reports = sweep::run_all(&p, text, &file, false, &|_, _| {}).unwrap();
    assert!(reports.iter().all(|r| r.completed()));
    sweep::collect(&p, text, &file).unwrap()
}

/// Runs `meanfield run p.toml -q --threads 2` on `problem` in a fresh directory (kept alive by
/// the returned handle) and returns it with the largest resident set of the children waited
/// for so far, in bytes: alone in its test binary, that is this run's peak.
pub fn run_for_peak_rss(problem: &str) -> (tempfile::TempDir, f64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), problem).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meanfield"))
        .current_dir(dir.path())
        .args(["run", "p.toml", "-q", "--threads", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: initialised by the successful call above; Linux counts in KiB.
    let peak = unsafe { usage.assume_init() }.ru_maxrss as f64 * 1024.0;
    (dir, peak)
}

/// The meanfield binary of this build.
pub const BIN: &str = env!("CARGO_BIN_EXE_meanfield");

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN).args(args).output().unwrap()
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A bad problem: exit code 2, one error line naming the file and the key, no archive.
pub fn assert_refused(text: &str, key: &str, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let problem = write(dir.path(), "bad.toml", text);
    let out = dir.path().join("bad.h5");
    let o = run(&[
        "run",
        problem.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "exit code for {key}: {err}");
    assert!(err.contains("bad.toml"), "no file name in: {err}");
    assert!(err.contains(key), "no key {key} in: {err}");
    assert!(err.contains(expect), "no '{expect}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    // No Rust type names: TOML's words only.
    assert!(!err.contains("struct ") && !err.contains("usize"), "{err}");
    assert!(!out.exists(), "an archive was left for {key}");
}
