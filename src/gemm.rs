//! C ← β C + α A B for f64 with an AVX2/FMA register tile, where faer's GEMM ran below the
//! machine's rate on the shapes the eigensolver and the linear networks use (measured in
//! `benches/kernels.rs`).
//!
//! The loops are the usual packed ones (BLIS): B in KC × NC blocks, A in MC × KC blocks, an
//! 8 × 6 tile of C (two 4-lane columns of 8 rows by 6 columns) in registers over each KC run.
//! Tasks are fixed MC × `TASK_COLS` blocks of C, and every entry of C sums its KC blocks in
//! order, so the result does not depend on the thread count. `lower` restricts the update to
//! the lower triangle of a square C (the rank-2k update of the tridiagonal reduction): tiles
//! above the diagonal are skipped and the diagonal ones write only their lower part.
//!
//! Without AVX2/FMA, or for a C whose columns are not contiguous, it is faer's matmul.

use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

const MR: usize = 8;
const NR: usize = 6;
/// Depth of a packed block (A block 128 × 256 doubles = 256 KB, half of L2).
const KC: usize = 256;
const MC: usize = 128;
/// Columns of B packed at a time (KC × NC doubles = 6 MB, in L3).
const NC: usize = 3072;
/// Columns of C per task (a multiple of NR).
const TASK_COLS: usize = 192;

/// dst ← (dst if `accum` is Add, else 0) + α·A·B; with `lower`, only on and below the diagonal
/// of the square dst (its upper part is left as it was).
pub fn matmul(
    dst: MatMut<'_, f64>,
    accum: Accum,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    alpha: f64,
    lower: bool,
    par: Par,
) {
    assert_eq!(dst.nrows(), a.nrows(), "gemm: rows of C and A");
    assert_eq!(dst.ncols(), b.ncols(), "gemm: columns of C and B");
    assert_eq!(a.ncols(), b.nrows(), "gemm: inner dimensions");
    if lower {
        assert_eq!(dst.nrows(), dst.ncols(), "gemm: `lower` needs a square C");
    }
    #[cfg(target_arch = "x86_64")]
    if fast() && dst.row_stride() == 1 && dst.col_stride() > 0 && dst.ncols() > 0 && dst.nrows() > 0
    {
        packed(dst, accum, a, b, alpha, lower, par);
        return;
    }
    if lower {
        triangular::matmul(
            dst,
            BlockStructure::TriangularLower,
            accum,
            a,
            BlockStructure::Rectangular,
            b,
            BlockStructure::Rectangular,
            alpha,
            par,
        );
    } else {
        faer::linalg::matmul::matmul(dst, accum, a, b, alpha, par);
    }
}

#[cfg(target_arch = "x86_64")]
fn fast() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// A raw view of C shared by the tasks, each of which writes its own disjoint block.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f64,
    ld: usize,
}
// SAFETY: tasks write disjoint blocks of C (see `packed`).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

