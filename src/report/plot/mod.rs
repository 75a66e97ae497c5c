//! `meanfield plot`: figures of an archive as PNG or SVG, drawn with plotters and a shipped font.

pub mod chart;
pub mod figures;

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
}

pub const FIGURES: [(&str, Figure); 9] = [
    ("losses", Figure::Losses),
    ("particles", Figure::Particles),
    ("kernel", Figure::Kernel),
    ("spectra", Figure::Spectra),
    ("beta", Figure::Beta),
    ("sweep", Figure::Sweep),
    ("radii", Figure::Radii),
    ("models", Figure::Models),
    ("density", Figure::Density),
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

    /// The figure that says most about an archive: the sweep's fits, the radial densities
    /// against the radial PDE, an energy's PDE density against its particles, a diagonal network's β,
    /// a linear network's spectrum, and otherwise the losses.
    pub fn default_for(a: &ArchiveReader) -> Figure {
        let any = |ds: &str| {
            a.runs()
                .iter()
                .any(|r| a.file.dataset(&format!("runs/{r}/{ds}")).is_ok())
        };
        let kind = ArchiveReader::str_attr(&a.file, "kind");
        if matches!(kind.as_deref(), Some("sweep") | Some("energy_sweep")) {
            Figure::Sweep
        } else if any("density") {
            Figure::Density
        } else if any("radii") {
            Figure::Radii
        } else if any("beta") {
            Figure::Beta
        } else if any("singular_values") {
            Figure::Spectra
        } else {
            Figure::Losses
        }
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

/// Draws one figure of `archive` into `out` (.png or .svg); returns which figure it drew.
/// `--size WIDTHxHEIGHT` in pixels.
pub fn parse_size(size: &str) -> Result<(u32, u32)> {
    let bad = || {
        Error::Usage(format!(
            "--size {size}: expected WIDTHxHEIGHT, e.g. 1000x700"
        ))
    };
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    Ok((
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    ))
}

/// The default output of `meanfield plot`: `<archive stem>_<figure>.png` beside the archive,
/// the figure being the archive's main one unless given.
pub fn default_output(archive: &Path, what: Option<Figure>) -> Result<std::path::PathBuf> {
    let figure = match what {
        Some(f) => f,
        None => Figure::default_for(&ArchiveReader::open(archive)?),
    };
    let stem = archive
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "archive".into());
    Ok(archive.with_file_name(format!("{stem}_{}.png", figure.name())))
}

/// `meanfield plot ARCHIVE [--out OUT] --what W --run R --size WxH --top K`: draws the figure,
/// to the default output when none is given; returns where and which.
pub fn plot_command(
    archive: &Path,
    out: Option<std::path::PathBuf>,
    (what, run, size, top): (Option<&str>, Option<&str>, &str, usize),
) -> Result<(std::path::PathBuf, Figure)> {
    let what = what.map(Figure::parse).transpose()?;
    let opts = PlotOptions {
        what,
        run,
        size: parse_size(size)?,
        top,
        ..PlotOptions::default()
    };
    let out = match out {
        Some(o) => o,
        None => default_output(archive, what)?,
    };
    let figure = plot(archive, &out, &opts)?;
    Ok((out, figure))
}

pub fn plot(archive: &Path, out: &Path, opts: &PlotOptions<'_>) -> Result<Figure> {
    let (w, h) = opts.size;
    if !(200..=8000).contains(&w) || !(150..=8000).contains(&h) {
        return Err(Error::Usage(format!(
            "--size {w}x{h}: expected a width in 200..=8000 and a height in 150..=8000 pixels"
        )));
    }
    let a = ArchiveReader::open(archive)?;
    let what = opts.what.unwrap_or_else(|| Figure::default_for(&a));
    let chart = match what {
        Figure::Losses => figures::losses(&a, opts.run),
        Figure::Particles => figures::particles(&a, opts.run, opts.max_particles),
        Figure::Kernel => figures::kernel(&a, opts.run),
        Figure::Spectra => figures::spectra(&a, opts.run, opts.top.max(1)),
        Figure::Beta => figures::beta(&a, opts.run),
        Figure::Sweep
            if ArchiveReader::str_attr(&a.file, "kind").as_deref() == Some("energy_sweep") =>
        {
            figures::energy_sweep(&a)
        }
        Figure::Sweep => figures::sweep(&a),
        Figure::Radii => figures::radii(&a, opts.run),
        Figure::Models => figures::models(&a),
        Figure::Density => figures::density(&a, opts.run),
    }?;
    drop(a);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Usage(format!("{}: {e}", out.display())))?;
    }
    chart::render(&chart, out, opts.size)
        .map_err(|e| Error::Usage(format!("plot {}: {e}", out.display())))?;
    Ok(what)
}
