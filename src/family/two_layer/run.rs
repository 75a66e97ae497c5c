//! `meanfield run`: every dynamics a problem lists, from the same initial particles, into one
//! archive.

use crate::archive::{ArchiveReader, ArchiveWriter, Provenance, Record, RunLayout, RunWriter};
use crate::data::Dataset;
use crate::dynamics::VectorField;
use crate::dynamics::{
    sgd, FrozenFlow, LinearizedFlow, ParticleFlow, PopulationFlow, ResidualFlow,
};
use crate::error::{Error, Result};
use crate::family::{overall_status, Progress, RunOptions, RunSummary};
use crate::integrate::{gd, ode, Outcome, SolverStats};
use crate::limits::frozen_kernel::FrozenKernel;
use crate::limits::kernels::{self, WeightStds};
use crate::limits::population::PopulationRisk;
use crate::model::{init, TwoLayer, Workspace};
use crate::problem::{DataSpec, DynamicsSpec, KernelSource, OutputWeights, Problem, Risk};
use faer::{Mat, Par};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RunReport {
    pub archive: PathBuf,
    pub runs: Vec<RunSummary>,
    /// Chizat–Oyallon–Bach's relative scale at θ₀ on the training set.
    pub laziness: crate::model::laziness::Laziness,
}

impl RunReport {
    pub fn completed(&self) -> bool {
        self.runs.iter().all(|r| r.completed)
    }
}

/// Everything shared by the dynamics of one problem: data, model and the initial particles.
pub struct Setup {
    pub problem: Problem,
    pub problem_text: String,
    pub data: Dataset,
    pub model: TwoLayer,
    pub theta0: Vec<f64>,
    /// f(θ₀) on train and test inputs, when the model subtracts it.
    pub f0: Option<(Vec<f64>, Vec<f64>)>,
    /// The outputs at θ₀ as runs report them (`outputs(θ₀)`: zero when centred).
    pub out0: (Vec<f64>, Vec<f64>),
    /// The closed-form population risk, when the problem trains on it (`data.risk`).
    pub population: Option<PopulationRisk>,
}

impl Setup {
    pub fn load(path: &Path, opts: &RunOptions) -> Result<Setup> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Problem {
            file: path.to_path_buf(),
            key: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        let problem = Problem::parse(&text, path)?;
        Setup::from_problem(problem, text, path, opts)
    }

    /// A setup from an already parsed problem (`text` is what the archive records; `path` is for
    /// messages and relative data paths).
    pub(crate) fn from_problem(
        mut problem: Problem,
        text: String,
        path: &Path,
        opts: &RunOptions,
    ) -> Result<Setup> {
        if let Some(seed) = opts.seed {
            problem.seed = seed;
        }
        let base = opts.data_dir(path);
        let data = Dataset::build(&problem.data, problem.seed, base, path)?;
        problem.check_sizes(path, data.d(), data.n_train(), data.n_test())?;
        if problem.save.kernel_points > data.n_train() {
            return Err(Error::Problem {
                file: path.to_path_buf(),
                key: "save.kernel_points".into(),
                message: format!(
                    "expected at most the {} training points, got {}",
                    data.n_train(),
                    problem.save.kernel_points
                ),
            });
        }
        let m = &problem.model;
        let par = if opts.threads == 1 {
            Par::Seq
        } else {
            Par::rayon(opts.threads)
        };
        let model = TwoLayer {
            act: m.activation.clone(),
            d: data.d(),
            bias: m.bias,
            n_particles: m.width,
            alpha: m.scaling.alpha(m.width),
            fixed_a: m.output_weights == OutputWeights::Fixed,
            loss: m.loss.build(),
            par,
        };
        let theta0 = init::draw(&m.init, m.width, data.d(), m.bias, problem.seed);
        for (set, x) in [("training", &data.x_train), ("test", &data.x_test)] {
            if let Some((which, z, i, j)) = model.first_non_finite(&theta0, x.as_ref()) {
                return Err(Error::Problem {
                    file: path.to_path_buf(),
                    key: "model.activation".into(),
                    message: format!(
                        "{which} of \"{}\" is not finite at z = {z:e}, the initial pre-activation of \
                         neuron {j} at {set} input {i}; expected finite values at every initial \
                         pre-activation",
                        m.activation.name()
                    ),
                });
            }
        }
        let f0 = if m.init.subtract_initial {
            let mut ws = Workspace::default();
            Some((
                model.predict(&theta0, data.x_train.as_ref(), &mut ws),
                model.predict(&theta0, data.x_test.as_ref(), &mut ws),
            ))
        } else {
            None
        };
        let population = match (&problem.data, &data.teacher) {
            (
                DataSpec::Synthetic {
                    risk: Risk::Population,
                    ..
                },
                Some(teacher),
            ) => PopulationRisk::new(
                model.act.clone(),
                model.n_particles,
                model.alpha,
                teacher.clone(),
                model.par,
            )
            .map(|mut p| {
                p.fixed_a = model.fixed_a;
                p
            }),
            _ => None,
        };
        let mut setup = Setup {
            problem,
            problem_text: text,
            data,
            model,
            theta0,
            f0,
            out0: (vec![], vec![]),
            population,
        };
        setup.out0 = setup.outputs(&setup.theta0, &mut Workspace::default());
        Ok(setup)
    }

