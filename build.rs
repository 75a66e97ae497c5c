//! Records the git commit the binary is built from (archives store it), or "unknown" outside a
//! checkout; "-dirty" marks uncommitted changes to tracked files. Links the system OpenBLAS,
//! which provides LAPACK for `linalg::eigh` (found through pkg-config, as HDF5 is).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// OpenBLAS through pkg-config; a missing library stops the build with what to install.
fn link_openblas() {
    if let Err(e) = pkg_config::Config::new().probe("openblas") {
        eprintln!(
            "meanfield needs OpenBLAS (BLAS and LAPACK) and pkg-config, and pkg-config did not find it:\n  {e}\n\
             Install it with `./dev setup` (Debian/Ubuntu: apt-get install libopenblas-dev pkg-config),\n\
             Fedora: dnf install openblas-devel pkgconf     macOS: brew install openblas pkg-config\n\
             (and PKG_CONFIG_PATH=$(brew --prefix openblas)/lib/pkgconfig)\n\
             Arch: pacman -S openblas pkgconf              conda: conda install -c conda-forge openblas pkg-config"
        );
        std::process::exit(1);
    }
}

fn main() {
    link_openblas();
    let commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    let value = match commit {
        Some(c) if dirty => format!("{c}-dirty"),
        Some(c) => c,
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=MEANFIELD_GIT_COMMIT={value}");
    for f in [".git/HEAD", ".git/index", ".git/refs"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
