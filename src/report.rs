//! Text summaries of archives (`meanfield inspect`).

use crate::archive::ArchiveReader;
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
        "format    {} (meanfield {}), seed {}, threads {}",
        num("format_version"),
        attr("meanfield_version"),
        num("seed"),
        num("threads")
    );
    let _ = writeln!(s, "status    {}", attr("status"));
    let _ = writeln!(s, "laziness  κ = {}", num("laziness_kappa"));
    let _ = writeln!(s, "\ndatasets");
    let mut names = vec![];
    collect(root, "", &mut names);
    for (name, shape) in &names {
        let _ = writeln!(s, "  {name:<28} {shape:?}");
    }
    let runs = a.runs();
    if !runs.is_empty() {
        let _ = writeln!(
            s,
            "\n{:<16} {:<14} {:<9} {:>10} {:>12} {:>12} {:>8} {:>9} {:>6} {:>6} {:>8} {:>9}  status",
            "run", "kind", "method", "t_last", "loss_train", "loss_test", "steps", "rhs", "jac", "lu", "rejected", "seconds"
        );
    }
    for r in runs {
        let g = match root.group(&format!("runs/{r}")) {
            Ok(g) => g,
            Err(_) => continue,
        };
        let last = |ds: &str| -> String {
            a.read_1d(&format!("runs/{r}/{ds}"))
                .ok()
                .and_then(|v| v.last().copied())
                .map(|v| format!("{v:.4e}"))
                .unwrap_or_else(|| "-".into())
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
            "{:<16} {:<14} {:<9} {:>10} {:>12} {:>12} {:>8} {:>9} {:>6} {:>6} {:>8} {:>9}  {}",
            r,
            ArchiveReader::str_attr(&g, "kind").unwrap_or_default(),
            ArchiveReader::str_attr(&g, "method").unwrap_or_default(),
            last("t"),
            last("loss_train"),
            last("loss_test"),
            n("steps"),
            n("rhs_evals"),
            n("jacobian_evals"),
            n("lu_factorizations"),
            n("rejected_steps"),
            secs,
            ArchiveReader::str_attr(&g, "status").unwrap_or_default()
        );
    }
    Ok(s)
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