    /// On labelled data, a run's classification scores at its last save (t, state), as run
    /// attributes: `accuracy_train`/`accuracy_test` (sign of its outputs against the ±1 targets)
    /// and kernel regression's test accuracies with the run's tangent kernel at θ₀ and at the
    /// end, on the ±1 target (`kernel_accuracy_init`/`_final`) and on the classes
    /// (`kernel_class_accuracy_init`/`_final`). Frozen-kernel runs (linearized, ntk_limit with
    /// the empirical kernel) keep K₀ of their `params` at the end; an analytic ntk_limit has
    /// no particles and gets the outputs' accuracies only.
    fn write_class_scores(
        &self,
        spec: &DynamicsSpec,
        readout: &Readout,
        (t, state): (f64, &[f64]),
        writer: &RunWriter,
    ) -> Result<()> {
        let Some(classes) = &self.data.classes else {
            return Ok(());
        };
        let mut ws = Workspace::default();
        let (ft, fs, _) = readout.read(self, t, state, None, &mut ws);
        writer.set_num(
            "accuracy_train",
            crate::measure::classify::sign_accuracy(&ft, &self.data.y_train),
        )?;
        writer.set_num(
            "accuracy_test",
            crate::measure::classify::sign_accuracy(&fs, &self.data.y_test),
        )?;
        let (params, end) = match *spec {
            DynamicsSpec::NtkLimit {
                kernel: KernelSource::Analytic,
                ..
            } => return Ok(()),
            DynamicsSpec::Linearized { params, .. } | DynamicsSpec::NtkLimit { params, .. } => {
                (params, &self.theta0[..])
            }
            _ => (crate::problem::Params::All, readout.particles(state)),
        };
        if self.data.n_test() == 0 {
            return Ok(());
        }
        let (x, xs) = (self.data.x_train.as_ref(), self.data.x_test.as_ref());
        for (when, theta) in [("init", &self.theta0[..]), ("final", end)] {
            let k = self.model.kernel_of(theta, x, x, params, &mut ws);
            let kc = self.model.kernel_of(theta, xs, x, params, &mut ws);
            let scores = crate::measure::classify::kernel_regression(
                &k,
                &kc,
                &self.data.y_train,
                &self.data.y_test,
                classes,
            )
            .map_err(Error::Numerical)?;
            writer.set_num(&format!("kernel_accuracy_{when}"), scores.binary)?;
            writer.set_num(&format!("kernel_class_accuracy_{when}"), scores.classes)?;
        }
        Ok(())
    }

    /// The network's output on train and test inputs (centred when the model subtracts f(θ₀)).
    pub fn outputs(&self, theta: &[f64], ws: &mut Workspace) -> (Vec<f64>, Vec<f64>) {
        let mut ft = self.model.predict(theta, self.data.x_train.as_ref(), ws);
        let mut fs = if self.data.n_test() > 0 {
            self.model.predict(theta, self.data.x_test.as_ref(), ws)
        } else {
            vec![]
        };
        if let Some((f0t, f0s)) = &self.f0 {
            ft.iter_mut().zip(f0t).for_each(|(f, f0)| *f -= f0);
            fs.iter_mut().zip(f0s).for_each(|(f, f0)| *f -= f0);
        }
        (ft, fs)
    }

