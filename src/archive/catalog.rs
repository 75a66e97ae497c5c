//! What each dataset of an archive is: the `description` (and, for times, `units`) attributes
//! that make an archive readable without meanfield's source. One entry per dataset meaning;
//! `describe_all` fills them in when an archive is finished, so every writer gets them.

/// Where a dataset sits, as far as its meaning depends on it.
pub struct Place<'a> {
    /// "data", "init", "points" (sweep summaries), "fits" (an energy sweep's), or "runs".
    pub group: &'a str,
    /// For runs: the run's `kind` attribute ("gd", "saddle_limit", …).
    pub kind: &'a str,
    /// The other datasets of the group (e.g. a `beta` beside it marks a diagonal network).
    pub siblings: &'a [String],
}

const MEAN_FIELD_TIME: &str = "mean-field time: dθ_j/dt = −(N/(2α²)) ∇_θj R, GD step k at t = kη";

/// (description, units) of the dataset `name` at `place`; None for a dataset this catalogue
/// does not know (tests/archive_catalog.rs fails on any).
pub fn describe(place: &Place<'_>, name: &str) -> Option<(&'static str, Option<&'static str>)> {
    let has = |n: &str| place.siblings.iter().any(|s| s == n);
    let diagonal = has("beta");
    let linear = has("train_error") || place.kind == "phase_diagram";
    let d = |s: &'static str| Some((s, None));
    match (place.group, name) {
        ("data", "x_train") => d("training inputs, one row per sample [n, d]"),
        ("data", "y_train") => d("training targets [n] (label noise included)"),
        ("data", "x_test") => d("test inputs [m, d]"),
        ("data", "y_test") => d("test targets [m] (no label noise)"),
        ("data", "teacher") => d("the target f*(x) = Σ_i c_i σ(⟨w_i, x⟩) as neurons: one row (c_i, w_i) per neuron, columns in `columns`, σ in `activation` (noise not included)"),
        ("data", "labels_train") => {
            d("class label of each training sample (targets are ±1 from them)")
        }
        ("data", "labels_test") => d("class label of each test sample"),
        ("data", "a_star") => d("A*, the target matrix [d, d] (test error ‖A − A*‖_F²/d²)"),
        ("data", "y") => d("Y, the observed matrix [d, d] (train error ‖A − Y‖_F²/d²)"),
        ("init", "particles") => d("the initial particles [N, D] (θ_j(0) of a network, X_i(0) of an energy), columns in `columns`"),
        ("init", "a") => d("A(0) = W₂W₁ at initialization [d, d]"),
        ("points", n) if has("repeat") => energy_points(n),
        ("points", n) => points(n),
        ("fits", n) => energy_fit(n),
        ("runs", n) if has("free_energy") => energy_run(n),
        ("runs", n) => run(place.kind, n, diagonal, linear),
        _ => None,
    }
}

fn points(name: &str) -> Option<(&'static str, Option<&'static str>)> {
    let d = |s: &'static str| Some((s, None));
    match name {
        "width" => d("N, the task's number of particles"),
        "alpha" => d("α, the task's output scale"),
        "seed" => d("the task's master seed"),
        "f_gap" => d("sup_t of the RMS over training points of f − f_lin: the first nonlinear run against the first linearized or ntk_limit run"),
        "w_dist" => d("sup_t ‖θ(t) − θ₀‖ over all particle coordinates of the first nonlinear run"),
        "loss_train" => d("final training loss of the task's first nonlinear run"),
        "loss_test" => d("final test loss of the task's first nonlinear run"),
        "ntk_error" => d("‖K₀ − K_∞‖_F / ‖K_∞‖_F: the empirical NTK at θ₀ against the analytic one"),
        "kernel_distance" => d("‖K_T − K₀‖_F / ‖K₀‖_F: how far the tangent kernel moved by the end"),
        "risk_gap" => d("|R − R_ref| at each compared time [points, times]: risk against the widest run of the same α and seed"),
        "f_l2" => d("RMS of f − f_ref on the test set at each compared time [points, times]"),
        "w2" => d("W2 between the particle laws of the task and of its reference [points, times] (exact or sliced: w2_exact)"),
        "radial_w2" => d("1-D W2 between the law of ‖w‖ of the network and of the radial PDE [points, times]"),
        "at" => Some((
            "the times at which every point is compared with its reference",
            Some(MEAN_FIELD_TIME),
        )),
        "t_compared" => Some((
            "the times each point was compared at, when they differ between points [points, times]",
            Some(MEAN_FIELD_TIME),
        )),
        "loss_test_by_run" => d("final test loss of every run of each task [points, runs], run names in `runs`"),
        "class_scores" => d("classification scores [points, runs, columns], names in `runs` and `columns`"),
        "reference_width" => d("width of the point's reference (the widest run of its α and seed)"),
        "w2_exact" => d("1 when w2 is exact (assignment), 0 when sliced"),
        _ => None,
    }
}

