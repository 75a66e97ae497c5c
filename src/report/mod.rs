//! Text summaries of archives (`meanfield inspect`).

pub mod export;
pub mod plot;

use crate::archive::{ArchiveReader, CLASS_SCORES};
use crate::error::Result;
use std::fmt::Write;
use std::path::Path;

/// A readable summary: root attributes, every dataset with its shape, and per run the final
/// losses, status and solver statistics.
pub fn inspect(path: &Path) -> Result<String> {
    let a = ArchiveReader::open(path)?;
    let mut s = String::new();
    let root = &a.file;
    let attr = |name: &str| ArchiveReader::str_attr(root, name).unwrap_or_else(|| "?".into());
    let num = |name: &str| {
        ArchiveReader::num_attr(root, name)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into())
    };
    let _ = writeln!(s, "archive   {}", path.display());
    let _ = writeln!(
        s,
        "format    {} (meanfield {}, commit {}), seed {}, threads {}",
        num("format_version"),
        attr("meanfield_version"),
        attr("git_commit"),
        num("seed"),
        num("threads")
    );
    let status = attr("status");
    match status.as_str() {
        "completed" => {
            let _ = writeln!(s, "status    completed");
        }
        "running" => {
            let _ = writeln!(
                s,
                "status    running: not completed (still running, or killed); each run holds data up to its t_last below; `meanfield run --resume` continues it"
            );
        }
        other => {
            let _ = writeln!(s, "status    not completed: {other}");
        }
    }
    if ArchiveReader::num_attr(root, "laziness_kappa").is_some() {
        let _ = writeln!(s, "laziness  κ = {}", num("laziness_kappa"));
    }
    let _ = writeln!(s, "\ndatasets");
    let mut names = vec![];
    collect(root, "", &mut names);
    for (name, shape) in &names {
        let _ = writeln!(s, "  {name:<28} {shape:?}");
    }
    let runs = a.runs();
    // An energy's runs have a free energy and a distance to the PDE where a network has losses.
    let energy = runs
        .iter()
        .any(|r| root.dataset(&format!("runs/{r}/free_energy")).is_ok());
    let (first, second) = if energy {
        ("free_energy", "w2_pde")
    } else {
        ("loss_train", "loss_test")
    };
    // The name column as wide as the longest name: long names do not push the columns.
    let w = runs
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    if !runs.is_empty() {
        let _ = writeln!(
            s,
            "\n{:<w$} {:<14} {:<9} {:>10} {:>12} {:>12} {:>8} {:>9} {:>6} {:>6} {:>8} {:>9}  status",
            "run", "kind", "method", "t_last", first, second, "steps", "rhs", "jac", "lu", "rejected", "seconds"
        );
    }
    for r in runs {
        let g = match root.group(&format!("runs/{r}")) {
            Ok(g) => g,
            Err(_) => continue,
        };
        let last = |ds: &str, f: fn(f64) -> String| -> String {
            a.last_saved(&r, ds).map(f).unwrap_or_else(|| "-".into())
        };
        let n = |k: &str| {
            ArchiveReader::num_attr(&g, k)
                .map(|v| format!("{v}"))
                .unwrap_or_else(|| "-".into())
        };
        let secs = ArchiveReader::num_attr(&g, "wall_seconds")
            .map(|v| format!("{v:.2}"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "{:<w$} {:<14} {:<9} {:>10} {:>12} {:>12} {:>8} {:>9} {:>6} {:>6} {:>8} {:>9}  {}",
            r,
            ArchiveReader::str_attr(&g, "kind").unwrap_or_default(),
            ArchiveReader::str_attr(&g, "method").unwrap_or_default(),
            last("t", time),
            last(first, sci),
            last(second, sci),
            n("steps"),
            n("rhs_evals"),
            n("jacobian_evals"),
            n("lu_factorizations"),
            n("rejected_steps"),
            secs,
            ArchiveReader::str_attr(&g, "status").unwrap_or_default()
        );
    }
    s.push_str(&class_table(&a));
    s.push_str(&diagonal_tables(path)?);
    s.push_str(&linear_tables(path)?);
    Ok(s)
}

/// On labelled data, each run's classification scores (run attributes, see
/// `Setup::write_class_scores`): accuracies of its outputs, its final kernel distance, and
/// kernel regression's test accuracy with its tangent kernel at θ₀ and at the end, on the ±1
/// target and on the classes. Empty for other archives.
fn class_table(a: &ArchiveReader) -> String {
    let mut s = String::new();
    let runs: Vec<(String, [f64; CLASS_SCORES.len()])> = a
        .runs()
        .into_iter()
        .filter_map(|r| Some((r.clone(), a.class_scores(&r)?)))
        .collect();
    if runs.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nclassification (sign of f against the ±1 targets; kernel regression with the run's tangent kernel at θ₀ and at the end, ±1 target and classes)"
    );
    let _ = writeln!(
        s,
        "{:<16} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "run", "acc_train", "acc_test", "kernel", "kr_init", "kr_end", "kc_init", "kc_end"
    );
    for (r, v) in runs {
        let acc_train = a
            .file
            .group(&format!("runs/{r}"))
            .ok()
            .and_then(|g| ArchiveReader::num_attr(&g, "accuracy_train"))
            .unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "{:<16} {:>9.4} {:>9.4} {:>10.3e} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
            r, acc_train, v[0], v[1], v[2], v[3], v[4], v[5]
        );
    }
    s
}