    pub fn flow(&self) -> ParticleFlow<'_> {
        ParticleFlow::new(
            &self.model,
            &self.data.x_train,
            &self.data.y_train,
            self.f0.as_ref().map(|(t, _)| t.as_slice()),
        )
    }

    /// The field the network's own dynamics (GD, gradient flow) follow: the population risk's
    /// when the problem trains on it, else the training sample's.
    pub fn field(&self) -> Box<dyn VectorField + '_> {
        match &self.population {
            Some(risk) => Box::new(PopulationFlow { risk }),
            None => Box::new(self.flow()),
        }
    }

    /// The training loss at θ: the population risk or the mean loss on the sample.
    pub(crate) fn train_loss(&self, theta: &[f64], f_train: &[f64]) -> f64 {
        match &self.population {
            Some(risk) => risk.risk(theta),
            None => self.model.loss.mean(&self.data.y_train, f_train),
        }
    }

    /// Integrates one dynamics, calling `save` at every save time with (t, θ). The closed-form
    /// `ntk_limit` has no state of its own: it is called with θ₀ at every save time. `readout`
    /// is `self.readout(spec)`; the linearized model integrates the flow it holds.
    ///
    /// `start` resumes a run from its last complete save (t, θ(t)): GD continues at step
    /// round(t/η) with the same arithmetic, the flows restart their solver at t with the same
    /// settings. Only `gd`, `gradient_flow` and `linearized` resume (see `resumable`).
    pub fn integrate(
        &self,
        spec: &DynamicsSpec,
        readout: &Readout,
        start: Option<(f64, &[f64])>,
        save: &mut dyn FnMut(f64, &[f64]) -> Result<()>,
    ) -> Outcome {
        let times = self.problem.save.times(spec.t_end());
        let y0 = start.map_or(&self.theta0[..], |s| s.1);
        let t0 = start.map(|s| s.0);
        match *spec {
            DynamicsSpec::Gd { step, steps, .. } => {
                let at = gd::save_steps(&times, step, steps);
                // The saved step is the one whose time k·η was written.
                let k0 = t0.map(|t| {
                    at.iter()
                        .copied()
                        .find(|&k| k as f64 * step == t)
                        .unwrap_or((t / step).round() as usize)
                });
                gd::run_from(&*self.field(), y0, k0, step, steps, &at, save)
            }
            DynamicsSpec::GradientFlow {
                method, rtol, atol, ..
            } => ode::run_from(&*self.field(), y0, t0, method, rtol, atol, &times, save),
            DynamicsSpec::Sgd {
                step,
                steps,
                batch,
                online,
                temperature,
                weight_decay,
                ..
            } => {
                let at = gd::save_steps(&times, step, steps);
                let f0 = self.f0.as_ref().map(|(t, _)| t.as_slice());
                let source = match (online, batch, &self.population, &self.data.law) {
                    (true, _, _, Some(law)) => sgd::Source::Online {
                        law,
                        batch,
                        theta0: f0.map(|_| self.theta0.as_slice()),
                    },
                    (_, 0, Some(risk), _) => sgd::Source::Population(risk),
                    (_, 0, None, _) => sgd::Source::Full {
                        x: &self.data.x_train,
                        y: &self.data.y_train,
                        f0,
                    },
                    _ => sgd::Source::Minibatch {
                        data: &self.data,
                        f0,
                        batch,
                    },
                };
                let mut sgd = sgd::Sgd::new(
                    &self.model,
                    source,
                    step,
                    temperature,
                    weight_decay,
                    self.problem.seed,
                );
                let mut v = vec![];
                gd::run_steps(
                    &mut |y| sgd.advance(y, &mut v),
                    &self.theta0,
                    None,
                    step,
                    steps,
                    &at,
                    save,
                )
            }
            DynamicsSpec::RadialPde { .. } => Outcome {
                stats: SolverStats::default(),
                stopped: Some(crate::integrate::Stopped {
                    t: 0.0,
                    reason: "internal error: the radial PDE runs through run_radial".into(),
                    source: None,
                }),
            },
            DynamicsSpec::Linearized {
                method, rtol, atol, ..
            } => match readout {
                Readout::Linear { flow, .. } => {
                    ode::run_from(flow, y0, t0, method, rtol, atol, &times, save)
                }
                _ => Outcome {
                    stats: SolverStats::default(),
                    stopped: Some(crate::integrate::Stopped {
                        t: 0.0,
                        reason: "internal error: the readout is not the linearized model's".into(),
                        source: None,
                    }),
                },
            },
            DynamicsSpec::Residual { rtol, atol, .. } => {
                let mut y0 = self.theta0.clone();
                y0.extend(
                    self.data
                        .y_train
                        .iter()
                        .zip(&self.out0.0)
                        .map(|(y, f)| y - f),
                );
                let flow = ResidualFlow::new(self.flow());
                ode::run(
                    &flow,
                    &y0,
                    crate::problem::Method::Tsit45,
                    rtol,
                    atol,
                    &times,
                    save,
                )
            }
            DynamicsSpec::NtkLimit { .. } if matches!(readout, Readout::FrozenFlow { .. }) => {
                let Readout::FrozenFlow { flow, .. } = readout else {
                    unreachable!("matched above")
                };
                ode::run(
                    flow,
                    &flow.start(&self.out0.0),
                    crate::problem::Method::Bdf,
                    FROZEN_RTOL,
                    FROZEN_ATOL,
                    &times,
                    save,
                )
            }
            DynamicsSpec::NtkLimit { .. } => {
                let start = std::time::Instant::now();
                for &t in &times {
                    if let Err(e) = save(t, &self.theta0) {
                        return Outcome {
                            stats: SolverStats::default(),
                            stopped: Some(crate::integrate::Stopped {
                                t,
                                reason: e.to_string(),
                                source: Some(e),
                            }),
                        };
                    }
                }
                Outcome {
                    stats: SolverStats {
                        wall_seconds: start.elapsed().as_secs_f64(),
                        ..Default::default()
                    },
                    stopped: None,
                }
            }
        }
    }

    /// Initial weight standard deviations, as the analytic kernels take them.
    pub(crate) fn weight_stds(&self) -> WeightStds {
        let init = &self.problem.model.init;
        WeightStds {
            a: init.a_std,
            a_mean: init.a_mean,
            w: init.w_std.unwrap_or(1.0 / (self.data.d() as f64).sqrt()),
            b: init.b_std,
        }
    }

    /// How a dynamics' saved state becomes outputs and a kernel.
    pub(crate) fn readout(&self, spec: &DynamicsSpec) -> Result<Readout> {
        let mut ws = Workspace::default();
        let x = &self.data.x_train;
        let kp = self.problem.save.kernel_points;
        match *spec {
            DynamicsSpec::Gd { .. }
            | DynamicsSpec::Sgd { .. }
            | DynamicsSpec::GradientFlow { .. } => Ok(Readout::Network),
            DynamicsSpec::RadialPde { .. } => Err(Error::Usage(
                "internal error: the radial PDE has no network readout".into(),
            )),
            DynamicsSpec::Residual { .. } => Ok(Readout::Residual {
                p: self.model.n_params(),
            }),
            DynamicsSpec::Linearized { params, .. } => {
                let k0 = (kp > 0).then(|| {
                    let xk = x.subrows(0, kp);
                    self.model.kernel_of(&self.theta0, xk, xk, params, &mut ws)
                });
                let xs = self.data.x_test.as_ref();
                self.model.forward(&self.theta0, xs, &mut ws, false);
                let mut phi_test = self.model.tangent_features(&self.theta0, xs, &ws);
                LinearizedFlow::restrict(&mut phi_test, self.model.dim(), params);
                let flow = LinearizedFlow::new(
                    &self.model,
                    &self.theta0,
                    x,
                    &self.data.y_train,
                    &self.out0.0,
                    params,
                );
                Ok(Readout::Linear { flow, phi_test, k0 })
            }
            DynamicsSpec::NtkLimit { kernel, params, .. } => {
                let (f0t, f0s) = &self.out0;
                let xs = &self.data.x_test;
                let (k_train, k_test) = match kernel {
                    KernelSource::Empirical => (
                        self.model
                            .kernel_of(&self.theta0, x.as_ref(), x.as_ref(), params, &mut ws),
                        self.model.kernel_of(
                            &self.theta0,
                            xs.as_ref(),
                            x.as_ref(),
                            params,
                            &mut ws,
                        ),
                    ),
                    KernelSource::Analytic => {
                        let k = |a: &Mat<f64>| {
                            kernels::kernel(
                                kernels::Kind::for_params(params),
                                &self.model.act,
                                self.weight_stds(),
                                self.model.bias,
                                a.as_ref(),
                                x.as_ref(),
                            )
                        };
                        (k(x), k(xs))
                    }
                };
                let k0 = (kp > 0).then(|| k_train.subrows(0, kp).subcols(0, kp).to_owned());
                if !self.model.loss.unit_curvature() {
                    // Another loss: ∂_t f = (1/n) K₀ r(y, f) is integrated (`FrozenFlow`).
                    let n = self.data.n_train() as f64;
                    return Ok(Readout::FrozenFlow {
                        flow: FrozenFlow::new(k_train, &self.data.y_train, self.model.loss.clone()),
                        k_test: Mat::from_fn(k_test.nrows(), k_test.ncols(), |i, l| {
                            k_test[(i, l)] / n
                        }),
                        k0,
                        theta0: self.theta0.clone(),
                    });
                }
                let fk = FrozenKernel::new(
                    &k_train,
                    &k_test,
                    &self.data.y_train,
                    f0t,
                    f0s,
                    self.model.par,
                )
                .map_err(Error::Numerical)?;
                Ok(Readout::Frozen { fk, k0 })
            }
        }
    }
}

