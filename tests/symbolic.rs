//! Models written as formulas (issue 22): an activation or a loss given as an expression runs the
//! same numbers as the built-in one, `derive` prints derivatives that finite differences confirm,
//! the archive records them, and bad formulas are refused with the key and the position.

mod common;

use common::{all_datasets, assert_refused, run, stderr, write};
use meanfield::expr::Expr;
use std::path::{Path, PathBuf};

/// A small problem with every dynamics a formula activation feeds (`ACTIVATION`, `LOSS` and
/// `DYNAMICS` are replaced).
const PROBLEM: &str = r#"
seed = 5
output = "unused.h5"

[data]
source = "synthetic"
input = "gaussian"
d = 3
n_train = 24
n_test = 16
target = { kind = "teacher", width = 2, activation = "tanh" }

[model]
activation = "ACTIVATION"
LOSS
width = 12
bias = true
scaling = "mean_field"

[save]
count = 8
kernel_points = 6

DYNAMICS
"#;

const PARTICLE_DYNAMICS: &str = r#"
[[dynamics]]
kind = "gd"
step = 0.1
steps = 40

[[dynamics]]
kind = "gradient_flow"
method = "bdf"
rtol = 1e-8
atol = 1e-10
t_end = 4.0
"#;

const LINEARIZED: &str = r#"
[[dynamics]]
kind = "linearized"
method = "bdf"
t_end = 4.0
"#;

/// The kernel dynamics a formula loss runs by integration: against the square loss's closed form
/// (ntk_limit) and its own residual flow.
const KERNEL_DYNAMICS: &str = r#"
[[dynamics]]
kind = "residual"
t_end = 4.0

[[dynamics]]
kind = "ntk_limit"
kernel = "empirical"
t_end = 4.0

[[dynamics]]
kind = "ntk_limit"
name = "ntk_analytic"
kernel = "analytic"
t_end = 4.0
"#;

/// Every dynamics a two-layer problem can run from the same particles but the radial PDE.
fn all_dynamics() -> String {
    [PARTICLE_DYNAMICS, LINEARIZED, KERNEL_DYNAMICS].concat()
}

fn problem(activation: &str, loss: Option<&str>, dynamics: &str) -> String {
    PROBLEM
        .replace("ACTIVATION", activation)
        .replace(
            "LOSS",
            &loss.map_or(String::new(), |l| format!("loss = \"{l}\"")),
        )
        .replace("DYNAMICS", dynamics)
}

