//! `meanfield plot` end to end: every figure kind renders from a real archive to a PNG of the
//! requested size that is not blank, SVG works, and bad requests are refused with a message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_meanfield");

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
init = { b_std = 0.2 }
[[dynamics]]
kind = "gd"
step = 0.05
steps = 40
[[dynamics]]
kind = "gradient_flow"
method = "tsit45"
t_end = 2.0
[save]
count = 6
kernel_points = 6
particles = true
[sweep]
width = [8, 16, 32, 64]
seeds = [1, 2]
summary = "sweep.h5"
"#;

const DIAGONAL: &str = r#"
seed = 2
output = "diagonal.h5"
[data]
source = "synthetic"
input = "gaussian"
d = 12
n_train = 6
n_test = 20
target = { kind = "sparse", support = 2 }
[model]
kind = "diagonal"
alpha = 1e-3
[[dynamics]]
kind = "saddle_limit"
[[dynamics]]
kind = "mirror_flow"
alphas = [1e-3, 1e-6]
[[dynamics]]
kind = "gd"
step = 0.05
steps = 200
"#;

const LINEAR: &str = r#"
seed = 2
output = "linear.h5"
[data]
task = "denoising"
d = 20
rank = 2
[model]
kind = "linear"
gamma_sigma2 = -1.5
gamma_w = 2.0
[training]
steps = 15
[[dynamics]]
kind = "gd"
[[dynamics]]
kind = "self_consistent"
"#;

const MMN: &str = r#"
seed = 1
output = "mmn.h5"
[data]
source = "synthetic"
input = "gaussian"
d = 20
n_train = 1
n_test = 100
target = { kind = "isotropic_classes", delta = 0.8 }
[model]
activation = "ramp"
width = 64
scaling = "mean_field"
output_weights = "fixed"
init = { a_mean = 1.0, a_std = 0.0, w_std = 0.2 }
[[dynamics]]
kind = "sgd"
online = true
batch = 1
step = 0.001
steps = 300
[[dynamics]]
kind = "radial_pde"
radii = 2000
t_end = 0.3
[save]
count = 4
particles = true
"#;

const PHASE: &str = r#"
seed = 0
output = "phase_run.h5"
[data]
task = "denoising"
d = 12
rank = 2
[model]
kind = "linear"
gamma_sigma2 = -1.5
gamma_w = 1.5
[training]
steps = 40
[sweep]
gamma_sigma2 = [-2.0, -1.0]
gamma_w = [1.0, 2.0, 3.0]
seeds = 1
max_steps = 40
output = "phase.h5"
"#;

const ALIGNED: &str = r#"
seed = 3
output = "aligned.h5"
[data]
task = "denoising"
d = 8
rank = 2
[model]
kind = "linear"
init = "aligned"
u0 = 1e-3
[training]
steps = 60
save_every = 10
[[dynamics]]
kind = "gd"
[[dynamics]]
kind = "self_consistent"
"#;

const ENERGY: &str = r#"
seed = 7
output = "energy.h5"
[model]
kind = "energy"
dimension = 1
potential = "x^4/4 - x^2/2"
interaction = "0"
temperature = 0.25
particles = 300
init = { law = "gaussian", mean = [0.8], std = [0.2] }
[[dynamics]]
kind = "pde"
cells = 120
box = [[-3.0, 3.0]]
t_end = 2.0
[[dynamics]]
kind = "langevin"
step = 0.01
steps = 200
[save]
count = 5
"#;

/// The text of every `<text>` element of an SVG file, with whether it is anchored at its end
/// (plotters' y-axis tick labels are; titles, legends and x ticks are not) and its font size.
fn svg_texts(path: &Path) -> Vec<(String, bool, f64)> {
    let svg = std::fs::read_to_string(path).unwrap();
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let open = t.find('>')?;
            let body = &t[open + 1..];
            let text = body[..body.find("</text>")?].trim();
            let text = [
                ("&apos;", "'"),
                ("&quot;", "\""),
                ("&lt;", "<"),
                ("&gt;", ">"),
            ]
            .iter()
            .fold(text.to_string(), |t, (e, c)| t.replace(e, c))
            .replace("&amp;", "&");
            let size = t[..open]
                .split("font-size=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            Some((text, t[..open].contains("text-anchor=\"end\""), size))
        })
        .collect()
}