/// Outputs and kernel of a run at a save time, by kind.
pub enum Readout {
    /// The network itself at state θ.
    Network,
    /// The linearized model: f(θ₀) + (α/N) Φ₀ (θ − θ₀), with the flow that trains it (holding
    /// Φ₀ on the training inputs); its kernel is K₀ throughout.
    Linear {
        flow: LinearizedFlow,
        phi_test: Mat<f64>,
        k0: Option<Mat<f64>>,
    },
    /// The residual dynamics: the state is (θ, u); training outputs are y − u from the RD state,
    /// test outputs and the kernel come from the particles.
    Residual { p: usize },
    /// The frozen-kernel closed form at time t.
    Frozen {
        fk: FrozenKernel,
        k0: Option<Mat<f64>>,
    },
    /// The frozen kernel integrated for a loss other than the square: the state is
    /// (f on the training set, R = ∫ r dt), test outputs f₀ + (1/n) K₀(test, X) R.
    FrozenFlow {
        flow: FrozenFlow,
        /// (1/n) K₀(test, X)
        k_test: Mat<f64>,
        k0: Option<Mat<f64>>,
        /// What the run archives as its particles: θ₀, which the limit does not move.
        theta0: Vec<f64>,
    },
}

/// Tolerances of the frozen-kernel flow (a smooth n-dimensional ODE: tight costs little).
const FROZEN_RTOL: f64 = 1e-10;
const FROZEN_ATOL: f64 = 1e-12;

impl Readout {
    /// The particles within a saved state.
    fn particles<'s>(&'s self, state: &'s [f64]) -> &'s [f64] {
        match self {
            Readout::Residual { p } => &state[..*p],
            Readout::FrozenFlow { theta0, .. } => theta0,
            _ => state,
        }
    }

