//! The population risk of the two-layer network for Gaussian inputs x ~ N(0, I_d), in closed form
//! (design.md §1, the lecture-6 energy form; §4).
//!
//! Without biases, every expectation reduces to the pair kernel
//!   κ(w, w') = E[σ(⟨w, x⟩) σ(⟨w', x⟩)],
//! a function of u = ‖w‖², v = ‖w'‖² and c = ⟨w, w'⟩ only, because (⟨w,x⟩, ⟨w',x⟩) is a centred
//! Gaussian pair with covariance [[u, c], [c, v]]. Its w-gradient is ∇_w κ = 2 κ_u w + κ_c w'.
//! With a teacher f*(x) = Σ_i c*_i σ(⟨w*_i, x⟩) of the same activation, and
//! f(x) = (α/N) Σ_j a_j σ(⟨w_j, x⟩),
//!   R(θ) = E(f* − f)² = Σ_{i,i'} c*_i c*_i' κ(w*_i, w*_i') − 2 (α/N) Σ_{j,i} a_j c*_i κ(w_j, w*_i)
//!          + (α/N)² Σ_{j,k} a_j a_k κ(w_j, w_k),
//! and the mean-field-time velocity (1/α) E[(f* − f) ∇_θ σ*(x; θ_j)] is
//!   ȧ_j = (1/α) Σ_k m_k κ(w_j, ω_k),   ẇ_j = (a_j/α) Σ_k m_k (2 κ_u(w_j, ω_k) w_j + κ_c(w_j, ω_k) ω_k),
//! the sum running over the teacher's neurons ω = w*_i with m = c*_i and the particles ω = w_k
//! with m = −(α/N) a_k. Label noise does not enter: R is the excess risk E(f* − f)².
//!
//! Closed forms of κ (Cho–Saul's arc-cosine kernel for relu, Williams' for erf, Wick's theorem for
//! polynomials):
//! - relu:  κ = (√(uv − c²) + (π − φ) c) / (2π), cos φ = c/√(uv);  κ_c = (π − φ)/(2π),
//!   κ_u = √(uv − c²)/(4πu);
//! - erf:   κ = (2/π) asin(2c / √((1 + 2u)(1 + 2v)));
//! - σ(z) = Σ_j b_j z^j:  E[z^j z'^k] = Σ_m C(j,m) C(k,m) m! c^m (j−m−1)!! u^((j−m)/2)
//!   (k−m−1)!! v^((k−m)/2) over m with j − m and k − m even.

use crate::linalg::matmul;
use crate::model::activation::{Activation, Pair};
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;
use std::f64::consts::PI;

const INV_2PI: f64 = 0.5 / PI;

/// One term coef · u^pu · v^pv · c^pc of a polynomial pair kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Monomial {
    coef: f64,
    pu: i32,
    pv: i32,
    pc: i32,
}

/// κ(u, v, c) = E[σ(z)σ(z')] for a centred Gaussian pair with Var z = u, Var z' = v, Cov = c.
#[derive(Debug, Clone, PartialEq)]
pub enum PairKernel {
    Relu,
    Erf,
    Polynomial(Vec<Monomial>),
}

fn double_factorial_odd(n: i64) -> f64 {
    // (n)!! for odd n ≥ −1; (−1)!! = 1.
    let mut p = 1.0;
    let mut k = n;
    while k > 1 {
        p *= k as f64;
        k -= 2;
    }
    p
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |p, i| p * (n - i) as f64 / (i + 1) as f64)
}

impl PairKernel {
    /// The pair kernel of an activation, when it has a closed form.
    pub fn of(act: &Activation) -> Option<PairKernel> {
        Some(match act.entry()?.pair? {
            Pair::Relu => PairKernel::Relu,
            Pair::Erf => PairKernel::Erf,
            Pair::Polynomial(b) => PairKernel::polynomial(b),
        })
    }

