//! What the README promises of LAPACK's threads (src/linalg): eigen-based arrays are
//! bit-identical whatever `--threads` is, because dsyevd runs on OpenBLAS's own threads; a
//! different OpenBLAS thread count changes them only in the last bits (here bounded by 1e-12 of
//! each array's scale). The frozen-kernel limit of a 1500-point problem makes the
//! eigendecomposition large enough for OpenBLAS to split it over threads.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const PROBLEM: &str = r#"
seed = 3
output = "unused.h5"
[data]
source = "synthetic"
input = "sphere"
d = 10
n_train = 1500
n_test = 100
target = { kind = "teacher", width = 3, activation = "relu" }
[model]
activation = "erf"
width = 64
bias = true
scaling = "ntk"
init = { a_std = 1.0, b_std = 0.3 }
[[dynamics]]
kind = "ntk_limit"
kernel = "analytic"
t_end = 5.0
[save]
count = 6
"#;

fn run(dir: &Path, name: &str, threads: &str, blas_threads: &str) -> PathBuf {
    let out = dir.join(format!("{name}.h5"));
    let status = Command::new(env!("CARGO_BIN_EXE_meanfield"))
        .args(["run", "p.toml", "--quiet", "--threads", threads, "--out"])
        .arg(&out)
        .current_dir(dir)
        .env("OPENBLAS_NUM_THREADS", blas_threads)
        .status()
        .unwrap();
    assert!(status.success(), "{name}: {status}");
    out
}

fn run_arrays(path: &Path) -> Vec<(String, Vec<f64>)> {
    common::all_datasets(path)
        .into_iter()
        .filter(|(n, _)| n.starts_with("runs/"))
        .collect()
}

#[test]
fn eigen_results_ignore_threads_and_blas_threads_only_move_the_last_bits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), PROBLEM).unwrap();
    let base = run_arrays(&run(dir.path(), "t2_b2", "2", "2"));
    assert!(base.iter().any(|(n, _)| n.ends_with("loss_train")));
    let one = run_arrays(&run(dir.path(), "t1_b2", "1", "2"));
    assert_eq!(base, one, "--threads changed an eigen-based array");
    let blas1 = run_arrays(&run(dir.path(), "t2_b1", "2", "1"));
    assert_eq!(base.len(), blas1.len());
    for ((name, a), (_, b)) in base.iter().zip(&blas1) {
        let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = common::max_abs_diff(a, b);
        assert!(
            diff <= 1e-12 * scale.max(1e-300),
            "{name}: OpenBLAS 1 thread against 2 differs by {diff:e} (scale {scale:e})"
        );
    }
}