    fn read(
        &self,
        setup: &Setup,
        t: f64,
        theta: &[f64],
        x_kernel: Option<&Mat<f64>>,
        ws: &mut Workspace,
    ) -> (Vec<f64>, Vec<f64>, Option<Mat<f64>>) {
        match self {
            Readout::Network => {
                let (ft, fs) = setup.outputs(theta, ws);
                let k = x_kernel.map(|xk| setup.model.kernel(theta, xk.as_ref(), ws));
                (ft, fs, k)
            }
            Readout::Linear { flow, phi_test, k0 } => {
                let base = &setup.out0;
                let scale = setup.model.output_scale();
                let add = |phi: &Mat<f64>, b: &[f64]| -> Vec<f64> {
                    LinearizedFlow::delta_output(phi, theta, &setup.theta0, scale)
                        .iter()
                        .zip(b)
                        .map(|(d, b)| b + d)
                        .collect()
                };
                (
                    add(flow.features(), &base.0),
                    add(phi_test, &base.1),
                    k0.clone(),
                )
            }
            Readout::Residual { p } => {
                let (theta, u) = theta.split_at(*p);
                let (_, fs) = setup.outputs(theta, ws);
                let ft = setup
                    .data
                    .y_train
                    .iter()
                    .zip(u)
                    .map(|(y, u)| y - u)
                    .collect();
                let k = x_kernel.map(|xk| setup.model.kernel(theta, xk.as_ref(), ws));
                (ft, fs, k)
            }
            Readout::FrozenFlow { k_test, k0, .. } => {
                let n = setup.data.n_train();
                let (f, big_r) = theta.split_at(n);
                let fs = (0..k_test.nrows())
                    .map(|i| {
                        setup.out0.1[i] + (0..n).map(|l| k_test[(i, l)] * big_r[l]).sum::<f64>()
                    })
                    .collect();
                (f.to_vec(), fs, k0.clone())
            }
            Readout::Frozen { fk, k0 } => {
                let (ft, fs) = fk.predict(t);
                (ft, fs, k0.clone())
            }
        }
    }
}

/// Loads a problem, integrates every dynamics it lists and archives them.
/// Errors in the problem come back before any file is created.
pub fn run_problem(
    path: &Path,
    opts: &RunOptions,
    progress: &mut Progress<'_>,
) -> Result<RunReport> {
    let setup = Setup::load(path, opts)?;
    run_setup(&setup, opts, progress)
}

/// Integrates every dynamics of a loaded setup and archives them.
pub fn run_setup(
    setup: &Setup,
    opts: &RunOptions,
    progress: &mut Progress<'_>,
) -> Result<RunReport> {
    let _scope = crate::integrate::RunScope::enter();
    let out = opts.archive_path(&setup.problem.output);
    let resolved = setup.problem.resolved_toml(&out)?;
    let archive = ArchiveWriter::create(
        &out,
        &Provenance {
            alpha: Some(setup.model.alpha),
            width: Some(setup.model.n_particles as u64),
            ..opts.provenance(
                &setup.problem_text,
                &resolved,
                setup.problem.seed,
                super::describe,
            )
        },
        opts.existing,
    )?;
    archive.write_data(&setup.data)?;
    archive.write_init(
        &setup.theta0,
        setup.model.n_particles,
        setup.model.dim(),
        &setup.model.columns(),
    )?;
    super::derive::record(&archive, &setup.problem, &out)?;

    let laziness = crate::model::laziness::laziness(
        &setup.model,
        &setup.theta0,
        &crate::model::Batch {
            x: setup.data.x_train.as_ref(),
            y: &setup.data.y_train,
            f0: setup.f0.as_ref().map(|(t, _)| t.as_slice()),
        },
        30,
    );
    archive.set_laziness(&laziness)?;
    let kp = setup.problem.save.kernel_points;
    if kp > 0 {
        let xk = setup.data.x_train.subrows(0, kp);
        // The kernel of the parameters that train: with fixed output weights, the first layer's.
        let kind = if setup.model.fixed_a {
            kernels::Kind::NeuralTangent
        } else {
            kernels::Kind::Ntk
        };
        let k_inf = kernels::kernel(
            kind,
            &setup.model.act,
            setup.weight_stds(),
            setup.model.bias,
            xk,
            xk,
        );
        let k0 = setup
            .model
            .kernel(&setup.theta0, xk, &mut Workspace::default());
        archive.set_number(
            "ntk_analytic_distance",
            crate::measure::kernel_distance(&k0, &k_inf),
        )?;
    }

    let mut runs = vec![];
    for spec in &setup.problem.dynamics {
        let summary = run_one(setup, &archive, spec, progress, None)?;
        runs.push(summary);
    }
    archive.finish(&overall_status(&runs))?;
    Ok(RunReport {
        archive: out,
        runs,
        laziness,
    })
}

/// An interrupted run picked up at its last complete save (its writer travels beside it).
struct Resume {
    saved: usize,
    t: f64,
    state: Vec<f64>,
    /// The kernel at the first save, which kernel distances are measured from.
    k0: Option<Mat<f64>>,
}