/// The y-axis tick values of an SVG figure.
fn y_ticks(path: &Path) -> Vec<f64> {
    svg_texts(path)
        .into_iter()
        .filter(|t| t.1)
        .filter_map(|t| t.0.parse().ok())
        .collect()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn problem(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    ok(run(dir, &["run", name, "-q"]));
    p
}

/// Decodes a PNG and returns (width, height, share of non-white pixels, distinct colors).
fn look(path: &Path) -> (u32, u32, f64, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let px: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let inked = px.iter().filter(|p| p[..3] != [255, 255, 255]).count();
    let mut colors: Vec<[u8; 3]> = px.iter().map(|p| [p[0], p[1], p[2]]).collect();
    colors.sort_unstable();
    colors.dedup();
    (
        info.width,
        info.height,
        inked as f64 / px.len() as f64,
        colors.len(),
    )
}

fn assert_drawn(path: &Path, size: (u32, u32)) {
    let (w, h, inked, colors) = look(path);
    assert_eq!((w, h), size, "{}", path.display());
    // Axes, text and curves ink a few percent of the canvas; a blank or failed figure inks none,
    // and one flood fill would ink all of it with one color.
    assert!(
        inked > 0.01 && inked < 0.6,
        "{}: {inked} of the pixels inked",
        path.display()
    );
    assert!(colors > 8, "{}: {colors} colors", path.display());
}

#[test]
fn every_figure_kind_renders_to_the_requested_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let two = problem(d, "two_layer.toml", TWO_LAYER);
    problem(d, "diagonal.toml", DIAGONAL);
    problem(d, "linear.toml", LINEAR);
    problem(d, "mmn.toml", MMN);
    problem(d, "energy.toml", ENERGY);
    ok(run(d, &["sweep", "run", two.to_str().unwrap()]));
    let phase = d.join("phase.toml");
    std::fs::write(&phase, PHASE).unwrap();
    ok(run(d, &["sweep", "run", "phase.toml", "--quiet"]));

    let cases: [(&str, &str, (u32, u32)); 12] = [
        ("two_layer.h5", "losses", (640, 480)),
        ("two_layer.h5", "particles", (500, 500)),
        ("two_layer.h5", "kernel", (800, 400)),
        ("linear.h5", "spectra", (640, 480)),
        ("linear.h5", "losses", (640, 480)),
        ("diagonal.h5", "beta", (900, 600)),
        ("sweep.h5", "sweep", (700, 500)),
        ("sweep.h5", "models", (700, 500)),
        ("mmn.h5", "radii", (800, 500)),
        ("energy.h5", "density", (800, 500)),
        ("energy.h5", "losses", (800, 500)),
        ("phase.h5", "phase", (1200, 500)),
    ];
    for (archive, what, (w, h)) in cases {
        let out = format!("{what}_{archive}.png");
        let size = format!("{w}x{h}");
        let o = ok(run(
            d,
            &["plot", archive, "--what", what, "-o", &out, "--size", &size],
        ));
        assert!(String::from_utf8_lossy(&o.stderr).contains(what));
        assert_drawn(&d.join(&out), (w, h));
    }

    // Without --what each archive gets its main figure, named after the archive.
    for (archive, what) in [
        ("two_layer.h5", "losses"),
        ("diagonal.h5", "beta"),
        ("linear.h5", "spectra"),
        ("sweep.h5", "sweep"),
        ("mmn.h5", "radii"),
        ("energy.h5", "density"),
        ("phase.h5", "phase"),
    ] {
        ok(run(d, &["plot", archive]));
        let stem = archive.trim_end_matches(".h5");
        assert_drawn(&d.join(format!("{stem}_{what}.png")), (1000, 700));
    }

    // SVG: text as text, in the shipped font's family.
    ok(run(d, &["plot", "linear.h5", "-o", "s.svg"]));
    let svg = std::fs::read_to_string(d.join("s.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<text") && svg.contains("σ²w"));
}

