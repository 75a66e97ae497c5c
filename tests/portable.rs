//! The portable path: with `MEANFIELD_PORTABLE=1` the relu velocity and GD step take faer's
//! GEMMs instead of the fused AVX2 kernels (the path of CPUs without AVX2/FMA). The quickstart
//! problem, GD and the adaptive flow, gives the same trajectories either way to round-off.

use std::path::Path;
use std::process::Command;

fn run(dir: &Path, name: &str, portable: bool) -> std::path::PathBuf {
    let out = dir.join(format!("{name}.h5"));
    let problem = Path::new(env!("CARGO_MANIFEST_DIR")).join("problems/quickstart.toml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meanfield"));
    cmd.args(["run", problem.to_str().unwrap(), "--quiet", "--out"])
        .arg(&out);
    if portable {
        cmd.env("MEANFIELD_PORTABLE", "1");
    } else {
        cmd.env_remove("MEANFIELD_PORTABLE");
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "{name}: {status}");
    out
}

fn read(path: &Path, name: &str) -> Vec<f64> {
    let a = meanfield::archive::ArchiveReader::open(path).unwrap();
    a.read(name).unwrap().1
}

#[test]
fn portable_and_fused_paths_give_the_same_runs() {
    let dir = tempfile::tempdir().unwrap();
    let fused = run(dir.path(), "fused", false);
    let portable = run(dir.path(), "portable", true);
    for name in [
        "runs/gd/particles",
        "runs/gd/loss_train",
        "runs/flow_tsit45/particles",
        "runs/flow_tsit45/loss_train",
    ] {
        let (a, b) = (read(&fused, name), read(&portable, name));
        assert_eq!(a.len(), b.len(), "{name}");
        let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(&b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        // GD: 400 steps of two summation orders (1e-13 per step); the flow: the same
        // adaptive steps to that round-off.
        assert!(
            diff <= 1e-9 * scale,
            "{name}: the two paths differ by {diff:e} (scale {scale:e})"
        );
    }
}