/// The dynamics whose saved particles are their whole state, so they can continue from a save.
fn resumable(spec: &DynamicsSpec) -> bool {
    matches!(
        spec,
        DynamicsSpec::Gd { .. }
            | DynamicsSpec::GradientFlow { .. }
            | DynamicsSpec::Linearized { .. }
    )
}

/// Continues an archive whose run was stopped (killed, interrupted, or a run that failed):
/// completed runs are kept as they are; `gd`, `gradient_flow` and `linearized` runs that saved
/// particles continue from their last complete save, appending to the same series; any other
/// unfinished run is written again from the start. `setup` must come from the archive's own
/// record (`problem_resolved` and `seed`).
pub fn resume_setup(setup: &Setup, path: &Path, progress: &mut Progress<'_>) -> Result<RunReport> {
    let _scope = crate::integrate::RunScope::enter();
    let archive = ArchiveWriter::open_existing(path, super::describe)?;
    // Reads go through the same open file: HDF5 shares one handle per file within a process.
    let reader = ArchiveReader {
        file: archive.file().clone(),
        path: path.to_path_buf(),
    };
    let kp = setup.problem.save.kernel_points;
    let mut runs = vec![];
    for spec in &setup.problem.dynamics {
        let name = spec.name();
        let status = archive.run_status(&name);
        if status.as_deref() == Some("completed") {
            runs.push(completed_summary(&reader, spec)?);
            continue;
        }
        let mut resume = None;
        if status.is_some() {
            let (writer, saved, t, state) = archive.reopen_run(&name)?;
            match state {
                Some(state) if saved > 0 && resumable(spec) => {
                    verify_last_save(setup, &reader, spec, saved, t, &state)?;
                    let k0 = (kp > 0)
                        .then(|| reader.read(&format!("runs/{name}/kernel")).ok())
                        .flatten()
                        .filter(|(_, v)| v.len() >= kp * kp)
                        .map(|(_, v)| Mat::from_fn(kp, kp, |i, j| v[i * kp + j]));
                    resume = Some((
                        writer,
                        Resume {
                            saved,
                            t,
                            state,
                            k0,
                        },
                    ));
                }
                _ => {
                    drop(writer);
                    archive.remove_run(&name)?;
                }
            }
        }
        runs.push(run_one(setup, &archive, spec, progress, resume)?);
    }
    archive.finish(&overall_status(&runs))?;
    let root = |k: &str| ArchiveReader::num_attr(archive.file(), k).unwrap_or(f64::NAN);
    let laziness = crate::model::laziness::Laziness {
        kappa: root("laziness_kappa"),
        residual_norm: root("laziness_residual_norm"),
        jacobian_norm: root("laziness_jacobian_norm"),
        hessian_norm: root("laziness_hessian_norm"),
    };
    Ok(RunReport {
        archive: path.to_path_buf(),
        runs,
        laziness,
    })
}

/// Refuses to resume from a last save that does not read back as what was saved: a write that
/// failed (a full disk) can leave rows of fill values behind. The particles must be finite and,
/// for the network's own dynamics, reproduce the archived training loss.
fn verify_last_save(
    setup: &Setup,
    reader: &ArchiveReader,
    spec: &DynamicsSpec,
    saved: usize,
    t: f64,
    state: &[f64],
) -> Result<()> {
    let name = spec.name();
    let damaged = |why: String| {
        Error::archive(
            &reader.path,
            format!(
                "run {name}: its last save (row {}, t = {t}) {why}; the archive was damaged (a \
                 failed write?) and cannot be resumed: run the problem again with --force",
                saved - 1
            ),
        )
    };
    if !state.iter().all(|v| v.is_finite()) {
        return Err(damaged("has non-finite particles".into()));
    }
    let times = reader.read_1d(&format!("runs/{name}/t"))?;
    if !(times.iter().all(|t| t.is_finite()) && times.windows(2).all(|w| w[1] > w[0])) {
        return Err(damaged("is not after the save before it".into()));
    }
    let recorded = reader
        .read_1d(&format!("runs/{name}/loss_train"))?
        .get(saved - 1)
        .copied()
        .unwrap_or(f64::NAN);
    if matches!(
        spec,
        DynamicsSpec::Gd { .. } | DynamicsSpec::GradientFlow { .. }
    ) {
        let (f_train, _) = setup.outputs(state, &mut Workspace::default());
        let loss = setup.train_loss(state, &f_train);
        let agrees = (loss - recorded).abs() <= 1e-9 * loss.abs().max(1e-300);
        if !agrees {
            return Err(damaged(format!(
                "records the training loss {recorded:e}, but its particles give {loss:e}"
            )));
        }
    } else if !recorded.is_finite() {
        return Err(damaged(format!("records the training loss {recorded}")));
    }
    Ok(())
}