/// What the figures say, read from their SVG text: the lowest decade of a log axis is labelled,
/// the losses explain their line styles and compare GD with the flow, the particles name their
/// projection and mark the teacher, β follows the smallest-α mirror flow, the phase diagram
/// draws both lines, spectra mark GD and eq. (1), and an aligned start prints no NaN.
#[test]
fn figures_say_what_they_draw() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    problem(d, "two_layer.toml", TWO_LAYER);
    problem(d, "diagonal.toml", DIAGONAL);
    let texts = |archive: &str, args: &[&str], out: &str| -> Vec<String> {
        let mut all = vec!["plot", archive, "-o", out];
        all.extend(args);
        ok(run(d, &all));
        svg_texts(&d.join(out)).into_iter().map(|t| t.0).collect()
    };
    let has = |t: &[String], s: &str| t.iter().any(|x| x.contains(s));

    // Log axes: a label within the decade of the smallest value drawn, and none only far above.
    let a = meanfield::archive::ArchiveReader::open(&d.join("diagonal.h5")).unwrap();
    let run_name = "mirror_flow_alpha_1e-6";
    let drawn: Vec<f64> = ["loss_train", "loss_test"]
        .iter()
        .flat_map(|n| a.read_1d(&format!("runs/{run_name}/{n}")).unwrap())
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let (lo, hi) = drawn
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(
        hi / lo > 1e2,
        "the test needs a log axis over decades: {lo:e} … {hi:e}"
    );
    texts(
        "diagonal.h5",
        &["--what", "losses", "--run", run_name],
        "dl.svg",
    );
    let ticks = y_ticks(&d.join("dl.svg"));
    let (tlo, thi) = ticks
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(
        tlo <= 10.0 * lo,
        "lowest label {tlo:e}, data down to {lo:e}: {ticks:?}"
    );
    assert!(
        tlo >= lo / 10.0 && thi <= hi * 10.0,
        "labels beyond the data: {ticks:?}"
    );
    assert!(
        thi >= hi / 1e3,
        "highest label {thi:e}, data up to {hi:e}: {ticks:?}"
    );

    // Losses: line styles in the legend, and the difference panel of the flow against GD.
    let t = texts("two_layer.h5", &["--what", "losses"], "l.svg");
    for s in [
        "training loss",
        "test loss",
        "relative difference of the training loss to 'gd'",
    ] {
        assert!(has(&t, s), "{s} missing: {t:?}");
    }
    // Particles: the axes name the projection; the teacher's directions are marked.
    let t = texts("two_layer.h5", &["--what", "particles"], "p.svg");
    assert!(
        has(&t, "PC 1 of |a|·w") && has(&t, "PC 2 of |a|·w"),
        "{t:?}"
    );
    assert!(has(&t, "teacher directions"), "{t:?}");
    // β: by default the mirror flow of the smallest α.
    let t = texts("diagonal.h5", &[], "b.svg");
    assert!(has(&t, "'mirror_flow_alpha_1e-6'"), "{t:?}");

    // Spectra of an aligned start: the legend names eq. (1) (solid, as the paper's caption has
    // it) and GD (dashed); the summary has no NaN.
    std::fs::write(d.join("aligned.toml"), ALIGNED).unwrap();
    let o = ok(run(d, &["run", "aligned.toml"]));
    let summary = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        summary.contains("aligned initialization") && !summary.contains("NaN"),
        "{summary}"
    );
    let t = texts("aligned.h5", &["--what", "spectra"], "sp.svg");
    assert!(has(&t, "GD") && has(&t, "eq. (1)"), "{t:?}");

    // The phase diagram: both region lines, and each cell's mean value printed in it.
    std::fs::write(d.join("phase.toml"), PHASE).unwrap();
    ok(run(d, &["sweep", "run", "phase.toml", "--quiet"]));
    let t = texts("phase.h5", &[], "ph.svg");
    assert!(has(&t, "γσ² + γw = 1") && has(&t, "γw + 2γσ² = 0"), "{t:?}");
    let a = meanfield::archive::ArchiveReader::open(&d.join("phase.h5")).unwrap();
    let err = a.read_1d("runs/phase_diagram/min_test_error").unwrap();
    let rank = a.read_1d("runs/phase_diagram/stable_rank").unwrap();
    assert_eq!(err.len(), 6);
    // The cells' labels: the numbers in the smallest font (tick labels are larger), the first
    // panel's six, then the second's.
    let all = svg_texts(&d.join("ph.svg"));
    let small = all.iter().map(|t| t.2).fold(f64::INFINITY, f64::min);
    let cells: Vec<f64> = all
        .iter()
        .filter(|t| t.2 == small)
        .filter_map(|t| t.0.parse().ok())
        .collect();
    assert_eq!(cells.len(), 12, "{cells:?}");
    for (values, shown) in [(&err, &cells[..6]), (&rank, &cells[6..])] {
        // One seed per point: each cell shows its point's own value, to four significant
        // digits, and each value is shown once.
        let mut left: Vec<f64> = shown.to_vec();
        for e in values.iter() {
            let k = left
                .iter()
                .position(|c| ((c - e) / e).abs() < 1e-3)
                .unwrap_or_else(|| panic!("{e} not shown: {shown:?}"));
            left.remove(k);
        }
    }
}

#[test]
fn bad_plot_requests_are_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    problem(d, "linear.toml", LINEAR);
    let refused = |args: &[&str], expect: &str| {
        let o = run(d, args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    };
    refused(
        &["plot", "linear.h5", "--what", "beta", "-o", "x.png"],
        "no run with β",
    );
    refused(
        &["plot", "linear.h5", "--what", "radii", "-o", "x.png"],
        "no run with particles or radial PDE radii",
    );
    refused(
        &["plot", "linear.h5", "--what", "pie", "-o", "x.png"],
        "expected one of losses, particles",
    );
    refused(
        &["plot", "linear.h5", "--what", "models", "-o", "x.png"],
        "not a sweep summary",
    );
    refused(
        &["plot", "linear.h5", "--what", "phase", "-o", "x.png"],
        "no run with a phase diagram",
    );
    refused(&["plot", "linear.h5", "-o", "x.jpg"], ".png or .svg");
    // `plot --help` names every figure the parser accepts.
    let help = String::from_utf8_lossy(&run(d, &["plot", "--help"]).stdout).to_string();
    for (name, _) in meanfield::report::plot::FIGURES {
        assert!(
            help.contains(name),
            "plot --help does not list {name}: {help}"
        );
    }
    refused(&["plot", "linear.h5", "--size", "12"], "WIDTHxHEIGHT");
    refused(&["plot", "linear.h5", "--size", "20x20"], "width in 200");
    refused(&["plot", "linear.h5", "--run", "nope"], "no run 'nope'");
    std::fs::write(d.join("junk.h5"), "not hdf5").unwrap();
    refused(&["plot", "junk.h5"], "not a readable HDF5");
    assert!(!d.join("x.png").exists() && !d.join("x.jpg").exists());
}