fn collect(g: &hdf5::Group, prefix: &str, out: &mut Vec<(String, Vec<usize>)>) {
    for name in g.member_names().unwrap_or_default() {
        let full = format!("{prefix}/{name}");
        if let Ok(ds) = g.dataset(&name) {
            out.push((full, ds.shape()));
        } else if let Ok(sub) = g.group(&name) {
            collect(&sub, &full, out);
        }
    }
}

/// The saddle-to-saddle tables of a diagonal-network archive: the limit's saddles (jump time,
/// the coordinate that entered with its sign, those that left, support size, loss, ‖β‖₁), and
/// how far each flow is from it at the plateau midpoints. Empty for other archives.
pub(crate) fn diagonal_tables(path: &Path) -> Result<String> {
    let a = ArchiveReader::open(path)?;
    let mut s = String::new();
    let runs = a.runs();
    let group = |r: &str| a.file.group(&format!("runs/{r}")).ok();
    let kind = |r: &str| group(r).and_then(|g| ArchiveReader::str_attr(&g, "kind"));
    for r in runs
        .iter()
        .filter(|r| kind(r).as_deref() == Some("saddle_limit"))
    {
        let status = group(r)
            .and_then(|g| ArchiveReader::str_attr(&g, "status"))
            .unwrap_or_default();
        if status != "completed" {
            let _ = writeln!(s, "\nsaddle limit '{r}': {status}");
            continue;
        }
        let get = |ds: &str| a.read(&format!("runs/{r}/{ds}"));
        let (t, (shape, _), (_, sdual), entered, (_, left), loss, l1, supp) = (
            get("t")?.1,
            get("beta")?,
            get("s")?,
            get("entered")?.1,
            get("left")?,
            get("loss_train")?.1,
            get("l1_norm")?.1,
            get("support_size")?.1,
        );
        let d = shape.get(1).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "\nsaddle-to-saddle limit '{r}' (Algorithm 1; jump times in accelerated time τ = t/λ_α)"
        );
        let _ = writeln!(
            s,
            "{:>5} {:>12} {:>8} {:>14} {:>8} {:>12} {:>10}",
            "k", "t_k", "entered", "left", "support", "loss_train", "‖β‖₁"
        );
        for k in 0..t.len() {
            let ent = if entered[k] >= 0.0 {
                let i = entered[k] as usize;
                let sign = if sdual.get(k * d + i).copied().unwrap_or(0.0) > 0.0 {
                    '+'
                } else {
                    '−'
                };
                format!("{sign}{i}")
            } else {
                "-".into()
            };
            let gone: Vec<String> = (0..d)
                .filter(|&i| left[k * d + i] != 0.0)
                .map(|i| i.to_string())
                .collect();
            let gone = if gone.is_empty() {
                "-".to_string()
            } else {
                gone.join(",")
            };
            let _ = writeln!(
                s,
                "{:>5} {:>12.6} {:>8} {:>14} {:>8} {:>12.4e} {:>10.5}",
                k, t[k], ent, gone, supp[k], loss[k], l1[k]
            );
        }
    }
    let flows: Vec<&String> = runs
        .iter()
        .filter(|r| {
            group(r)
                .map(|g| g.link_exists("plateau_distance"))
                .unwrap_or(false)
        })
        .collect();
    let mut flows = flows;
    let alpha_of = |r: &str| {
        group(r)
            .and_then(|g| ArchiveReader::num_attr(&g, "alpha"))
            .unwrap_or(f64::NAN)
    };
    flows.sort_by(|a, b| {
        kind(a)
            .cmp(&kind(b))
            .then(alpha_of(b).total_cmp(&alpha_of(a)))
            .then(a.cmp(b))
    });
    if !flows.is_empty() {
        let _ = writeln!(
            s,
            "\nflows vs the limit: ‖β(τ) − β_k‖₂ at each plateau's midpoint (worst over plateaus)"
        );
        let _ = writeln!(
            s,
            "{:<28} {:<14} {:>10} {:>12} {:>14} {:>10}",
            "run", "kind", "alpha", "worst", "first jump τ", "plateaus"
        );
    }
    for r in flows {
        let g = group(r).expect("listed above");
        let num = |k: &str| ArchiveReader::num_attr(&g, k).unwrap_or(f64::NAN);
        let plateaus = a
            .read_1d(&format!("runs/{r}/plateau_distance"))
            .map(|v| v.len())
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "{:<28} {:<14} {:>10.1e} {:>12.3e} {:>14.6} {:>10}",
            r,
            kind(r).unwrap_or_default(),
            num("alpha"),
            num("worst_plateau_distance"),
            num("first_jump_tau"),
            plateaus
        );
    }
    Ok(s)
}

