//! `meanfield export ARCHIVE --csv DIR`: every 1-D series of every run as a CSV file with a
//! header, for readers without HDF5. Numbers are written in Rust's shortest round-trip form,
//! so reading them back gives the archive's values exactly.

use crate::archive::ArchiveReader;
use crate::error::{Error, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Writes `dir/<run>.csv` for each run of the archive: `t` first, then every other dataset of
/// the run with one value per save, in the file's order. Returns the files written.
pub fn csv(archive: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let a = ArchiveReader::open(archive)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Usage(format!("--csv {}: cannot create it: {e}", dir.display())))?;
    let mut written = vec![];
    for run in a.runs() {
        let group = a
            .file
            .group(&format!("runs/{run}"))
            .map_err(|e| Error::archive(archive, format!("/runs/{run}: {e}")))?;
        let Ok(t) = a.read_1d(&format!("runs/{run}/t")) else {
            continue;
        };
        let mut columns = vec![("t".to_string(), t)];
        for name in group.member_names().unwrap_or_default() {
            let Ok(ds) = group.dataset(&name) else {
                continue;
            };
            if name == "t" || ds.ndim() != 1 || ds.size() != columns[0].1.len() {
                continue;
            }
            columns.push((name.clone(), a.read_1d(&format!("runs/{run}/{name}"))?));
        }
        let mut text = String::new();
        let header: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
        let _ = writeln!(text, "{}", header.join(","));
        for k in 0..columns[0].1.len() {
            let row: Vec<String> = columns.iter().map(|c| format!("{:e}", c.1[k])).collect();
            let _ = writeln!(text, "{}", row.join(","));
        }
        let file = dir.join(format!("{run}.csv"));
        std::fs::write(&file, text)
            .map_err(|e| Error::Usage(format!("{}: cannot write it: {e}", file.display())))?;
        written.push(file);
    }
    Ok(written)
}
