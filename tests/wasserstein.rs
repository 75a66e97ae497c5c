//! Exact and sliced W2 against independent truths: brute-force assignment over all permutations,
//! a cloud against itself and against its shift, unequal 1-D sizes against repeated points, and
//! the sliced distance as a lower bound.

use faer::{Mat, Par};
use meanfield::measure::wasserstein::{
    assignment, assignment_dense, sq_distances, w2_exact, w2_sliced, w2_sq_1d,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cloud(n: usize, d: usize, seed: u64) -> Mat<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Mat::from_fn(n, d, |_, _| rng.random_range(-1.0..1.0))
}

/// Minimum over all n! permutations, by Heap's algorithm.
fn brute_force(c: &Mat<f64>) -> f64 {
    let n = c.nrows();
    let mut p: Vec<usize> = (0..n).collect();
    let cost = |p: &[usize]| (0..n).map(|i| c[(i, p[i])]).sum::<f64>();
    let mut best = cost(&p);
    let mut stack = vec![0; n];
    let mut i = 0;
    while i < n {
        if stack[i] < i {
            if i % 2 == 0 {
                p.swap(0, i);
            } else {
                p.swap(stack[i], i);
            }
            best = best.min(cost(&p));
            stack[i] += 1;
            i = 0;
        } else {
            stack[i] = 0;
            i += 1;
        }
    }
    best
}

/// The two-stage solver (auction prices, then exact augmenting paths) against the classic
/// dense one on costs that stress it: ties (small integers), repeated points, negative costs,
/// a constant matrix, costs beyond single precision (the fallback), and clouds at n = 600.
#[test]
fn assignment_agrees_with_the_classic_dense_solver() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut cases: Vec<(String, Mat<f64>)> = vec![];
    for k in 0..40 {
        let n = 1 + rng.random_range(0..40usize);
        let m = match k % 5 {
            0 => Mat::from_fn(n, n, |_, _| rng.random_range(0..4) as f64),
            1 => Mat::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0)),
            2 => {
                // repeated points: few distinct rows in each cloud
                let x = cloud(3, 2, k);
                let y = cloud(4, 2, 50 + k);
                let xr = Mat::from_fn(n, 2, |i, d| x[(i % 3, d)]);
                let yr = Mat::from_fn(n, 2, |i, d| y[(i % 4, d)]);
                sq_distances(xr.as_ref(), yr.as_ref(), Par::Seq)
            }
            3 => Mat::from_fn(n, n, |_, _| 1e200 * rng.random_range(0.0..1.0)),
            _ => Mat::from_fn(n, n, |_, _| 2.5),
        };
        cases.push((format!("case {k} (n = {n})"), m));
    }
    for d in [2, 20] {
        let x = cloud(600, d, d as u64);
        let y = Mat::from_fn(600, d, |i, k| x[(i, k)] + 0.3 + 0.1 * ((i * k) % 7) as f64);
        cases.push((
            format!("clouds {d}-D"),
            sq_distances(x.as_ref(), y.as_ref(), Par::Seq),
        ));
    }
    for (what, c) in &cases {
        let (a, b) = (
            assignment(c.as_ref()).unwrap(),
            assignment_dense(c.as_ref()).unwrap(),
        );
        let scale = (0..c.nrows())
            .map(|i| c[(i, b.col_of_row[i])].abs())
            .sum::<f64>()
            .max(1.0);
        assert!(
            (a.cost - b.cost).abs() <= 1e-12 * scale,
            "{what}: {} vs {}",
            a.cost,
            b.cost
        );
        let mut cols = a.col_of_row.clone();
        cols.sort_unstable();
        assert_eq!(
            cols,
            (0..c.nrows()).collect::<Vec<_>>(),
            "{what}: a permutation"
        );
    }
}

#[test]
fn assignment_matches_brute_force_over_all_permutations() {
    for seed in 0..30 {
        let n = 2 + (seed as usize % 6);
        let c = sq_distances(
            cloud(n, 3, seed).as_ref(),
            cloud(n, 3, 100 + seed).as_ref(),
            Par::Seq,
        );
        let a = assignment(c.as_ref()).unwrap();
        let want = brute_force(&c);
        assert!(
            (a.cost - want).abs() <= 1e-12 * want.max(1.0),
            "seed {seed}: {} vs {want}",
            a.cost
        );
        let mut cols = a.col_of_row.clone();
        cols.sort_unstable();
        assert_eq!(cols, (0..n).collect::<Vec<_>>(), "a permutation");
    }
    // Integer costs with many ties.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..20 {
        let c = Mat::from_fn(7, 7, |_, _| rng.random_range(0..3) as f64);
        assert_eq!(assignment(c.as_ref()).unwrap().cost, brute_force(&c));
    }
}

