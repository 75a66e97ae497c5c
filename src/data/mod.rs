//! Datasets: synthetic generators and CSV loading. Inputs are rows of a faer matrix.

use crate::error::{Error, Result};
pub use crate::limits::population::Teacher;
pub mod labelled;
pub mod spec;

use crate::model::activation::Activation;
use crate::rng::{stream, Stream};
use faer::Mat;
use rand::Rng;
use rand_distr::StandardNormal;
use spec::{DataSpec, InputLaw, TargetSpec};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Dataset {
    pub x_train: Mat<f64>,
    pub y_train: Vec<f64>,
    pub x_test: Mat<f64>,
    pub y_test: Vec<f64>,
    /// The synthetic target as neurons f*(x) = Σ_i c_i σ(⟨w_i, x⟩) (none for CSV data).
    pub teacher: Option<Teacher>,
    /// The law the synthetic samples come from, for online SGD (none for CSV data).
    pub law: Option<Law>,
    /// The class of every sample, for labelled data (targets are then ±1).
    pub classes: Option<Classes>,
}

/// Class labels of a labelled dataset, as indices into `values` (the distinct labels, sorted).
#[derive(Debug, Clone)]
pub struct Classes {
    pub values: Vec<i64>,
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// The data law of a synthetic problem: inputs from their law, noisy targets.
#[derive(Debug, Clone)]
pub struct Law {
    input: InputLaw,
    d: usize,
    radius: f64,
    noise: f64,
    target: Target,
}

impl Law {
    /// n fresh training samples (x, y) with the training set's label noise.
    pub fn draw(&self, n: usize, rng: &mut impl Rng) -> (Mat<f64>, Vec<f64>) {
        let (x, mut y) = self.target.sample(self.input, n, self.d, self.radius, rng);
        if self.noise > 0.0 {
            for v in &mut y {
                *v += self.noise * rng.sample::<f64, _>(StandardNormal);
            }
        }
        (x, y)
    }
}

impl Dataset {
    pub fn d(&self) -> usize {
        self.x_train.ncols()
    }
    pub fn n_train(&self) -> usize {
        self.x_train.nrows()
    }
    pub fn n_test(&self) -> usize {
        self.x_test.nrows()
    }

