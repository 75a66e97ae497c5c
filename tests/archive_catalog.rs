//! Archives explain themselves: every dataset of every kind of run, of the shipped problems
//! that run in seconds and of small versions of the others, carries a `description`, every time
//! axis its `units`, and every particles dataset its `columns`.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_meanfield");

/// Every two-layer dynamics kind from the same particles, with a kernel.
const TWO_LAYER: &str = r#"
seed = 3
output = "two_layer.h5"
[data]
source = "synthetic"
input = "gaussian"
d = 3
n_train = 20
n_test = 10
target = { kind = "teacher", width = 2, activation = "tanh" }
[model]
activation = "tanh"
width = 16
bias = true
scaling = "mean_field"
[[dynamics]]
kind = "gd"
step = 0.05
steps = 20
[[dynamics]]
kind = "gradient_flow"
method = "bdf"
t_end = 1.0
[[dynamics]]
kind = "sgd"
step = 0.05
steps = 20
batch = 5
[[dynamics]]
kind = "linearized"
method = "bdf"
t_end = 1.0
[[dynamics]]
kind = "residual"
t_end = 1.0
[[dynamics]]
kind = "ntk_limit"
t_end = 1.0
[save]
count = 3
kernel_points = 4
"#;

/// Mei–Montanari–Nguyen's setting, small: SGD beside the radial PDE.
const RADIAL: &str = r#"
seed = 1
output = "radial.h5"
[data]
source = "synthetic"
input = "gaussian"
d = 20
n_train = 1
n_test = 200
target = { kind = "isotropic_classes", delta = 0.8 }
[model]
activation = "ramp"
width = 20
scaling = "mean_field"
output_weights = "fixed"
init = { a_mean = 1.0, a_std = 0.0, w_std = 0.3 }
[[dynamics]]
kind = "sgd"
online = true
batch = 1
step = 1e-3
steps = 50
[[dynamics]]
kind = "radial_pde"
radii = 200
t_end = 0.05
[save]
count = 3
"#;

const LINEAR: &str = r#"
seed = 2
output = "linear.h5"
[data]
task = "whitened_regression"
d = 12
rank = 2
n = 40
[model]
kind = "linear"
gamma_sigma2 = -1.5
gamma_w = 2.0
[training]
steps = 20
[[dynamics]]
kind = "gd"
[[dynamics]]
kind = "self_consistent"
method = "tsit45"
"#;

const PHASE: &str = r#"
seed = 0
output = "unused.h5"
[data]
task = "denoising"
d = 20
rank = 2
[model]
kind = "linear"
gamma_sigma2 = -2.0
gamma_w = 2.0
[training]
steps = 10
[sweep]
gamma_sigma2 = [-2.0]
gamma_w = [2.0]
seeds = 1
max_steps = 50
output = "phase.h5"
"#;

/// An energy in 1-D (PDE, Langevin) with its sweep over N, and one in 2-D at T = 0 (flow, GD).
const ENERGY: &str = r#"
seed = 2
output = "energy.h5"
[model]
kind = "energy"
potential = "x^2/2"
interaction = "0.5*(x - y)^2/2"
temperature = 0.1
particles = 20
init = { law = "gaussian", mean = [0.5], std = [0.5] }
[[dynamics]]
kind = "pde"
cells = 60
box = [[-3.0, 3.0]]
t_end = 0.1
[[dynamics]]
kind = "langevin"
step = 0.05
steps = 2
[save]
count = 3
[sweep]
particles = [8, 16, 32]
"#;

const ENERGY_2D: &str = r#"
output = "energy_2d.h5"
[model]
kind = "energy"
dimension = 2
potential = "(x1^2 + x2^2)/2"
interaction = "-exp(-((x1 - y1)^2 + (x2 - y2)^2))"
particles = 10
init = { law = "uniform", low = [-1.0, -1.0], high = [1.0, 1.0] }
[[dynamics]]
kind = "gradient_flow"
t_end = 0.1
[[dynamics]]
kind = "gd"
step = 0.05
steps = 2
[[dynamics]]
kind = "pde"
cells = 8
box = [[-2.0, 2.0], [-2.0, 2.0]]
t_end = 0.1
[save]
count = 3
"#;