    /// σ(z) = Σ_j b[j] z^j, by Wick's theorem.
    pub fn polynomial(b: &[f64]) -> PairKernel {
        let mut terms: Vec<Monomial> = vec![];
        for (j, bj) in b.iter().enumerate() {
            for (k, bk) in b.iter().enumerate() {
                if *bj == 0.0 || *bk == 0.0 {
                    continue;
                }
                for m in 0..=j.min(k) {
                    if (j - m) % 2 == 1 || (k - m) % 2 == 1 {
                        continue;
                    }
                    let coef = bj
                        * bk
                        * binomial(j, m)
                        * binomial(k, m)
                        * (1..=m).product::<usize>() as f64
                        * double_factorial_odd((j - m) as i64 - 1)
                        * double_factorial_odd((k - m) as i64 - 1);
                    let (pu, pv, pc) = (((j - m) / 2) as i32, ((k - m) / 2) as i32, m as i32);
                    match terms
                        .iter_mut()
                        .find(|t| (t.pu, t.pv, t.pc) == (pu, pv, pc))
                    {
                        Some(t) => t.coef += coef,
                        None => terms.push(Monomial { coef, pu, pv, pc }),
                    }
                }
            }
        }
        PairKernel::Polynomial(terms)
    }

    /// κ(u, v, c).
    pub fn value(&self, u: f64, v: f64, c: f64) -> f64 {
        self.eval(u, v, c).0
    }

    /// (κ, ∂κ/∂u, ∂κ/∂c) at (u, v, c).
    #[inline]
    pub fn eval(&self, u: f64, v: f64, c: f64) -> (f64, f64, f64) {
        self.eval_pre(u, self.pre(u), v, self.pre(v), c)
    }

    /// The per-vector factor `eval_pre` takes: 1/‖w‖ for relu (0 for w = 0), 1/√(1 + 2‖w‖²)
    /// for erf. Computed once per particle, it saves a square root and a division per pair.
    #[inline]
    pub(crate) fn pre(&self, u: f64) -> f64 {
        match self {
            PairKernel::Relu if u > 0.0 => 1.0 / u.sqrt(),
            PairKernel::Relu => 0.0,
            PairKernel::Erf => 1.0 / (1.0 + 2.0 * u).sqrt(),
            PairKernel::Polynomial(_) => 0.0,
        }
    }

    /// `eval` with the factors qu = pre(u), qv = pre(v).
    #[inline]
    pub(crate) fn eval_pre(&self, u: f64, qu: f64, v: f64, qv: f64, c: f64) -> (f64, f64, f64) {
        match self {
            PairKernel::Relu => {
                if qu == 0.0 || qv == 0.0 {
                    // A zero weight vector: σ(0) = 0 for every x, and the subgradient 0.
                    return (0.0, 0.0, 0.0);
                }
                // Round-off can put |cos φ| a little above 1 for parallel vectors.
                let cos = (c * qu * qv).clamp(-1.0, 1.0);
                let phi = cos.acos();
                // s = √(uv − c²) = ‖w‖‖w'‖ sin φ, with ‖w‖ = u·qu.
                let s = (1.0 - cos * cos).sqrt() * (u * qu) * (v * qv);
                let k = (s + (PI - phi) * c) * INV_2PI;
                (k, s * qu * qu * (0.5 * INV_2PI), (PI - phi) * INV_2PI)
            }
            PairKernel::Erf => {
                let s = 2.0 * c * qu * qv;
                let r = 2.0 / PI / (1.0 - s * s).max(f64::MIN_POSITIVE).sqrt();
                (2.0 / PI * s.asin(), -r * s * qu * qu, r * 2.0 * qu * qv)
            }
            PairKernel::Polynomial(terms) => {
                let (mut k, mut ku, mut kc) = (0.0, 0.0, 0.0);
                for t in terms {
                    let base = t.coef * v.powi(t.pv);
                    k += base * u.powi(t.pu) * c.powi(t.pc);
                    if t.pu > 0 {
                        ku += base * t.pu as f64 * u.powi(t.pu - 1) * c.powi(t.pc);
                    }
                    if t.pc > 0 {
                        kc += base * u.powi(t.pu) * t.pc as f64 * c.powi(t.pc - 1);
                    }
                }
                (k, ku, kc)
            }
        }
    }
}

