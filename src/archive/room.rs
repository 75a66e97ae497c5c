//! Room for the next write. HDF5 is not crash-consistent: a write that fails part-way (a full
//! disk, a file size limit) leaves a superblock that claims space never written, and the archive
//! then opens only after `h5clear`. So every write that grows an archive first checks that the
//! file system's free space and the process's file size limit (`ulimit -f`) hold it, plus a
//! reserve for closing the archive (statuses, statistics, descriptions). When they do not, the
//! run stops cleanly before writing: every earlier save stays readable, the statuses say why, and
//! `run --resume` continues once there is room.
//!
//! Once the check passes, the bytes are set aside for the file (`hold`), so another process
//! filling the disk between the check and the write cannot take them, and given back when the
//! archive is closed (`release`). What remains possible is a write larger than estimated on a
//! disk that another process filled meanwhile; for that, saves still write `t` last and
//! `--resume` verifies the last save (issue 25).

use std::path::Path;

/// Kept free for what is written after the last checked write: the statuses after a refused
/// one, or a finished run's statistics and the descriptions. Measured: at most 10 KiB of file
/// growth on the shipped problems, so this is a 25-fold margin.
pub(crate) const RESERVE: u64 = 256 << 10;

/// Metadata a dataset may grow by when one row is appended (a chunk-index node, its object
/// header), on top of the row's chunks.
pub(crate) const PER_DATASET: u64 = 8 << 10;

/// Set to skip the check (`MEANFIELD_UNCHECKED_WRITES=1`), only so that the fault tests can
/// still provoke what the check prevents: a write that fails part-way, as when another process
/// fills the disk between the check and the write.
const UNCHECKED: &str = "MEANFIELD_UNCHECKED_WRITES";

/// What limits the growth of the file at `path`, and by how much (`what` says it in words, with
/// `{}` where the amount goes).
struct Headroom {
    bytes: u64,
    what: String,
}

/// The smaller of the file system's free space (for unprivileged writers, plus what is already
/// set aside for this file) and what RLIMIT_FSIZE leaves beyond the file's current size; None
/// when neither is known or limited.
fn headroom(path: &Path) -> Option<Headroom> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut best: Option<Headroom> = None;
    let mut consider = |bytes: u64, what: String| {
        if best.as_ref().is_none_or(|b| bytes < b.bytes) {
            best = Some(Headroom { bytes, what });
        }
    };
    if let Some(free) = free_space(dir) {
        let free = free.saturating_add(held(path));
        consider(
            free,
            format!("the file system of {} has {{}} free", dir.display()),
        );
    }
    // SAFETY: getrlimit writes one rlimit struct, which we own.
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut rl) } == 0
        && rl.rlim_cur != libc::RLIM_INFINITY
    {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        consider(
            rl.rlim_cur.saturating_sub(size),
            "the file size limit (ulimit -f) leaves {} for it".to_string(),
        );
    }
    best
}

/// Bytes available to unprivileged writers on the file system holding `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs reads a NUL-terminated path and writes one struct, which we own.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 || s.f_blocks == 0 {
        // A file system that reports no size (some virtual ones): nothing to check against.
        return None;
    }
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Bytes of the file at `path` allocated past its end: set aside by `hold` and not yet written.
fn held(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| (m.blocks() * 512).saturating_sub(m.len()))
}

/// Sets aside `bytes` past the end of the file at `path` (fallocate with FALLOC_FL_KEEP_SIZE:
/// the blocks become the file's, its size and contents unchanged). Err only when the file system
/// has no room; one that cannot set space aside (no fallocate) is left to the check alone.
fn hold(path: &Path, bytes: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) else {
        return Ok(());
    };
    let (Ok(at), Ok(len)) = (i64::try_from(f.metadata()?.len()), i64::try_from(bytes)) else {
        return Ok(());
    };
    // SAFETY: fallocate on a descriptor we own; KEEP_SIZE leaves the file's size and data alone.
    if unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, at, len) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSPC) => Err(e),
        _ => Ok(()),
    }
}

/// Gives back what `hold` set aside past the end of the file at `path` (a truncation to its own
/// size frees the blocks beyond it). Called when an archive is closed or stops for want of room.
pub(crate) fn release(path: &Path) {
    if held(path) == 0 {
        return;
    }
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) {
        if let Ok(m) = f.metadata() {
            let _ = f.set_len(m.len());
        }
    }
}

