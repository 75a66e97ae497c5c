//! A stop request (Ctrl-C, SIGTERM) ends the runs under way and is then cleared, so that a
//! long-lived process can run again. Alone in its test binary: the request is process-wide.

use meanfield::family::two_layer::run_problem;
use meanfield::family::RunOptions;

const PROBLEM: &str = r#"
seed = 2
output = "out.h5"
[data]
source = "synthetic"
input = "gaussian"
d = 3
n_train = 20
n_test = 10
target = { kind = "teacher", width = 2, activation = "tanh" }
[model]
activation = "tanh"
width = 8
scaling = "mean_field"
[[dynamics]]
kind = "gd"
step = 0.05
steps = 50
[save]
count = 6
"#;

#[test]
fn a_stop_request_ends_the_run_under_way_and_not_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, PROBLEM).unwrap();
    let opts = |name: &str| RunOptions {
        out: Some(dir.path().join(name)),
        ..Default::default()
    };
    meanfield::integrate::request_stop();
    let first = run_problem(&p, &opts("a.h5"), &mut |_, _, _, _| {}).unwrap();
    assert!(
        !first.completed(),
        "a run started after a stop request must stop"
    );
    assert!(!meanfield::integrate::stop_was_requested());
    let second = run_problem(&p, &opts("b.h5"), &mut |_, _, _, _| {}).unwrap();
    assert!(second.completed(), "{:?}", second.runs);
}