/// The summary of a run that an earlier invocation completed, read back from the archive.
fn completed_summary(a: &ArchiveReader, spec: &DynamicsSpec) -> Result<RunSummary> {
    let name = spec.name();
    let g = a
        .file
        .group(&format!("runs/{name}"))
        .map_err(|e| Error::archive(&a.path, e))?;
    let last = |ds: &str| a.last_saved(&name, ds).unwrap_or(f64::NAN);
    let n = |k: &str| ArchiveReader::num_attr(&g, k).unwrap_or(0.0);
    Ok(RunSummary {
        kind: spec.kind_name().to_string(),
        method: ArchiveReader::str_attr(&g, "method").unwrap_or_default(),
        status: "completed".into(),
        completed: true,
        t_last: last("t"),
        loss_train: last("loss_train"),
        loss_test: last("loss_test"),
        stats: SolverStats {
            steps: n("steps") as usize,
            rhs_evals: n("rhs_evals") as usize,
            jacobian_evals: n("jacobian_evals") as usize,
            lu_factorizations: n("lu_factorizations") as usize,
            rejected_steps: n("rejected_steps") as usize,
            wall_seconds: n("wall_seconds"),
        },
        name,
    })
}

fn run_one(
    setup: &Setup,
    archive: &ArchiveWriter,
    spec: &DynamicsSpec,
    progress: &mut Progress<'_>,
    resume: Option<(RunWriter, Resume)>,
) -> Result<RunSummary> {
    if let DynamicsSpec::RadialPde { .. } = spec {
        return run_radial(setup, archive, spec, progress);
    }
    let name = spec.name();
    let kp = setup.problem.save.kernel_points;
    let mut before_resume = None;
    let (resume, mut writer) = match resume {
        Some((w, r)) => {
            w.set_num("resumed_at", r.t)?;
            before_resume = Some(w.recorded_stats());
            (Some(r), w)
        }
        None => (
            None,
            archive.run(
                &name,
                RunLayout {
                    n_particles: setup.model.n_particles,
                    dim: setup.model.dim(),
                    columns: &setup.model.columns(),
                    // The closed-form limit has no particles of its own.
                    particles: setup.problem.save.particles
                        && !matches!(spec, DynamicsSpec::NtkLimit { .. }),
                    kernel_points: kp,
                    n_train: setup.data.n_train(),
                    n_test: setup.data.n_test(),
                },
            )?,
        ),
    };
    writer.set_str("kind", spec.kind_name())?;
    if let DynamicsSpec::Linearized { params, .. } | DynamicsSpec::NtkLimit { params, .. } = *spec {
        // all: the NTK model; output: random features; hidden: neural tangent (F_NT)
        writer.set_str("params", params.name())?;
    }
    let method = match *spec {
        DynamicsSpec::Gd { step, steps, .. } => {
            writer.set_num("step", step)?;
            writer.set_num("steps", steps as u64)?;
            "euler".to_string()
        }
        DynamicsSpec::Sgd {
            step,
            steps,
            batch,
            online,
            temperature,
            weight_decay,
            ..
        } => {
            writer.set_num("step", step)?;
            writer.set_num("steps", steps as u64)?;
            writer.set_num("batch", batch as f64)?;
            writer.set_str("batches", if online { "online" } else { "training set" })?;
            writer.set_num("temperature", temperature)?;
            writer.set_num("weight_decay", weight_decay)?;
            "sgd".to_string()
        }
        DynamicsSpec::RadialPde { .. } => "tsit45".to_string(),
        DynamicsSpec::GradientFlow {
            method, rtol, atol, ..
        }
        | DynamicsSpec::Linearized {
            method, rtol, atol, ..
        }
        | DynamicsSpec::Residual {
            method, rtol, atol, ..
        } => {
            writer.set_num("rtol", rtol)?;
            writer.set_num("atol", atol)?;
            method.name().to_string()
        }
        DynamicsSpec::NtkLimit { kernel, .. } => {
            writer.set_str(
                "kernel",
                match kernel {
                    KernelSource::Empirical => "empirical",
                    KernelSource::Analytic => "analytic",
                },
            )?;
            if setup.model.loss.unit_curvature() {
                "eigen".to_string()
            } else {
                writer.set_num("rtol", FROZEN_RTOL)?;
                writer.set_num("atol", FROZEN_ATOL)?;
                "bdf".to_string()
            }
        }
    };
    writer.set_str("method", &method)?;

    let total = setup.problem.save.times(spec.t_end()).len();
    let x_kernel = (kp > 0).then(|| setup.data.x_train.subrows(0, kp).to_owned());
    let mut ws = Workspace::default();
    let mut last = (resume.as_ref().map_or(0.0, |r| r.t), f64::NAN, f64::NAN);
    let mut k0: Option<Mat<f64>> = resume.as_ref().and_then(|r| r.k0.clone());
    let y_kernel = &setup.data.y_train[..kp];
    let mut done = resume.as_ref().map_or(0, |r| r.saved);
    let readout = setup.readout(spec)?;
    let mut last_state: Vec<f64> = vec![];
    let mut save = |t: f64, theta: &[f64]| -> Result<()> {
        let (ft, fs, kernel) = readout.read(setup, t, theta, x_kernel.as_ref(), &mut ws);
        let lt = setup.train_loss(readout.particles(theta), &ft);
        let ls = setup.model.loss.mean(&setup.data.y_test, &fs);
        let kernel_stats = kernel.as_ref().map(|k| {
            let k0 = k0.get_or_insert_with(|| k.clone());
            (
                crate::measure::kernel_distance(k, k0),
                crate::measure::kernel_alignment(k, y_kernel),
            )
        });
        writer.append(&Record {
            t,
            particles: readout.particles(theta),
            kernel: kernel.as_ref(),
            kernel_stats,
            f_train: &ft,
            f_test: &fs,
            loss_train: lt,
            loss_test: ls,
        })?;
        last = (t, lt, ls);
        if setup.data.classes.is_some() {
            // The whole state: the residual readout needs its u beside the particles.
            last_state.clear();
            last_state.extend_from_slice(theta);
        }
        done += 1;
        progress(&name, done, total, Some(lt));
        Ok(())
    };
    let start = resume.as_ref().map(|r| (r.t, r.state.as_slice()));
    let Outcome { stats, stopped } = setup.integrate(spec, &readout, start, &mut save);
    let (status, completed) = crate::family::run_status(stopped, last.0)?;
    if !last_state.is_empty() {
        setup.write_class_scores(spec, &readout, (last.0, &last_state), &writer)?;
    }
    let stats = match before_resume {
        Some(before) => writer.record_resumed(before, &stats)?,
        None => stats,
    };
    writer.finish(&stats, &status)?;
    Ok(RunSummary {
        name,
        kind: spec.kind_name().to_string(),
        method,
        status,
        completed,
        t_last: last.0,
        loss_train: last.1,
        loss_test: last.2,
        stats,
    })
}