/// Ok when `bytes` more (plus the reserve) fit beside the file at `path` (the file being
/// written, which need not exist yet), once they are set aside for it; otherwise the reason, in
/// words, for `what` ("the save at t = 9.5", "run gd").
pub(crate) fn check(path: &Path, bytes: u64, what: &str) -> Result<(), String> {
    if std::env::var_os(UNCHECKED).is_some_and(|v| v == "1") {
        return Ok(());
    }
    let Some(room) = headroom(path) else {
        return Ok(());
    };
    let need = bytes.saturating_add(RESERVE);
    if room.bytes >= need {
        return hold(path, need).map_err(|e| {
            format!(
                "no room for {what}: {} could not be set aside for it ({}; another writer took \
                 it since the check?)",
                size(need),
                crate::error::io_reason(&e)
            )
        });
    }
    Err(format!(
        "no room for {what}: it needs {} beyond the {} kept for closing the archive, and {}",
        size(bytes),
        size(RESERVE),
        room.what.replace("{}", &size(room.bytes)),
    ))
}

/// A byte count for people: "812 KiB", "3.4 MiB".
fn size(b: u64) -> String {
    const K: f64 = 1024.0;
    let b = b as f64;
    if b < K {
        format!("{b} bytes")
    } else if b < K * K {
        format!("{:.0} KiB", b / K)
    } else if b < K * K * K {
        format!("{:.1} MiB", b / (K * K))
    } else {
        format!("{:.1} GiB", b / (K * K * K))
    }
}

/// Bytes that appending one row to `ds` (chunked with one row per chunk along the first axis)
/// allocates: the chunks that cover a row, whole, plus the dataset's metadata growth.
pub(crate) fn row_bytes(ds: &hdf5::Dataset) -> u64 {
    let shape = ds.shape();
    let elem = ds.dtype().map(|t| t.size()).unwrap_or(8) as u64;
    let chunk = ds.chunk().unwrap_or_else(|| shape.clone());
    let mut bytes = elem;
    for (i, &n) in shape.iter().enumerate().skip(1) {
        let c = chunk.get(i).copied().unwrap_or(n).max(1);
        bytes = bytes.saturating_mul((n.div_ceil(c) * c) as u64);
    }
    bytes.saturating_mul(chunk.first().copied().unwrap_or(1).max(1) as u64) + PER_DATASET
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(super::size(812), "812 bytes");
        assert_eq!(super::size(300 << 10), "300 KiB");
        assert_eq!(super::size(3 << 20 | 400 << 10), "3.4 MiB");
    }

    #[test]
    fn a_check_beyond_the_free_space_is_refused_with_the_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.h5");
        let free = super::free_space(dir.path()).expect("a temporary folder has a size");
        assert!(super::check(&p, 1 << 10, "a small write").is_ok());
        let msg = super::check(&p, free, "the save at t = 1").unwrap_err();
        assert!(
            msg.contains("no room for the save at t = 1") && msg.contains("free"),
            "{msg}"
        );
    }

    #[test]
    fn held_space_is_the_files_until_released() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.h5");
        std::fs::write(&p, vec![7u8; 10_000]).unwrap();
        let before = std::fs::metadata(&p).unwrap();
        assert!(super::check(&p, 1 << 20, "a save").is_ok());
        let held = std::fs::metadata(&p).unwrap();
        // The size and contents are unchanged; the blocks past the end are the file's.
        assert_eq!(held.len(), 10_000);
        assert_eq!(std::fs::read(&p).unwrap(), vec![7u8; 10_000]);
        assert!(
            held.blocks() * 512 >= before.blocks() * 512 + (1 << 20) + super::RESERVE,
            "{} blocks before, {} after",
            before.blocks(),
            held.blocks()
        );
        // What is held counts as room for this file: checking again does not need twice as much.
        assert!(super::held(&p) >= (1 << 20) + super::RESERVE);
        super::release(&p);
        assert_eq!(std::fs::metadata(&p).unwrap().blocks(), before.blocks());
        assert_eq!(std::fs::read(&p).unwrap(), vec![7u8; 10_000]);
    }
}
