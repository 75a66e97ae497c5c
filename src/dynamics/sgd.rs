//! Stochastic gradient descent on the two-layer network (design.md §1 time, step k at t = kη):
//!   θ ← θ + η (v_B(θ) − λθ) + √(2ηT) g,   g ~ N(0, I),
//! with v_B the mean-field-time velocity on a batch B, weight decay λ and temperature T = 1/β on
//! the trained coordinates. The step is the direction v_B − λθ + √(2T/η) g added to θ; with T = 0
//! and λ = 0 it is the in-place step GD takes, so with the whole training set it is GD bit for bit.
//!
//! With T > 0 the particles follow the noisy (McKean–Vlasov) dynamics
//!   dθ = −∇(Ψ(θ; ρ) + λ|θ|²/2) dt + √(2T) dB,
//! whose fixed point is the Gibbs measure ρ* ∝ exp(−(Ψ(θ; ρ*) + λ|θ|²/2)/T), where
//! Ψ(θ; ρ) = −E[y σ*(x; θ)] + ∫E[σ*(x; θ)σ*(x; θ')] dρ(θ') at α = 1.

use crate::data::{Dataset, Law};
use crate::limits::population::PopulationRisk;
use crate::model::{Batch, TwoLayer, Workspace};
use crate::rng::{stream, Stream};
use faer::Mat;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Where each step's gradient comes from.
pub enum Source<'a> {
    /// The whole training set, every step (f(θ₀) on it when the model subtracts it).
    Full {
        x: &'a Mat<f64>,
        y: &'a [f64],
        f0: Option<&'a [f64]>,
    },
    /// The exact population field.
    Population(&'a PopulationRisk),
    /// `batch` distinct training points drawn anew each step.
    Minibatch {
        data: &'a Dataset,
        f0: Option<&'a [f64]>,
        batch: usize,
    },
    /// `batch` fresh samples from the data law each step (f(θ₀) recomputed on them when the
    /// model subtracts it).
    Online {
        law: &'a Law,
        batch: usize,
        theta0: Option<&'a [f64]>,
    },
}

/// One step's batch (see `Sgd::draw`).
enum Drawn<'a> {
    Full {
        x: &'a Mat<f64>,
        y: &'a [f64],
        f0: Option<&'a [f64]>,
    },
    Owned {
        x: Mat<f64>,
        y: Vec<f64>,
        f0: Option<Vec<f64>>,
    },
    Population(&'a PopulationRisk),
}

pub(crate) struct Sgd<'a> {
    pub model: &'a TwoLayer,
    pub source: Source<'a>,
    pub step: f64,
    pub temperature: f64,
    pub weight_decay: f64,
    batches: ChaCha8Rng,
    noise: ChaCha8Rng,
    /// Training indices, partially shuffled for each minibatch.
    order: Vec<usize>,
    ws: Workspace,
}

impl<'a> Sgd<'a> {
    /// Batches and noise draw from their own streams of `seed`.
    pub fn new(
        model: &'a TwoLayer,
        source: Source<'a>,
        step: f64,
        temperature: f64,
        weight_decay: f64,
        seed: u64,
    ) -> Self {
        let order = match &source {
            Source::Minibatch { data, .. } => (0..data.n_train()).collect(),
            _ => vec![],
        };
        Sgd {
            model,
            source,
            step,
            temperature,
            weight_decay,
            batches: stream(seed, Stream::Batches),
            noise: stream(seed, Stream::Langevin),
            order,
            ws: Workspace::default(),
        }
    }

    /// The batch of this step: borrowed for the whole training set, drawn for minibatches and
    /// online samples, none for the population field.
    fn draw(&mut self) -> Drawn<'a> {
        let model = self.model;
        match &self.source {
            Source::Full { x, y, f0 } => Drawn::Full { x, y, f0: *f0 },
            Source::Population(risk) => Drawn::Population(risk),
            Source::Minibatch { data, f0, batch } => {
                // A uniformly random subset of `batch` points: the first entries of a partial
                // Fisher–Yates shuffle.
                let n = self.order.len();
                for k in 0..*batch {
                    let j = self.batches.random_range(k..n);
                    self.order.swap(k, j);
                }
                let idx = &self.order[..*batch];
                Drawn::Owned {
                    x: Mat::from_fn(*batch, data.d(), |i, c| data.x_train[(idx[i], c)]),
                    y: idx.iter().map(|&i| data.y_train[i]).collect(),
                    f0: f0.map(|f0| idx.iter().map(|&i| f0[i]).collect()),
                }
            }
            Source::Online { law, batch, theta0 } => {
                let (x, y) = law.draw(*batch, &mut self.batches);
                let f0 = theta0.map(|t0| model.predict(t0, x.as_ref(), &mut self.ws));
                Drawn::Owned { x, y, f0 }
            }
        }
    }

    /// One step θ ← θ + η v at θ (see the module doc). Without noise or weight decay the
    /// network's step is taken in place, exactly as GD's (`TwoLayer::velocity_step`); otherwise
    /// the direction goes through `v`.
    pub(crate) fn advance(&mut self, theta: &mut [f64], v: &mut Vec<f64>) {
        let model = self.model;
        let drawn = self.draw();
        let plain = self.temperature == 0.0 && self.weight_decay == 0.0;
        let batch = match &drawn {
            Drawn::Full { x, y, f0 } => Batch {
                x: x.as_ref(),
                y,
                f0: *f0,
            },
            Drawn::Owned { x, y, f0 } => Batch {
                x: x.as_ref(),
                y,
                f0: f0.as_deref(),
            },
            Drawn::Population(risk) => {
                v.resize(theta.len(), 0.0);
                risk.velocity(theta, v);
                self.finish_step(theta, v);
                return;
            }
        };
        if plain {
            model.velocity_step(theta, &batch, &mut self.ws, self.step);
            return;
        }
        v.resize(theta.len(), 0.0);
        model.velocity(theta, &batch, &mut self.ws, v);
        self.finish_step(theta, v);
    }

    /// θ ← θ + η (v − λθ + √(2T/η) g).
    fn finish_step(&mut self, theta: &mut [f64], v: &mut [f64]) {
        self.add_decay_and_noise(theta, v);
        for (ti, vi) in theta.iter_mut().zip(v.iter()) {
            *ti += self.step * vi;
        }
    }

    /// v ← v − λθ + √(2T/η) g on the trained coordinates.
    fn add_decay_and_noise(&mut self, theta: &[f64], v: &mut [f64]) {
        let model = self.model;
        let dim = model.dim();
        let trained = |p: usize| !(model.fixed_a && p.is_multiple_of(dim));
        if self.weight_decay > 0.0 {
            for (p, (vi, ti)) in v.iter_mut().zip(theta).enumerate() {
                if trained(p) {
                    *vi -= self.weight_decay * ti;
                }
            }
        }
        if self.temperature > 0.0 {
            let scale = (2.0 * self.temperature / self.step).sqrt();
            for (p, vi) in v.iter_mut().enumerate() {
                if trained(p) {
                    *vi += scale * self.noise.sample::<f64, _>(StandardNormal);
                }
            }
        }
    }
}