/// The teacher f*(x) = Σ_i coef_i σ(⟨w_i, x⟩).
#[derive(Debug, Clone)]
pub struct Teacher {
    pub act: Activation,
    /// m* × d, one neuron per row.
    pub w: Mat<f64>,
    pub coef: Vec<f64>,
}

/// The population risk and its particle velocity for one model (N, d, α, σ) and teacher.
#[derive(Debug, Clone)]
pub struct PopulationRisk {
    pub kernel: PairKernel,
    pub d: usize,
    pub n_particles: usize,
    pub alpha: f64,
    pub teacher: Teacher,
    /// E f*², the constant term of R.
    target_energy: f64,
    /// ‖w*_i‖².
    teacher_sq: Vec<f64>,
    /// Output weights held fixed: no a-velocity.
    pub fixed_a: bool,
    pub par: Par,
}

/// Rows per parallel task: a fixed split keeps every sum's order, so results do not depend on the
/// thread count.
const ROW_BLOCK: usize = 32;

impl PopulationRisk {
    /// `None` when the activation has no closed-form pair kernel.
    pub fn new(
        act: Activation,
        n_particles: usize,
        alpha: f64,
        teacher: Teacher,
        par: Par,
    ) -> Option<PopulationRisk> {
        let kernel = PairKernel::of(&act)?;
        let d = teacher.w.ncols();
        let teacher_sq: Vec<f64> = (0..teacher.w.nrows())
            .map(|i| (0..d).map(|k| teacher.w[(i, k)].powi(2)).sum())
            .collect();
        let mut target_energy = 0.0;
        for i in 0..teacher.w.nrows() {
            for l in 0..teacher.w.nrows() {
                let c: f64 = (0..d).map(|k| teacher.w[(i, k)] * teacher.w[(l, k)]).sum();
                target_energy += teacher.coef[i]
                    * teacher.coef[l]
                    * kernel.value(teacher_sq[i], teacher_sq[l], c);
            }
        }
        Some(PopulationRisk {
            kernel,
            d,
            n_particles,
            alpha,
            teacher,
            target_energy,
            teacher_sq,
            fixed_a: false,
            par,
        })
    }

    fn dim(&self) -> usize {
        1 + self.d
    }