fn meanfield(dir: &Path, args: &[&str]) {
    let o = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every dataset of the archive without a description, time axes without units, and
/// particles without columns.
fn undocumented(path: &Path) -> Vec<String> {
    fn walk(g: &hdf5::Group, prefix: &str, out: &mut Vec<String>) {
        for name in g.member_names().unwrap() {
            let full = format!("{prefix}{name}");
            if let Ok(sub) = g.group(&name) {
                walk(&sub, &format!("{full}/"), out);
                continue;
            }
            let ds = g.dataset(&name).unwrap();
            let attrs = ds.attr_names().unwrap();
            let has = |a: &str| attrs.iter().any(|x| x == a);
            let text = |a: &str| {
                ds.attr(a)
                    .and_then(|x| x.read_scalar::<hdf5::types::VarLenUnicode>())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default()
            };
            if text("description").trim().is_empty() {
                out.push(format!("{full}: no description"));
            }
            if ["t", "tau", "at", "plateau_tau"].contains(&name.as_str())
                && !has("units")
                && !full.contains("phase_diagram")
            {
                out.push(format!("{full}: a time without units"));
            }
            if name == "particles" && text("columns").is_empty() {
                out.push(format!("{full}: particles without columns"));
            }
        }
    }
    let f = hdf5::File::open(path).unwrap();
    let mut out = vec![];
    walk(&f, "", &mut out);
    out.into_iter()
        .map(|m| format!("{}: {m}", path.display()))
        .collect()
}

#[test]
fn every_dataset_of_every_run_kind_is_described() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("problems");
    let mut archives = vec![];
    for (name, text) in [
        ("two_layer", TWO_LAYER),
        ("radial", RADIAL),
        ("linear", LINEAR),
        ("energy", ENERGY),
        ("energy_2d", ENERGY_2D),
    ] {
        std::fs::write(d.join(format!("{name}.toml")), text).unwrap();
        meanfield(d, &["run", &format!("{name}.toml"), "-q"]);
        archives.push(d.join(format!("{name}.h5")));
    }
    meanfield(d, &["sweep", "run", "energy.toml", "-q"]);
    archives.push(d.join("energy_sweep.h5"));
    std::fs::write(d.join("phase.toml"), PHASE).unwrap();
    meanfield(d, &["sweep", "run", "phase.toml", "-q"]);
    archives.push(d.join("phase.h5"));
    // Shipped problems that take seconds: the diagonal network's saddles, and a width sweep
    // (its task archives and its summary).
    for shipped in ["quickstart", "saddle_notes"] {
        let out = d.join(format!("{shipped}.h5"));
        let problem = root.join(format!("{shipped}.toml"));
        meanfield(
            d,
            &[
                "run",
                problem.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "-q",
            ],
        );
        archives.push(out);
    }
    let sweep = root.join("width_population.toml");
    meanfield(d, &["sweep", "run", sweep.to_str().unwrap(), "-q"]);
    archives.push(d.join("out/width_population_sweep.h5"));
    archives.push(d.join("out/width_population_sweep_tasks/task_0.h5"));

    let missing: Vec<String> = archives.iter().flat_map(|a| undocumented(a)).collect();
    assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
}

/// Each family describes its own datasets: the same name means different things in different
/// families, and the description says which; the shared data and initial particles fall back
/// to the common entries.
#[test]
fn descriptions_follow_the_family() {
    use meanfield::archive::catalog::{describe, Describe, Place};
    use meanfield::family::{diagonal, energy, two_layer};
    let at = |family: Describe, group: &str, kind: &str, name: &str| {
        let place = Place { group, kind };
        describe(&place, name, family).map(|d| d.0.to_string())
    };
    let loss = at(diagonal::describe, "runs", "gradient_flow", "loss_train").unwrap();
    assert!(loss.contains("Xβ"), "{loss}");
    let loss = at(two_layer::describe, "runs", "gradient_flow", "loss_train").unwrap();
    assert!(loss.contains("(y − f)²"), "{loss}");
    let t = at(diagonal::describe, "runs", "saddle_limit", "t").unwrap();
    assert!(t.contains("jump times"), "{t}");
    let x = at(energy::describe, "data", "", "x_train").unwrap();
    assert!(x.contains("training inputs"), "{x}");
    assert_eq!(
        at(two_layer::describe, "runs", "gd", "no_such_dataset"),
        None
    );
    assert_eq!(at(energy::describe, "runs", "gd", "beta"), None);
}