#[cfg(target_arch = "x86_64")]
fn packed(
    mut dst: MatMut<'_, f64>,
    accum: Accum,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    alpha: f64,
    lower: bool,
    par: Par,
) {
    let (m, n, k) = (dst.nrows(), dst.ncols(), a.ncols());
    if k == 0 {
        if accum == Accum::Replace {
            // α A B = 0 (on the triangle with `lower`).
            for j in 0..n {
                let from = if lower { j } else { 0 };
                dst.as_mut()
                    .col_mut(j)
                    .subrows_mut(from, m - from)
                    .fill(0.0);
            }
        }
        return;
    }
    let out = Out {
        ptr: dst.as_ptr_mut(),
        ld: dst.col_stride() as usize,
    };
    // A column-major B is read in place (its columns' runs stay in L1 across an A block);
    // any other layout is packed.
    let direct = b.row_stride() == 1 && b.col_stride() > 0;
    let mut bp = if direct {
        vec![]
    } else {
        vec![0.0; KC * NC.min(n.div_ceil(NR) * NR)]
    };
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let add = accum == Accum::Add || pc > 0;
            if !direct {
                pack_b(b.submatrix(pc, jc, kc, nc), &mut bp, par);
            }
            let tasks: Vec<(usize, usize)> = (0..m)
                .step_by(MC)
                .flat_map(|ic| (0..nc).step_by(TASK_COLS).map(move |jt| (ic, jt)))
                // Blocks wholly above the diagonal have nothing to do.
                .filter(|&(ic, jt)| !lower || ic + MC.min(m - ic) > jc + jt)
                .collect();
            let run = |&(ic, jt): &(usize, usize)| {
                let mc = MC.min(m - ic);
                let cols = TASK_COLS.min(nc - jt);
                let mut ap = vec![0.0; mc.div_ceil(MR) * MR * kc];
                pack_a(a.submatrix(ic, pc, mc, kc), &mut ap);
                let o = out;
                for jr in (0..cols).step_by(NR) {
                    let (j, nr) = (jc + jt + jr, NR.min(cols - jr));
                    let bpanel = if direct {
                        Panel::Columns(b.submatrix(pc, j, kc, nr))
                    } else {
                        Panel::Packed(&bp[(jt + jr) / NR * NR * kc..][..NR * kc])
                    };
                    for ir in (0..mc).step_by(MR) {
                        let (i, mr) = (ic + ir, MR.min(mc - ir));
                        if lower && i + mr <= j {
                            continue;
                        }
                        let apanel = &ap[ir / MR * MR * kc..][..MR * kc];
                        // SAFETY: the CPU has AVX2 and FMA (`fast`); the panels hold kc·8 and
                        // kc·6 values; C's entries (i.., j..) of this tile lie inside dst and
                        // no other task writes them.
                        unsafe { tile(kc, apanel, bpanel, o, i, j, mr, nr, alpha, add, lower) };
                    }
                }
            };
            if par.degree() > 1 && tasks.len() > 1 {
                tasks.par_iter().for_each(run);
            } else {
                tasks.iter().for_each(run);
            }
        }
    }
}

/// A (mc × kc) in MR-row panels, k-major: panel p holds a[8p + r, k] at (p·kc + k)·8 + r, zero
/// past the last row.
fn pack_a(a: MatRef<'_, f64>, ap: &mut [f64]) {
    let (mc, kc) = (a.nrows(), a.ncols());
    for (p, panel) in ap.chunks_mut(MR * kc).enumerate() {
        let rows = MR.min(mc - p * MR);
        gather(a.submatrix(p * MR, 0, rows, kc), panel, MR);
    }
}

/// B (kc × nc) in NR-column panels, k-major: panel p holds b[k, 6p + c] at (p·kc + k)·6 + c,
/// zero past the last column.
fn pack_b(b: MatRef<'_, f64>, bp: &mut [f64], par: Par) {
    let (kc, nc) = (b.nrows(), b.ncols());
    let panels = nc.div_ceil(NR);
    let fill = |(p, panel): (usize, &mut [f64])| {
        let cols = NR.min(nc - p * NR);
        gather(b.submatrix(0, p * NR, kc, cols).transpose(), panel, NR);
    };
    let bp = &mut bp[..panels * NR * kc];
    if par.degree() > 1 && panels > 8 {
        bp.par_chunks_mut(NR * kc).enumerate().for_each(fill);
    } else {
        bp.chunks_mut(NR * kc).enumerate().for_each(fill);
    }
}

/// panel[k·w + r] = src[r, k] for r < src.nrows() ≤ w, zero for the rows past it; reads along
/// whichever of src's dimensions is contiguous.
fn gather(src: MatRef<'_, f64>, panel: &mut [f64], w: usize) {
    let (rows, kc) = (src.nrows(), src.ncols());
    let (rs, cs) = (src.row_stride(), src.col_stride());
    let p = src.as_ptr();
    // SAFETY: every (r, k) read is inside src.
    let at = |r: usize, k: usize| unsafe { *p.offset(r as isize * rs + k as isize * cs) };
    if rows < w {
        panel[..w * kc].fill(0.0);
    }
    if rs == 1 {
        for k in 0..kc {
            for r in 0..rows {
                panel[k * w + r] = at(r, k);
            }
        }
    } else {
        for r in 0..rows {
            for k in 0..kc {
                panel[k * w + r] = at(r, k);
            }
        }
    }
}