/// Runs `text` into `dir/<name>.h5`.
fn run_into(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = write(dir, &format!("{name}.toml"), text);
    let out = dir.join(format!("{name}.h5"));
    let o = run(&[
        "run",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    out
}

/// Every /runs dataset of `a` against `b`, relative to the larger magnitude: the worst.
fn worst_difference(a: &Path, b: &Path, at_least: usize) -> (f64, String) {
    let (da, db) = (all_datasets(a), all_datasets(b));
    let mut worst = (0.0, String::new());
    let mut compared = 0;
    for (name, va) in da.iter().filter(|(n, _)| n.starts_with("runs/")) {
        let vb = &db.iter().find(|(n, _)| n == name).expect(name).1;
        assert_eq!(va.len(), vb.len(), "{name}");
        for (x, y) in va.iter().zip(vb) {
            let d = (x - y).abs() / x.abs().max(y.abs()).max(1.0);
            if d > worst.0 || d.is_nan() {
                worst = (d, name.clone());
            }
        }
        compared += 1;
    }
    assert!(compared >= at_least, "only {compared} datasets compared");
    worst
}

/// activation = "tanh(z)" reproduces the built-in tanh's arrays, in every dynamics, to 1e-12;
/// loss = "(y - f)^2" reproduces the default loss's in the particle dynamics.
#[test]
fn formulas_reproduce_the_built_in_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let builtin = run_into(d, "builtin", &problem("tanh", None, &all_dynamics()));
    let formula = run_into(d, "formula", &problem("tanh(z)", None, &all_dynamics()));
    let (worst, name) = worst_difference(&builtin, &formula, 30);
    eprintln!("tanh(z) against tanh: {worst:e} in {name}");
    assert!(worst < 1e-12, "tanh(z) against tanh: {worst:e} in {name}");

    let square = run_into(d, "square", &problem("tanh", None, PARTICLE_DYNAMICS));
    let written = run_into(
        d,
        "written",
        &problem("tanh", Some("(y - f)^2"), PARTICLE_DYNAMICS),
    );
    let (worst, name) = worst_difference(&square, &written, 12);
    eprintln!("(y - f)^2 against square: {worst:e} in {name}");
    assert!(
        worst < 1e-12,
        "(y - f)^2 against square: {worst:e} in {name}"
    );

    // A formula loss integrates ∂_t f = (1/n) K r(y, f) (BDF) where the square loss has the
    // eigendecomposition's closed form: the two methods agree to the solver's tolerance.
    // The linearized model takes r and c from the written loss (its own code path) and gives the
    // square loss's arrays to the solver's tolerance.
    let kernel_and_linearized = [KERNEL_DYNAMICS, LINEARIZED].concat();
    let closed = run_into(d, "closed", &problem("tanh", None, &kernel_and_linearized));
    let integrated = run_into(
        d,
        "integrated",
        &problem("tanh", Some("(y - f)^2"), &kernel_and_linearized),
    );
    let r = meanfield::archive::ArchiveReader::open(&integrated).unwrap();
    let group = r.file.group("runs/ntk_limit").unwrap();
    let method = meanfield::archive::ArchiveReader::str_attr(&group, "method");
    assert_eq!(method.as_deref(), Some("bdf"));
    drop((group, r));
    let (worst, name) = worst_difference(&closed, &integrated, 15);
    eprintln!("integrated against closed form: {worst:e} in {name}");
    assert!(
        worst < 1e-7,
        "integrated kernel flows against the closed form: {worst:e} in {name}"
    );
}

/// `derive` prints σ′, σ″, ℓ_f and ℓ_ff; read back as formulas, they match finite differences of
/// σ and ℓ as written (abs's kink excluded), and the archive records the same texts.
#[test]
fn derive_prints_derivatives_that_finite_differences_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let text = problem(
        "z/(1 + abs(z)) + 0.1*z^3",
        Some("log(1 + exp(-y*f))"),
        PARTICLE_DYNAMICS,
    );
    let p = write(dir.path(), "p.toml", &text);
    let o = run(&["derive", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let line = |label: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in:\n{out}"))
            .split_once(" = ")
            .unwrap()
            .1
            .to_string()
    };
    assert!(out.contains("almost everywhere"), "{out}");
    let sigma = |z: f64| z / (1.0 + z.abs()) + 0.1 * z.powi(3);
    let loss = |y: f64, f: f64| (-y * f).exp().ln_1p();
    let h = 1e-5;
    let d1 = Expr::parse(&line("σ′(z)"), &["z"]).unwrap();
    let d2 = Expr::parse(&line("σ″(z)"), &["z"]).unwrap();
    for z in [-1.7, -0.4, 0.3, 1.1, 2.5] {
        let fd1 = (sigma(z + h) - sigma(z - h)) / (2.0 * h);
        let fd2 = (sigma(z + h) - 2.0 * sigma(z) + sigma(z - h)) / (h * h);
        assert!((d1.eval(&[z]) - fd1).abs() < 1e-8, "σ′({z})");
        assert!((d2.eval(&[z]) - fd2).abs() < 1e-4, "σ″({z})");
    }
    let lf = Expr::parse(&line("ℓ_f "), &["y", "f"]).unwrap();
    let lff = Expr::parse(&line("ℓ_ff"), &["y", "f"]).unwrap();
    for (y, f) in [(1.0, 0.3), (-1.0, 1.2), (1.0, -2.0)] {
        let fd1 = (loss(y, f + h) - loss(y, f - h)) / (2.0 * h);
        let fd2 = (loss(y, f + h) - 2.0 * loss(y, f) + loss(y, f - h)) / (h * h);
        assert!((lf.eval(&[y, f]) - fd1).abs() < 1e-8, "ℓ_f({y}, {f})");
        assert!((lff.eval(&[y, f]) - fd2).abs() < 1e-4, "ℓ_ff({y}, {f})");
    }
    assert!(
        out.contains("Φᵀ diag(c) Φ") && out.contains("db_j/dt"),
        "{out}"
    );

    let latex = run(&["derive", p.to_str().unwrap(), "--latex"]);
    let latex = String::from_utf8_lossy(&latex.stdout).to_string();
    assert!(latex.starts_with("\\begin{aligned}"), "{latex}");
    assert!(latex.contains("\\left|z\\right|"), "{latex}");

    let archive = run_into(dir.path(), "a", &text);
    let reader = meanfield::archive::ArchiveReader::open(&archive).unwrap();
    let attr = |n: &str| meanfield::archive::ArchiveReader::str_attr(&reader.file, n).unwrap();
    assert_eq!(attr("activation_d1"), line("σ′(z)"));
    assert_eq!(attr("loss_d2"), line("ℓ_ff"));
    assert!(attr("derivative_syntax").contains("almost everywhere"));
}

/// Each bad formula exits 2 naming the key and, where it has one, the position.
#[test]
fn bad_formulas_are_refused_with_key_and_position() {
    let act = |a: &str| problem(a, None, PARTICLE_DYNAMICS);
    let loss = |l: &str| problem("tanh", Some(l), PARTICLE_DYNAMICS);
    assert_refused(
        &act("tahn(z)"),
        "model.activation",
        "unknown function tahn at position 1",
    );
    assert_refused(
        &act("tanh(x)"),
        "model.activation",
        "unknown variable x at position 6",
    );
    assert_refused(
        &act("tanh(z) +* 2"),
        "model.activation",
        "two operators in a row",
    );
    assert_refused(&act("2z"), "model.activation", "2*x");
    assert_refused(&act("(z"), "model.activation", "parentheses");
    assert_refused(&act("3"), "model.activation", "does not depend on z");
    assert_refused(&act("log(z)"), "model.activation", "not finite at z =");
    assert_refused(&loss("(y - 1)^2"), "model.loss", "does not depend on f");
    assert_refused(
        &loss("(y - g)^2"),
        "model.loss",
        "unknown variable g at position 6",
    );
    assert_refused(
        &loss("floor(f - y)"),
        "model.loss",
        "floor has no symbolic derivative",
    );
    let radial = "[[dynamics]]\nkind = \"radial_pde\"\nt_end = 1.0\n";
    assert_refused(
        &problem(
            "tanh",
            Some("log(1 + exp(-y*f))"),
            &[PARTICLE_DYNAMICS, radial].concat(),
        ),
        "dynamics[2].kind",
        "square loss only",
    );
}

/// The linearized model trained on a formula loss moves its outputs by the frozen-kernel dynamics
/// ∂_t f = (1/n) K₀ r(y, f): in parameter space (Φ₀ᵀ r, its Jacobian weighted by ℓ_ff) it gives
/// the outputs that `ntk_limit` with the empirical kernel integrates in function space.
#[test]
fn linearized_on_a_formula_loss_follows_the_frozen_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let dynamics = r#"
[[dynamics]]
kind = "linearized"
method = "bdf"
rtol = 1e-10
atol = 1e-12
t_end = 4.0

[[dynamics]]
kind = "ntk_limit"
kernel = "empirical"
t_end = 4.0
"#;
    let archive = run_into(
        dir.path(),
        "logistic",
        &problem("tanh", Some("log(1 + exp(-y*f))"), dynamics),
    );
    let r = meanfield::archive::ArchiveReader::open(&archive).unwrap();
    let mut compared = 0;
    for ds in ["f_train", "f_test", "loss_train", "loss_test"] {
        let (Ok(lin), Ok(ntk)) = (
            r.read_1d(&format!("runs/linearized/{ds}")),
            r.read_1d(&format!("runs/ntk_limit/{ds}")),
        ) else {
            continue;
        };
        assert_eq!(lin.len(), ntk.len(), "{ds}");
        let worst = lin
            .iter()
            .zip(&ntk)
            .map(|(a, b)| (a - b).abs() / a.abs().max(b.abs()).max(1.0))
            .fold(0.0f64, f64::max);
        eprintln!("linearized against ntk_limit, {ds}: {worst:e}");
        assert!(worst < 1e-7, "{ds}: {worst:e}");
        compared += 1;
    }
    assert!(compared >= 3, "only {compared} datasets compared");
    // The loss moved: the comparison is not of two constants.
    let loss = r.read_1d("runs/linearized/loss_train").unwrap();
    assert!(loss[loss.len() - 1] < 0.9 * loss[0], "{loss:?}");
}

