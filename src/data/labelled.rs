//! Labelled datasets from HDF5 (`[data] source = "hdf5"`): inputs [n, d] and integer class
//! labels [n], turned into ±1 targets (the classes in `positive` are +1) and split into a training
//! set balanced across classes and a test set, by a seeded shuffle. Geiger–Spigler–Jacot–Wyart's
//! lazy/feature comparison trains on such a split (30 samples per digit, parity targets).

use crate::data::spec::Normalize;
use crate::data::{Classes, Dataset};
use crate::error::{Error, Result};
use crate::rng::{stream, Stream};
use faer::Mat;
use rand::seq::SliceRandom;
use std::path::Path;

/// What a problem's `[data] source = "hdf5"` asks for.
pub struct Request<'a> {
    pub path: &'a Path,
    pub inputs: &'a str,
    pub labels: &'a str,
    pub positive: &'a [i64],
    pub n_train: usize,
    pub n_test: usize,
    pub normalize: Normalize,
    pub seed: u64,
}

/// The raw arrays of a labelled HDF5 file, checked: finite inputs, integer labels.
pub struct Table {
    pub n: usize,
    pub d: usize,
    /// Row-major [n, d].
    pub x: Vec<f64>,
    pub labels: Vec<i64>,
}

/// Reads `inputs` ([n, d], any numeric type) and `labels` ([n], integer values) from `path`.
/// `err` turns a key and a message into the caller's error (naming the problem file).
pub fn read_table(
    path: &Path,
    inputs: &str,
    labels: &str,
    err: &dyn Fn(&str, String) -> Error,
) -> Result<Table> {
    let shown = path.display();
    if !path.exists() {
        return Err(err("data.file", format!("{shown}: no such file")));
    }
    let file = hdf5::File::open(path).map_err(|e| {
        err(
            "data.file",
            format!("{shown}: not a readable HDF5 file: {e}"),
        )
    })?;
    let ds = file.dataset(inputs).map_err(|_| {
        err("data.inputs", format!(
            "{shown}: expected a dataset '{inputs}' (inputs, [samples, features]); the file has {:?}",
            file.member_names().unwrap_or_default()
        ))
    })?;
    let shape = ds.shape();
    if shape.len() != 2 || shape[0] == 0 || shape[1] == 0 {
        return Err(err("data.inputs", format!(
            "{shown}: '{inputs}' must be a non-empty 2-D array [samples, features], got shape {shape:?}"
        )));
    }
    let (n, d) = (shape[0], shape[1]);
    let x: Vec<f64> = ds.read_raw().map_err(|e| {
        err(
            "data.inputs",
            format!("{shown}: '{inputs}': cannot read as numbers: {e}"),
        )
    })?;
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(err(
            "data.inputs",
            format!(
                "{shown}: '{inputs}'[{}, {}] = {}: expected finite numbers",
                i / d,
                i % d,
                x[i]
            ),
        ));
    }
    let ls = file.dataset(labels).map_err(|_| {
        err("data.labels", format!(
            "{shown}: expected a dataset '{labels}' (integer class labels, [samples]); the file has {:?}",
            file.member_names().unwrap_or_default()
        ))
    })?;
    if ls.shape() != [n] {
        return Err(err(
            "data.labels",
            format!(
                "{shown}: '{labels}' must have shape [{n}] like '{inputs}' has {n} rows, got {:?}",
                ls.shape()
            ),
        ));
    }
    let raw: Vec<f64> = ls.read_raw().map_err(|e| {
        err(
            "data.labels",
            format!("{shown}: '{labels}': cannot read as numbers: {e}"),
        )
    })?;
    let mut out = Vec::with_capacity(n);
    for (i, &v) in raw.iter().enumerate() {
        if !(v.is_finite() && v.fract() == 0.0 && v.abs() < 2f64.powi(53)) {
            return Err(err(
                "data.labels",
                format!("{shown}: '{labels}'[{i}] = {v}: expected an integer class label"),
            ));
        }
        out.push(v as i64);
    }
    Ok(Table {
        n,
        d,
        x,
        labels: out,
    })
}

/// The dataset a request describes.
pub fn load(req: &Request, err: &dyn Fn(&str, String) -> Error) -> Result<Dataset> {
    let table = read_table(req.path, req.inputs, req.labels, err)?;
    let mut values = table.labels.clone();
    values.sort_unstable();
    values.dedup();
    let k = values.len();
    for p in req.positive {
        if !values.contains(p) {
            return Err(err(
                "data.positive",
                format!(
                    "class {p} does not occur in '{}' (its classes are {values:?})",
                    req.labels
                ),
            ));
        }
    }
    let class_of = |l: i64| values.binary_search(&l).unwrap_or(0);

    // Balanced training set: the first members of each class in a seeded shuffle.
    let mut order: Vec<usize> = (0..table.n).collect();
    order.shuffle(&mut stream(req.seed, Stream::TrainInputs));
    let mut per_class = vec![req.n_train / k; k];
    for c in per_class.iter_mut().take(req.n_train % k) {
        *c += 1;
    }
    let mut taken = vec![0; k];
    let (mut train, mut rest) = (vec![], vec![]);
    for &i in &order {
        let c = class_of(table.labels[i]);
        if taken[c] < per_class[c] {
            taken[c] += 1;
            train.push(i);
        } else {
            rest.push(i);
        }
    }
    if let Some(c) = (0..k).find(|&c| taken[c] < per_class[c]) {
        return Err(err(
            "data.n_train",
            format!(
                "a balanced split of n_train = {} needs {} samples of class {}, the file has {}",
                req.n_train, per_class[c], values[c], taken[c]
            ),
        ));
    }
    let n_test = if req.n_test == 0 {
        rest.len()
    } else {
        req.n_test
    };
    if n_test > rest.len() {
        return Err(err(
            "data.n_test",
            format!(
                "expected at most {} (the samples left after n_train = {}), got {n_test}",
                rest.len(),
                req.n_train
            ),
        ));
    }
    rest.truncate(n_test);

    let pick =
        |rows: &[usize]| Mat::from_fn(rows.len(), table.d, |r, j| table.x[rows[r] * table.d + j]);
    let (mut x_train, mut x_test) = (pick(&train), pick(&rest));
    if req.normalize == Normalize::Sphere {
        sphere(&mut x_train, &mut x_test);
    }
    let target = |rows: &[usize]| -> Vec<f64> {
        rows.iter()
            .map(|&i| {
                if req.positive.contains(&table.labels[i]) {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect()
    };
    let class = |rows: &[usize]| rows.iter().map(|&i| class_of(table.labels[i])).collect();
    let (class_train, class_test) = (class(&train), class(&rest));
    Ok(Dataset {
        y_train: target(&train),
        y_test: target(&rest),
        x_train,
        x_test,
        teacher: None,
        law: None,
        classes: Some(Classes {
            values,
            train: class_train,
            test: class_test,
        }),
    })
}

/// Centres both sets on the training mean and puts every input on the sphere of radius √d, the
/// input law of the theory (a constant input stays at the centre).
fn sphere(x_train: &mut Mat<f64>, x_test: &mut Mat<f64>) {
    let d = x_train.ncols();
    let n = x_train.nrows() as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| (0..x_train.nrows()).map(|i| x_train[(i, j)]).sum::<f64>() / n)
        .collect();
    for x in [x_train, x_test] {
        for i in 0..x.nrows() {
            for j in 0..d {
                x[(i, j)] -= mean[j];
            }
            crate::data::to_sphere(x, i, (d as f64).sqrt());
        }
    }
}