const ENERGY_TIME: &str = "time t of dX = −∇V(X) dt − (1/N) Σ_j ∇₁W(X, X_j) dt + √(2T) dB (the PDE's ∂_t ρ = ∇·(ρ∇(V + W∗ρ)) + TΔρ); GD and Langevin step k at t = kη";

fn energy_run(name: &str) -> Option<(&'static str, Option<&'static str>)> {
    let d = |s: &'static str| Some((s, None));
    match name {
        "t" => Some(("time of each save", Some(ENERGY_TIME))),
        "particles" => d("X_i(t), the particles at each save [T, N, D], columns in `columns`"),
        "free_energy" => d("the free energy at each save: the PDE's vol Σ V ρ + ½ vol² Σ W ρρ + T vol Σ ρ log ρ; particles' see the run's `free_energy_is`"),
        "energy" => d("F_N = (1/N) Σ V(X_i) + (1/(2N²)) Σ_ij W(X_i, X_j) at each save, exact (no entropy)"),
        "mean" => d("the mean of each coordinate at each save [T, D]"),
        "variance" => d("the variance of each coordinate at each save [T, D]"),
        "w2_pde" => d("W2 between the particles and the PDE's density at the same time (method in `w2_method`, PDE in `w2_against`; NaN where it has no save)"),
        "density" => d("ρ(t), the cell averages at each save [T, cells…] (row-major, the last axis fastest)"),
        "mass" => d("vol Σ ρ, conserved to round-off by the no-flux walls"),
        "min_density" => d("the smallest cell average at each save (the scheme keeps ρ ≥ 0 up to the solver's tolerance)"),
        "grid" => d("the cell centres [M]"),
        "grid_x1" => d("the cell centres along x1 [M1]"),
        "grid_x2" => d("the cell centres along x2 [M2]"),
        _ => None,
    }
}

fn energy_points(name: &str) -> Option<(&'static str, Option<&'static str>)> {
    let d = |s: &'static str| Some((s, None));
    match name {
        "particle_count" => d("N, the task's number of particles"),
        "repeat" => d("k, the task's repeat at its N"),
        "seed" => d("the seed of the task's initial sample and noise"),
        n if n.starts_with("w2_") => d("W2 between the task's particles and the PDE at each save of the dynamics [points, times] (times: fits/<dynamics>/t)"),
        _ => None,
    }
}

fn energy_fit(name: &str) -> Option<(&'static str, Option<&'static str>)> {
    let d = |s: &'static str| Some((s, None));
    match name {
        "t" => Some(("the save times of the fitted dynamics", Some(ENERGY_TIME))),
        "slope" => d("least-squares slope of log(mean W2 over repeats) on log N at each save"),
        "ci_low" => d("lower end of the slope's 95% Student-t interval"),
        "ci_high" => d("upper end of the slope's 95% Student-t interval"),
        "intercept" => d("intercept of the fitted line: log W2 ≈ intercept + slope · log N"),
        _ => None,
    }
}