/// The B side of a tile: a packed panel (kc × 6, k-major) or up to 6 columns of a column-major
/// B read in place.
#[derive(Clone, Copy)]
enum Panel<'a> {
    Packed(&'a [f64]),
    Columns(MatRef<'a, f64>),
}

/// One tile of C at (i, j), mr × nr of it inside C: the 8 × 6 product of the panels over kc,
/// times α, added to C (or written over it when not `add`). Edge tiles and, with `lower`,
/// tiles that cross the diagonal go through a local buffer and write only their share.
///
/// # Safety
/// AVX2 and FMA; see the call in `packed`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    kc: usize,
    ap: &[f64],
    bp: Panel<'_>,
    out: Out,
    i: usize,
    j: usize,
    mr: usize,
    nr: usize,
    alpha: f64,
    add: bool,
    lower: bool,
) {
    let whole = mr == MR && nr == NR && !(lower && i < j + NR);
    let c = out.ptr.add(i + j * out.ld);
    // B's entry (k, q) of the tile at b + k·sk + q·sq.
    let (b, sk, sq) = match bp {
        Panel::Packed(p) => (p.as_ptr(), NR, 1),
        Panel::Columns(m) => (m.as_ptr(), 1, m.col_stride() as usize),
    };
    if whole {
        kernel(kc, ap.as_ptr(), b, sk, sq, c, out.ld, alpha, add);
        return;
    }
    let mut buf = [0.0f64; MR * NR];
    match bp {
        // Fewer than 6 columns in place: one at a time (sq = 0 repeats it over the tile).
        Panel::Columns(m) if m.ncols() < NR => {
            for q in 0..nr {
                let mut one = [0.0f64; MR * NR];
                let col = m.as_ptr().offset(q as isize * m.col_stride());
                kernel(
                    kc,
                    ap.as_ptr(),
                    col,
                    1,
                    0,
                    one.as_mut_ptr(),
                    MR,
                    alpha,
                    false,
                );
                buf[q * MR..(q + 1) * MR].copy_from_slice(&one[..MR]);
            }
        }
        _ => kernel(
            kc,
            ap.as_ptr(),
            b,
            sk,
            sq,
            buf.as_mut_ptr(),
            MR,
            alpha,
            false,
        ),
    }
    for q in 0..nr {
        let from = if lower { (j + q).saturating_sub(i) } else { 0 };
        for r in from..mr {
            let cij = c.add(r + q * out.ld);
            *cij = if add {
                *cij + buf[r + q * MR]
            } else {
                buf[r + q * MR]
            };
        }
    }
}

