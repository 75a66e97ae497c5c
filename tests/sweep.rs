//! The lazy-training sweep on the shipped small problem: the slopes Chizat–Oyallon–Bach's theorem
//! predicts, the symmetric-init refinement, and the task/collect workflow.

use meanfield::problem::Problem;
use meanfield::sweep;
use std::path::Path;

fn slopes(problem: &Problem, text: &str, file: &Path) -> Vec<sweep::Fit> {
    let reports = sweep::run_all(problem, text, file, &|_, _| {}).unwrap();
    assert!(reports.iter().all(|r| r.completed()));
    let (points, fits) = sweep::collect(problem, text, file).unwrap();
    assert_eq!(points.len(), 10);
    fits
}

fn load(summary: &Path, symmetric: bool) -> (Problem, String) {
    let file = Path::new("problems/lazy_sweep_small.toml");
    let mut text = std::fs::read_to_string(file).unwrap();
    if symmetric {
        text = text.replace(
            "init = { subtract_initial = true }",
            "init = { symmetric = true }",
        );
    }
    let mut p = Problem::parse(&text, file).unwrap();
    p.sweep.as_mut().unwrap().summary = summary.to_path_buf();
    (p, text)
}

#[test]
fn lazy_training_distances_fall_like_one_over_alpha() {
    let dir = tempfile::tempdir().unwrap();
    let file = Path::new("problems/lazy_sweep_small.toml");
    let (p, text) = load(&dir.path().join("sub.h5"), false);
    let fits = slopes(&p, &text, file);
    let alpha_fits: Vec<_> = fits.iter().filter(|f| f.against == "alpha").collect();
    assert_eq!(alpha_fits.len(), 4);
    for f in alpha_fits {
        let range = if f.quantity == "w_dist" {
            -1.05..=-0.95
        } else {
            -1.25..=-0.8
        };
        assert!(range.contains(&f.slope), "{f:?}");
        assert!(f.ci_low <= f.slope && f.slope <= f.ci_high);
    }
    // The summary archive holds every point.
    let a = meanfield::archive::ArchiveReader::open(&dir.path().join("sub.h5")).unwrap();
    assert_eq!(a.read_1d("points/f_gap").unwrap().len(), 10);

    // Symmetric doubling: the gap falls like 1/α², the displacement still like 1/α.
    let (p, text) = load(&dir.path().join("sym.h5"), true);
    for f in slopes(&p, &text, file)
        .iter()
        .filter(|f| f.against == "alpha")
    {
        let range = if f.quantity == "w_dist" {
            -1.05..=-0.95
        } else {
            -2.2..=-1.8
        };
        assert!(range.contains(&f.slope), "symmetric: {f:?}");
    }
}

#[test]
fn tasks_run_one_by_one_give_the_same_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = Path::new("problems/lazy_sweep_small.toml");
    let (mut p, text) = load(&dir.path().join("one.h5"), false);
    p.sweep.as_mut().unwrap().alpha = vec![8.0, 16.0, 32.0];
    p.sweep.as_mut().unwrap().width = vec![32];
    let tasks = sweep::tasks(&p, file).unwrap();
    assert_eq!(tasks.len(), 3);
    for t in &tasks {
        sweep::run_task(&p, &text, file, t, 1).unwrap();
    }
    let (seq, _) = sweep::collect(&p, &text, file).unwrap();
    sweep::run_all(&p, &text, file, &|_, _| {}).unwrap();
    let (par, _) = sweep::collect(&p, &text, file).unwrap();
    for (a, b) in seq.iter().zip(&par) {
        assert_eq!(a.f_gap.to_bits(), b.f_gap.to_bits());
        assert_eq!(a.w_dist.to_bits(), b.w_dist.to_bits());
    }
    // A missing task archive is an error naming it.
    std::fs::remove_file(&tasks[1].archive).unwrap();
    let err = sweep::collect(&p, &text, file).unwrap_err().to_string();
    assert!(
        err.contains("task_1.h5") && err.contains("no such file"),
        "{err}"
    );
}