fn run(
    kind: &str,
    name: &str,
    diagonal: bool,
    linear: bool,
) -> Option<(&'static str, Option<&'static str>)> {
    let d = |s: &'static str| Some((s, None));
    match (kind, name) {
        ("saddle_limit", "t") => Some((
            "jump times τ_k of the saddle-to-saddle limit (t_0 = 0)",
            Some("accelerated time τ = t/λ_α"),
        )),
        ("phase_diagram", "t") => d("index of the phase-diagram point, in the order points finished"),
        ("radial_pde", "t") => Some(("time of each save", Some(MEAN_FIELD_TIME))),
        (_, "t") if diagonal => Some((
            "time of each save: raw time t of the gradient flow on L",
            Some("raw time t = λ_α τ"),
        )),
        (_, "t") if linear => Some(("time of each save", Some("t = kη, η the GD step"))),
        (_, "t") => Some(("time of each save", Some(MEAN_FIELD_TIME))),
        (_, "tau") => Some((
            "accelerated time of each save",
            Some("τ = t/λ_α (λ_α = log 1/α for u ⊙ v, ½ log 1/α for u² − v²)"),
        )),
        (_, "particles") => d("θ_j(t), the particles at each save [T, N, D], columns in `columns`"),
        (_, "kernel") => d("tangent kernel K_t(x_i, x_l) = (1/N) Σ_j ⟨∇σ*(x_i; θ_j), ∇σ*(x_l; θ_j)⟩ on the first kernel_points training inputs [T, k, k]"),
        (_, "kernel_distance") => d("‖K_t − K₀‖_F / ‖K₀‖_F"),
        (_, "kernel_alignment") => d("yᵀK_t y / (‖K_t‖_F ‖y‖²) on the kernel points"),
        ("residual", "f_train") => d("y − u on the training inputs, u the integrated residual [T, n]"),
        (_, "f_train") => d("outputs of the run's model on the training inputs [T, n] (ntk_limit: the frozen-kernel model)"),
        (_, "f_test") => d("outputs of the run's model on the test inputs [T, m]"),
        (_, "loss_train") if diagonal || kind == "saddle_limit" => {
            d("L(β) = ‖y − Xβ‖² / (2n) on the training set")
        }
        (_, "loss_test") if diagonal || kind == "saddle_limit" => {
            d("‖y − Xβ‖² / (2m) on the test set")
        }
        ("radial_pde", "loss_train") => d("the risk of the infinite-width network whose law of ‖w‖ the radial PDE carries (its particles: radii)"),
        (_, "loss_train") => d("R = mean (y − f)² over the training set (the population risk E(f* − f)² with data.risk = \"population\")"),
        (_, "loss_test") => d("mean (y − f)² over the test set"),
        (_, "radii") => d("the radial PDE's particles r_k = ‖w_k‖ at each save [T, M]"),
        (_, "beta") => d("β = u ⊙ v (or u² − v²), the regression vector, one row per save (per saddle for the limit)"),
        (_, "s") => d("the dual variable s ∈ ∂‖β‖₁ at each saddle [p+1, d]"),
        (_, "l1_norm") => d("‖β‖₁ at each saddle"),
        (_, "support_size") => d("number of nonzero coordinates of β at each saddle"),
        (_, "entered") => d("coordinate that entered the support at each jump (−1: none)"),
        (_, "left") => d("1 where a coordinate left the support at the jump [p+1, d]"),
        (_, "q") => d("q, the mirror flow's dual state [T, d]"),
        (_, "u") => d("u, the first diagonal weights [T, d]"),
        (_, "v") => d("v, the second diagonal weights [T, d]"),
        (_, "conservation_error") => d("max_i of the conserved quantity's error: |u_i² − v_i² − 2α²| (u ⊙ v) or |u_i v_i − α²| (u² − v²)"),
        (_, "conservation_error_relative") => d("max_i of the conserved quantity's error divided by u_i² + v_i²"),
        (_, "plateau_tau") => Some((
            "τ at the midpoint of each of the limit's plateaus",
            Some("accelerated time τ = t/λ_α"),
        )),
        (_, "plateau_distance") => d("‖β_flow(τ) − β_k‖₂ at each plateau midpoint: the flow against the limit's saddle β_k"),
        (_, "step") => d("GD step k of each save (t = kη)"),
        (_, "train_error") => d("‖A − Y‖_F² / d²"),
        (_, "test_error") => d("‖A − A*‖_F² / d²"),
        (_, "singular_values") => d("singular values of A at each save, descending [T, d]"),
        (_, "a_final") => d("A at the end of the run [d, d]"),
        (_, "distance") => d("‖A − A_ref‖_F / ‖A_ref‖_F against the first dynamics listed (attr reference)"),
        ("phase_diagram", n) => phase(n),
        _ => None,
    }
}

fn phase(name: &str) -> Option<(&'static str, Option<&'static str>)> {
    let d = |s: &'static str| Some((s, None));
    match name {
        "gamma_sigma2" => d("γσ²: the initialization variance σ² = d^γσ²"),
        "gamma_w" => d("γw: the width w = ⌊d^γw⌋"),
        "seed" => d("the point's seed"),
        "region" => {
            d("the point's region by the paper's lines (codes in the run's `region_codes`)")
        }
        "min_test_error" => d("minimum over GD steps of ‖A − A*‖_F² / d²"),
        "stable_rank" => d("‖A‖_F² / ‖A‖_op² at the step of the minimum test error"),
        "steps_to_min" => d("GD steps to the minimum test error"),
        "steps" => d("GD steps taken"),
        "max_distance" => d("max over steps of ‖A_GD − A_SC‖_F / ‖A_GD‖_F (GD against eq. (1))"),
        "eta" => d("η, the GD step"),
        "threshold" => d("σ²w: singular values above it are balanced, below it lazy"),
        _ => None,
    }
}

/// Writes `description` (and `units`) on every dataset of the file that lacks one.
pub fn describe_all(file: &hdf5::File) -> hdf5::Result<()> {
    for group in ["data", "init", "points"] {
        if let Ok(g) = file.group(group) {
            describe_group(&g, group, "")?;
        }
    }
    if let Ok(fits) = file.group("fits") {
        for name in fits.member_names()? {
            if let Ok(g) = fits.group(&name) {
                describe_group(&g, "fits", "")?;
            }
        }
    }
    if let Ok(runs) = file.group("runs") {
        for name in runs.member_names()? {
            let g = runs.group(&name)?;
            let kind = super::ArchiveReader::str_attr(&g, "kind").unwrap_or_default();
            describe_group(&g, "runs", &kind)?;
        }
    }
    Ok(())
}

fn describe_group(g: &hdf5::Group, group: &str, kind: &str) -> hdf5::Result<()> {
    let names = g.member_names()?;
    let place = Place {
        group,
        kind,
        siblings: &names,
    };
    for name in &names {
        let Ok(ds) = g.dataset(name) else { continue };
        if ds.attr_names()?.iter().any(|a| a == "description") {
            continue;
        }
        if let Some((description, units)) = describe(&place, name) {
            super::set_str(&ds, "description", description)?;
            if let Some(u) = units {
                super::set_str(&ds, "units", u)?;
            }
        }
    }
    Ok(())
}
