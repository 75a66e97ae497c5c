//! Archives stream to disk: a run with N = 100 000 particles in d = 100 that saves every particle
//! at 10 times keeps its peak resident memory within 1.5 × (state + data + one saved time
//! slice). Alone in its test binary, so that the peak of the waited children is this run's.

mod common;

#[test]
fn a_large_run_streams_its_particles_to_disk() {
    let (n, d, samples, saves) = (100_000usize, 100usize, 16usize, 10usize);
    let text = format!(
        r#"seed = 1
output = "out.h5"
[data]
source = "synthetic"
input = "sphere"
d = {d}
n_train = {samples}
n_test = {samples}
target = {{ kind = "teacher", width = 3, activation = "relu" }}
[model]
activation = "relu"
width = {n}
scaling = "mean_field"
[[dynamics]]
kind = "gd"
step = 0.05
steps = 20
[save]
count = {saves}
particles = true
"#
    );
    let (dir, peak) = common::run_for_peak_rss(&text);

    let a = meanfield::archive::ArchiveReader::open(&dir.path().join("out.h5")).unwrap();
    let (shape, _) = a.read("runs/gd/t").unwrap();
    assert_eq!(shape, [saves], "every save was written");
    let f64s = |count: usize| (count * 8) as f64;
    let state = f64s(n * (d + 1));
    let data = f64s(2 * samples * (d + 1));
    let slice = state;
    let bound = 1.5 * (state + data + slice);
    eprintln!(
        "peak RSS {:.1} MB, bound {:.1} MB (state {:.1} MB)",
        peak / 1e6,
        bound / 1e6,
        state / 1e6
    );
    assert!(
        peak <= bound,
        "peak RSS {:.1} MB above 1.5 × (state + data + slice) = {:.1} MB",
        peak / 1e6,
        bound / 1e6
    );
}