#[test]
fn optimal_assignment_beats_random_permutations_at_larger_sizes() {
    let n = 300;
    let c = sq_distances(cloud(n, 5, 1).as_ref(), cloud(n, 5, 2).as_ref(), Par::Seq);
    let best = assignment(c.as_ref()).unwrap().cost;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut p: Vec<usize> = (0..n).collect();
    for _ in 0..200 {
        for i in (1..n).rev() {
            p.swap(i, rng.random_range(0..=i));
        }
        assert!(best <= (0..n).map(|i| c[(i, p[i])]).sum::<f64>());
    }
}

#[test]
fn w2_of_a_cloud_with_itself_is_zero_and_with_its_shift_is_the_shift() {
    let x = cloud(400, 4, 5);
    assert!(w2_exact(x.as_ref(), x.as_ref(), Par::Seq).unwrap() < 1e-7);
    let s = [0.3, -1.2, 0.5, 2.0];
    let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
    let y = Mat::from_fn(400, 4, |i, k| x[(i, k)] + s[k]);
    // Rows in another order: the assignment has to find the matching.
    let y = Mat::from_fn(400, 4, |i, k| y[((i * 7) % 400, k)]);
    let w = w2_exact(x.as_ref(), y.as_ref(), Par::Seq).unwrap();
    assert!((w - norm).abs() < 1e-9 * norm, "{w} vs {norm}");
}

#[test]
fn one_dimensional_w2_of_unequal_sizes_equals_the_assignment_of_repeated_points() {
    // The uniform measure on n points is the uniform measure on those points repeated m times.
    let (n, m) = (6, 4);
    let a: Vec<f64> = cloud(n, 1, 8).col(0).iter().copied().collect();
    let b: Vec<f64> = cloud(m, 1, 9)
        .col(0)
        .iter()
        .map(|v| v * 3.0 + 0.5)
        .collect();
    let rep = |v: &[f64], k: usize| Mat::from_fn(v.len() * k, 1, |i, _| v[i / k]);
    let exact = w2_exact(rep(&a, m).as_ref(), rep(&b, n).as_ref(), Par::Seq).unwrap();
    let quantile = w2_sq_1d(a.clone(), b.clone()).sqrt();
    assert!((exact - quantile).abs() < 1e-12, "{exact} vs {quantile}");
    // In one dimension the sliced distance is the distance (θ = ±1).
    let xa = Mat::from_fn(n, 1, |i, _| a[i]);
    let xb = Mat::from_fn(m, 1, |i, _| b[i]);
    let sliced = w2_sliced(xa.as_ref(), xb.as_ref(), 3, 1).unwrap();
    assert!((sliced - quantile).abs() < 1e-12);
}

#[test]
fn sliced_w2_is_a_lower_bound_and_bad_input_is_refused() {
    for seed in 0..5 {
        let x = cloud(120, 6, seed);
        let y = cloud(120, 6, 50 + seed);
        let exact = w2_exact(x.as_ref(), y.as_ref(), Par::Seq).unwrap();
        let sliced = w2_sliced(x.as_ref(), y.as_ref(), 50, seed).unwrap();
        assert!(sliced > 0.0 && sliced <= exact, "{sliced} vs {exact}");
    }
    let x = cloud(5, 2, 0);
    assert!(w2_exact(x.as_ref(), cloud(6, 2, 1).as_ref(), Par::Seq)
        .unwrap_err()
        .to_string()
        .contains("equal sizes"));
    assert!(w2_exact(x.as_ref(), cloud(5, 3, 1).as_ref(), Par::Seq).is_err());
    assert!(w2_sliced(x.as_ref(), x.as_ref(), 0, 1).is_err());
    let bad = Mat::from_fn(2, 2, |i, j| if i == j { f64::NAN } else { 1.0 });
    assert!(assignment(bad.as_ref()).is_err());
}
