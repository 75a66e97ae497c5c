//! The lazy-training sweep on the shipped small problem: the slopes Chizat–Oyallon–Bach's theorem
//! predicts, the symmetric-init refinement, and the task/collect workflow.

use meanfield::family::two_layer::sweep;
use meanfield::problem::Problem;
use std::path::Path;

fn slopes(problem: &Problem, text: &str, file: &Path) -> Vec<sweep::Fit> {
    let reports = sweep::run_all(problem, text, file, false, &|_, _| {}).unwrap();
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
    let alpha_fits: Vec<_> = fits
        .iter()
        .filter(|f| f.against == "alpha" && ["f_gap", "w_dist"].contains(&f.quantity.as_str()))
        .collect();
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
        .filter(|f| f.against == "alpha" && ["f_gap", "w_dist"].contains(&f.quantity.as_str()))
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
    // Without --redo the completed tasks are kept as they are; with it they run again, in
    // parallel, to the same bits.
    let kept = sweep::run_all(&p, &text, file, false, &|_, _| {}).unwrap();
    assert!(kept.iter().all(|r| matches!(r, sweep::TaskRun::Kept(_))));
    let redone = sweep::run_all(&p, &text, file, true, &|_, _| {}).unwrap();
    assert!(redone.iter().all(|r| matches!(r, sweep::TaskRun::Ran(_))));
    let (par, _) = sweep::collect(&p, &text, file).unwrap();
    for (a, b) in seq.iter().zip(&par) {
        assert_eq!(a.f_gap.to_bits(), b.f_gap.to_bits());
        assert_eq!(a.w_dist.to_bits(), b.w_dist.to_bits());
    }
    // A missing task archive, and one whose run was killed (status still "running"), are
    // both listed, each with the command that runs it.
    std::fs::remove_file(&tasks[1].archive).unwrap();
    // (Opening for --resume marks it running, as a killed run leaves it.)
    drop(
        meanfield::archive::ArchiveWriter::open_existing(
            &tasks[2].archive,
            meanfield::family::two_layer::describe,
        )
        .unwrap(),
    );
    let err = sweep::collect(&p, &text, file).unwrap_err().to_string();
    assert!(
        err.contains("task_1.h5") && err.contains("no such file"),
        "{err}"
    );
    assert!(err.contains("2 of the sweep's 3 tasks"), "{err}");
    assert!(err.contains("task_2.h5: did not finish"), "{err}");
    for i in [1, 2] {
        assert!(
            err.contains(&format!("meanfield sweep task {} {i}", file.display())),
            "{err}"
        );
    }
    // `sweep run` runs exactly those two again and keeps the finished one.
    let runs = sweep::run_all(&p, &text, file, false, &|_, _| {}).unwrap();
    let ran: Vec<bool> = runs
        .iter()
        .map(|r| matches!(r, sweep::TaskRun::Ran(_)))
        .collect();
    assert_eq!(ran, [false, true, true]);
    sweep::collect(&p, &text, file).unwrap();
}

/// The shipped width sweep on the exact population risk: every width against the widest run of
/// its seed. Propagation of chaos: the function-space gap falls like N^(−1/2) at fixed t.
#[test]
fn population_width_sweep_gap_falls_like_inverse_square_root_of_width() {
    let dir = tempfile::tempdir().unwrap();
    let file = Path::new("problems/width_population.toml");
    let text = std::fs::read_to_string(file).unwrap();
    let mut p = Problem::parse(&text, file).unwrap();
    let summary = dir.path().join("width.h5");
    p.sweep.as_mut().unwrap().summary = summary.clone();
    let reports = sweep::run_all(&p, &text, file, false, &|_, _| {}).unwrap();
    assert!(reports.iter().all(|r| r.completed()));
    let (points, fits) = sweep::collect(&p, &text, file).unwrap();
    assert_eq!(points.len(), 36);
    for t in ["1", "2"] {
        let f = fits
            .iter()
            .find(|f| f.quantity == format!("f_l2(t={t})") && f.against == "width")
            .unwrap_or_else(|| panic!("no f_l2 fit at t = {t}: {fits:?}"));
        assert!((-0.6..=-0.4).contains(&f.slope), "{f:?}");
        assert_eq!(f.points, 30, "the six references are left out");
        // W2 of the particle measures shrinks too, slowly in D = 11 dimensions (exact: 1024
        // is a multiple of every width).
        let w = fits
            .iter()
            .find(|f| f.quantity == format!("w2(t={t})"))
            .unwrap();
        assert!(w.ci_high < 0.0, "{w:?}");
    }
    assert!(points
        .iter()
        .filter(|q| q.task.width < 1024)
        .all(|q| q.to_ref.w2_exact && q.to_ref.reference_width == 1024));
    let a = meanfield::archive::ArchiveReader::open(&summary).unwrap();
    let (shape, gaps) = a.read("points/f_l2").unwrap();
    assert_eq!(shape, vec![36, 2]);
    assert_eq!(gaps.iter().filter(|g| g.is_nan()).count(), 12);
    assert_eq!(a.read_1d("points/at").unwrap(), vec![1.0, 2.0]);
}
