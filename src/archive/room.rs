//! Room for the next write. HDF5 is not crash-consistent: a write that fails part-way (a full
//! disk, a file size limit) leaves a superblock that claims space never written, and the archive
//! then opens only after `h5clear`. So every write that grows an archive first checks that the
//! file system's free space and the process's file size limit (`ulimit -f`) hold it, plus a
//! reserve for closing the archive (statuses, statistics, descriptions). When they do not, the
//! run stops cleanly before writing: every earlier save stays readable, the statuses say why, and
//! `run --resume` continues once there is room.
//!
//! Once the check passes, the bytes are set aside for the file (`Room::hold`), so another
//! process filling the disk between the check and the write cannot take them; what is left is
//! given back when the archive's last writer goes. What remains possible is a write larger than
//! estimated on a disk that another process filled meanwhile, or a file system without
//! fallocate; for those, saves still write `t` last and `--resume` verifies the last save.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

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

/// What limits the growth of an archive, and by how much (`what` says it in words).
struct Headroom {
    bytes: u64,
    what: String,
}

/// The room of one archive: the folder it is in (for the file system's free space) and a
/// descriptor of its file (for its size and the blocks it holds), which stays the same inode
/// whatever its name (the temporary one, then its path). All the writers of one archive share
/// one, and each write holds `lock` from its check to its flush, so that every check sees the
/// writes before it. When the last writer drops it, what is still set aside is given back.
pub(crate) struct Room {
    dir: PathBuf,
    file: Option<std::fs::File>,
    lock: Mutex<()>,
}

impl Room {
    /// For an archive file in `dir` (`file`: None before it exists, or if it cannot be opened
    /// again; then nothing is set aside, and the check alone applies).
    pub(crate) fn new(dir: &Path, file: Option<std::fs::File>) -> Room {
        Room {
            dir: dir.to_path_buf(),
            file,
            lock: Mutex::new(()),
        }
    }

    /// Held from a write's check to its flush.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ok when `bytes` more (plus the reserve) fit, once they are set aside for the archive;
    /// otherwise the reason, in words, for `what` ("the save at t = 9.5", "run gd").
    pub(crate) fn check(&self, bytes: u64, what: &str) -> Result<(), String> {
        if std::env::var_os(UNCHECKED).is_some_and(|v| v == "1") {
            return Ok(());
        }
        let Some(room) = self.headroom() else {
            return Ok(());
        };
        let need = bytes.saturating_add(RESERVE);
        if room.bytes >= need {
            return self.hold(need).map_err(|e| {
                format!(
                    "no room for {what}: {} could not be set aside for it ({}; another writer \
                     took it since the check?)",
                    size(need),
                    crate::error::io_reason(&e)
                )
            });
        }
        Err(format!(
            "no room for {what}: it needs {} beyond the {} kept for closing the archive, and {}",
            size(bytes),
            size(RESERVE),
            room.what,
        ))
    }

    /// The smaller of the file system's free space (for unprivileged writers, plus what is
    /// already set aside for this archive) and what RLIMIT_FSIZE leaves beyond the file's size;
    /// None when neither is known or limited.
    fn headroom(&self) -> Option<Headroom> {
        let mut best: Option<Headroom> = None;
        let mut consider = |bytes: u64, what: String| {
            if best.as_ref().is_none_or(|b| bytes < b.bytes) {
                best = Some(Headroom { bytes, what });
            }
        };
        if let Some(free) = free_space(&self.dir) {
            let free = free.saturating_add(self.held());
            let what = format!(
                "the file system of {} has {} free",
                self.dir.display(),
                size(free)
            );
            consider(free, what);
        }
        // SAFETY: getrlimit writes one rlimit struct, which we own.
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut rl) } == 0
            && rl.rlim_cur != libc::RLIM_INFINITY
        {
            let left = rl
                .rlim_cur
                .saturating_sub(self.meta().map_or(0, |m| m.len()));
            consider(
                left,
                format!(
                    "the file size limit (ulimit -f) leaves {} for it",
                    size(left)
                ),
            );
        }
        best
    }

    fn meta(&self) -> Option<std::fs::Metadata> {
        self.file.as_ref()?.metadata().ok()
    }

    /// Bytes of the file allocated past its end: set aside by `hold` and not yet written (or
    /// the file system's own preallocation, which its writes use too).
    fn held(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        self.meta()
            .map_or(0, |m| (m.blocks() * 512).saturating_sub(m.len()))
    }

    /// Sets aside `bytes` past the end of the file (fallocate with FALLOC_FL_KEEP_SIZE: the
    /// blocks become the file's, its size and contents unchanged). Err when the file system or
    /// the quota has no room; a file system that cannot set space aside is left to the check.
    #[cfg(target_os = "linux")]
    fn hold(&self, bytes: u64) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let Some(f) = &self.file else {
            return Ok(());
        };
        let (Ok(at), Ok(len)) = (i64::try_from(f.metadata()?.len()), i64::try_from(bytes)) else {
            return Ok(());
        };
        // SAFETY: fallocate on a descriptor we own; KEEP_SIZE leaves size and data alone.
        if unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, at, len) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => Err(e),
            _ => Ok(()),
        }
    }

    /// Elsewhere (no fallocate with KEEP_SIZE) the check alone applies.
    #[cfg(not(target_os = "linux"))]
    fn hold(&self, _bytes: u64) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Room {
    /// Gives back what is still set aside past the file's end: a truncation to its own size
    /// frees the blocks beyond it. The last writer is gone, so nothing extends the file
    /// meanwhile.
    fn drop(&mut self) {
        if self.held() == 0 {
            return;
        }
        if let Some(f) = &self.file {
            if let Ok(m) = f.metadata() {
                let _ = f.set_len(m.len());
            }
        }
    }
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
        let free = super::free_space(dir.path()).expect("a temporary folder has a size");
        let room = super::Room::new(dir.path(), None);
        assert!(room.check(1 << 10, "a small write").is_ok());
        let msg = room.check(free, "the save at t = 1").unwrap_err();
        assert!(
            msg.contains("no room for the save at t = 1") && msg.contains("free"),
            "{msg}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn held_space_is_the_files_until_the_last_writer_goes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.h5");
        std::fs::write(&p, vec![7u8; 10_000]).unwrap();
        let before = std::fs::metadata(&p).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        let room = super::Room::new(dir.path(), Some(file));
        assert!(room.check(1 << 20, "a save").is_ok());
        let held = std::fs::metadata(&p).unwrap();
        // The size and contents are unchanged; the blocks past the end are the file's.
        assert_eq!(held.len(), 10_000);
        assert_eq!(std::fs::read(&p).unwrap(), vec![7u8; 10_000]);
        assert!(
            held.blocks() * 512 >= before.blocks() * 512 + (1 << 20) + super::RESERVE,
            "{} blocks before, {} after (a file system without fallocate?)",
            before.blocks(),
            held.blocks()
        );
        // What is held counts as room for this file: checking again does not need twice as much.
        assert!(room.held() >= (1 << 20) + super::RESERVE);
        drop(room);
        assert_eq!(std::fs::metadata(&p).unwrap().blocks(), before.blocks());
        assert_eq!(std::fs::read(&p).unwrap(), vec![7u8; 10_000]);
    }
}