    /// Build the dataset a problem describes. `base` is the problem file's folder (for CSV paths),
    /// `file` the problem file (for messages).
    pub fn build(spec: &DataSpec, seed: u64, base: &Path, file: &Path) -> Result<Dataset> {
        match spec {
            DataSpec::Synthetic {
                input,
                d,
                n_train,
                n_test,
                radius,
                noise,
                target,
                ..
            } => {
                let r = radius.unwrap_or((*d as f64).sqrt());
                Ok(synthetic(
                    *input, *d, *n_train, *n_test, r, *noise, target, seed,
                ))
            }
            DataSpec::Csv { train, test } => {
                let (x_train, y_train) = read_csv(&base.join(train), file, "data.train")?;
                let (x_test, y_test) = match test {
                    Some(t) => read_csv(&base.join(t), file, "data.test")?,
                    None => (Mat::zeros(0, x_train.ncols()), vec![]),
                };
                if x_test.nrows() > 0 && x_test.ncols() != x_train.ncols() {
                    return Err(Error::Problem {
                        file: file.to_path_buf(),
                        key: "data.test".into(),
                        message: format!(
                            "expected {} input columns as in data.train, got {}",
                            x_train.ncols(),
                            x_test.ncols()
                        ),
                    });
                }
                Ok(Dataset {
                    x_train,
                    y_train,
                    x_test,
                    y_test,
                    teacher: None,
                    law: None,
                    classes: None,
                })
            }
            DataSpec::Hdf5 {
                file: data_file,
                inputs,
                labels,
                positive,
                n_train,
                n_test,
                normalize,
            } => {
                let err = |key: &str, message: String| Error::Problem {
                    file: file.to_path_buf(),
                    key: key.into(),
                    message,
                };
                crate::data::labelled::load(
                    &crate::data::labelled::Request {
                        path: &base.join(data_file),
                        inputs,
                        labels,
                        positive,
                        n_train: *n_train,
                        n_test: *n_test,
                        normalize: *normalize,
                        seed,
                    },
                    &err,
                )
            }
        }
    }
}

fn draw_inputs(law: InputLaw, n: usize, d: usize, radius: f64, rng: &mut impl Rng) -> Mat<f64> {
    let mut x = Mat::<f64>::zeros(n, d);
    for i in 0..n {
        for k in 0..d {
            x[(i, k)] = rng.sample(StandardNormal);
        }
        if law == InputLaw::Sphere {
            to_sphere(&mut x, i, radius);
        }
    }
    x
}

/// Scales row i of x to norm `radius` (a zero row stays at the centre).
pub(crate) fn to_sphere(x: &mut Mat<f64>, i: usize, radius: f64) {
    let d = x.ncols();
    let norm: f64 = (0..d).map(|k| x[(i, k)] * x[(i, k)]).sum::<f64>().sqrt();
    if norm > 0.0 {
        let s = radius / norm;
        for k in 0..d {
            x[(i, k)] *= s;
        }
    }
}

fn unit_vector(d: usize, rng: &mut impl Rng) -> Vec<f64> {
    let v: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
    let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    v.into_iter().map(|a| a / norm).collect()
}

/// A target function of the inputs, drawn once from the seed.
#[derive(Debug, Clone)]
enum Target {
    Teacher {
        w: Vec<Vec<f64>>,
        a: Vec<f64>,
        act: Activation,
        scale: f64,
    },
    SingleIndex {
        w: Vec<f64>,
        act: Activation,
    },
    Linear {
        beta: Vec<f64>,
    },
    /// y = ±1, then x ~ N(0, (1 ± Δ)² I).
    Classes {
        delta: f64,
    },
}

fn dot(a: &[f64], x: &Mat<f64>, i: usize) -> f64 {
    a.iter().enumerate().map(|(k, ak)| ak * x[(i, k)]).sum()
}

impl Target {
    fn draw(spec: &TargetSpec, d: usize, rng: &mut impl Rng) -> Target {
        match spec.clone() {
            TargetSpec::Teacher {
                width,
                activation,
                scale,
            } => {
                let w = (0..width).map(|_| unit_vector(d, rng)).collect();
                let a = (0..width)
                    .map(|_| {
                        let g: f64 = rng.sample(StandardNormal);
                        if g >= 0.0 {
                            1.0
                        } else {
                            -1.0
                        }
                    })
                    .collect();
                Target::Teacher {
                    w,
                    a,
                    act: activation,
                    scale,
                }
            }
            TargetSpec::SingleIndex { activation } => Target::SingleIndex {
                w: unit_vector(d, rng),
                act: activation,
            },
            TargetSpec::Linear => Target::Linear {
                beta: unit_vector(d, rng),
            },
            TargetSpec::IsotropicClasses { delta } => Target::Classes { delta },
            TargetSpec::Sparse { support, scale } => {
                // A uniformly random support (partial Fisher–Yates), then Gaussian values.
                let mut idx: Vec<usize> = (0..d).collect();
                for k in 0..support {
                    let j = rng.random_range(k..d);
                    idx.swap(k, j);
                }
                let mut beta = vec![0.0; d];
                for &i in &idx[..support] {
                    beta[i] = scale * rng.sample::<f64, _>(StandardNormal);
                }
                Target::Linear { beta }
            }
        }
    }

    /// The target as a sum of neurons (none for class labels).
    fn neurons(&self, d: usize) -> Option<Teacher> {
        let rows = |w: &[Vec<f64>]| Mat::from_fn(w.len(), d, |i, k| w[i][k]);
        Some(match self {
            Target::Classes { .. } => return None,
            Target::Teacher { w, a, act, scale } => Teacher {
                act: act.clone(),
                w: rows(w),
                coef: a.iter().map(|a| scale * a).collect(),
            },
            Target::SingleIndex { w, act } => Teacher {
                act: act.clone(),
                w: rows(std::slice::from_ref(w)),
                coef: vec![1.0],
            },
            Target::Linear { beta } => Teacher {
                act: Activation::named("linear").expect("linear is a named activation"),
                w: rows(std::slice::from_ref(beta)),
                coef: vec![1.0],
            },
        })
    }

