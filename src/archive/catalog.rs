//! What each dataset of an archive is: the `description` (and, for times, `units`) attributes
//! that make an archive readable without meanfield's source. Each family describes its own
//! datasets (its `describe`, passed in the `Provenance`); the few that every family shares are
//! here. `describe_all` fills them in when an archive is finished, so every writer gets them.

/// Where a dataset sits, as far as its meaning depends on it.
pub struct Place<'a> {
    /// "data", "init", "points" (sweep summaries), "fits" (sweep fits), or "runs".
    pub group: &'a str,
    /// For runs: the run's `kind` attribute ("gd", "saddle_limit", …).
    pub kind: &'a str,
}

/// A dataset's description and, for a time axis, its units.
pub(crate) type Description = (&'static str, Option<&'static str>);

/// A family's catalogue: the description of the dataset `name` at a place, None for one it
/// does not know (tests/archive_catalog.rs fails on any dataset left without one).
pub type Describe = fn(&Place<'_>, &str) -> Option<Description>;

/// A description without units.
pub fn plain(s: &'static str) -> Option<Description> {
    Some((s, None))
}

/// The time axis of networks trained in the design's convention.
pub(crate) const MEAN_FIELD_TIME: &str =
    "mean-field time: dθ_j/dt = −(N/(2α²)) ∇_θj R, GD step k at t = kη";

/// The dataset `name` at `place`: the family's entry, else the shared one.
pub fn describe(place: &Place<'_>, name: &str, family: Describe) -> Option<Description> {
    family(place, name).or_else(|| shared(place, name))
}

/// The datasets every family writes the same way: the training data and the initial particles.
fn shared(place: &Place<'_>, name: &str) -> Option<Description> {
    match (place.group, name) {
        ("data", "x_train") => plain("training inputs, one row per sample [n, d]"),
        ("data", "y_train") => plain("training targets [n] (label noise included)"),
        ("data", "x_test") => plain("test inputs [m, d]"),
        ("data", "y_test") => plain("test targets [m] (no label noise)"),
        ("data", "teacher") => plain("the target f*(x) = Σ_i c_i σ(⟨w_i, x⟩) as neurons: one row (c_i, w_i) per neuron, columns in `columns`, σ in `activation` (noise not included)"),
        ("data", "labels_train") => {
            plain("class label of each training sample (targets are ±1 from them)")
        }
        ("data", "labels_test") => plain("class label of each test sample"),
        ("init", "particles") => plain("the initial particles [N, D] (θ_j(0) of a network, X_i(0) of an energy), columns in `columns`"),
        _ => None,
    }
}

/// Writes `description` (and `units`) on every dataset of the file that lacks one.
pub(crate) fn describe_all(file: &hdf5::File, family: Describe) -> hdf5::Result<()> {
    for group in ["data", "init", "points"] {
        if let Ok(g) = file.group(group) {
            describe_group(&g, group, "", family)?;
        }
    }
    if let Ok(fits) = file.group("fits") {
        for name in fits.member_names()? {
            if let Ok(g) = fits.group(&name) {
                describe_group(&g, "fits", "", family)?;
            }
        }
    }
    if let Ok(runs) = file.group("runs") {
        for name in runs.member_names()? {
            let g = runs.group(&name)?;
            let kind = super::ArchiveReader::str_attr(&g, "kind").unwrap_or_default();
            describe_group(&g, "runs", &kind, family)?;
        }
    }
    Ok(())
}

fn describe_group(g: &hdf5::Group, group: &str, kind: &str, family: Describe) -> hdf5::Result<()> {
    let names = g.member_names()?;
    let place = Place { group, kind };
    for name in &names {
        let Ok(ds) = g.dataset(name) else { continue };
        if ds.attr_names()?.iter().any(|a| a == "description") {
            continue;
        }
        if let Some((description, units)) = describe(&place, name, family) {
            super::set_str(&ds, "description", description)?;
            if let Some(u) = units {
                super::set_str(&ds, "units", u)?;
            }
        }
    }
    Ok(())
}
