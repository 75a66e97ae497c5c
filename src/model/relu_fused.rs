//! The relu velocity as two hand-tiled GEMM passes with the elementwise work fused into them.
//!
//! Relu is positively 1-homogeneous, σ(z) = z σ'(z), so with x̄ = (x, 1 if bias),
//! w̄_j = (w_j, b_j), c = 1/(αn) and the residual r = y − f, the whole velocity comes from one
//! sum per particle:
//!
//!   S_j = c Σ_i r_i σ'(z_ij) x̄_i,   v_w̄_j = a_j S_j,   v_a_j = c Σ_i r_i σ(z_ij) = ⟨w̄_j, S_j⟩.
//!
//! - **Forward:** Z = X̄ W̄ᵀ by 6 × 8 register tiles (6 samples, 8 particles). While a tile is in
//!   registers it adds (α/N) a_j σ(z_ij) into the outputs f_i and keeps σ'(z_ij) ∈ {0, 1} as one
//!   bit: a byte per sample and 8 particles, n·N/8 bytes instead of the n·N doubles of σ and σ'.
//! - **Backward:** Sᵀ = X̃ᵀ M with X̃ = diag(c r) X̄ and M the 0/1 matrix σ'(z), by 6 × 8 tiles
//!   (6 features, 8 particles): each mask byte selects two 4-lane rows of a 16-entry table of 0/1
//!   vectors, so the bits feed the FMAs directly.
//!
//! Work is split in fixed blocks of particles (`NC`) and samples (`Shape::rows`), never by thread
//! count, and every sum runs in a fixed order, so any thread count gives the same bits. The
//! kernels need x86-64 with AVX2 and FMA; elsewhere `TwoLayer` keeps its faer path.

#![deny(unsafe_op_in_unsafe_fn)]

use super::{Batch, TwoLayer};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Rows of a register tile: samples in the forward pass, features in the backward pass.
const MR: usize = 6;
/// Columns of a register tile: particles, one mask byte.
const NR: usize = 8;
/// Particles per task (a multiple of NR): its packed W̄ stays in L2 (128 KB at d̄ = 64).
const NC: usize = 256;
/// Widest x̄ the fused path takes: a forward column panel (d̄ × 8 doubles) must stay in L1.
const MAX_FEATURES: usize = 512;

/// Set to anything but "0" or "", `MEANFIELD_PORTABLE` turns the fused pass off, so that CI
/// covers the faer path that CPUs without AVX2 and FMA take (.ci/run).
pub(crate) const PORTABLE_ENV: &str = "MEANFIELD_PORTABLE";

