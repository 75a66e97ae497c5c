//! The implicit solvers store a structured Jacobian block-sparse: a stiff gradient flow with
//! P = N·D = 20 000 unknowns integrates by BDF in O(P·n) memory (n samples), where one dense
//! P × P matrix alone would take 3.2 GB and diffsol keeps three. Alone in its test binary, so
//! that the peak of the waited children is this run's.

mod common;

#[test]
fn a_large_stiff_flow_needs_no_dense_newton_matrix() {
    let (width, d, samples) = (2000usize, 8usize, 128usize);
    let p = width * (d + 2);
    let text = format!(
        r#"seed = 3
output = "out.h5"
[data]
source = "synthetic"
input = "gaussian"
d = {d}
n_train = {samples}
n_test = 32
target = {{ kind = "teacher", width = 3, activation = "tanh" }}
[model]
activation = "tanh"
width = {width}
bias = true
scaling = "ntk"
init = {{ a_std = 1.0, b_std = 0.5, symmetric = true }}
[[dynamics]]
kind = "gradient_flow"
method = "bdf"
rtol = 1e-6
atol = 1e-8
t_end = 2.0
[save]
count = 3
particles = false
"#
    );
    let (dir, peak) = common::run_for_peak_rss(&text);

    // The run got to its end with the implicit solver's machinery at work.
    let a = meanfield::archive::ArchiveReader::open(&dir.path().join("out.h5")).unwrap();
    let (_, t) = a.read("runs/gradient_flow/t").unwrap();
    assert_eq!(t.last().copied(), Some(2.0));
    let g = a.file.group("runs/gradient_flow").unwrap();
    let lu = meanfield::archive::ArchiveReader::num_attr(&g, "lu_factorizations").unwrap();
    assert!(lu > 0.0, "no Newton matrix was factorized");

    // W = D⁻¹L, L and R are P × n each, and a few P × n workspaces besides: 16 of them is
    // a tenth of one dense P × P matrix.
    let bytes = |m: usize| (m * 8) as f64;
    let bound = 16.0 * bytes(p * samples);
    assert!(
        bound < bytes(p * p) / 9.0,
        "the bound must separate the two storages"
    );
    assert!(
        peak <= bound,
        "peak RSS {:.1} MB above {:.1} MB (one dense P × P matrix: {:.0} MB)",
        peak / 1e6,
        bound / 1e6,
        bytes(p * p) / 1e6
    );
}