    /// W (N × d) as a view into the particle slice θ = [a_j, w_j] row by row.
    fn w<'a>(&self, theta: &'a [f64]) -> MatRef<'a, f64> {
        MatRef::from_row_major_slice_with_stride(&theta[1..], self.n_particles, self.d, self.dim())
    }

    /// Inner products ⟨w_j, ω_k⟩ with the particles (N × N) and the teacher (N × m*).
    fn grams(&self, theta: &[f64]) -> (Mat<f64>, Mat<f64>) {
        let w = self.w(theta);
        let nn = self.n_particles;
        let mut g = Mat::zeros(nn, nn);
        matmul(g.as_mut(), Accum::Replace, w, w.transpose(), 1.0, self.par);
        let mt = self.teacher.w.nrows();
        let mut gt = Mat::zeros(nn, mt);
        matmul(
            gt.as_mut(),
            Accum::Replace,
            w,
            self.teacher.w.transpose(),
            1.0,
            self.par,
        );
        (g, gt)
    }

    /// R(θ) = E_x (f*(x) − f(x; θ))².
    pub fn risk(&self, theta: &[f64]) -> f64 {
        let (g, gt) = self.grams(theta);
        let nn = self.n_particles;
        let dim = self.dim();
        let s = crate::model::output_scale(self.alpha, nn);
        // Row j's contribution to −2 E[f* f] + E f², in fixed row blocks.
        let rows: Vec<f64> = (0..nn)
            .collect::<Vec<_>>()
            .par_chunks(ROW_BLOCK)
            .map(|block| {
                block
                    .iter()
                    .map(|&j| {
                        let aj = theta[j * dim];
                        let u = g[(j, j)];
                        let cross: f64 = (0..gt.ncols())
                            .map(|i| {
                                self.teacher.coef[i]
                                    * self.kernel.value(u, self.teacher_sq[i], gt[(j, i)])
                            })
                            .sum();
                        let own: f64 = (0..nn)
                            .map(|k| theta[k * dim] * self.kernel.value(u, g[(k, k)], g[(k, j)]))
                            .sum();
                        aj * (s * s * own - 2.0 * s * cross)
                    })
                    .sum::<f64>()
            })
            .collect();
        self.target_energy + rows.iter().sum::<f64>()
    }

    /// The mean-field-time velocity of every particle (design.md §1), into `out` (length N·D).
    pub fn velocity(&self, theta: &[f64], out: &mut [f64]) {
        let (g, gt) = self.grams(theta);
        let nn = self.n_particles;
        let mt = gt.ncols();
        let dim = self.dim();
        let d = self.d;
        let s = crate::model::output_scale(self.alpha, nn);
        let inv_alpha = 1.0 / self.alpha;
        let diag: Vec<f64> = (0..nn).map(|j| g[(j, j)]).collect();
        let pre: Vec<f64> = diag.iter().map(|&u| self.kernel.pre(u)).collect();
        let tpre: Vec<f64> = self
            .teacher_sq
            .iter()
            .map(|&u| self.kernel.pre(u))
            .collect();
        // Ω = [W; W*] ((N + m*) × d): the vectors ω_k the pull Σ_k m_k κ_c(j, k) ω_k runs over.
        let w = self.w(theta);
        let width = nn + mt;
        let mut omega = Mat::<f64>::zeros(width, d);
        omega.as_mut().subrows_mut(0, nn).copy_from(w);
        omega
            .as_mut()
            .subrows_mut(nn, mt)
            .copy_from(self.teacher.w.as_ref());
        let (kernel, coef, tsq) = (&self.kernel, &self.teacher.coef, &self.teacher_sq);
        // A block of rows j at a time: the weights m_k κ_c(j, k) of the block (a few hundred KB,
        // cache-resident) go straight into a GEMM with Ω, so no N × N matrix is ever stored.
        out.par_chunks_mut(ROW_BLOCK * dim)
            .enumerate()
            .for_each(|(b, out)| {
                let rows = out.len() / dim;
                let mut mc = vec![0.0; rows * width];
                let mut own = vec![(0.0, 0.0); rows];
                for (r, (row, own)) in mc.chunks_mut(width).zip(own.iter_mut()).enumerate() {
                    let j = b * ROW_BLOCK + r;
                    let (u, qu) = (diag[j], pre[j]);
                    // G is symmetric: its column j is row j, contiguous.
                    let gj = g.col_as_slice(j);
                    let (mut fa, mut fu) = (0.0, 0.0);
                    for k in 0..nn {
                        let m = -s * theta[k * dim];
                        let (kv, ku, kc) = kernel.eval_pre(u, qu, diag[k], pre[k], gj[k]);
                        fa += m * kv;
                        fu += m * ku;
                        row[k] = m * kc;
                    }
                    for i in 0..mt {
                        let m = coef[i];
                        let (kv, ku, kc) = kernel.eval_pre(u, qu, tsq[i], tpre[i], gt[(j, i)]);
                        fa += m * kv;
                        fu += m * ku;
                        row[nn + i] = m * kc;
                    }
                    *own = (fa, fu);
                }
                let mut pull = Mat::<f64>::zeros(rows, d);
                matmul(
                    pull.as_mut(),
                    Accum::Replace,
                    MatRef::from_row_major_slice(&mc, rows, width),
                    omega.as_ref(),
                    1.0,
                    Par::Seq,
                );
                for (r, (o, (fa, fu))) in out.chunks_mut(dim).zip(own).enumerate() {
                    let j = b * ROW_BLOCK + r;
                    let aj = theta[j * dim];
                    o[0] = if self.fixed_a { 0.0 } else { inv_alpha * fa };
                    for k in 0..d {
                        o[1 + k] = inv_alpha * aj * (2.0 * fu * w[(j, k)] + pull[(r, k)]);
                    }
                }
            });
    }
}
