//! `meanfield plot`: figures of an archive as PNG or SVG, drawn with plotters and a shipped font.

pub(crate) mod chart;
pub(crate) mod figures;

use crate::archive::ArchiveReader;
use crate::error::{Error, Result};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    Losses,
    Particles,
    Kernel,
    Spectra,
    Beta,
    Sweep,
    Radii,
    Models,
    Density,
    Phase,
}

pub const FIGURES: [(&str, Figure); 10] = [
    ("losses", Figure::Losses),
    ("particles", Figure::Particles),
    ("kernel", Figure::Kernel),
    ("spectra", Figure::Spectra),
    ("beta", Figure::Beta),
    ("sweep", Figure::Sweep),
    ("radii", Figure::Radii),
    ("models", Figure::Models),
    ("density", Figure::Density),
    ("phase", Figure::Phase),
];

impl Figure {
    pub fn parse(s: &str) -> Result<Figure> {
        FIGURES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|f| f.1)
            .ok_or_else(|| {
                let names: Vec<&str> = FIGURES.iter().map(|f| f.0).collect();
                Error::Usage(format!("--what {s}: expected one of {}", names.join(", ")))
            })
    }

    pub fn name(self) -> &'static str {
        FIGURES.iter().find(|f| f.1 == self).map_or("?", |f| f.0)
    }
}

pub struct PlotOptions<'a> {
    pub what: Option<Figure>,
    /// Draw only this run (where the figure draws runs).
    pub run: Option<&'a str>,
    pub size: (u32, u32),
    /// Singular values per run (spectra).
    pub top: usize,
    /// Particles drawn at most (particles).
    pub max_particles: usize,
}

impl Default for PlotOptions<'_> {
    fn default() -> Self {
        PlotOptions {
            what: None,
            run: None,
            size: (1000, 700),
            top: 20,
            max_particles: 400,
        }
    }
}

/// `--size WIDTHxHEIGHT` in pixels, within what a figure can be drawn at.
pub(crate) fn parse_size(size: &str) -> Result<(u32, u32)> {
    let bad = || {
        Error::Usage(format!(
            "--size {size}: expected WIDTHxHEIGHT, e.g. 1000x700"
        ))
    };
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(200..=8000).contains(&w) || !(150..=8000).contains(&h) {
        return Err(Error::Usage(format!(
            "--size {w}x{h}: expected a width in 200..=8000 and a height in 150..=8000 pixels"
        )));
    }
    Ok((w, h))
}

/// The shared figures, each drawn from the datasets it names; a family's `Study::draw` picks
/// its own where they differ.
pub fn draw(what: Figure, a: &ArchiveReader, opts: &PlotOptions<'_>) -> Result<chart::Chart> {
    match what {
        Figure::Losses => figures::losses(a, opts.run),
        Figure::Particles => figures::particles(a, opts.run, opts.max_particles),
        Figure::Kernel => figures::kernel(a, opts.run),
        Figure::Spectra => figures::spectra(a, opts.run, opts.top.max(1)),
        Figure::Beta => figures::beta(a, opts.run),
        Figure::Sweep => figures::sweep(a),
        Figure::Radii => figures::radii(a, opts.run),
        Figure::Models => figures::models(a),
        Figure::Density => figures::density(a, opts.run),
        Figure::Phase => figures::phase(a),
    }
}

/// Whether any run of the archive has the dataset `name`.
pub(crate) fn any_run_has(a: &ArchiveReader, name: &str) -> bool {
    a.runs()
        .iter()
        .any(|r| a.file.dataset(&format!("runs/{r}/{name}")).is_ok())
}

/// Writes `chart` to `out` (.png or .svg), creating its folder.
pub(crate) fn render_to(chart: &chart::Chart, out: &Path, size: (u32, u32)) -> Result<()> {
    let reason = crate::error::io_reason;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Usage(format!(
                "plot {}: cannot create its folder {}: {}",
                out.display(),
                dir.display(),
                reason(&e)
            ))
        })?;
    }
    // Opened here first (without truncating an earlier figure), so that a path that cannot be
    // written is said in words, not in the drawing library's error types.
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let existed = out.exists();
    if matches!(ext.as_deref(), Some("png" | "svg")) {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(out)
            .map_err(|e| {
                Error::Usage(format!(
                    "plot {}: cannot write the file: {}",
                    out.display(),
                    reason(&e)
                ))
            })?;
    }
    chart::render(chart, out, size).map_err(|e| {
        if !existed {
            let _ = std::fs::remove_file(out);
        }
        Error::Usage(format!("plot {}: {e}", out.display()))
    })
}
