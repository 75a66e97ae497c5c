//! The two-layer network f(x) = (α/N) Σ_j a_j σ(⟨w_j, x⟩ + b_j) as a system of N particles.
//!
//! Particles θ_j = (a_j, w_j, b_j) are stored row-major as an [N, D] slice, D = 1 + d (+1 with
//! bias): column 0 is a, columns 1..=d are w, column d+1 is b. This is the archive layout too.
//!
//! Everything is written in mean-field time (design.md §1): the velocity of particle j is
//!   v_j = (1/α) E_x[(y − f(x)) ∇_θ σ*(x; θ_j)],   σ*(x; θ) = a σ(⟨w, x⟩ + b),
//! and its Jacobian is J = −(1/(nN)) Φᵀ Φ + blockdiag_j B_j, with Φ the n × P matrix of tangent
//! features ∇_θ σ*(x_i; θ_j) and B_j = (1/(αn)) Σ_i r_i ∇²_θ σ*(x_i; θ_j).
//!
//! Each pass is one or two GEMMs over (samples × neurons) plus one fused elementwise sweep; the
//! per-(i, j) buffers are column-major n × N and reused across calls.

use crate::linalg::matmul;
use crate::model::activation::Activation;
use crate::model::loss::Loss;
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct TwoLayer {
    pub act: Activation,
    /// Input dimension d.
    pub d: usize,
    pub bias: bool,
    /// N, the number of particles.
    pub n_particles: usize,
    /// Output scale α.
    pub alpha: f64,
    /// Output weights a_j held at their initial values (no a-velocity, no a-features).
    pub fixed_a: bool,
    /// ℓ(y, f): the velocity takes its residual, the Jacobian its curvature (`model::loss`).
    pub loss: Arc<dyn Loss>,
    pub par: Par,
}

/// A training batch: inputs x (n × d), targets y, and f(θ₀) on x when the model output is
/// centred by subtraction.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    pub x: MatRef<'a, f64>,
    pub y: &'a [f64],
    pub f0: Option<&'a [f64]>,
}

/// Per-(sample, neuron) buffers of one forward pass, each column-major n × N, except in the
/// chunked velocity (`chunked_coefficients`), where `s` holds one chunk of samples and `d1` the
/// coefficients as CWᵀ (N × n). Each pass sizes and fills what it reads.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    n: usize,
    /// σ(z_ij)
    s: Vec<f64>,
    /// σ'(z_ij)
    d1: Vec<f64>,
    /// σ''(z_ij), filled only when second derivatives are asked for.
    d2: Vec<f64>,
    /// Coefficients of the backward pass (see `backward`).
    ca: Vec<f64>,
    cw: Vec<f64>,
    /// Scratch n × N (pre-activations of a tangent direction).
    u: Vec<f64>,
    /// Network output on the batch, f(x_i).
    pub f: Vec<f64>,
}

/// The derivatives of σ a forward pass keeps beside σ itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Derivs {
    None,
    First,
    Second,
}

/// Rows per task in row-parallel reductions (a fixed split keeps results thread-count free).
const ROW_BLOCK: usize = 64;

/// Bytes of each per-chunk buffer of the fused velocity: a chunk's pre-activations, σ and σ'
/// stay in cache between its two GEMMs.
const CHUNK_BYTES: usize = 4 << 20;

fn view(buf: &[f64], n: usize, m: usize) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(buf, n, m)
}
fn view_mut(buf: &mut [f64], n: usize, m: usize) -> MatMut<'_, f64> {
    MatMut::from_column_major_slice_mut(buf, n, m)
}