/// With output_weights = "fixed" (a_j = 1 here: a_mean = 1, a_std = 0) only the first layer
/// trains: `ntk_analytic_distance` compares the empirical kernel of the trained parameters with
/// the analytic kernel of the same parameters (E[a²] = 1), so it falls like N^(−1/2).
#[test]
fn fixed_output_weights_compare_the_first_layer_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let distance = |width: usize| {
        let text = problem("tanh", None, "[[dynamics]]\nkind = \"gd\"\nstep = 0.1\nsteps = 1\n")
            .replace("width = 12", &format!("width = {width}"))
            .replace(
                "scaling = \"mean_field\"",
                "scaling = \"mean_field\"\noutput_weights = \"fixed\"\ninit = { a_mean = 1.0, a_std = 0.0 }",
            )
            .replace("kernel_points = 6", "kernel_points = 16");
        let a = run_into(dir.path(), &format!("w{width}"), &text);
        let r = meanfield::archive::ArchiveReader::open(&a).unwrap();
        meanfield::archive::ArchiveReader::num_attr(&r.file, "ntk_analytic_distance").unwrap()
    };
    let (small, large) = (distance(256), distance(4096));
    assert!(large < 0.05, "distance {large} at N = 4096");
    let ratio = small / large;
    assert!(
        (2.0..8.0).contains(&ratio),
        "{small} at 256, {large} at 4096"
    );
}

/// `derive` on a family without formulas, and on a file that is not there: exit 2, named.
#[test]
fn derive_refuses_what_it_cannot_derive() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("problems");
    let o = run(&["derive", root.join("saddle_notes.toml").to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("model.kind") && err.contains("no formulas to derive"),
        "{err}"
    );
    let o = run(&[
        "derive",
        root.join("no_such_problem.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no_such_problem.toml"),
        "{}",
        stderr(&o)
    );
}
