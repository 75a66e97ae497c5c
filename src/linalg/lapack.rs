//! The symmetric eigendecomposition from LAPACK (dsyevd through the `lapack` bindings; build.rs
//! links the system OpenBLAS).

use faer::{Mat, MatMut, MatRef};

/// dsyevd's workspace for one order and job, kept by callers that decompose every step.
pub struct EighWork {
    n: usize,
    vectors: bool,
    work: Vec<f64>,
    iwork: Vec<i32>,
}

impl EighWork {
    /// Asks dsyevd for its optimal workspace at order `n`.
    pub fn new(n: usize, vectors: bool) -> Result<EighWork, String> {
        let n32 = lapack_int(n)?;
        let (mut work, mut iwork, mut info) = ([0.0], [0], 0);
        let (mut a, mut w) = ([0.0], [0.0]);
        // SAFETY: a workspace query (lwork = liwork = −1) reads n and writes only work[0] and
        // iwork[0]; a and w are not touched.
        unsafe {
            lapack::dsyevd(
                job(vectors),
                b'L',
                n32,
                &mut a,
                n32.max(1),
                &mut w,
                &mut work,
                -1,
                &mut iwork,
                -1,
                &mut info,
            );
        }
        if info != 0 {
            return Err(format!(
                "LAPACK dsyevd refused its workspace query (info = {info})"
            ));
        }
        // LAPACK's minimum, in case the query answers less.
        let (lw_min, liw_min) = if vectors {
            (1 + 6 * n + 2 * n * n, 3 + 5 * n)
        } else {
            (2 * n + 1, 1)
        };
        let lwork = (work[0] as usize).max(lw_min);
        let liwork = (iwork[0] as usize).max(liw_min);
        lapack_int(lwork)?;
        lapack_int(liwork)?;
        Ok(EighWork {
            n,
            vectors,
            work: vec![0.0; lwork],
            iwork: vec![0; liwork],
        })
    }
}

fn job(vectors: bool) -> u8 {
    if vectors {
        b'V'
    } else {
        b'N'
    }
}

fn lapack_int(k: usize) -> Result<i32, String> {
    i32::try_from(k).map_err(|_| {
        format!("an eigendecomposition of this order needs {k} entries of workspace, more than LAPACK's 32-bit indices reach")
    })
}

/// Eigenvalues (ascending) of the symmetric matrix whose lower half `a` holds, into `values`;
/// with `vectors`, `a` is overwritten by the orthonormal eigenvectors (columns), otherwise its
/// lower half is destroyed. `a` must be column-major (unit row stride), as faer's `Mat` is.
pub fn eigh_in_place(
    a: MatMut<'_, f64>,
    values: &mut [f64],
    work: &mut EighWork,
) -> Result<(), String> {
    let n = a.nrows();
    assert!(
        a.ncols() == n && values.len() == n && work.n == n,
        "eigh_in_place: a {n} × {} matrix, {} values and a workspace for order {}",
        a.ncols(),
        values.len(),
        work.n
    );
    if n == 0 {
        return Ok(());
    }
    assert!(
        a.row_stride() == 1 && a.col_stride() >= n as isize,
        "eigh_in_place needs a column-major matrix"
    );
    if (0..n).any(|j| (j..n).any(|i| !a[(i, j)].is_finite())) {
        return Err("the matrix to decompose has non-finite entries".into());
    }
    let lda = a.col_stride() as usize;
    let len = lda * (n - 1) + n;
    // SAFETY: a is column-major with unit row stride and column stride lda, so its n columns lie
    // in the lda·(n − 1) + n values from its first entry, all of them within its allocation and
    // borrowed mutably through `a` for this call.
    let data = unsafe { std::slice::from_raw_parts_mut(a.as_ptr_mut(), len) };
    let (lwork, liwork) = (work.work.len() as i32, work.iwork.len() as i32);
    let mut info = 0;
    // SAFETY: data holds an n × n matrix at leading dimension lda, values n entries, and the
    // workspaces the sizes dsyevd asked for at this order and job.
    unsafe {
        lapack::dsyevd(
            job(work.vectors),
            b'L',
            n as i32,
            data,
            lda as i32,
            values,
            &mut work.work,
            lwork,
            &mut work.iwork,
            liwork,
            &mut info,
        );
    }
    match info {
        0 => Ok(()),
        i if i > 0 => Err(format!(
            "LAPACK dsyevd did not converge (info = {i}: an eigenvalue could not be computed)"
        )),
        i => Err(format!(
            "LAPACK dsyevd rejected argument {} (info = {i})",
            -i
        )),
    }
}

/// Eigenvalues (ascending) and, if asked, eigenvectors (columns) of a symmetric matrix whose
/// lower half is read.
pub fn eigh(m: MatRef<'_, f64>, vectors: bool) -> Result<(Vec<f64>, Option<Mat<f64>>), String> {
    let n = m.nrows();
    assert_eq!(n, m.ncols(), "eigh needs a square matrix");
    let mut a = m.to_owned();
    let mut values = vec![0.0; n];
    let mut work = EighWork::new(n, vectors)?;
    eigh_in_place(a.as_mut(), &mut values, &mut work)?;
    Ok((values, vectors.then_some(a)))
}