/// The radial PDE of Mei–Montanari–Nguyen's isotropic example (`dynamics::radial`): M radii drawn
/// from the initial law of ‖w‖ (w ~ N(0, w_std² I_d), its own random stream), integrated with
/// tsit45; archived as `radii` [T, M] and the PDE's risk as `loss_train`.
fn run_radial(
    setup: &Setup,
    archive: &ArchiveWriter,
    spec: &DynamicsSpec,
    progress: &mut Progress<'_>,
) -> Result<RunSummary> {
    let DynamicsSpec::RadialPde {
        radii,
        large_d,
        rtol,
        atol,
        t_end,
        ..
    } = *spec
    else {
        return Err(Error::Numerical("internal error: not a radial_pde".into()));
    };
    let delta = match &setup.problem.data {
        DataSpec::Synthetic {
            target: crate::problem::TargetSpec::IsotropicClasses { delta },
            ..
        } => *delta,
        _ => {
            return Err(Error::Numerical(
                "internal error: radial_pde without isotropic_classes".into(),
            ))
        }
    };
    let name = spec.name();
    let d = setup.data.d();
    let w_std = setup.weight_stds().w;
    let mut rng = crate::rng::stream(setup.problem.seed, crate::rng::Stream::Radii);
    let r0: Vec<f64> = (0..radii)
        .map(|_| {
            let s: f64 = (0..d)
                .map(|_| rand::Rng::sample::<f64, _>(&mut rng, rand_distr::StandardNormal).powi(2))
                .sum();
            w_std * s.sqrt()
        })
        .collect();
    let pde = if large_d {
        crate::dynamics::radial::RadialPde::new(delta, radii)
    } else {
        crate::dynamics::radial::RadialPde::finite(delta, radii, d).map_err(Error::Usage)?
    };
    let mut writer = archive.series_run(&name, &[("radii", &[radii]), ("loss_train", &[])])?;
    writer.set_str("kind", spec.kind_name())?;
    writer.set_str("method", "tsit45")?;
    writer.set_num("rtol", rtol)?;
    writer.set_num("atol", atol)?;
    writer.set_num("radii", radii as f64)?;
    writer.set_num("delta", delta)?;
    // d of the kernel u_d (inf: u_∞) and the even Hermite terms of its angular series
    writer.set_num("dimension", pde.dim.map_or(f64::INFINITY, |d| d as f64))?;
    writer.set_num("angular_terms", pde.terms() as f64)?;
    let times = setup.problem.save.times(t_end);
    let total = times.len();
    let (mut done, mut last) = (0, (0.0, f64::NAN));
    let Outcome { stats, stopped } = ode::run(
        &pde,
        &r0,
        crate::problem::Method::Tsit45,
        rtol,
        atol,
        &times,
        &mut |t, y| {
            let risk = pde.risk(y);
            writer.append(t, &[y, &[risk]])?;
            last = (t, risk);
            done += 1;
            progress(&name, done, total, Some(risk));
            Ok(())
        },
    );
    let (status, completed) = crate::family::run_status(stopped, last.0)?;
    writer.finish(&stats, &status)?;
    Ok(RunSummary {
        name,
        kind: spec.kind_name().to_string(),
        method: "tsit45".into(),
        status,
        completed,
        t_last: last.0,
        loss_train: last.1,
        loss_test: f64::NAN,
        stats,
    })
}
