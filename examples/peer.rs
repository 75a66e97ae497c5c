//! The meanfield side of the peer comparison (benches/peers/compare.py) for the cases that have
//! no problem-file form: it reads the inputs the Python side wrote, times the operation `reps`
//! times in this process, writes the answer beside the inputs and prints one JSON line with the
//! median, min and max seconds.
//!
//!   peer w2 IN.h5 REPS     exact W2 between the point clouds /x and /y (answer: /w2)
//!   peer ntk IN.h5 REPS    analytic relu NTK Gram of /x (attrs w_std, a_std) and its symmetric
//!                          eigendecomposition with vectors (answer: /eigenvalues)

use faer::{Mat, Par};
use meanfield::limits::kernels::{kernel, Kind, WeightStds};
use meanfield::measure::wasserstein::w2_exact;
use meanfield::problem::Activation;
use std::time::Instant;

fn read(file: &hdf5::File, name: &str) -> Mat<f64> {
    let ds = file.dataset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let shape = ds.shape();
    let v: Vec<f64> = ds.read_raw().unwrap();
    Mat::from_fn(shape[0], shape[1], |i, j| v[i * shape[1] + j])
}

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (T, Vec<f64>) {
    let mut secs = vec![];
    let mut out = None;
    for _ in 0..reps {
        let t = Instant::now();
        out = Some(std::hint::black_box(f()));
        secs.push(t.elapsed().as_secs_f64());
    }
    secs.sort_by(f64::total_cmp);
    (out.expect("reps ≥ 1"), secs)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (case, path) = (args[1].as_str(), &args[2]);
    let reps: usize = args.get(3).map_or(3, |r| r.parse().unwrap());
    let file = hdf5::File::open_rw(path).unwrap();
    let secs = match case {
        "w2" => {
            let (x, y) = (read(&file, "x"), read(&file, "y"));
            let (w, secs) = time(reps, || {
                w2_exact(x.as_ref(), y.as_ref(), Par::rayon(0)).unwrap()
            });
            file.new_dataset::<f64>()
                .create("w2")
                .unwrap()
                .write_scalar(&w)
                .unwrap();
            secs
        }
        "ntk" => {
            let x = read(&file, "x");
            let attr = |n: &str| file.attr(n).unwrap().read_scalar::<f64>().unwrap();
            let stds = WeightStds {
                w: attr("w_std"),
                b: 0.0,
                a: attr("a_std"),
                a_mean: 0.0,
            };
            let (s, secs) = time(reps, || {
                let k = kernel(
                    Kind::Ntk,
                    &Activation::named("relu").unwrap(),
                    stds,
                    false,
                    x.as_ref(),
                    x.as_ref(),
                );
                let (values, vectors) = meanfield::linalg::eigh(k.as_ref(), true).unwrap();
                std::hint::black_box(vectors);
                values
            });
            file.new_dataset_builder()
                .with_data(&s)
                .create("eigenvalues")
                .unwrap();
            secs
        }
        other => panic!("unknown case {other}: expected w2 or ntk"),
    };
    println!(
        "{{\"median\": {}, \"min\": {}, \"max\": {}}}",
        secs[secs.len() / 2],
        secs[0],
        secs[secs.len() - 1]
    );
}