/// One sample's sweep over the particles: s_j ← σ(s_j + b_j), d_j ← σ'(s_j + b_j), and
/// returns Σ_j w_j σ_j, summed in four interleaved partial sums (a fixed order the compiler can
/// vectorize). Monomorphized per named activation so that the match is outside the loop; a
/// formula is evaluated a chunk at a time first.
fn activate(act: &Activation, s: &mut [f64], d: &mut [f64], b: &[f64], w: &[f64]) -> f64 {
    fn sweep(
        s: &mut [f64],
        d: &mut [f64],
        b: &[f64],
        w: &[f64],
        f: impl Fn(f64) -> (f64, f64),
    ) -> f64 {
        let mut acc = [0.0; 4];
        let n = s.len();
        for j in 0..n {
            let (v, dv) = f(s[j] + b[j]);
            s[j] = v;
            d[j] = dv;
            acc[j % 4] += w[j] * v;
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
    }
    let n = s.len();
    let (d, b, w) = (&mut d[..n], &b[..n], &w[..n]);
    match act {
        // Relu's own kernel (`Fast::Relu`) inlined, the other named ones through their
        // entry's function.
        a if a.fused() => sweep(s, d, b, w, |z| if z > 0.0 { (z, 1.0) } else { (0.0, 0.0) }),
        Activation::Named(named) => sweep(s, d, b, w, named.value_d1),
        Activation::Formula(_) => {
            act.apply(s, |j| b[j], Some(&mut *d), None);
            let mut acc = [0.0; 4];
            for j in 0..n {
                acc[j % 4] += w[j] * s[j];
            }
            (acc[0] + acc[1]) + (acc[2] + acc[3])
        }
    }
}

/// Σ_k parts[k], added in the order of k: block partial sums whose total does not depend on
/// which thread computed which block.
fn sum_in_order(parts: &[Vec<f64>], n: usize) -> Vec<f64> {
    let mut total = vec![0.0; n];
    for p in parts {
        total.iter_mut().zip(p).for_each(|(t, p)| *t += p);
    }
    total
}

impl TwoLayer {
    /// α/N (`model::output_scale`).
    pub(crate) fn output_scale(&self) -> f64 {
        crate::model::output_scale(self.alpha, self.n_particles)
    }

    /// D, the number of coordinates of one particle.
    pub fn dim(&self) -> usize {
        1 + self.d + usize::from(self.bias)
    }

    /// P = N·D, the size of the flow's state.
    pub fn n_params(&self) -> usize {
        self.n_particles * self.dim()
    }

    /// Names of the D particle columns, as the archive's `columns` attribute.
    pub fn columns(&self) -> String {
        let mut c = vec!["a".to_string()];
        c.extend((0..self.d).map(|k| format!("w{k}")));
        if self.bias {
            c.push("b".into());
        }
        c.join(",")
    }

    /// W as an N × d view into the particle slice.
    fn w<'a>(&self, theta: &'a [f64]) -> MatRef<'a, f64> {
        MatRef::from_row_major_slice_with_stride(&theta[1..], self.n_particles, self.d, self.dim())
    }

    fn a(&self, theta: &[f64]) -> Vec<f64> {
        theta.iter().step_by(self.dim()).copied().collect()
    }

    fn b(&self, theta: &[f64], j: usize) -> f64 {
        if self.bias {
            theta[j * self.dim() + 1 + self.d]
        } else {
            0.0
        }
    }

    /// Forward pass on the inputs x (n × d): fills σ, σ' (and σ'' when `second`) and f.
    pub fn forward(&self, theta: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace, second: bool) {
        let keep = if second {
            Derivs::Second
        } else {
            Derivs::First
        };
        self.pass(theta, x, ws, keep);
    }

    /// The forward pass keeping σ and the derivatives `keep` asks for. Only those buffers are
    /// sized here; the backward ones by the passes that use them, so that an output needs one
    /// n × N buffer and a velocity three, not five (memory at large N).
    fn pass(&self, theta: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace, keep: Derivs) {
        let (n, nn) = (x.nrows(), self.n_particles);
        ws.n = n;
        ws.s.resize(n * nn, 0.0);
        if keep >= Derivs::First {
            ws.d1.resize(n * nn, 0.0);
        }
        if keep == Derivs::Second {
            ws.d2.resize(n * nn, 0.0);
        }
        // Z = X Wᵀ, into the σ buffer; the sweeps below replace z by σ(z + b) in place.
        matmul(
            view_mut(&mut ws.s, n, nn),
            Accum::Replace,
            x,
            self.w(theta).transpose(),
            1.0,
            self.par,
        );
        let act = &self.act;
        let biases: Vec<f64> = (0..nn).map(|j| self.b(theta, j)).collect();
        match keep {
            Derivs::None => {
                ws.s.par_chunks_mut(n)
                    .zip(biases.par_iter())
                    .for_each(|(s, &b)| act.apply(s, |_| b, None, None))
            }
            Derivs::First => {
                ws.s.par_chunks_mut(n)
                    .zip(ws.d1.par_chunks_mut(n))
                    .zip(biases.par_iter())
                    .for_each(|((s, d1), &b)| act.apply(s, |_| b, Some(d1), None))
            }
            // Also σ'' from the same z before the σ buffer is overwritten.
            Derivs::Second => {
                ws.s.par_chunks_mut(n)
                    .zip(ws.d1.par_chunks_mut(n))
                    .zip(ws.d2.par_chunks_mut(n))
                    .zip(biases.par_iter())
                    .for_each(|(((s, d1), d2), &b)| act.apply(s, |_| b, Some(d1), Some(d2)))
            }
        }
        // f = (α/N) S a, in fixed row blocks so that each f_i is summed in the same order
        // whatever the thread count.
        let a = self.a(theta);
        let scale = self.output_scale();
        ws.f.clear();
        ws.f.resize(n, 0.0);
        let s = &ws.s;
        ws.f.par_chunks_mut(ROW_BLOCK)
            .enumerate()
            .for_each(|(blk, f)| {
                let i0 = blk * ROW_BLOCK;
                for (j, aj) in a.iter().enumerate() {
                    let col = &s[j * n + i0..j * n + i0 + f.len()];
                    let c = scale * aj;
                    for (fi, si) in f.iter_mut().zip(col) {
                        *fi += c * si;
                    }
                }
            });
    }

    /// Network output on x alone.
    /// The first pre-activation z = ⟨w_j, x_i⟩ + b_j at which σ, σ′ or σ″ is NaN or infinite:
    /// (which of the three, z, i, j). A formula activation can be (log(z) below 0).
    pub fn first_non_finite(
        &self,
        theta: &[f64],
        x: MatRef<'_, f64>,
    ) -> Option<(&'static str, f64, usize, usize)> {
        if x.nrows() == 0 || self.n_particles == 0 {
            return None;
        }
        let mut ws = Workspace::default();
        self.pass(theta, x, &mut ws, Derivs::Second);
        let n = x.nrows();
        let w = self.w(theta);
        let found = [("σ", &ws.s), ("σ′", &ws.d1), ("σ″", &ws.d2)]
            .into_iter()
            .find_map(|(which, v)| {
                let k = v.iter().position(|v| !v.is_finite())?;
                let (i, j) = (k % n, k / n);
                let z = (0..self.d).map(|c| x[(i, c)] * w[(j, c)]).sum::<f64>() + self.b(theta, j);
                Some((which, z, i, j))
            });
        found
    }

    pub fn predict(&self, theta: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace) -> Vec<f64> {
        self.pass(theta, x, ws, Derivs::None);
        ws.f.clone()
    }

    /// The backward pass shared by the velocity and the J·v product: given the a-components `sa`,
    /// the per-(i, j) coefficients as CWᵀ (N × n) and their sums over samples `sb` (bias
    /// models; see `bias_sums`), writes out_j = (sa_j, Σ_i cw_ij x_i, sb_j) into the particle
    /// layout. The w part is one GEMM CWᵀ X.
    ///
    /// With `add = Some(h)` it adds h·out_j instead (out ← out + h·v, GD's step taken in place:
    /// no P-sized velocity buffer).
    fn backward(
        &self,
        x: MatRef<'_, f64>,
        cwt: MatRef<'_, f64>,
        sa: &[f64],
        sb: &[f64],
        out: &mut [f64],
        add: Option<f64>,
    ) {
        let (nn, dd, d) = (self.n_particles, self.dim(), self.d);
        {
            // Not MatMut::from_row_major_slice_with_stride_mut: faer 0.24.4 swaps its strides.
            let dst = MatMut::from_column_major_slice_with_stride_mut(&mut out[1..], d, nn, dd)
                .transpose_mut();
            let (accum, h) = match add {
                None => (Accum::Replace, 1.0),
                Some(h) => (Accum::Add, h),
            };
            // faer's GEMM into the particle layout (row stride D) ran at half speed here (50 ms
            // against 30 ms at N = 4096, n = 2048, d = 64): through a contiguous N × d buffer
            // when that is no larger than the coefficients.
            if d <= cwt.ncols() {
                let mut tmp = Mat::<f64>::zeros(nn, d);
                matmul(tmp.as_mut(), Accum::Replace, cwt, x, h, self.par);
                let mut dst = dst;
                match accum {
                    Accum::Add => dst += &tmp,
                    Accum::Replace => dst.copy_from(&tmp),
                }
            } else {
                matmul(dst, accum, cwt, x, h, self.par);
            }
        }
        let put = |o: &mut f64, v: f64| match add {
            None => *o = v,
            Some(h) => *o += h * v,
        };
        for j in 0..nn {
            put(&mut out[j * dd], if self.fixed_a { 0.0 } else { sa[j] });
            if self.bias {
                put(&mut out[j * dd + 1 + d], sb[j]);
            }
        }
    }

    /// `backward` (replacing `out`) for coefficients stored column-major n × N.
    fn backward_columns(&self, x: MatRef<'_, f64>, cw: &[f64], sa: &[f64], out: &mut [f64]) {
        let n = x.nrows();
        let sb = self.bias_sums(cw, n);
        self.backward(
            x,
            view(cw, n, self.n_particles).transpose(),
            sa,
            &sb,
            out,
            None,
        );
    }

    /// Σ_i cw_ij for each particle j of column-major n × N coefficients (empty without bias).
    fn bias_sums(&self, cw: &[f64], n: usize) -> Vec<f64> {
        if self.bias {
            cw.par_chunks(n).map(|c| c.iter().sum()).collect()
        } else {
            vec![]
        }
    }

    /// Residual r = −½ ℓ′(y, f − f₀) (y − f + f₀ for the square loss), f₀ when the model
    /// subtracts it.
    fn residual(&self, ws: &Workspace, y: &[f64], f0: Option<&[f64]>) -> Vec<f64> {
        let loss = &*self.loss;
        (0..y.len())
            .map(|i| loss.residual(y[i], ws.f[i], f0.map(|f0| f0[i])))
            .collect()
    }

    /// The curvature c_i = ½ ℓ″ weighting the Jacobian's low-rank part; None when c ≡ 1.
    fn curvatures(&self, ws: &Workspace, y: &[f64], f0: Option<&[f64]>) -> Option<Vec<f64>> {
        let loss = &*self.loss;
        (!loss.unit_curvature()).then(|| {
            (0..y.len())
                .map(|i| loss.curvature(y[i], ws.f[i], f0.map(|f0| f0[i])))
                .collect()
        })
    }

    /// The mean-field-time velocity field v(θ) (design.md §1), written to `out` (length P).
    /// Returns the residual on the batch.
    pub fn velocity(
        &self,
        theta: &[f64],
        batch: &Batch<'_>,
        ws: &mut Workspace,
        out: &mut [f64],
    ) -> Vec<f64> {
        #[cfg(target_arch = "x86_64")]
        if self.fused(batch) {
            return super::relu_fused::velocity(self, theta, batch, out);
        }
        self.velocity_unfused(theta, batch, ws, out)
    }

    /// Whether `velocity` and `velocity_step` take the fused relu passes (`relu_fused`).
    #[cfg(target_arch = "x86_64")]
    fn fused(&self, batch: &Batch<'_>) -> bool {
        self.act.fused()
            && batch.x.nrows() > 0
            && self.n_particles > 0
            && super::relu_fused::available(self.d + usize::from(self.bias))
    }

    /// `velocity` through faer's GEMMs and separate elementwise sweeps, for every activation
    /// (public for the tests and benches that hold the fused relu path against it).
    #[doc(hidden)]
    pub(crate) fn velocity_unfused(
        &self,
        theta: &[f64],
        batch: &Batch<'_>,
        ws: &mut Workspace,
        out: &mut [f64],
    ) -> Vec<f64> {
        let (r, da, sb) = self.velocity_coefficients(theta, batch, ws);
        let cwt = self.coefficients(ws, batch.x.nrows());
        self.backward(batch.x, cwt, &da, &sb, out, None);
        r
    }

    /// One gradient-descent step θ ← θ + h v(θ) in place: the same passes as `velocity`, with
    /// the backward GEMM accumulating into θ (no P-sized velocity buffer). Returns the residual
    /// at the old θ.
    pub fn velocity_step(
        &self,
        theta: &mut [f64],
        batch: &Batch<'_>,
        ws: &mut Workspace,
        h: f64,
    ) -> Vec<f64> {
        #[cfg(target_arch = "x86_64")]
        if self.fused(batch) {
            return super::relu_fused::step(self, theta, batch, h);
        }
        self.velocity_step_unfused(theta, batch, ws, h)
    }

    /// `velocity_step` through the faer path (see `velocity_unfused`).
    #[doc(hidden)]
    pub fn velocity_step_unfused(
        &self,
        theta: &mut [f64],
        batch: &Batch<'_>,
        ws: &mut Workspace,
        h: f64,
    ) -> Vec<f64> {
        // The coefficients read the old θ before the step overwrites it.
        let (r, da, sb) = self.velocity_coefficients(theta, batch, ws);
        let cwt = self.coefficients(ws, batch.x.nrows());
        self.backward(batch.x, cwt, &da, &sb, theta, Some(h));
        r
    }

    /// Whether the velocity runs by chunks of samples: when d ≤ n. With few samples and wide
    /// inputs (N = 10⁵, d = 100, n = 16) the whole-batch pass keeps the lower peak memory
    /// (228 against 240 MB measured; the chunked GEMMs read W in its row-major particle layout).
    fn chunked(&self, n: usize) -> bool {
        self.d <= n
    }

    /// CWᵀ (N × n) as the last `velocity_coefficients` left it.
    fn coefficients<'w>(&self, ws: &'w Workspace, n: usize) -> MatRef<'w, f64> {
        if self.chunked(n) {
            view(&ws.d1, self.n_particles, n)
        } else {
            view(&ws.d1, n, self.n_particles).transpose()
        }
    }

    /// The forward pass and the velocity's backward coefficients cw_ij = c r_i a_j σ'_ij (in
    /// `ws.d1`, see `coefficients`). Returns the residual, the a-components and the bias sums.
    fn velocity_coefficients(
        &self,
        theta: &[f64],
        batch: &Batch<'_>,
        ws: &mut Workspace,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        if self.chunked(batch.x.nrows()) {
            self.chunked_coefficients(theta, batch, ws)
        } else {
            self.whole_batch_coefficients(theta, batch, ws)
        }
    }

    /// `velocity_coefficients` in one whole-batch pass: cw written over σ' (n × N).
    fn whole_batch_coefficients(
        &self,
        theta: &[f64],
        batch: &Batch<'_>,
        ws: &mut Workspace,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        self.forward(theta, batch.x, ws, false);
        let r = self.residual(ws, batch.y, batch.f0);
        let a = self.a(theta);
        let n = ws.n;
        let c = 1.0 / (self.alpha * n as f64);
        let Workspace { s, d1, .. } = ws;
        // One sweep: the a-components are reduced on the fly, the w-coefficients stored for the
        // GEMM.
        let da = d1
            .par_chunks_mut(n)
            .zip(s.par_chunks(n))
            .zip(a.par_iter())
            .map(|((cw, s), aj)| {
                let mut da = 0.0;
                for i in 0..n {
                    let cr = c * r[i];
                    da += cr * s[i];
                    cw[i] *= cr * aj;
                }
                da
            })
            .collect();
        let sb = self.bias_sums(&ws.d1, n);
        (r, da, sb)
    }

    /// Samples per chunk of `chunked_coefficients`.
    fn chunk_rows(&self, n: usize) -> usize {
        (CHUNK_BYTES / (8 * self.n_particles.max(1))).clamp(8, n.max(8))
    }

    /// `velocity_coefficients` one chunk of samples at a time:
    /// per chunk, Zᵀ = W X_cᵀ (N × m, one GEMM) into a cache-sized buffer, then one sweep per
    /// sample for σ, σ', the output f_i, the residual r_i and cw_ij = c r_i a_j σ'_ij (stored as
    /// CWᵀ, N × n, for the backward GEMM: the only n × N array), and one sweep per block of
    /// particles for the a-components Σ_i c r_i σ_ij and the bias sums Σ_i cw_ij. Sums over
    /// samples run in sample order and sums over particles in particle order, whatever the
    /// thread count. Returns (r, the a-components, the bias sums).
    fn chunked_coefficients(
        &self,
        theta: &[f64],
        batch: &Batch<'_>,
        ws: &mut Workspace,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let x = batch.x;
        let (n, nn) = (x.nrows(), self.n_particles);
        let rows = self.chunk_rows(n);
        ws.n = n;
        ws.s.resize(rows * nn, 0.0);
        ws.d1.resize(n * nn, 0.0);
        let a = self.a(theta);
        let biases: Vec<f64> = (0..nn).map(|j| self.b(theta, j)).collect();
        let out_scale: Vec<f64> = a.iter().map(|aj| self.output_scale() * aj).collect();
        let c = 1.0 / (self.alpha * n as f64);
        let mut r = vec![0.0; n];
        let mut da = vec![0.0; nn];
        let mut sb = vec![0.0; nn];
        let bias = self.bias;
        for i0 in (0..n).step_by(rows) {
            let m = rows.min(n - i0);
            let xc = x.subrows(i0, m);
            let s = &mut ws.s[..m * nn];
            let cw = &mut ws.d1[i0 * nn..(i0 + m) * nn];
            // Column i of this N × m array holds sample i0 + i's pre-activations.
            matmul(
                view_mut(s, nn, m),
                Accum::Replace,
                self.w(theta),
                xc.transpose(),
                1.0,
                self.par,
            );
            let rc = &mut r[i0..i0 + m];
            s.par_chunks_mut(nn)
                .zip(cw.par_chunks_mut(nn))
                .zip(rc.par_iter_mut())
                .enumerate()
                .for_each(|(i, ((s, cw), ri))| {
                    let f = activate(&self.act, s, cw, &biases, &out_scale);
                    let k = i0 + i;
                    *ri = self.loss.residual(batch.y[k], f, batch.f0.map(|f0| f0[k]));
                    let cr = c * *ri;
                    for (cj, aj) in cw.iter_mut().zip(&a) {
                        *cj *= cr * aj;
                    }
                });
            let (s, cw, rc) = (&*s, &*cw, &r[i0..i0 + m]);
            da.par_chunks_mut(ROW_BLOCK)
                .zip(sb.par_chunks_mut(ROW_BLOCK))
                .enumerate()
                .for_each(|(blk, (da, sb))| {
                    let j0 = blk * ROW_BLOCK;
                    let len = da.len();
                    for (i, ri) in rc.iter().enumerate() {
                        let cr = c * ri;
                        for (dj, sj) in da.iter_mut().zip(&s[i * nn + j0..i * nn + j0 + len]) {
                            *dj += cr * sj;
                        }
                        if bias {
                            for (bj, cj) in sb.iter_mut().zip(&cw[i * nn + j0..i * nn + j0 + len]) {
                                *bj += cj;
                            }
                        }
                    }
                });
        }
        if !bias {
            sb.clear();
        }
        (r, da, sb)
    }

    /// J·v for the velocity field at θ: the directional derivative of v along `dir`.
    /// (Used by Newton iterations when the full Jacobian is not assembled.)
    pub fn jac_mul(
        &self,
        theta: &[f64],
        batch: &Batch<'_>,
        dir: &[f64],
        ws: &mut Workspace,
        out: &mut [f64],
    ) {
        let x = batch.x;
        self.forward(theta, x, ws, true);
        let r = self.residual(ws, batch.y, batch.f0);
        let (n, nn, dd) = (ws.n, self.n_particles, self.dim());
        self.direction_preactivations(x, dir, ws);
        let a = self.a(theta);
        let va = self.a(dir);
        // q = Φ v: the change of the network output (before the α/N factor is applied below).
        let mut q = Self::tangent_output(ws, n, &a, &va);
        if let Some(curv) = self.curvatures(ws, batch.y, batch.f0) {
            q.iter_mut().zip(&curv).for_each(|(qi, ci)| *qi *= ci);
        }
        let c = 1.0 / (self.alpha * n as f64);
        let g = 1.0 / (n as f64 * nn as f64);
        ws.ca.resize(n * nn, 0.0);
        ws.cw.resize(n * nn, 0.0);
        let Workspace {
            s,
            d1,
            d2,
            ca,
            cw,
            u,
            ..
        } = ws;
        ca.par_chunks_mut(n)
            .zip(cw.par_chunks_mut(n))
            .zip(s.par_chunks(n).zip(d1.par_chunks(n)))
            .zip(d2.par_chunks(n).zip(u.par_chunks(n)))
            .zip(a.par_iter().zip(va.par_iter()))
            .for_each(|((((ca, cw), (s, d1)), (d2, u)), (aj, vaj))| {
                for i in 0..n {
                    let cr = c * r[i];
                    ca[i] = -g * q[i] * s[i] + cr * d1[i] * u[i];
                    cw[i] = -g * aj * q[i] * d1[i] + cr * d1[i] * vaj + cr * aj * d2[i] * u[i];
                }
            });
        let da: Vec<f64> = ws.ca.par_chunks(n).map(|c| c.iter().sum()).collect();
        self.backward_columns(x, &ws.cw, &da, out);
        debug_assert_eq!(out.len(), nn * dd);
    }

    /// Pre-activation change along a direction v of the parameters: U = X V_wᵀ + 1 v_bᵀ, into
    /// ws.u (after `forward` on the same x).
    fn direction_preactivations(&self, x: MatRef<'_, f64>, dir: &[f64], ws: &mut Workspace) {
        let (n, nn) = (ws.n, self.n_particles);
        ws.u.resize(n * nn, 0.0);
        matmul(
            view_mut(&mut ws.u, n, nn),
            Accum::Replace,
            x,
            self.w(dir).transpose(),
            1.0,
            self.par,
        );
        if self.bias {
            for j in 0..nn {
                let vb = self.b(dir, j);
                ws.u[j * n..(j + 1) * n].iter_mut().for_each(|u| *u += vb);
            }
        }
    }

    /// Df·v: the change of the outputs f(x_i) along v.
    pub fn output_jvp(
        &self,
        theta: &[f64],
        x: MatRef<'_, f64>,
        dir: &[f64],
        ws: &mut Workspace,
    ) -> Vec<f64> {
        self.forward(theta, x, ws, false);
        self.output_jvp_after_forward(theta, x, dir, ws)
    }

    /// `output_jvp` reusing the σ, σ' of a `forward` on the same θ and x (iterations at one θ).
    pub(crate) fn output_jvp_after_forward(
        &self,
        theta: &[f64],
        x: MatRef<'_, f64>,
        dir: &[f64],
        ws: &mut Workspace,
    ) -> Vec<f64> {
        self.direction_preactivations(x, dir, ws);
        let n = ws.n;
        let (a, va) = (self.a(theta), self.a(dir));
        let scale = self.output_scale();
        Self::tangent_output(ws, n, &a, &va)
            .iter()
            .map(|v| v * scale)
            .collect()
    }

    /// Φv (before the α/N factor): Σ_j [σ_ij v_aj + a_j σ'_ij U_ij], with U in ws.u. Particles
    /// in fixed blocks of `ROW_BLOCK`, their partial sums added in block order.
    fn tangent_output(ws: &Workspace, n: usize, a: &[f64], va: &[f64]) -> Vec<f64> {
        let span = ROW_BLOCK * n;
        let parts: Vec<Vec<f64>> = ws.s[..a.len() * n]
            .par_chunks(span)
            .zip(ws.d1.par_chunks(span))
            .zip(ws.u.par_chunks(span))
            .enumerate()
            .map(|(blk, ((s, d1), u))| {
                let mut q = vec![0.0; n];
                let j0 = blk * ROW_BLOCK;
                for (jj, ((s, d1), u)) in s.chunks(n).zip(d1.chunks(n)).zip(u.chunks(n)).enumerate()
                {
                    let (aj, vaj) = (a[j0 + jj], va[j0 + jj]);
                    for (qi, ((s, d1), u)) in q.iter_mut().zip(s.iter().zip(d1).zip(u)) {
                        *qi += vaj * s + aj * d1 * u;
                    }
                }
                q
            })
            .collect();
        sum_in_order(&parts, n)
    }

    /// Dfᵀ·u: the pull-back of a vector on the outputs to the parameters.
    pub fn output_vjp(
        &self,
        theta: &[f64],
        x: MatRef<'_, f64>,
        u: &[f64],
        ws: &mut Workspace,
        out: &mut [f64],
    ) {
        self.forward(theta, x, ws, false);
        self.output_vjp_after_forward(theta, x, u, ws, out);
    }

    /// `output_vjp` reusing the σ, σ' of a `forward` on the same θ and x.
    pub(crate) fn output_vjp_after_forward(
        &self,
        theta: &[f64],
        x: MatRef<'_, f64>,
        u: &[f64],
        ws: &mut Workspace,
        out: &mut [f64],
    ) {
        let (n, nn) = (ws.n, self.n_particles);
        let a = self.a(theta);
        let scale = self.output_scale();
        ws.cw.resize(n * nn, 0.0);
        let mut da = vec![0.0; nn];
        let Workspace { s, d1, cw, .. } = ws;
        cw.par_chunks_mut(n)
            .zip(s.par_chunks(n).zip(d1.par_chunks(n)))
            .zip(da.par_iter_mut().zip(a.par_iter()))
            .for_each(|((cw, (s, d1)), (daj, aj))| {
                for i in 0..n {
                    *daj += scale * u[i] * s[i];
                    cw[i] = scale * aj * u[i] * d1[i];
                }
            });
        self.backward_columns(x, &ws.cw, &da, out);
    }

    /// (Σ_i u_i ∇²f(x_i))·v and D²f[v, v] = (vᵀ∇²f(x_i)v)_i, for the norm of the second derivative.
    pub fn output_second(
        &self,
        theta: &[f64],
        x: MatRef<'_, f64>,
        u: &[f64],
        dir: &[f64],
        ws: &mut Workspace,
        hv: &mut [f64],
    ) -> Vec<f64> {
        hv.copy_from_slice(dir);
        self.output_second_in_place(theta, x, Some(u), hv, ws)
    }

    /// D²f[v, v] for v = `dir`; with `u` given, also replaces `dir` by (Σ_i u_i ∇²f(x_i))·v.
    /// In place because the second derivative is block-diagonal over particles and v is read
    /// into the workspace first: no second P-sized vector (κ at large N).
    pub(crate) fn output_second_in_place(
        &self,
        theta: &[f64],
        x: MatRef<'_, f64>,
        u: Option<&[f64]>,
        dir: &mut [f64],
        ws: &mut Workspace,
    ) -> Vec<f64> {
        self.forward(theta, x, ws, true);
        self.output_second_after_forward(theta, x, u, dir, ws)
    }

    /// `output_second_in_place` reusing the σ', σ'' of a `forward(…, second = true)` on the same
    /// θ and x.
    pub(crate) fn output_second_after_forward(
        &self,
        theta: &[f64],
        x: MatRef<'_, f64>,
        u: Option<&[f64]>,
        dir: &mut [f64],
        ws: &mut Workspace,
    ) -> Vec<f64> {
        self.direction_preactivations(x, dir, ws);
        let (n, nn) = (ws.n, self.n_particles);
        let (a, va) = (self.a(theta), self.a(dir));
        let scale = self.output_scale();
        let mut da = vec![0.0; nn];
        // The backward coefficients overwrite the pre-activations U they are made of (one n × N
        // buffer fewer). Particles in fixed blocks; the blocks' partial D²f[v, v] are added in
        // block order.
        let span = ROW_BLOCK * n;
        debug_assert!(ws.d2.len() >= nn * n, "forward(…, second = true) first");
        let Workspace { d1, d2, u: uu, .. } = ws;
        let parts: Vec<Vec<f64>> = uu[..nn * n]
            .par_chunks_mut(span)
            .zip(d1.par_chunks(span).zip(d2.par_chunks(span)))
            .zip(da.par_chunks_mut(ROW_BLOCK))
            .enumerate()
            .map(|(blk, ((uu, (d1, d2)), da))| {
                let mut vv = vec![0.0; n];
                let j0 = blk * ROW_BLOCK;
                for (jj, daj) in da.iter_mut().enumerate() {
                    let (aj, vaj) = (a[j0 + jj], va[j0 + jj]);
                    let col = jj * n..(jj + 1) * n;
                    let (uu, d1, d2) = (&mut uu[col.clone()], &d1[col.clone()], &d2[col]);
                    for i in 0..n {
                        let (d1, d2, ui) = (d1[i], d2[i], uu[i]);
                        vv[i] += scale * (2.0 * vaj * d1 * ui + aj * d2 * ui * ui);
                        if let Some(u) = u {
                            *daj += scale * u[i] * d1 * ui;
                            uu[i] = scale * u[i] * (d1 * vaj + aj * d2 * ui);
                        }
                    }
                }
                vv
            })
            .collect();
        let vv = sum_in_order(&parts, n);
        if u.is_some() {
            self.backward_columns(x, &ws.u, &da, dir);
        }
        vv
    }

    /// The tangent features Φ (n × P): column j·D + c is ∂σ*(x_i; θ_j)/∂θ_jc.
    /// Call after `forward` on the same θ and x.
    pub fn tangent_features(&self, theta: &[f64], x: MatRef<'_, f64>, ws: &Workspace) -> Mat<f64> {
        let (n, nn, dd, d) = (ws.n, self.n_particles, self.dim(), self.d);
        let a = self.a(theta);
        Mat::from_fn(n, nn * dd, |i, col| {
            let (j, c) = (col / dd, col % dd);
            if c == 0 {
                ws.s[j * n + i]
            } else {
                let g = a[j] * ws.d1[j * n + i];
                if c <= d {
                    g * x[(i, c - 1)]
                } else {
                    g
                }
            }
        })
    }

    /// The full Jacobian ∂v/∂θ (P × P), assembled as −(1/(nN)) ΦᵀΦ (one GEMM) plus the
    /// block-diagonal curvature term.
    pub fn jacobian(
        &self,
        theta: &[f64],
        batch: &Batch<'_>,
        ws: &mut Workspace,
        mut out: MatMut<'_, f64>,
    ) {
        let x = batch.x;
        self.forward(theta, x, ws, true);
        let r = self.residual(ws, batch.y, batch.f0);
        let (n, nn, dd) = (ws.n, self.n_particles, self.dim());
        let phi = self.tangent_features(theta, x, ws);
        let g = -1.0 / (n as f64 * nn as f64);
        let weighted = self.curvatures(ws, batch.y, batch.f0).map(|c| {
            let mut cphi = phi.clone();
            for (i, ci) in c.iter().enumerate() {
                for j in 0..cphi.ncols() {
                    cphi[(i, j)] *= ci;
                }
            }
            cphi
        });
        matmul(
            out.rb_mut(),
            Accum::Replace,
            weighted.as_ref().unwrap_or(&phi).transpose(),
            phi.as_ref(),
            g,
            self.par,
        );
        let blocks = self.curvature_blocks(theta, x, &r, ws);
        crate::linalg::add_block_diagonal(out.rb_mut(), dd, &blocks);
        if self.fixed_a {
            // ȧ_j ≡ 0: its rows vanish.
            for j in 0..nn {
                out.rb_mut().row_mut(j * dd).fill(0.0);
            }
        }
    }

    /// The curvature blocks B_j = (1/(αn)) Σ_i r_i ∇²σ*(x_i; θ_j), each D × D row-major, one
    /// after the other (after `forward` with second derivatives on the same θ and x). With
    /// x̃ = (x, 1 if bias), the (a, w̃) entries are Σ_i c r_i σ'_ij x̃_i and the (w̃, w̃) ones
    /// Σ_i c a_j r_i σ''_ij x̃_i x̃_iᵀ: two GEMMs over the samples, the second against the
    /// products x̃_ik x̃_il.
    fn curvature_blocks(
        &self,
        theta: &[f64],
        x: MatRef<'_, f64>,
        r: &[f64],
        ws: &Workspace,
    ) -> Vec<f64> {
        let (n, nn, dd, d) = (ws.n, self.n_particles, self.dim(), self.d);
        let e = dd - 1;
        let c = 1.0 / (self.alpha * n as f64);
        let a = self.a(theta);
        let xt = Mat::from_fn(n, e, |i, k| if k < d { x[(i, k)] } else { 1.0 });
        let pairs = Mat::from_fn(n, e * e, |i, kl| xt[(i, kl / e)] * xt[(i, kl % e)]);
        let w1 = Mat::from_fn(n, nn, |i, j| c * r[i] * ws.d1[j * n + i]);
        let w2 = Mat::from_fn(n, nn, |i, j| c * a[j] * r[i] * ws.d2[j * n + i]);
        let mut b01 = Mat::<f64>::zeros(nn, e);
        matmul(
            b01.as_mut(),
            Accum::Replace,
            w1.transpose(),
            xt.as_ref(),
            1.0,
            self.par,
        );
        let mut b11 = Mat::<f64>::zeros(nn, e * e);
        matmul(
            b11.as_mut(),
            Accum::Replace,
            w2.transpose(),
            pairs.as_ref(),
            1.0,
            self.par,
        );
        let mut blocks = vec![0.0; nn * dd * dd];
        blocks
            .par_chunks_mut(dd * dd)
            .enumerate()
            .for_each(|(j, b)| {
                for k in 0..e {
                    b[k + 1] = b01[(j, k)];
                    b[(k + 1) * dd] = b01[(j, k)];
                    for l in 0..e {
                        b[(k + 1) * dd + l + 1] = b11[(j, k * e + l)];
                    }
                }
            });
        blocks
    }

    /// The Jacobian of the velocity in its structured form: J = blockdiag(B_j) − L R with
    /// R = Φ/√(nN) (n × P) and L = Rᵀ (its a-rows zero when a is fixed, as J's are): O(P·(n + D))
    /// numbers instead of P².
    pub fn jacobian_low_rank(
        &self,
        theta: &[f64],
        batch: &Batch<'_>,
        ws: &mut Workspace,
    ) -> crate::linalg::LowRankJacobian {
        let x = batch.x;
        self.forward(theta, x, ws, true);
        let r = self.residual(ws, batch.y, batch.f0);
        let (n, nn, dd) = (ws.n, self.n_particles, self.dim());
        let mut blocks = self.curvature_blocks(theta, x, &r, ws);
        let g = 1.0 / (n as f64 * nn as f64).sqrt();
        let mut right = self.tangent_features(theta, x, ws);
        right *= faer::Scale(g);
        let mut left_t = right.clone();
        if let Some(c) = self.curvatures(ws, batch.y, batch.f0) {
            for (i, ci) in c.iter().enumerate() {
                for j in 0..left_t.ncols() {
                    left_t[(i, j)] *= ci;
                }
            }
        }
        if self.fixed_a {
            for j in 0..nn {
                left_t.col_mut(j * dd).fill(0.0);
                blocks[j * dd * dd..j * dd * dd + dd].fill(0.0);
            }
        }
        crate::linalg::LowRankJacobian::new(dd, blocks, left_t, right)
    }

    /// The tangent-kernel Gram on the rows of x:
    /// K(x, x') = (1/N) Σ_j ⟨∇σ*(x; θ_j), ∇σ*(x'; θ_j)⟩. One forward pass, then GEMMs.
    pub fn kernel(&self, theta: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace) -> Mat<f64> {
        let f = self.kernel_features(theta, x, ws);
        self.kernel_between(&f, x, &f, x, (!self.fixed_a, true))
    }

    /// The share of the tangent kernel from the parameters `params` trains: the output
    /// weights' σσ' term (random features), the first layer's (neural tangent), or both.
    pub fn kernel_of(
        &self,
        theta: &[f64],
        x1: MatRef<'_, f64>,
        x2: MatRef<'_, f64>,
        params: crate::model::Params,
        ws: &mut Workspace,
    ) -> Mat<f64> {
        let (out, hidden) = params.trains();
        let f1 = self.kernel_features(theta, x1, ws);
        let f2 = self.kernel_features(theta, x2, ws);
        self.kernel_between(&f1, x1, &f2, x2, (out && !self.fixed_a, hidden))
    }

    /// σ(z_ij) and a_j σ'(z_ij) on the rows of x, since
    /// ⟨∇σ*(x; θ_j), ∇σ*(x'; θ_j)⟩ = σσ' + a_j² σ'(z)σ'(z') (⟨x, x'⟩ + 1_bias).
    fn kernel_features(
        &self,
        theta: &[f64],
        x: MatRef<'_, f64>,
        ws: &mut Workspace,
    ) -> (Mat<f64>, Mat<f64>) {
        let nn = self.n_particles;
        let a = self.a(theta);
        self.forward(theta, x, ws, false);
        let k = x.nrows();
        (
            view(&ws.s, k, nn).to_owned(),
            Mat::from_fn(k, nn, |i, j| a[j] * ws.d1[j * k + i]),
        )
    }

    fn kernel_between(
        &self,
        (s1, g1): &(Mat<f64>, Mat<f64>),
        x1: MatRef<'_, f64>,
        (s2, g2): &(Mat<f64>, Mat<f64>),
        x2: MatRef<'_, f64>,
        (output, hidden): (bool, bool),
    ) -> Mat<f64> {
        let nn = self.n_particles;
        let (k1, k2) = (x1.nrows(), x2.nrows());
        let inv = 1.0 / nn as f64;
        let mut kmat = Mat::<f64>::zeros(k1, k2);
        // The σσ' term is the output weights' share of the kernel.
        if output {
            matmul(
                kmat.as_mut(),
                Accum::Replace,
                s1.as_ref(),
                s2.transpose(),
                inv,
                self.par,
            );
        }
        if !hidden {
            return kmat;
        }
        let mut g = Mat::<f64>::zeros(k1, k2);
        matmul(
            g.as_mut(),
            Accum::Replace,
            g1.as_ref(),
            g2.transpose(),
            inv,
            self.par,
        );
        let mut xx = Mat::<f64>::zeros(k1, k2);
        matmul(
            xx.as_mut(),
            Accum::Replace,
            x1,
            x2.transpose(),
            1.0,
            self.par,
        );
        let off = if self.bias { 1.0 } else { 0.0 };
        for l in 0..k2 {
            for i in 0..k1 {
                kmat[(i, l)] += g[(i, l)] * (xx[(i, l)] + off);
            }
        }
        kmat
    }
}

/// Mean squared error E_i (y_i − f_i)².
pub fn mse(y: &[f64], f: &[f64]) -> f64 {
    crate::model::loss::Loss::mean(&crate::model::loss::Square, y, f)
}