/// The table of a linear-network archive: the σ²w threshold and step, then per run its minimum
/// test error (value, step, time), its final errors, how many singular values end above the
/// threshold, the largest five, and its largest distance to the reference run. Empty for other
/// archives.
pub(crate) fn linear_tables(path: &Path) -> Result<String> {
    let a = ArchiveReader::open(path)?;
    let mut s = String::new();
    let Ok(init) = a.file.group("init") else {
        return Ok(s);
    };
    if !init.link_exists("a") {
        return Ok(s);
    }
    let num = |g: &hdf5::Group, k: &str| ArchiveReader::num_attr(g, k).unwrap_or(f64::NAN);
    let threshold = num(&init, "threshold");
    let sigma2 = num(&init, "sigma2");
    // An aligned start (A(0) along Y's singular vectors) has no variance, width or threshold.
    let init_line = if sigma2.is_finite() {
        format!(
            "σ² = {:.4e}, w = {}, σ²w threshold = {:.4}",
            sigma2,
            num(&init, "width"),
            threshold
        )
    } else {
        format!(
            "aligned initialization (u0 = {:.4e}, no σ²w threshold)",
            num(&init, "u0")
        )
    };
    let _ = writeln!(
        s,
        "shallow linear network: {init_line}, η = {:.4e}{}",
        num(&init, "eta"),
        if num(&init, "reduced") == 1.0 && sigma2.is_finite() {
            " (exact width-2d reduction)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "{:<18} {:<16} {:>11} {:>6} {:>10} {:>11} {:>11} {:>7} {:>11}  top singular values (last save)",
        "run", "kind", "min_test", "step", "t", "train_last", "test_last", "above", "max_dist"
    );
    for r in a.runs() {
        let Ok(g) = a.file.group(&format!("runs/{r}")) else {
            continue;
        };
        let train = a
            .read_1d(&format!("runs/{r}/train_error"))
            .unwrap_or_default();
        let test = a
            .read_1d(&format!("runs/{r}/test_error"))
            .unwrap_or_default();
        let (shape, sv) = a
            .read(&format!("runs/{r}/singular_values"))
            .unwrap_or((vec![0, 0], vec![]));
        let d = shape.get(1).copied().unwrap_or(0);
        let last_sv: &[f64] = if d > 0 && sv.len() >= d {
            &sv[sv.len() - d..]
        } else {
            &[]
        };
        let above = last_sv.iter().filter(|v| **v > threshold).count();
        let top: Vec<String> = last_sv.iter().take(5).map(|v| format!("{v:.2}")).collect();
        let _ = writeln!(
            s,
            "{:<18} {:<16} {:>11.4e} {:>6} {:>10.4e} {:>11.4e} {:>11.4e} {:>7} {:>11}  {}",
            r,
            ArchiveReader::str_attr(&g, "kind").unwrap_or_default(),
            num(&g, "min_test_error"),
            num(&g, "min_test_step"),
            num(&g, "min_test_t"),
            train.last().copied().unwrap_or(f64::NAN),
            test.last().copied().unwrap_or(f64::NAN),
            // No threshold (aligned start) or no spectra: nothing to count.
            if last_sv.is_empty() || threshold.is_nan() || threshold <= 0.0 {
                "-".to_string()
            } else {
                above.to_string()
            },
            // The reference run has no distance to itself.
            match num(&g, "max_distance") {
                v if v.is_finite() => format!("{v:.3e}"),
                _ => "-".to_string(),
            },
            top.join(" ")
        );
        let status = ArchiveReader::str_attr(&g, "status").unwrap_or_default();
        if status != "completed" {
            let _ = writeln!(s, "    {r}: {status}");
        }
    }
    Ok(s)
}

/// A loss or other value spanning decades, as every table and the progress bar print it.
pub fn sci(v: f64) -> String {
    format!("{v:.4e}")
}

/// A time as the tables print it: plain to six significant figures between 1e-3 and 1e6
/// (20, 0.55, 7597.4), scientific outside.
pub fn time(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-3..1e6).contains(&v.abs()) {
        sci(v)
    } else {
        fixed(v, 6)
    }
}

/// `v` in fixed notation to `sig` significant figures, trailing zeros dropped (12.3, 0.0456,
/// 20): the one rounding of the tables, the progress bar and the figures' tick labels.
pub fn fixed(v: f64, sig: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (sig as i32 - 1 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