/// The 8 × 6 register tile: c[r + q·ld] (+)= α Σ_k a[8k + r] b[k·sk + q·sq].
///
/// # Safety
/// AVX2 and FMA; `a` holds kc·8 values and b[k·sk + q·sq] is readable for k < kc, q < 6;
/// c[r + q·ld] is writable for r < 8, q < 6.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    kc: usize,
    a: *const f64,
    b: *const f64,
    sk: usize,
    sq: usize,
    c: *mut f64,
    ld: usize,
    alpha: f64,
    add: bool,
) {
    use std::arch::x86_64::*;
    let z = _mm256_setzero_pd();
    let (mut c0a, mut c0b, mut c1a, mut c1b, mut c2a, mut c2b) = (z, z, z, z, z, z);
    let (mut c3a, mut c3b, mut c4a, mut c4b, mut c5a, mut c5b) = (z, z, z, z, z, z);
    let bq = [
        b,
        b.add(sq),
        b.add(2 * sq),
        b.add(3 * sq),
        b.add(4 * sq),
        b.add(5 * sq),
    ];
    for k in 0..kc {
        let a0 = _mm256_loadu_pd(a.add(k * MR));
        let a1 = _mm256_loadu_pd(a.add(k * MR + 4));
        let o = k * sk;
        macro_rules! col {
            ($q:expr, $ca:ident, $cb:ident) => {
                let bq = _mm256_broadcast_sd(&*bq[$q].add(o));
                $ca = _mm256_fmadd_pd(a0, bq, $ca);
                $cb = _mm256_fmadd_pd(a1, bq, $cb);
            };
        }
        col!(0, c0a, c0b);
        col!(1, c1a, c1b);
        col!(2, c2a, c2b);
        col!(3, c3a, c3b);
        col!(4, c4a, c4b);
        col!(5, c5a, c5b);
    }
    let al = _mm256_set1_pd(alpha);
    macro_rules! put {
        ($q:expr, $ca:ident, $cb:ident) => {
            let p = c.add($q * ld);
            if add {
                _mm256_storeu_pd(p, _mm256_fmadd_pd($ca, al, _mm256_loadu_pd(p)));
                _mm256_storeu_pd(
                    p.add(4),
                    _mm256_fmadd_pd($cb, al, _mm256_loadu_pd(p.add(4))),
                );
            } else {
                _mm256_storeu_pd(p, _mm256_mul_pd($ca, al));
                _mm256_storeu_pd(p.add(4), _mm256_mul_pd($cb, al));
            }
        };
    }
    put!(0, c0a, c0b);
    put!(1, c1a, c1b);
    put!(2, c2a, c2b);
    put!(3, c3a, c3b);
    put!(4, c4a, c4b);
    put!(5, c5a, c5b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    fn filled(r: usize, c: usize, seed: usize) -> Mat<f64> {
        Mat::from_fn(r, c, |i, j| {
            (((i * 7 + j * 13 + seed * 31) % 41) as f64 - 20.0) / 17.0
        })
    }

    fn max_abs(m: MatRef<'_, f64>) -> f64 {
        let mut x = 0.0f64;
        for j in 0..m.ncols() {
            for i in 0..m.nrows() {
                x = x.max(m[(i, j)].abs());
            }
        }
        x
    }

    /// Against faer's matmul at shapes that cross every block edge (MR, NR, KC, MC, tasks),
    /// both accumulations, transposed operands, and the lower triangle with the upper part
    /// left untouched.
    #[test]
    fn matches_faer_on_every_edge() {
        let shapes = [
            (1, 1, 1),
            (8, 6, 1),
            (9, 7, 5),
            (13, 200, 3),
            (130, 70, 257),
            (300, 411, 64),
            (257, 193, 600),
        ];
        for (m, n, k) in shapes {
            // B packed (a transposed view) and read in place (column-major).
            for (accum, packed) in [
                (Accum::Replace, true),
                (Accum::Add, true),
                (Accum::Add, false),
            ] {
                let a = filled(m, k, 1);
                let bt = filled(n, k, 2);
                let b_cols = bt.transpose().to_owned();
                let b = if packed {
                    bt.transpose()
                } else {
                    b_cols.as_ref()
                };
                let c0 = filled(m, n, 3);
                let mut ours = c0.clone();
                let mut theirs = c0.clone();
                matmul(
                    ours.as_mut(),
                    accum,
                    a.as_ref(),
                    b,
                    -0.7,
                    false,
                    Par::rayon(2),
                );
                faer::linalg::matmul::matmul(theirs.as_mut(), accum, a.as_ref(), b, -0.7, Par::Seq);
                let diff = &ours - &theirs;
                assert!(
                    max_abs(diff.as_ref())
                        <= 1e-13 * (k as f64) * max_abs(theirs.as_ref()).max(1.0),
                    "({m}, {n}, {k}) {accum:?} packed B {packed}: {:e}",
                    max_abs(diff.as_ref())
                );
            }
        }
        for n in [1, 5, 8, 47, 200, 390] {
            let k = 64;
            let a = filled(n, k, 4);
            let bt = filled(n, k, 5);
            let c0 = filled(n, n, 6);
            let mut ours = c0.clone();
            matmul(
                ours.as_mut(),
                Accum::Add,
                a.as_ref(),
                bt.transpose(),
                -1.0,
                true,
                Par::rayon(2),
            );
            let full = &c0 - &a * bt.transpose();
            for j in 0..n {
                for i in 0..n {
                    let want = if i >= j { full[(i, j)] } else { c0[(i, j)] };
                    assert!(
                        (ours[(i, j)] - want).abs() <= 1e-12,
                        "lower n = {n} at ({i}, {j})"
                    );
                }
            }
        }
    }

    #[test]
    fn any_thread_count_gives_the_same_bits() {
        let (m, n, k) = (333, 517, 300);
        let a = filled(m, k, 7);
        let b = filled(k, n, 8);
        let run = |par: Par| {
            let mut c = Mat::zeros(m, n);
            matmul(
                c.as_mut(),
                Accum::Replace,
                a.as_ref(),
                b.as_ref(),
                1.0,
                false,
                par,
            );
            c
        };
        let one = run(Par::Seq);
        assert!(one == run(Par::rayon(2)));
        assert!(one == run(Par::rayon(3)));
    }
}