    /// n samples (x, y): inputs from the law and y = f*(x), or for class labels each y then its x.
    fn sample(
        &self,
        law: InputLaw,
        n: usize,
        d: usize,
        radius: f64,
        rng: &mut impl Rng,
    ) -> (Mat<f64>, Vec<f64>) {
        if let Target::Classes { delta } = *self {
            let mut x = Mat::zeros(n, d);
            let mut y = vec![0.0; n];
            for i in 0..n {
                let plus = rng.random_bool(0.5);
                y[i] = if plus { 1.0 } else { -1.0 };
                let scale = if plus { 1.0 + delta } else { 1.0 - delta };
                for k in 0..d {
                    x[(i, k)] = scale * rng.sample::<f64, _>(StandardNormal);
                }
            }
            return (x, y);
        }
        let x = draw_inputs(law, n, d, radius, rng);
        let y = self.eval(&x);
        (x, y)
    }

    fn eval(&self, x: &Mat<f64>) -> Vec<f64> {
        (0..x.nrows())
            .map(|i| match self {
                Target::Teacher { w, a, act, scale } => {
                    scale
                        * w.iter()
                            .zip(a)
                            .map(|(wj, aj)| aj * act.value(dot(wj, x, i)))
                            .sum::<f64>()
                }
                Target::SingleIndex { w, act } => act.value(dot(w, x, i)),
                Target::Linear { beta } => dot(beta, x, i),
                // Labels are drawn with their inputs (`sample`); never evaluated.
                Target::Classes { .. } => f64::NAN,
            })
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn synthetic(
    law: InputLaw,
    d: usize,
    n_train: usize,
    n_test: usize,
    radius: f64,
    noise: f64,
    target: &TargetSpec,
    seed: u64,
) -> Dataset {
    let target = Target::draw(target, d, &mut stream(seed, Stream::Target));
    let (x_train, mut y_train) = target.sample(
        law,
        n_train,
        d,
        radius,
        &mut stream(seed, Stream::TrainInputs),
    );
    let (x_test, y_test) = target.sample(
        law,
        n_test,
        d,
        radius,
        &mut stream(seed, Stream::TestInputs),
    );
    if noise > 0.0 {
        let mut rng = stream(seed, Stream::LabelNoise);
        for y in &mut y_train {
            *y += noise * rng.sample::<f64, _>(StandardNormal);
        }
    }
    Dataset {
        x_train,
        y_train,
        x_test,
        y_test,
        teacher: target.neurons(d),
        law: Some(Law {
            input: law,
            d,
            radius,
            noise,
            target,
        }),
        classes: None,
    }
}

/// Rows of comma-separated numbers: x_1, ..., x_d, y. Blank lines and lines starting with '#'
/// are skipped. Every non-finite value is an error naming the file, line and column.
fn read_csv(path: &PathBuf, problem: &Path, key: &str) -> Result<(Mat<f64>, Vec<f64>)> {
    let err = |message: String| Error::Problem {
        file: problem.to_path_buf(),
        key: key.to_string(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let mut rows: Vec<Vec<f64>> = vec![];
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut row = vec![];
        for (col, field) in line.split(',').enumerate() {
            let v: f64 = field.trim().parse().map_err(|_| {
                err(format!(
                    "{}:{}: column {}: expected a number, got {:?}",
                    path.display(),
                    ln + 1,
                    col + 1,
                    field.trim()
                ))
            })?;
            if !v.is_finite() {
                return Err(err(format!(
                    "{}:{}: column {}: expected a finite number, got {v}",
                    path.display(),
                    ln + 1,
                    col + 1
                )));
            }
            row.push(v);
        }
        if row.len() < 2 {
            return Err(err(format!(
                "{}:{}: expected at least two columns (inputs then target), got {}",
                path.display(),
                ln + 1,
                row.len()
            )));
        }
        if let Some(first) = rows.first() {
            if first.len() != row.len() {
                return Err(err(format!(
                    "{}:{}: expected {} columns like the first row, got {}",
                    path.display(),
                    ln + 1,
                    first.len(),
                    row.len()
                )));
            }
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(err(format!("{}: no data rows", path.display())));
    }
    let d = rows[0].len() - 1;
    let x = Mat::from_fn(rows.len(), d, |i, k| rows[i][k]);
    let y = rows.iter().map(|r| r[d]).collect();
    Ok((x, y))
}