/// Whether the fused pass runs for inputs of d̄ = d + bias features on this CPU.
pub(crate) fn available(features: usize) -> bool {
    static CPU: OnceLock<bool> = OnceLock::new();
    features <= MAX_FEATURES
        && *CPU.get_or_init(|| {
            let portable = std::env::var(PORTABLE_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
            !portable
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
}

/// Sizes of one pass.
#[derive(Clone, Copy)]
struct Shape {
    n: usize,
    /// n rounded up to MR: padded samples have x̄ = 0 and r = 0.
    n_pad: usize,
    /// Samples per cache block (a multiple of MR), shared by both passes.
    rows: usize,
    /// d̄ = d + bias.
    feats: usize,
    /// ⌈d̄ / MR⌉ backward row tiles.
    f_tiles: usize,
    nn: usize,
    dim: usize,
}

impl Shape {
    fn new(m: &TwoLayer, n: usize) -> Shape {
        let feats = m.d + usize::from(m.bias);
        let n_pad = n.div_ceil(MR) * MR;
        // A block of packed inputs (rows × d̄ doubles) of about 64 KB stays in L2.
        let rows = ((8192 / feats.max(1)) / MR * MR).clamp(MR, 384);
        Shape {
            n,
            n_pad,
            rows,
            feats,
            f_tiles: feats.div_ceil(MR),
            nn: m.n_particles,
            dim: m.dim(),
        }
    }

    fn chunks(&self) -> usize {
        self.nn.div_ceil(NC)
    }

    /// Register-tile groups of chunk `ch` (the last one may be short).
    fn groups(&self, ch: usize) -> usize {
        (self.nn - ch * NC).min(NC).div_ceil(NR)
    }

    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.n_pad)
            .step_by(self.rows)
            .map(|i0| (i0, self.rows.min(self.n_pad - i0)))
    }
}

/// x̄_ik, with the bias input 1.
fn input(batch: &Batch<'_>, d: usize, i: usize, k: usize) -> f64 {
    if k < d {
        batch.x[(i, k)]
    } else {
        1.0
    }
}

/// What the forward pass leaves for the backward one.
struct Forward {
    /// σ'(z) bits: for each group of 8 particles, one byte per (padded) sample.
    mask: Vec<u8>,
    /// r_i = y_i − f_i (+ f(θ₀)_i).
    r: Vec<f64>,
    /// X̃ᵀ packed for the backward pass (`scaled_inputs`).
    xt: Vec<f64>,
}

/// The mean-field velocity of a relu network into `out` (length P); returns the residual.
pub fn velocity(m: &TwoLayer, theta: &[f64], batch: &Batch<'_>, out: &mut [f64]) -> Vec<f64> {
    let sh = Shape::new(m, batch.x.nrows());
    let fw = forward(m, &sh, theta, batch);
    out.par_chunks_mut(NC * sh.dim)
        .zip(theta.par_chunks(NC * sh.dim))
        .enumerate()
        .for_each(|(ch, (out, th))| {
            let s = sums(&sh, &fw.mask, &fw.xt, ch);
            for (p, (o, t)) in out.chunks_mut(sh.dim).zip(th.chunks(sh.dim)).enumerate() {
                let (va, a) = (particle_a(m, &sh, &s, p, t), t[0]);
                o[0] = va;
                for (f, of) in o[1..].iter_mut().enumerate() {
                    *of = a * sum_of(&sh, &s, p, f);
                }
            }
        });
    fw.r
}

/// One GD step θ ← θ + h v(θ) in place, the same sums as `velocity`; returns the residual at
/// the old θ.
pub fn step(m: &TwoLayer, theta: &mut [f64], batch: &Batch<'_>, h: f64) -> Vec<f64> {
    let sh = Shape::new(m, batch.x.nrows());
    let fw = forward(m, &sh, theta, batch);
    theta
        .par_chunks_mut(NC * sh.dim)
        .enumerate()
        .for_each(|(ch, th)| {
            let s = sums(&sh, &fw.mask, &fw.xt, ch);
            for (p, t) in th.chunks_mut(sh.dim).enumerate() {
                // v_a reads the old w̄ and v_w̄ the old a.
                let (va, a) = (particle_a(m, &sh, &s, p, t), t[0]);
                t[0] += h * va;
                for (f, tf) in t[1..].iter_mut().enumerate() {
                    *tf += h * (a * sum_of(&sh, &s, p, f));
                }
            }
        });
    fw.r
}

/// S_{j,f} of the chunk's p-th particle from its register tiles.
fn sum_of(sh: &Shape, s: &[f64], p: usize, f: usize) -> f64 {
    let (g, lane) = (p / NR, p % NR);
    s[((g * sh.f_tiles + f / MR) * MR + f % MR) * NR + lane]
}

/// v_a = ⟨w̄_j, S_j⟩ (0 with fixed output weights).
fn particle_a(m: &TwoLayer, sh: &Shape, s: &[f64], p: usize, theta_j: &[f64]) -> f64 {
    if m.fixed_a {
        return 0.0;
    }
    (0..sh.feats)
        .map(|f| theta_j[1 + f] * sum_of(sh, s, p, f))
        .sum()
}

/// Z = X̄ W̄ᵀ tile by tile: the outputs f, the residual and the σ' bits; then the backward
/// pass's panels of diag(c r) X̄.
fn forward(m: &TwoLayer, sh: &Shape, theta: &[f64], batch: &Batch<'_>) -> Forward {
    // X̄ in MR-row panels, k-major: panel t holds x̄_{6t+q, k} at (t·d̄ + k)·6 + q.
    let mut xp = vec![0.0; sh.n_pad * sh.feats];
    xp.par_chunks_mut(MR * sh.feats)
        .enumerate()
        .for_each(|(t, panel)| {
            for k in 0..sh.feats {
                for q in 0..MR {
                    let i = t * MR + q;
                    if i < sh.n {
                        panel[k * MR + q] = input(batch, m.d, i, k);
                    }
                }
            }
        });
    let slab = NC / NR * sh.n_pad;
    let mut mask = vec![0u8; sh.nn.div_ceil(NR) * sh.n_pad];
    // Per chunk, each sample's output in 4 lanes (particles j ≡ lane mod 4 of the chunk).
    let mut parts = vec![0.0; sh.chunks() * sh.n_pad * 4];
    let scale = m.output_scale();
    mask.par_chunks_mut(slab)
        .zip(parts.par_chunks_mut(sh.n_pad * 4))
        .enumerate()
        .for_each(|(ch, (mask, part))| {
            let groups = sh.groups(ch);
            // W̄ of the chunk in NR-column panels, k-major; (α/N) a_j beside them.
            let mut wp = vec![0.0; groups * sh.feats * NR];
            let mut out_scale = vec![0.0; groups * NR];
            for p in 0..(sh.nn - ch * NC).min(NC) {
                let t = &theta[(ch * NC + p) * sh.dim..][..sh.dim];
                let (g, lane) = (p / NR, p % NR);
                for k in 0..sh.feats {
                    wp[(g * sh.feats + k) * NR + lane] = t[1 + k];
                }
                out_scale[p] = scale * t[0];
            }
            for (i0, rows) in sh.blocks() {
                for g in 0..groups {
                    for i in (i0..i0 + rows).step_by(MR) {
                        // SAFETY: `available` checked the CPU for AVX2 and FMA; the slices
                        // have the lengths the kernel reads and writes (d̄·6 and d̄·8 packed
                        // values, 8 scales, 6·4 partial outputs, 6 mask bytes).
                        unsafe {
                            kernels::forward_tile(
                                sh.feats,
                                &xp[i * sh.feats..][..sh.feats * MR],
                                &wp[g * sh.feats * NR..][..sh.feats * NR],
                                &out_scale[g * NR..][..NR],
                                &mut part[i * 4..(i + MR) * 4],
                                &mut mask[g * sh.n_pad + i..][..MR],
                            )
                        };
                    }
                }
            }
        });
    let r: Vec<f64> = (0..sh.n)
        .map(|i| {
            let f: f64 = (0..sh.chunks())
                .map(|ch| {
                    let l = &parts[(ch * sh.n_pad + i) * 4..][..4];
                    (l[0] + l[1]) + (l[2] + l[3])
                })
                .sum();
            m.loss.residual(batch.y[i], f, batch.f0.map(|f0| f0[i]))
        })
        .collect();
    let xt = scaled_inputs(m, sh, batch, &r);
    Forward { mask, r, xt }
}

/// X̃ᵀ = (diag(c r) X̄)ᵀ in MR-feature panels, sample-major: panel t holds c r_i x̄_{i, 6t+q} at
/// (t·n_pad + i)·6 + q.
fn scaled_inputs(m: &TwoLayer, sh: &Shape, batch: &Batch<'_>, r: &[f64]) -> Vec<f64> {
    let c = 1.0 / (m.alpha * sh.n as f64);
    let mut xt = vec![0.0; sh.f_tiles * sh.n_pad * MR];
    xt.par_chunks_mut(sh.n_pad * MR)
        .enumerate()
        .for_each(|(t, panel)| {
            for i in 0..sh.n {
                let cr = c * r[i];
                for q in 0..MR {
                    let k = t * MR + q;
                    if k < sh.feats {
                        panel[i * MR + q] = cr * input(batch, m.d, i, k);
                    }
                }
            }
        });
    xt
}

/// The sums S of chunk `ch`'s particles as register tiles: group g, feature tile t at
/// (g·f_tiles + t)·48, 6 features × 8 particles row-major. Samples in block order.
fn sums(sh: &Shape, mask: &[u8], xt: &[f64], ch: usize) -> Vec<f64> {
    let groups = sh.groups(ch);
    let mask = &mask[ch * (NC / NR) * sh.n_pad..];
    let mut s = vec![0.0; groups * sh.f_tiles * MR * NR];
    for (i0, rows) in sh.blocks() {
        for g in 0..groups {
            for t in 0..sh.f_tiles {
                // SAFETY: `available` checked the CPU for AVX2 and FMA; the panel holds
                // `rows` samples × 6 features, the mask `rows` bytes and the tile 48 sums.
                unsafe {
                    kernels::backward_tile(
                        rows,
                        &xt[(t * sh.n_pad + i0) * MR..][..rows * MR],
                        &mask[g * sh.n_pad + i0..][..rows],
                        &mut s[(g * sh.f_tiles + t) * MR * NR..][..MR * NR],
                    )
                };
            }
        }
    }
    s
}

mod kernels {
    //! The two register-tile kernels. They take slices and read and write only through
    //! pointers derived from them, within extents that `debug_assert!` checks on entry; in
    //! release builds the callers' bounds-checked slicing (`&xp[i..][..len]`) enforces the same
    //! extents before the call. Every unsafe operation is in its own block with the reason it is
    //! sound.

    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// Rank-1 update of a 6 × 8 register tile: row r (accumulators c_r0, c_r1) gains
    /// a[r]·(b0, b1), a[r] broadcast from `ak`, which points at 6 readable values.
    macro_rules! six_rows {
        ($ak:ident, $b0:ident, $b1:ident; $($r:literal $c0:ident $c1:ident),*) => {
            $(
                // SAFETY: $ak points at MR = 6 readable values (the caller's k-th row of a) and
                // $r < 6.
                let ar = _mm256_broadcast_sd(unsafe { &*$ak.add($r) });
                $c0 = _mm256_fmadd_pd(ar, $b0, $c0);
                $c1 = _mm256_fmadd_pd(ar, $b1, $c1);
            )*
        };
    }

    /// The 4-lane 0/1 vector of each nibble: lane l is bit l.
    #[repr(align(64))]
    struct Bits([f64; 64]);

    static BITS: Bits = Bits(bit_table());

    const fn bit_table() -> [f64; 64] {
        let mut t = [0.0; 64];
        let mut e = 0;
        while e < 16 {
            let mut l = 0;
            while l < 4 {
                if (e >> l) & 1 == 1 {
                    t[e * 4 + l] = 1.0;
                }
                l += 1;
            }
            e += 1;
        }
        t
    }

    /// One 6 × 8 tile of Z = X̄ W̄ᵀ over `kd` features, kept in registers; then, for each of its
    /// 6 samples, the 8 bits z > 0 into `mask` and Σ (α/N) a_j σ(z) into the sample's 4
    /// output lanes `f` (lane l: particles l and l + 4).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA. `a` holds kd·6 values, `b` kd·8, `scale` 8, `f` 24 and
    /// `mask` 6.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward_tile(
        kd: usize,
        a: &[f64],
        b: &[f64],
        scale: &[f64],
        f: &mut [f64],
        mask: &mut [u8],
    ) {
        debug_assert!(
            a.len() >= kd * MR,
            "forward_tile: a has {} < {kd}·6",
            a.len()
        );
        debug_assert!(
            b.len() >= kd * NR,
            "forward_tile: b has {} < {kd}·8",
            b.len()
        );
        debug_assert!(scale.len() >= NR && f.len() >= 4 * MR && mask.len() >= MR);
        let (a, b) = (a.as_ptr(), b.as_ptr());
        let z = _mm256_setzero_pd();
        let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) = (z, z, z, z, z, z);
        let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (z, z, z, z, z, z);
        for k in 0..kd {
            // SAFETY: k < kd, so b[k·8 .. k·8 + 8] and a[k·6 .. k·6 + 6] lie within the
            // asserted kd·8 and kd·6 values.
            let (b0, b1, ak) = unsafe {
                (
                    _mm256_loadu_pd(b.add(k * NR)),
                    _mm256_loadu_pd(b.add(k * NR + 4)),
                    a.add(k * MR),
                )
            };
            six_rows!(ak, b0, b1; 0 c00 c01, 1 c10 c11, 2 c20 c21, 3 c30 c31, 4 c40 c41, 5 c50 c51);
        }
        // SAFETY: scale holds at least 8 values.
        let (s0, s1) = unsafe {
            (
                _mm256_loadu_pd(scale.as_ptr()),
                _mm256_loadu_pd(scale.as_ptr().add(4)),
            )
        };
        let f = f.as_mut_ptr();
        macro_rules! out {
            ($r:literal, $c0:ident, $c1:ident) => {
                let m0 = _mm256_cmp_pd::<_CMP_GT_OQ>($c0, z);
                let m1 = _mm256_cmp_pd::<_CMP_GT_OQ>($c1, z);
                mask[$r] = (_mm256_movemask_pd(m0) | (_mm256_movemask_pd(m1) << 4)) as u8;
                // SAFETY: f holds at least 24 values and $r < 6, so f[4r .. 4r + 4] is in it.
                let mut fr = unsafe { _mm256_loadu_pd(f.add(4 * $r)) };
                fr = _mm256_fmadd_pd(_mm256_and_pd(m0, $c0), s0, fr);
                fr = _mm256_fmadd_pd(_mm256_and_pd(m1, $c1), s1, fr);
                // SAFETY: as for the load.
                unsafe { _mm256_storeu_pd(f.add(4 * $r), fr) };
            };
        }
        out!(0, c00, c01);
        out!(1, c10, c11);
        out!(2, c20, c21);
        out!(3, c30, c31);
        out!(4, c40, c41);
        out!(5, c50, c51);
    }

    /// Adds to the 6 × 8 tile `c` (row-major) the sums over `kc` samples of a_{k,q} · bit_{k,l}:
    /// 6 features of X̃ against 8 particles' σ' bits.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA. `a` holds kc·6 values, `m` kc bytes and `c` 48 values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn backward_tile(kc: usize, a: &[f64], m: &[u8], c: &mut [f64]) {
        debug_assert!(
            a.len() >= kc * MR,
            "backward_tile: a has {} < {kc}·6",
            a.len()
        );
        debug_assert!(m.len() >= kc && c.len() >= MR * NR);
        let (t, a, c) = (BITS.0.as_ptr(), a.as_ptr(), c.as_mut_ptr());
        macro_rules! load {
            ($r:literal) => {
                // SAFETY: c holds 48 values and $r < 6, so c[8r .. 8r + 8] is in it.
                unsafe {
                    (
                        _mm256_loadu_pd(c.add($r * NR)),
                        _mm256_loadu_pd(c.add($r * NR + 4)),
                    )
                }
            };
        }
        let ((mut c00, mut c01), (mut c10, mut c11)) = (load!(0), load!(1));
        let ((mut c20, mut c21), (mut c30, mut c31)) = (load!(2), load!(3));
        let ((mut c40, mut c41), (mut c50, mut c51)) = (load!(4), load!(5));
        for (k, &byte) in m[..kc].iter().enumerate() {
            let byte = byte as usize;
            // SAFETY: a nibble is < 16, so the table's row nibble·4 .. nibble·4 + 4 lies in its
            // 64 values, 32-byte aligned (the table is 64-byte aligned, rows 32 bytes apart);
            // k < kc, so a[k·6 .. k·6 + 6] lies within the asserted kc·6 values.
            let (b0, b1, ak) = unsafe {
                (
                    _mm256_load_pd(t.add((byte & 15) * 4)),
                    _mm256_load_pd(t.add((byte >> 4) * 4)),
                    a.add(k * MR),
                )
            };
            six_rows!(ak, b0, b1; 0 c00 c01, 1 c10 c11, 2 c20 c21, 3 c30 c31, 4 c40 c41, 5 c50 c51);
        }
        macro_rules! store {
            ($r:literal, $c0:ident, $c1:ident) => {
                // SAFETY: as for `load!`.
                unsafe {
                    _mm256_storeu_pd(c.add($r * NR), $c0);
                    _mm256_storeu_pd(c.add($r * NR + 4), $c1);
                }
            };
        }
        store!(0, c00, c01);
        store!(1, c10, c11);
        store!(2, c20, c21);
        store!(3, c30, c31);
        store!(4, c40, c41);
        store!(5, c50, c51);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::activation::Activation;
    use crate::model::init::InitSpec;
    use crate::model::{init, Workspace};
    use faer::{Mat, Par};

    struct Case {
        model: TwoLayer,
        x: Mat<f64>,
        y: Vec<f64>,
        f0: Option<Vec<f64>>,
        theta: Vec<f64>,
    }

    fn case(n: usize, d: usize, nn: usize, bias: bool, fixed_a: bool, centred: bool) -> Case {
        let model = TwoLayer {
            act: Activation::named("relu").unwrap(),
            d,
            bias,
            n_particles: nn,
            alpha: 1.7,
            fixed_a,
            loss: std::sync::Arc::new(crate::model::loss::Square),
            par: Par::rayon(0),
        };
        let x = Mat::from_fn(n, d, |i, k| ((i * 37 + k * 11) % 23) as f64 / 11.0 - 1.0);
        let y = (0..n).map(|i| (0.3 * i as f64).cos()).collect();
        let f0 = centred.then(|| (0..n).map(|i| 0.1 * (i as f64).sin()).collect());
        let spec = InitSpec {
            b_std: 0.5,
            ..InitSpec::default()
        };
        let mut theta = init::draw(&spec, nn, d, bias, 7);
        // A neuron with w̄ = 0 has z = 0 on every sample: σ'(0) must count as 0, as on the faer
        // path.
        let dim = model.dim();
        if nn > 1 {
            theta[dim + 1..2 * dim].fill(0.0);
        }
        Case {
            model,
            x,
            y,
            f0,
            theta,
        }
    }

    impl Case {
        fn batch(&self) -> Batch<'_> {
            Batch {
                x: self.x.as_ref(),
                y: &self.y,
                f0: self.f0.as_deref(),
            }
        }
    }

    fn max_abs(v: &[f64]) -> f64 {
        v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
    }

    fn cases() -> Vec<Case> {
        vec![
            case(1, 1, 1, false, false, false),
            case(5, 3, 9, true, false, false),
            case(7, 2, 300, false, true, true),
            case(131, 17, 263, true, false, true),
            case(400, 70, 520, false, false, false),
            case(13, 130, 40, true, false, false),
        ]
    }

    #[test]
    fn fused_velocity_matches_the_faer_path() {
        if !available(1) {
            return;
        }
        for c in cases() {
            let p = c.model.n_params();
            let (mut fused, mut plain) = (vec![0.0; p], vec![0.0; p]);
            let r1 = velocity(&c.model, &c.theta, &c.batch(), &mut fused);
            let mut ws = Workspace::default();
            let r2 = c
                .model
                .velocity_unfused(&c.theta, &c.batch(), &mut ws, &mut plain);
            let diff: Vec<f64> = fused.iter().zip(&plain).map(|(a, b)| a - b).collect();
            assert!(
                max_abs(&diff) <= 1e-13 * max_abs(&plain),
                "n = {}, d = {}, N = {}: velocity differs by {:e} of {:e}",
                c.x.nrows(),
                c.model.d,
                c.model.n_particles,
                max_abs(&diff),
                max_abs(&plain)
            );
            let dr: Vec<f64> = r1.iter().zip(&r2).map(|(a, b)| a - b).collect();
            assert_eq!(r1.len(), r2.len());
            assert!(max_abs(&dr) <= 1e-13 * max_abs(&r2).max(1.0));
        }
    }

    #[test]
    fn the_step_adds_h_times_the_velocity() {
        if !available(1) {
            return;
        }
        for c in cases() {
            let mut v = vec![0.0; c.model.n_params()];
            velocity(&c.model, &c.theta, &c.batch(), &mut v);
            let mut theta = c.theta.clone();
            step(&c.model, &mut theta, &c.batch(), 0.25);
            for ((t, t0), vj) in theta.iter().zip(&c.theta).zip(&v) {
                assert_eq!(*t, t0 + 0.25 * vj);
            }
        }
    }

    #[test]
    fn any_thread_count_gives_the_same_bits() {
        if !available(1) {
            return;
        }
        let c = case(401, 33, 1030, true, false, false);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut v = vec![0.0; c.model.n_params()];
                velocity(&c.model, &c.theta, &c.batch(), &mut v);
                v
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }
}
