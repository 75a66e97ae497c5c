//! Archive → `Chart`: one builder per figure kind. They read only the archive layout
//! (design.md §5), so they work on any archive of that layout, old runs included.

use super::chart::{color, fits_log, Chart, Rule, Series, Style, BLACK_A};
use crate::archive::ArchiveReader;
use crate::error::{Error, Result};
use faer::Mat;
use plotters::style::RGBAColor;

/// A dataset of a run with its shape, or `None` when the run does not have it.
fn get(a: &ArchiveReader, run: &str, name: &str) -> Option<(Vec<usize>, Vec<f64>)> {
    let path = format!("runs/{run}/{name}");
    a.file.dataset(&path).ok()?;
    a.read(&path).ok()
}

fn has(a: &ArchiveReader, run: &str, name: &str) -> bool {
    a.file.dataset(&format!("runs/{run}/{name}")).is_ok()
}

fn run_attr(a: &ArchiveReader, run: &str, name: &str) -> Option<String> {
    let g = a.file.group(&format!("runs/{run}")).ok()?;
    ArchiveReader::str_attr(&g, name)
}

/// A numeric attribute of a run (its α, …).
fn run_num(a: &ArchiveReader, run: &str, name: &str) -> Option<f64> {
    let g = a.file.group(&format!("runs/{run}")).ok()?;
    ArchiveReader::num_attr(&g, name)
}

fn nothing(a: &ArchiveReader, what: &str) -> Error {
    Error::archive(&a.path, format!("it has no run with {what} to plot"))
}

/// The runs to draw: the one asked for (which must exist), or every run that has `needs`.
fn pick(a: &ArchiveReader, run: Option<&str>, needs: &str) -> Result<Vec<String>> {
    let runs = a.runs();
    if let Some(r) = run {
        if !runs.iter().any(|x| x == r) {
            return Err(Error::archive(
                &a.path,
                format!("no run '{r}' (runs: {})", runs.join(", ")),
            ));
        }
        if !has(a, r, needs) {
            return Err(Error::archive(
                &a.path,
                format!("run '{r}' has no dataset '{needs}'"),
            ));
        }
        return Ok(vec![r.to_string()]);
    }
    let v: Vec<String> = runs.into_iter().filter(|r| has(a, r, needs)).collect();
    if v.is_empty() {
        return Err(nothing(a, &format!("a '{needs}' dataset")));
    }
    Ok(v)
}

/// Training (solid) and test (dashed) loss of every run over time. Linear-network runs name
/// them train_error/test_error; diagonal flows are drawn over accelerated time τ, the limit's
/// own clock, when the archive has the limit. Below, each run's relative distance to the
/// reference run's training loss (GD where there is one), since the curves overlap.
pub fn losses(a: &ArchiveReader, run: Option<&str>) -> Result<Chart> {
    let names = [("loss_train", "loss_test"), ("train_error", "test_error")];
    let candidates = match run {
        Some(r) => vec![r.to_string()],
        None => a.runs(),
    };
    let mut series = vec![];
    let mut trains: Vec<Train> = vec![];
    let mut tau_axis = false;
    let mut any_test = false;
    for (i, r) in candidates.iter().enumerate() {
        let Some((train, test)) = names.iter().find(|(tr, _)| has(a, r, tr)) else {
            if run.is_some() {
                return Err(Error::archive(
                    &a.path,
                    format!("run '{r}' has no loss_train or train_error"),
                ));
            }
            continue;
        };
        let diagonal = run_attr(a, r, "kind").as_deref() == Some("saddle_limit");
        let time = if has(a, r, "tau") && !diagonal {
            "tau"
        } else {
            "t"
        };
        tau_axis |= time == "tau" || diagonal;
        let Some((_, t)) = get(a, r, time) else {
            continue;
        };
        for (name, dashed) in [(train, false), (test, true)] {
            let Some((_, y)) = get(a, r, name) else {
                continue;
            };
            // A run without a test set records NaN test losses: nothing to draw or explain.
            if !y.iter().any(|v| v.is_finite()) {
                continue;
            }
            let mut points: Vec<(f64, f64)> = t.iter().copied().zip(y).collect();
            // The limit is piecewise constant between jumps: drawn as steps.
            if diagonal {
                points = steps(&points);
            }
            if dashed {
                any_test = true;
            } else {
                trains.push(Train {
                    name: r.clone(),
                    points: points.clone(),
                    staircase: diagonal,
                    colour: i,
                    alpha: run_num(a, r, "alpha"),
                });
            }
            series.push(Series {
                label: (!dashed).then(|| r.clone()),
                points,
                color: color(i, 1.0),
                style: if dashed {
                    Style::Dashed(2)
                } else {
                    Style::Line(2)
                },
            });
        }
    }
    if series.is_empty() {
        return Err(nothing(a, "losses"));
    }
    if any_test {
        for (what, style) in [("training", Style::Line(2)), ("test", Style::Dashed(2))] {
            series.push(Series {
                label: Some(format!("{what} loss")),
                points: vec![],
                color: RGBAColor(90, 90, 90, 1.0),
                style,
            });
        }
    }
    let all_y = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let all_x = || series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let x_label = if tau_axis { "τ = t/λ_α" } else { "t" };
    // Save grids that are geometric in time span decades: then log time fits.
    let log_x = fits_log(all_x().filter(|&x| x > 0.0), 3.0);
    let mut chart = Chart {
        title: if any_test {
            "training loss (solid) and test loss (dashed)"
        } else {
            "training loss"
        }
        .into(),
        x_label: x_label.into(),
        y_label: "loss".into(),
        log_x,
        log_y: fits_log(all_y(), 1.0),
        series,
        ..Default::default()
    };
    if let Some(panel) = loss_differences(&trains, x_label, log_x) {
        chart.more.push(panel);
        chart.below = true;
    }
    Ok(chart)
}

/// A run's training loss for the difference panel.
struct Train {
    name: String,
    /// (time, loss)
    points: Vec<(f64, f64)>,
    /// A staircase limit: not compared.
    staircase: bool,
    /// Its colour index in the upper panel.
    colour: usize,
    /// Only runs at equal α are compared.
    alpha: Option<f64>,
}

/// |L − L_ref| / L_ref of every run's training loss against the reference run's (the GD run if
/// there is one, else the first; runs at another α are not compared), at the reference's save
/// times inside each run's time range (linear interpolation between saves). `None` when there
/// is nothing to compare.
fn loss_differences(trains: &[Train], x_label: &str, log_x: bool) -> Option<Chart> {
    let smooth: Vec<&Train> = trains.iter().filter(|t| !t.staircase).collect();
    let reference = *smooth
        .iter()
        .find(|t| t.name == "gd")
        .or_else(|| smooth.first())?;
    let at = |pts: &[(f64, f64)], x: f64| -> Option<f64> {
        let k = pts.iter().position(|p| p.0 >= x)?;
        let (x1, y1) = pts[k];
        if x1 == x || k == 0 {
            return (x1 == x).then_some(y1);
        }
        let (x0, y0) = pts[k - 1];
        Some(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    };
    let mut series = vec![];
    for run in &smooth {
        if run.name == reference.name || run.alpha != reference.alpha {
            continue;
        }
        let d: Vec<(f64, f64)> = reference
            .points
            .iter()
            .filter_map(|&(x, l)| Some((x, ((at(&run.points, x)? - l) / l).abs())))
            .collect();
        if d.iter().any(|p| p.1.is_finite() && p.1 > 0.0) {
            // No legend: the colours are the upper panel's (a legend would not fit the panel).
            series.push(Series {
                label: None,
                points: d,
                color: color(run.colour, 1.0),
                style: Style::Line(2),
            });
        }
    }
    if series.is_empty() {
        return None;
    }
    let log_y = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .any(|v| v > 0.0);
    // Zeros (identical saves, t = 0) cannot show on a log axis: they break the line there.
    Some(Chart {
        title: format!(
            "relative difference of the training loss to '{}' (colours as above)",
            reference.name
        ),
        x_label: x_label.into(),
        y_label: format!("|L − L_{}| / L_{}", reference.name, reference.name),
        log_x,
        log_y,
        series,
        ..Default::default()
    })
}

/// Turns saddle values at jump times into a staircase that holds each value until the next jump.
/// Digits as Unicode subscripts (β₁₂), which the shipped font has.
fn subscript(i: usize) -> String {
    i.to_string()
        .chars()
        .map(|c| char::from_u32(0x2080 + c.to_digit(10).unwrap_or(0)).unwrap_or(c))
        .collect()
}

/// The density histogram of `values` on `bins` bins of `width` from `lo` (values outside go to
/// the end bins), as the outline of its bars: (left, h), (right, h) per bin.
fn histogram(values: &[f64], lo: f64, width: f64, bins: usize) -> Vec<(f64, f64)> {
    let mut c = vec![0usize; bins];
    for &x in values.iter().filter(|x| x.is_finite()) {
        c[(((x - lo) / width).max(0.0) as usize).min(bins - 1)] += 1;
    }
    let norm = (values.len().max(1) as f64) * width;
    c.iter()
        .enumerate()
        .flat_map(|(b, &n)| {
            let h = n as f64 / norm;
            [(lo + b as f64 * width, h), (lo + (b + 1) as f64 * width, h)]
        })
        .collect()
}

/// Up to four of `count` save indices, evenly spread, the first and the last included.
fn four_of(count: usize) -> Vec<usize> {
    let mut k: Vec<usize> = (0..4.min(count))
        .map(|i| {
            if count == 1 {
                0
            } else {
                i * (count - 1) / 3.min(count - 1)
            }
        })
        .collect();
    k.dedup();
    k
}

fn steps(p: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(2 * p.len());
    for (i, &(x, y)) in p.iter().enumerate() {
        if i > 0 {
            out.push((x, p[i - 1].1));
        }
        out.push((x, y));
    }
    out
}

/// ‖K_t − K_0‖_F/‖K_0‖_F over time for every run that archived its kernel.
pub fn kernel(a: &ArchiveReader, run: Option<&str>) -> Result<Chart> {
    let runs = pick(a, run, "kernel_distance")?;
    let mut series = vec![];
    for (i, r) in runs.iter().enumerate() {
        let (Some((_, t)), Some((_, k))) = (get(a, r, "t"), get(a, r, "kernel_distance")) else {
            continue;
        };
        series.push(Series {
            label: Some(r.clone()),
            points: t.into_iter().zip(k).collect(),
            color: color(i, 1.0),
            style: Style::Line(2),
        });
    }
    let pos = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|&v| v > 0.0)
    };
    Ok(Chart {
        title: "tangent-kernel distance from initialization".into(),
        x_label: "t".into(),
        y_label: "‖Kₜ − K₀‖ / ‖K₀‖  (Frobenius)".into(),
        log_x: false,
        log_y: fits_log(pos(), 2.0),
        series,
        rules: vec![],
        heat: None,
        ..Default::default()
    })
}

/// The largest `top` singular values of A(t) per run, as Tu–Aranguri–Jacot's Figure 1 draws
/// them (its caption): eq. (1), the self-consistent dynamics, solid and GD dashed; the rank(A*)
/// largest values one colour each and the rest grey; with the σ²w threshold of the
/// initialization. Without a recorded rank (or with more than two runs, or a rank above the
/// palette's 10), one colour per run.
pub fn spectra(a: &ArchiveReader, run: Option<&str>, top: usize) -> Result<Chart> {
    let runs = pick(a, run, "singular_values")?;
    let rank = a
        .file
        .group("data")
        .ok()
        .and_then(|g| ArchiveReader::num_attr(&g, "rank"))
        .filter(|r| *r >= 1.0 && *r <= 10.0)
        .map(|r| r as usize)
        // Colours by singular value leave the runs to the line style: two runs at most.
        .filter(|_| runs.len() <= 2);
    let mut series = vec![];
    let mut styles = [false; 2];
    for (i, r) in runs.iter().enumerate() {
        let eq1 = run_attr(a, r, "kind").as_deref() == Some("self_consistent");
        let Some((shape, sv)) = get(a, r, "singular_values") else {
            continue;
        };
        let x = get(a, r, "step").or_else(|| get(a, r, "t")).map(|v| v.1);
        let (Some(x), &[t, k]) = (x, &shape[..]) else {
            continue;
        };
        styles[usize::from(eq1)] = true;
        for j in 0..k.min(top) {
            let (label, c) = match rank {
                Some(m) if j < m => (None, color(j, 0.9)),
                Some(_) => (None, RGBAColor(127, 127, 127, 0.6)),
                None => ((j == 0).then(|| r.clone()), color(i, 0.9)),
            };
            series.push(Series {
                label,
                points: (0..t.min(x.len())).map(|s| (x[s], sv[s * k + j])).collect(),
                color: c,
                style: if eq1 {
                    Style::Line(1)
                } else {
                    Style::Dashed(1)
                },
            });
        }
    }
    let legend = |label: String, color: RGBAColor, style: Style| Series {
        label: Some(label),
        points: vec![],
        color,
        style,
    };
    let ink = RGBAColor(90, 90, 90, 1.0);
    if rank.is_some() || styles == [true; 2] {
        if styles[1] {
            series.push(legend(
                "eq. (1), self-consistent".into(),
                ink,
                Style::Line(2),
            ));
        }
        if styles[0] {
            series.push(legend("GD".into(), ink, Style::Dashed(2)));
        }
    }
    if let Some(m) = rank {
        series.push(legend(
            format!("the {m} largest (rank A* = {m})"),
            color(0, 0.9),
            Style::Line(2),
        ));
        series.push(legend(
            "the others".into(),
            RGBAColor(127, 127, 127, 0.6),
            Style::Line(2),
        ));
    }
    let threshold = a
        .file
        .group("init")
        .ok()
        .and_then(|g| ArchiveReader::num_attr(&g, "threshold"));
    // An aligned start has no σ²w threshold (recorded as 0).
    let rules = threshold
        .filter(|c| *c > 0.0)
        .map(|c| Rule {
            vertical: false,
            at: c,
            color: BLACK_A,
            label: Some(format!("σ²w = {c:.4}")),
        })
        .into_iter()
        .collect();
    let stepped = runs.first().is_some_and(|r| has(a, r, "step"));
    Ok(Chart {
        title: format!("singular values of A(t) (largest {top})"),
        x_label: if stepped { "step" } else { "t" }.into(),
        y_label: "singular value".into(),
        log_x: false,
        log_y: fits_log(
            series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .filter(|&v| v > 0.0),
            2.0,
        ),
        series,
        rules,
        heat: None,
        ..Default::default()
    })
}

/// |β_i(τ)| of the flows (one color per coordinate) against accelerated time τ = t/λ_α, with
/// the saddle-to-saddle limit's plateaus (black dashed staircases) and its jump times.
pub fn beta(a: &ArchiveReader, run: Option<&str>) -> Result<Chart> {
    let runs = a.runs();
    let limit = runs
        .iter()
        .find(|r| run_attr(a, r, "kind").as_deref() == Some("saddle_limit"));
    // By default the flow closest to the limit: the mirror flow of smallest α (else the
    // first flow with τ).
    let alpha = |r: &String| run_num(a, r, "alpha").unwrap_or(f64::INFINITY);
    let flows: Vec<String> = match run {
        Some(_) => pick(a, run, "beta")?,
        None => {
            let mut f: Vec<&String> = runs
                .iter()
                .filter(|r| Some(*r) != limit && has(a, r, "beta") && has(a, r, "tau"))
                .collect();
            let mirror = |r: &&String| run_attr(a, r, "kind").as_deref() == Some("mirror_flow");
            if f.iter().any(mirror) {
                f.retain(mirror);
                f.sort_by(|x, y| alpha(x).total_cmp(&alpha(y)));
            }
            f.into_iter().take(1).cloned().collect()
        }
    };
    let flow_end = flows
        .iter()
        .filter_map(|r| get(a, r, "tau").or_else(|| get(a, r, "t")))
        .filter_map(|(_, t)| t.last().copied())
        .fold(0.0f64, f64::max);
    // The limit's support, or else the coordinates that ever reach 1% of the largest |β|.
    let lim = limit.and_then(|r| Some((get(a, r, "t")?.1, get(a, r, "beta")?)));
    let mut series = vec![];
    let mut rules = vec![];
    let mut coords: Vec<usize> = vec![];
    if let Some((t, (shape, b))) = &lim {
        let d = shape.get(1).copied().unwrap_or(0);
        coords = (0..d)
            .filter(|&i| (0..t.len()).any(|k| b[k * d + i] != 0.0))
            .collect();
        for (c, &i) in coords.iter().enumerate() {
            let pts: Vec<(f64, f64)> = (0..t.len()).map(|k| (t[k], b[k * d + i].abs())).collect();
            let mut pts = steps(&pts);
            if let Some(&(x, y)) = pts.last() {
                // Hold the last saddle as long as the flows run (or a while past the last jump).
                pts.push((
                    if flow_end > x {
                        flow_end
                    } else {
                        x * 1.25 + 1e-3
                    },
                    y,
                ));
            }
            series.push(Series {
                label: (c == 0).then(|| "saddle-to-saddle limit".to_string()),
                points: pts,
                color: RGBAColor(0, 0, 0, 0.85),
                style: Style::Dashed(2),
            });
        }
        for &tk in t.iter().skip(1) {
            rules.push(Rule {
                vertical: true,
                at: tk,
                color: RGBAColor(0, 0, 0, 0.2),
                label: None,
            });
        }
    }
    for r in &flows {
        let (Some((_, tau)), Some((shape, b))) = (
            get(a, r, "tau").or_else(|| get(a, r, "t")),
            get(a, r, "beta"),
        ) else {
            continue;
        };
        let d = shape.get(1).copied().unwrap_or(0);
        let big = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let shown: Vec<usize> = if coords.is_empty() {
            (0..d)
                .filter(|&i| (0..tau.len()).any(|k| b[k * d + i].abs() >= 0.01 * big))
                .take(20)
                .collect()
        } else {
            coords.clone()
        };
        for (c, &i) in shown.iter().enumerate() {
            series.push(Series {
                label: Some(format!("|β{}| ({r})", subscript(i))).filter(|_| c < 8),
                points: (0..tau.len())
                    .map(|k| (tau[k], b[k * d + i].abs()))
                    .collect(),
                color: color(c, 1.0),
                style: Style::Line(2),
            });
        }
    }
    if series.is_empty() {
        return Err(nothing(a, "β (a diagonal-network flow or limit)"));
    }
    // Jumps spread over decades of τ (361 of them at n = 200) merge into one band on a linear
    // axis: then log τ.
    let jumps = rules.iter().map(|r| r.at).filter(|&t| t > 0.0);
    let log_x = fits_log(jumps, 2.0);
    Ok(Chart {
        title: match flows.first() {
            Some(f) => format!("diagonal network: |βᵢ| of '{f}' against accelerated time"),
            None => "diagonal network: |βᵢ| against accelerated time".into(),
        },
        x_label: "τ = t/λ_α  (λ_α ≈ log 1/α)".into(),
        y_label: "|βᵢ|".into(),
        log_x,
        log_y: false,
        series,
        rules,
        heat: None,
        ..Default::default()
    })
}

/// The empirical measure in 2-D: each particle's |a_j|·w_j (Chizat–Oyallon–Bach's picture),
/// as trajectories over the saved times with the final positions marked, colored by the sign
/// of the output weight (red +, blue −). Inputs of more than two dimensions are projected on
/// the two leading principal directions of all drawn positions.
pub fn particles(a: &ArchiveReader, run: Option<&str>, max_particles: usize) -> Result<Chart> {
    let r = pick(a, run, "particles")?.remove(0);
    let (shape, p) = get(a, &r, "particles").ok_or_else(|| nothing(a, "particles"))?;
    let [t_count, n, dd] = shape[..] else {
        return Err(Error::archive(
            &a.path,
            format!("runs/{r}/particles has shape {shape:?}, expected [T,N,D]"),
        ));
    };
    let cols = a.particle_columns();
    let columns = cols.join(",");
    let col = |name: &str| cols.iter().position(|c| c == name);
    let a_col = col("a").ok_or_else(|| {
        Error::archive(
            &a.path,
            "init/particles has no column 'a' in its columns attribute",
        )
    })?;
    let w_cols: Vec<usize> = (0..dd)
        .filter(|&i| cols.get(i).is_some_and(|c| c.starts_with('w')))
        .collect();
    // One-dimensional inputs with a bias: draw (w, b), the plane the bias lives in.
    let mut plane = w_cols.clone();
    if plane.len() == 1 {
        plane.extend(col("b"));
    }
    if plane.is_empty() || cols.len() != dd {
        return Err(Error::archive(
            &a.path,
            format!("init/particles columns '{columns}' do not describe D = {dd} columns"),
        ));
    }
    let stride = n.div_ceil(max_particles.max(1));
    let chosen: Vec<usize> = (0..n).step_by(stride).collect();
    let times: Vec<usize> = (0..t_count).step_by(t_count.div_ceil(200).max(1)).collect();
    let pos = |s: usize, j: usize| -> Vec<f64> {
        let row = &p[(s * n + j) * dd..(s * n + j + 1) * dd];
        let s = row[a_col].abs();
        plane.iter().map(|&c| s * row[c]).collect()
    };
    let basis = if plane.len() <= 2 {
        None
    } else {
        let pts: Vec<Vec<f64>> = times
            .iter()
            .flat_map(|&s| chosen.iter().map(move |&j| (s, j)))
            .map(|(s, j)| pos(s, j))
            .collect();
        Some(principal_plane(&pts))
    };
    let xy = |v: Vec<f64>| -> (f64, f64) {
        match &basis {
            Some(b) => (
                v.iter().zip(&b[0]).map(|(x, y)| x * y).sum(),
                v.iter().zip(&b[1]).map(|(x, y)| x * y).sum(),
            ),
            None => (v[0], v.get(1).copied().unwrap_or(0.0)),
        }
    };
    let last = t_count - 1;
    let sign = |j: usize| p[(last * n + j) * dd + a_col] >= 0.0;
    let hue = |plus: bool, alpha: f64| {
        if plus {
            RGBAColor(214, 39, 40, alpha)
        } else {
            RGBAColor(31, 119, 180, alpha)
        }
    };
    let mut series = vec![];
    for &j in &chosen {
        series.push(Series {
            label: None,
            points: times.iter().map(|&s| xy(pos(s, j))).collect(),
            color: hue(sign(j), 0.35),
            style: Style::Line(1),
        });
    }
    series.push(Series {
        label: Some("t = 0".into()),
        points: chosen.iter().map(|&j| xy(pos(0, j))).collect(),
        color: RGBAColor(0, 0, 0, 0.35),
        style: Style::Points(2),
    });
    for (plus, name) in [(true, "a > 0"), (false, "a < 0")] {
        let pts: Vec<(f64, f64)> = chosen
            .iter()
            .filter(|&&j| sign(j) == plus)
            .map(|&j| xy(pos(last, j)))
            .collect();
        if !pts.is_empty() {
            series.push(Series {
                label: Some(format!("{name} at t_end")),
                points: pts,
                color: hue(plus, 0.9),
                style: Style::Points(3),
            });
        }
    }
    // The teacher's neurons as rays from 0 along their (projected) directions w*ᵢ, out to the
    // farthest final particle: where the particles should gather (Chizat–Oyallon–Bach's figures).
    let reach = chosen
        .iter()
        .map(|&j| {
            let (x, y) = xy(pos(last, j));
            x.hypot(y)
        })
        .fold(0.0f64, f64::max);
    let teacher = teacher_directions(
        a,
        &plane.iter().map(|&c| cols[c].as_str()).collect::<Vec<_>>(),
    );
    for (k, w) in teacher.iter().enumerate() {
        let (x, y) = xy(w.clone());
        series.push(Series {
            label: (k == 0).then(|| "teacher directions w*ᵢ".to_string()),
            points: vec![(0.0, 0.0), (reach * x, reach * y)],
            color: RGBAColor(0, 0, 0, 0.8),
            style: Style::Dashed(2),
        });
    }
    let t = get(a, &r, "t").map(|v| v.1).unwrap_or_default();
    let t_end = t.last().copied().unwrap_or(f64::NAN);
    let (x_label, y_label) = match &basis {
        Some(_) => (
            "PC 1 of |a|·w (principal directions of the drawn positions)".to_string(),
            "PC 2 of |a|·w".to_string(),
        ),
        None => {
            let axis = |k: usize| {
                plane
                    .get(k)
                    .map_or(String::new(), |&c| format!("|a|·{}", cols[c]))
            };
            (axis(0), axis(1))
        }
    };
    Ok(Chart {
        title: format!(
            "particles |a|·w of '{r}' ({} of {n}, t = 0 … {})",
            chosen.len(),
            super::chart::number(t_end)
        ),
        x_label,
        y_label,
        log_x: false,
        log_y: false,
        series,
        rules: vec![],
        heat: None,
        ..Default::default()
    })
}

/// The teacher's neurons of `/data/teacher` as unit vectors over the particle columns `plane`
/// (a column the teacher lacks, such as a bias, is 0). Empty without a teacher.
fn teacher_directions(a: &ArchiveReader, plane: &[&str]) -> Vec<Vec<f64>> {
    let Ok(ds) = a.file.dataset("data/teacher") else {
        return vec![];
    };
    let names: Vec<String> = ArchiveReader::str_attr(&ds, "columns")
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let Ok((shape, v)) = a.read("data/teacher") else {
        return vec![];
    };
    let [m, k] = shape[..] else {
        return vec![];
    };
    let at: Vec<Option<usize>> = plane
        .iter()
        .map(|c| names.iter().position(|n| n == c).filter(|&i| i < k))
        .collect();
    (0..m)
        .filter_map(|i| {
            let w: Vec<f64> = at.iter().map(|c| c.map_or(0.0, |c| v[i * k + c])).collect();
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            (norm > 0.0 && norm.is_finite()).then(|| w.iter().map(|x| x / norm).collect())
        })
        .collect()
}

/// The radial density of ‖w‖ (Mei–Montanari–Nguyen's isotropic example): histograms of the
/// neurons' ‖w_j‖ (solid) beside the radial PDE's radii (dashed) at up to four shared times,
/// on the same bins. Either side alone is drawn when the archive has only it.
pub fn radii(a: &ArchiveReader, run: Option<&str>) -> Result<Chart> {
    let runs = a.runs();
    let with = |ds: &str| -> Option<String> {
        match run {
            Some(r) if has(a, r, ds) => Some(r.to_string()),
            Some(_) => None,
            None => runs.iter().find(|r| has(a, r, ds)).cloned(),
        }
    };
    let net = with("particles");
    let pde = runs.iter().find(|r| has(a, r, "radii")).cloned();
    if net.is_none() && pde.is_none() {
        return Err(match run {
            Some(r) if !runs.iter().any(|x| x == r) => {
                Error::archive(&a.path, format!("no run '{r}' (runs: {})", runs.join(", ")))
            }
            _ => nothing(a, "particles or radial PDE radii"),
        });
    }
    // Per run: (name, is the PDE, its times, per time the radii).
    type Side = (String, bool, Vec<f64>, Vec<Vec<f64>>);
    let mut sides: Vec<Side> = vec![];
    if let Some(r) = &net {
        let (shape, p) = get(a, r, "particles").ok_or_else(|| nothing(a, "particles"))?;
        let [t_count, n, dd] = shape[..] else {
            return Err(Error::archive(
                &a.path,
                format!("runs/{r}/particles has shape {shape:?}, expected [T,N,D]"),
            ));
        };
        let w_cols: Vec<usize> = a.weight_columns().into_iter().filter(|&i| i < dd).collect();
        if w_cols.is_empty() {
            return Err(Error::archive(
                &a.path,
                "init/particles' columns attribute names no weight column w…",
            ));
        }
        let radii = (0..t_count)
            .map(|k| {
                (0..n)
                    .map(|j| {
                        let row = &p[(k * n + j) * dd..(k * n + j + 1) * dd];
                        w_cols.iter().map(|&c| row[c] * row[c]).sum::<f64>().sqrt()
                    })
                    .collect()
            })
            .collect();
        let t = get(a, r, "t").map(|v| v.1).unwrap_or_default();
        sides.push((r.clone(), false, t, radii));
    }
    if let Some(r) = &pde {
        let (shape, v) = get(a, r, "radii").ok_or_else(|| nothing(a, "radii"))?;
        let [_, m] = shape[..] else {
            return Err(Error::archive(
                &a.path,
                format!("runs/{r}/radii has shape {shape:?}, expected [T,M]"),
            ));
        };
        let t = get(a, r, "t").map(|v| v.1).unwrap_or_default();
        sides.push((
            r.clone(),
            true,
            t,
            v.chunks(m.max(1)).map(<[f64]>::to_vec).collect(),
        ));
    }
    // Up to four times of the first side, evenly spread, first and last included.
    let lead = &sides[0];
    let count = lead.3.len().min(lead.2.len());
    if count == 0 {
        return Err(Error::archive(
            &a.path,
            format!("run '{}' saved no times", lead.0),
        ));
    }
    let picks: Vec<f64> = four_of(count).iter().map(|&i| lead.2[i]).collect();
    let all = || {
        sides
            .iter()
            .flat_map(|s| s.3.iter().flatten())
            .copied()
            .filter(|x| x.is_finite())
    };
    let (lo, hi) = (
        all().fold(f64::INFINITY, f64::min),
        all().fold(0.0f64, f64::max),
    );
    let (lo, hi) = if hi > lo {
        (lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
    } else {
        (0.0, hi.max(0.0) + 1.0)
    };
    let smallest = sides
        .iter()
        .filter_map(|s| s.3.first().map(Vec::len))
        .min()
        .unwrap_or(1);
    let bins = ((smallest as f64).sqrt() * 1.5).round().clamp(10.0, 60.0) as usize;
    let width = (hi - lo) / bins as f64;
    let density = |r: &[f64]| histogram(r, lo, width, bins);
    let mut series = vec![];
    for (i, &t) in picks.iter().enumerate() {
        for (name, is_pde, times, radii) in &sides {
            let Some(k) = times
                .iter()
                .position(|&s| (s - t).abs() <= 1e-9 * (1.0 + t.abs()))
            else {
                continue;
            };
            let Some(r) = radii.get(k) else { continue };
            let what = if *is_pde { "PDE" } else { "network" };
            series.push(Series {
                label: Some(format!("{what} '{name}', t = {}", super::chart::number(t))),
                points: density(r),
                color: color(i, if *is_pde { 0.9 } else { 0.75 }),
                style: if *is_pde {
                    Style::Dashed(2)
                } else {
                    Style::Line(2)
                },
            });
        }
    }
    let who: Vec<String> = sides
        .iter()
        .map(|(name, is_pde, _, r)| {
            let n = r.first().map_or(0, Vec::len);
            if *is_pde {
                format!("PDE '{name}' (M = {n})")
            } else {
                format!("network '{name}' (N = {n})")
            }
        })
        .collect();
    Ok(Chart {
        title: format!("density of r = ‖w‖: {}", who.join(" vs ")),
        x_label: "r = ‖w‖".into(),
        y_label: "density".into(),
        log_x: false,
        log_y: false,
        series,
        rules: vec![],
        heat: None,
        ..Default::default()
    })
}

/// Unit vectors of the two largest principal directions of `pts` (about their mean).
fn principal_plane(pts: &[Vec<f64>]) -> [Vec<f64>; 2] {
    let d = pts.first().map_or(0, |p| p.len());
    let m = pts.len().max(1) as f64;
    let mean: Vec<f64> = (0..d)
        .map(|i| pts.iter().map(|p| p[i]).sum::<f64>() / m)
        .collect();
    let c = Mat::from_fn(d, d, |i, k| {
        pts.iter()
            .map(|p| (p[i] - mean[i]) * (p[k] - mean[k]))
            .sum::<f64>()
            / m
    });
    let unit = |i: usize| (0..d).map(|k| f64::from(u8::from(k == i))).collect();
    match crate::linalg::eigh(c.as_ref(), true) {
        // Ascending eigenvalues: the last two columns lead.
        Ok((_, Some(v))) if d >= 2 => [
            (0..d).map(|k| v[(k, d - 1)]).collect(),
            (0..d).map(|k| v[(k, d - 2)]).collect(),
        ],
        _ => [unit(0), unit(1)],
    }
}

/// A sweep summary's points: their widths and output scales α (NaN when it has none).
fn sweep_points(a: &ArchiveReader) -> Result<(Vec<f64>, Vec<f64>)> {
    let col = |name: &str| a.read_1d(&format!("points/{name}")).ok();
    let width = col("width")
        .ok_or_else(|| Error::archive(&a.path, "not a sweep summary: it has no points/width"))?;
    let alpha = col("alpha").unwrap_or_else(|| vec![f64::NAN; width.len()]);
    Ok((width, alpha))
}

/// A width sweep's summary: each fitted quantity against width on log-log axes, the points of
/// every seed, and the fitted power law with its exponent and 95% interval in the legend.
pub fn sweep(a: &ArchiveReader) -> Result<Chart> {
    let col = |name: &str| a.read_1d(&format!("points/{name}")).ok();
    let (width, alpha) = sweep_points(a)?;
    // A fitted quantity's points: a column, or for "name(t=T)" the column of `points/name`
    // [points, times] at the time T of `points/at` (the only one when `at` is empty).
    let values = |q: &str| -> Option<Vec<f64>> {
        let Some((base, rest)) = q.split_once("(t=") else {
            return col(q);
        };
        let t: f64 = rest.trim_end_matches(')').parse().ok()?;
        let (shape, v) = a.read(&format!("points/{base}")).ok()?;
        let at = col("at").unwrap_or_default();
        let k = match at.len() {
            0 => 0,
            _ => at
                .iter()
                .position(|x| (x - t).abs() <= 1e-9 * (1.0 + t.abs()))?,
        };
        let times = *shape.get(1)?;
        (k < times).then(|| (0..shape[0]).map(|i| v[i * times + k]).collect())
    };
    let fits = a
        .file
        .group("fits")
        .and_then(|g| g.member_names())
        .unwrap_or_default();
    let against_of = |f: &String| {
        a.file
            .group(&format!("fits/{f}"))
            .ok()
            .and_then(|g| ArchiveReader::str_attr(&g, "against"))
    };
    // Width sweeps fit against width; output-scale sweeps against α at each width.
    let against = if fits
        .iter()
        .any(|f| against_of(f).as_deref() == Some("width"))
    {
        "width"
    } else {
        "alpha"
    };
    let (xs, groups) = if against == "width" {
        (&width, &alpha)
    } else {
        (&alpha, &width)
    };
    let mut series = vec![];
    let mut plotted: Vec<String> = vec![];
    let mut c = 0;
    for f in &fits {
        let Ok(g) = a.file.group(&format!("fits/{f}")) else {
            continue;
        };
        let q = ArchiveReader::str_attr(&g, "quantity").unwrap_or_default();
        if ArchiveReader::str_attr(&g, "against").as_deref() != Some(against) {
            continue;
        }
        let Some(y) = values(&q) else {
            continue;
        };
        let num = |k: &str| ArchiveReader::num_attr(&g, k).unwrap_or(f64::NAN);
        let (at, slope, lo, hi) = (num("at"), num("slope"), num("ci95_low"), num("ci95_high"));
        // A fit at one α (or width) uses that group's points; a fit with no group uses them all.
        let pts: Vec<(f64, f64)> = (0..xs.len().min(y.len()))
            .filter(|&i| at.is_nan() || groups[i] == at)
            .map(|i| (xs[i], y[i]))
            .filter(|p| p.0 > 0.0 && p.1 > 0.0 && p.1.is_finite())
            .collect();
        if pts.is_empty() {
            continue;
        }
        // Intercept of the least-squares line with the stored slope: mean(log y) − slope·mean(log x).
        let k = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0.ln()).sum::<f64>() / k;
        let my = pts.iter().map(|p| p.1.ln()).sum::<f64>() / k;
        let (x0, x1) = pts.iter().fold((f64::INFINITY, 0.0f64), |(l, h), p| {
            (l.min(p.0), h.max(p.0))
        });
        let line = |x: f64| (my + slope * (x.ln() - mx)).exp();
        let group = if against == "width" { "α" } else { "N" };
        let tag = if at.is_nan() {
            q.clone()
        } else {
            format!("{q} ({group} = {at})")
        };
        let var = if against == "width" { "N" } else { "α" };
        series.extend(points_and_line(
            c,
            pts,
            vec![(x0, line(x0)), (x1, line(x1))],
            format!("{tag}: {var}^{slope:.2} [{lo:.2}, {hi:.2}]"),
        ));
        let base = q.split_once("(t=").map_or(q.as_str(), |b| b.0).to_string();
        if !plotted.contains(&base) {
            plotted.push(base);
        }
        c += 1;
    }
    if series.is_empty() {
        return Err(Error::archive(
            &a.path,
            "the sweep summary has no fit to plot",
        ));
    }
    Ok(Chart {
        title: format!(
            "{} against {} (log-log fits: exponent and 95% interval)",
            plotted.join(", "),
            if against == "width" { "width" } else { "α" }
        ),
        x_label: if against == "width" {
            "width N"
        } else {
            "output scale α"
        }
        .into(),
        y_label: "value".into(),
        log_x: true,
        log_y: true,
        series,
        rules: vec![],
        heat: None,
        ..Default::default()
    })
}

/// A sweep's data points (faded, out of the legend) and the line through them (labelled), in
/// palette colour c.
fn points_and_line(
    c: usize,
    points: Vec<(f64, f64)>,
    line: Vec<(f64, f64)>,
    label: String,
) -> [Series; 2] {
    [
        Series {
            label: None,
            points,
            color: color(c, 0.8),
            style: Style::Points(4),
        },
        Series {
            label: Some(label),
            points: line,
            color: color(c, 1.0),
            style: Style::Line(2),
        },
    ]
}

/// A sweep's models side by side: every run's final test loss (`points/loss_test_by_run`)
/// against width on log-log axes, one colour per run and output scale α, each seed a point and
/// a line through the geometric means per width (e.g. random features, neural tangent and the
/// network on a single neuron; lazy and feature training on digits).
pub fn models(a: &ArchiveReader) -> Result<Chart> {
    let (width, alpha) = sweep_points(a)?;
    let ds = a
        .file
        .dataset("points/loss_test_by_run")
        .map_err(|_| Error::archive(&a.path, "the sweep summary has no points/loss_test_by_run"))?;
    let names: Vec<String> = ArchiveReader::str_attr(&ds, "runs")
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let (shape, loss) = a.read("points/loss_test_by_run")?;
    let runs = shape.get(1).copied().unwrap_or(0);
    let mut alphas: Vec<f64> = alpha.iter().copied().filter(|x| x.is_finite()).collect();
    alphas.sort_by(f64::total_cmp);
    alphas.dedup();
    let groups: Vec<Option<f64>> = if alphas.len() > 1 {
        alphas.into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    let mut series = vec![];
    let mut c = 0;
    for (r, name) in names.iter().enumerate().take(runs) {
        for g in &groups {
            let pts: Vec<(f64, f64)> = (0..width.len())
                .filter(|&i| g.is_none_or(|x| alpha[i] == x))
                .map(|i| (width[i], loss[i * runs + r]))
                .filter(|p| p.0 > 0.0 && p.1 > 0.0 && p.1.is_finite())
                .collect();
            if pts.is_empty() {
                continue;
            }
            let mut ws: Vec<f64> = pts.iter().map(|p| p.0).collect();
            ws.sort_by(f64::total_cmp);
            ws.dedup();
            let mean: Vec<(f64, f64)> = ws
                .iter()
                .map(|&w| {
                    let v: Vec<f64> = pts.iter().filter(|p| p.0 == w).map(|p| p.1.ln()).collect();
                    (w, (v.iter().sum::<f64>() / v.len() as f64).exp())
                })
                .collect();
            let label = match g {
                Some(x) => format!("{name} (α = {x})"),
                None => name.clone(),
            };
            series.extend(points_and_line(c, pts, mean, label));
            c += 1;
        }
    }
    if series.is_empty() {
        return Err(Error::archive(
            &a.path,
            "the sweep summary has no positive finite test loss to plot",
        ));
    }
    Ok(Chart {
        title:
            "final test loss of each model against width (points: seeds; lines: geometric means)"
                .into(),
        x_label: "width N".into(),
        y_label: "test loss".into(),
        // Losses within a decade read better on a linear axis (a log axis would show no tick).
        log_y: fits_log(
            series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
            1.0,
        ),
        log_x: true,
        series,
        rules: vec![],
        heat: None,
        ..Default::default()
    })
}

/// The particle run drawn beside the PDE `pde`: `run` when it has particles, none when `run`
/// is the PDE itself, else the first run with particles.
fn particle_run(a: &ArchiveReader, pde: &str, run: Option<&str>) -> Result<Option<String>> {
    Ok(match run {
        Some(r) if has(a, r, "particles") => Some(r.to_string()),
        Some(r) if r == pde => None,
        Some(r) => {
            return Err(Error::archive(
                &a.path,
                format!("no particle run '{r}' (runs: {})", a.runs().join(", ")),
            ))
        }
        None => a.runs().into_iter().find(|r| has(a, r, "particles")),
    })
}

/// A 1-D energy archive: the PDE's density at up to four save times (dashed) against the
/// histogram of a particle run's positions at the same times (solid).
pub fn density(a: &ArchiveReader, run: Option<&str>) -> Result<Chart> {
    let runs = a.runs();
    if let Some(pde) = runs
        .iter()
        .find(|r| has(a, r, "density") && has(a, r, "grid_x1"))
    {
        return density_2d(a, pde, run);
    }
    let pde = runs
        .iter()
        .find(|r| has(a, r, "density") && has(a, r, "grid"))
        .cloned()
        .ok_or_else(|| nothing(a, "PDE density"))?;
    let part = particle_run(a, &pde, run)?;
    let grid = get(a, &pde, "grid").map(|g| g.1).unwrap_or_default();
    let (shape, dens) = get(a, &pde, "density").ok_or_else(|| nothing(a, "density"))?;
    let (Some(&m), Some(&t_count)) = (shape.get(1), shape.first()) else {
        return Err(Error::archive(
            &a.path,
            format!("runs/{pde}/density has shape {shape:?}, expected [T, M]"),
        ));
    };
    if m != grid.len() || m < 2 || t_count == 0 {
        return Err(Error::archive(
            &a.path,
            format!(
                "runs/{pde}/density has shape {shape:?} on a grid of {}",
                grid.len()
            ),
        ));
    }
    let times = get(a, &pde, "t").map(|v| v.1).unwrap_or_default();
    let h = grid[1] - grid[0];
    let (lo, hi) = (grid[0] - h / 2.0, grid[m - 1] + h / 2.0);
    let picks = four_of(t_count);
    let particles = part.as_ref().and_then(|r| {
        let (s, x) = get(a, r, "particles")?;
        let t = get(a, r, "t")?.1;
        (s.len() == 3 && s[2] == 1).then_some((r.clone(), s[1], t, x))
    });
    let mut series = vec![];
    for (i, &k) in picks.iter().enumerate() {
        let t = times.get(k).copied().unwrap_or(f64::NAN);
        series.push(Series {
            label: Some(format!("PDE '{pde}', t = {}", super::chart::number(t))),
            points: grid
                .iter()
                .copied()
                .zip(dens[k * m..(k + 1) * m].iter().copied())
                .collect(),
            color: color(i, 0.9),
            style: Style::Dashed(2),
        });
        let Some((name, n, pt, x)) = &particles else {
            continue;
        };
        let Some(j) = pt
            .iter()
            .position(|&s| (s - t).abs() <= 1e-9 * (1.0 + t.abs()))
        else {
            continue;
        };
        let bins = ((*n as f64).sqrt() * 1.5).round().clamp(10.0, 80.0) as usize;
        let width = (hi - lo) / bins as f64;
        series.push(Series {
            label: Some(format!(
                "particles '{name}' (N = {n}), t = {}",
                super::chart::number(t)
            )),
            points: histogram(&x[j * n..(j + 1) * n], lo, width, bins),
            color: color(i, 0.75),
            style: Style::Line(2),
        });
    }
    Ok(Chart {
        title: format!("density ρ(t, x): PDE '{pde}' (M = {m} cells) against particle histograms"),
        x_label: "x".into(),
        y_label: "ρ".into(),
        log_x: false,
        log_y: false,
        series,
        rules: vec![],
        heat: None,
        ..Default::default()
    })
}

/// An energy sweep (`kind = "energy_sweep"`): each particle dynamics' W2 distance to the PDE at
/// the last save against N, every repeat a point, with the fitted power law (slope and its 95%
/// interval in the legend) through the means over repeats.
pub fn energy_sweep(a: &ArchiveReader) -> Result<Chart> {
    let n = a.read_1d("points/particle_count")?;
    let fits = a
        .file
        .group("fits")
        .and_then(|g| g.member_names())
        .map_err(|e| Error::archive(&a.path, format!("no /fits: {e}")))?;
    let mut series = vec![];
    for (c, name) in fits.iter().enumerate() {
        let (shape, w2) = a.read(&format!("points/w2_{name}"))?;
        let t_count = shape.get(1).copied().unwrap_or(1).max(1);
        let last = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
        let pts: Vec<(f64, f64)> = n
            .iter()
            .enumerate()
            .map(|(p, &x)| (x, w2[p * t_count + t_count - 1]))
            .collect();
        let slope = last(&a.read_1d(&format!("fits/{name}/slope"))?);
        let lo = last(&a.read_1d(&format!("fits/{name}/ci_low"))?);
        let hi = last(&a.read_1d(&format!("fits/{name}/ci_high"))?);
        let icpt = last(&a.read_1d(&format!("fits/{name}/intercept"))?);
        let (nmin, nmax) = n
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        let line: Vec<(f64, f64)> = (0..=20)
            .map(|k| {
                let x = nmin * (nmax / nmin).powf(k as f64 / 20.0);
                (x, (icpt + slope * x.ln()).exp())
            })
            .filter(|p| p.1.is_finite())
            .collect();
        let label = format!(
            "{name}: W2 ∝ N^{} [{}, {}]",
            super::chart::number(slope),
            super::chart::number(lo),
            super::chart::number(hi)
        );
        series.extend(points_and_line(c, pts, line, label));
    }
    Ok(Chart {
        title: "W2(particles, PDE) at the last save against N".into(),
        x_label: "N (particles)".into(),
        y_label: "W2 to the PDE".into(),
        log_x: true,
        log_y: true,
        series,
        rules: vec![],
        heat: None,
        ..Default::default()
    })
}

/// Particles that are positions (x, or (x1, x2)): at the first save faded, at the last
/// solid; in 1-D against the particle index's quantile level, i.e. their sorted positions.
pub(crate) fn positions(
    a: &ArchiveReader,
    run: Option<&str>,
    max_particles: usize,
) -> Result<Chart> {
    let run = &pick(a, run, "particles")?.remove(0);
    let (shape, p) = get(a, run, "particles").ok_or_else(|| nothing(a, "particles"))?;
    let [t_count, n, dd] = shape[..] else {
        return Err(Error::archive(
            &a.path,
            format!("runs/{run}/particles has shape {shape:?}, expected [T,N,D]"),
        ));
    };
    if t_count == 0 || n == 0 {
        return Err(nothing(a, "saved particles"));
    }
    let t = get(a, run, "t").map(|v| v.1).unwrap_or_default();
    let stride = n.div_ceil(max_particles.max(1));
    let at = |k: usize| -> Vec<(f64, f64)> {
        let rows = (0..n)
            .step_by(stride)
            .map(|j| &p[(k * n + j) * dd..(k * n + j + 1) * dd]);
        if dd >= 2 {
            rows.map(|r| (r[0], r[1])).collect()
        } else {
            let mut x: Vec<f64> = rows.map(|r| r[0]).collect();
            x.sort_by(f64::total_cmp);
            let m = x.len() as f64;
            x.into_iter()
                .enumerate()
                .map(|(i, v)| (v, (i as f64 + 0.5) / m))
                .collect()
        }
    };
    let label = |k: usize| {
        format!(
            "t = {}",
            super::chart::number(t.get(k).copied().unwrap_or(f64::NAN))
        )
    };
    let series = vec![
        Series {
            label: Some(label(0)),
            points: at(0),
            color: color(7, 0.35),
            style: Style::Points(2),
        },
        Series {
            label: Some(label(t_count - 1)),
            points: at(t_count - 1),
            color: color(0, 0.9),
            style: Style::Points(3),
        },
    ];
    let (xl, yl) = if dd >= 2 {
        ("x1", "x2")
    } else {
        ("x", "quantile level")
    };
    Ok(Chart {
        title: format!(
            "particles of run '{run}' (N = {n}{})",
            if stride > 1 {
                format!(", every {stride}th drawn")
            } else {
                String::new()
            }
        ),
        x_label: xl.into(),
        y_label: yl.into(),
        log_x: false,
        log_y: false,
        series,
        rules: vec![],
        heat: None,
        ..Default::default()
    })
}

/// An energy's free energy over time, every run.
pub fn free_energy(a: &ArchiveReader, run: Option<&str>) -> Result<Chart> {
    let runs = match run {
        Some(r) => vec![r.to_string()],
        None => a.runs(),
    };
    let mut series = vec![];
    for (i, r) in runs.iter().enumerate() {
        let (Some(t), Some(f)) = (get(a, r, "t"), get(a, r, "free_energy")) else {
            continue;
        };
        series.push(Series {
            label: Some(format!(
                "{r} ({})",
                run_attr(a, r, "kind").unwrap_or_default()
            )),
            points: t.1.into_iter().zip(f.1).collect(),
            color: color(i, 0.9),
            style: if i % 2 == 0 {
                Style::Line(2)
            } else {
                Style::Dashed(2)
            },
        });
    }
    if series.is_empty() {
        return Err(nothing(a, "free energy"));
    }
    Ok(Chart {
        title: "free energy F along each run".into(),
        x_label: "t".into(),
        y_label: "F".into(),
        log_x: false,
        log_y: false,
        series,
        rules: vec![],
        heat: None,
        ..Default::default()
    })
}

/// A 2-D energy archive: the PDE's density at its last save as a heat map, with a particle
/// run's positions at the same time on top.
fn density_2d(a: &ArchiveReader, pde: &str, run: Option<&str>) -> Result<Chart> {
    let gx = get(a, pde, "grid_x1").map(|g| g.1).unwrap_or_default();
    let gy = get(a, pde, "grid_x2").map(|g| g.1).unwrap_or_default();
    let (shape, dens) = get(a, pde, "density").ok_or_else(|| nothing(a, "density"))?;
    let [t_count, m1, m2] = shape[..] else {
        return Err(Error::archive(
            &a.path,
            format!("runs/{pde}/density has shape {shape:?}, expected [T, M1, M2]"),
        ));
    };
    if t_count == 0 || m1 != gx.len() || m2 != gy.len() || m1 < 2 || m2 < 2 {
        return Err(Error::archive(
            &a.path,
            format!(
                "runs/{pde}/density has shape {shape:?} on a {}×{} grid",
                gx.len(),
                gy.len()
            ),
        ));
    }
    let t = get(a, pde, "t").map(|v| v.1).unwrap_or_default();
    let t_last = t.get(t_count - 1).copied().unwrap_or(f64::NAN);
    let last = dens[(t_count - 1) * m1 * m2..t_count * m1 * m2].to_vec();
    let part = particle_run(a, pde, run)?;
    let mut series = vec![];
    if let Some(r) = &part {
        if let (Some((ps, p)), Some((_, pt))) = (get(a, r, "particles"), get(a, r, "t")) {
            let k = pt
                .iter()
                .position(|&s| (s - t_last).abs() <= 1e-9 * (1.0 + t_last.abs()));
            if let (Some(k), &[_, n, 2]) = (k, &ps[..]) {
                series.push(Series {
                    label: Some(format!("particles '{r}' (N = {n})")),
                    points: p[k * n * 2..(k + 1) * n * 2]
                        .chunks(2)
                        .map(|q| (q[0], q[1]))
                        .collect(),
                    color: color(3, 0.85),
                    style: Style::Points(2),
                });
            }
        }
    }
    Ok(Chart {
        title: format!(
            "density ρ(t, x) of PDE '{pde}' at t = {} (shading: white 0 to dark blue {}) with the particles",
            super::chart::number(t_last),
            super::chart::number(last.iter().copied().fold(0.0, f64::max))
        ),
        x_label: "x1".into(),
        y_label: "x2".into(),
        log_x: false,
        log_y: false,
        series,
        rules: vec![],
        heat: Some(super::chart::Heat {
            x_edges: cell_edges(&gx),
            y_edges: cell_edges(&gy),
            values: last,
            log: false,
            labels: false,
        }),
        ..Default::default()
    })
}

/// Tu–Aranguri–Jacot's Figure 2 from a phase-diagram archive: the (γσ², γw) grid coloured by the
/// minimum test error (log shading, mean over seeds) beside the stable rank at that minimum, each
/// cell labelled with its value, and the region lines γσ² + γw = 1 (lazy above) and
/// γw + 2γσ² = 0 (infinite noise above) on both.
pub fn phase(a: &ArchiveReader) -> Result<Chart> {
    let col = |c: &str| a.read_1d(&format!("runs/phase_diagram/{c}"));
    let (Ok(gs), Ok(gw)) = (col("gamma_sigma2"), col("gamma_w")) else {
        return Err(nothing(a, "a phase diagram (runs/phase_diagram)"));
    };
    let axis = |v: &[f64]| {
        let mut u: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        u.sort_by(f64::total_cmp);
        u.dedup();
        u
    };
    let (xs, ys) = (axis(&gs), axis(&gw));
    if xs.is_empty() || ys.is_empty() {
        return Err(nothing(a, "a phase diagram (runs/phase_diagram)"));
    }
    let (xe, ye) = (cell_edges(&xs), cell_edges(&ys));
    let (x0, x1, y0, y1) = (xe[0], xe[xe.len() - 1], ye[0], ye[ye.len() - 1]);
    // The two lines, clipped to the grid.
    let line = |f: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
        (0..=400)
            .map(|k| x0 + (x1 - x0) * f64::from(k) / 400.0)
            .map(|x| (x, f(x)))
            .filter(|p| p.1 >= y0 && p.1 <= y1)
            .collect()
    };
    let lines = || {
        let mut v = vec![];
        for (k, (label, f)) in [
            (
                "γσ² + γw = 1 (lazy above)",
                &(|x: f64| 1.0 - x) as &dyn Fn(f64) -> f64,
            ),
            ("γw + 2γσ² = 0 (infinite noise above)", &|x: f64| {
                -2.0 * x
            }),
        ]
        .into_iter()
        .enumerate()
        {
            let points = line(f);
            if !points.is_empty() {
                v.push(Series {
                    label: Some(label.into()),
                    points,
                    color: color(3 - 2 * k, 1.0),
                    style: Style::Dashed(3),
                });
            }
        }
        v
    };
    let panel = |name: &str, title: &str, log: bool| -> Result<Chart> {
        let v = col(name)?;
        let mut values = vec![f64::NAN; xs.len() * ys.len()];
        for (i, &x) in xs.iter().enumerate() {
            for (j, &y) in ys.iter().enumerate() {
                let at: Vec<f64> = (0..gs.len().min(gw.len()).min(v.len()))
                    .filter(|&k| gs[k] == x && gw[k] == y && v[k].is_finite())
                    .map(|k| v[k])
                    .collect();
                if !at.is_empty() {
                    values[i * ys.len() + j] = at.iter().sum::<f64>() / at.len() as f64;
                }
            }
        }
        Ok(Chart {
            title: title.into(),
            x_label: "γσ²  (σ² = d^γσ²)".into(),
            y_label: "γw  (w = d^γw)".into(),
            series: {
                // Head room above the grid for the legend, so that it covers no cell: an
                // invisible point that stretches the y range.
                let mut v = lines();
                v.push(Series {
                    label: None,
                    points: vec![(x0, y1 + 0.22 * (y1 - y0))],
                    color: RGBAColor(255, 255, 255, 0.0),
                    style: Style::Points(0),
                });
                v
            },
            heat: Some(super::chart::Heat {
                x_edges: xe.clone(),
                y_edges: ye.clone(),
                values,
                log,
                labels: true,
            }),
            ..Default::default()
        })
    };
    let mut chart = panel(
        "min_test_error",
        "minimum test error (mean over seeds; darker is larger, log shading)",
        true,
    )?;
    chart.more.push(panel(
        "stable_rank",
        "stable rank ‖A‖²_F / ‖A‖²_op at the minimum",
        false,
    )?);
    Ok(chart)
}

/// Edges of the cells centred on sorted grid values `v`: halfway between neighbours, and half a
/// spacing beyond the ends (a single value gets a unit-wide cell). Empty for no values.
fn cell_edges(v: &[f64]) -> Vec<f64> {
    let Some((&first, &last)) = v.first().zip(v.last()) else {
        return vec![];
    };
    let (h0, h1) = match v.len() {
        1 => (0.5, 0.5),
        n => ((v[1] - v[0]) / 2.0, (v[n - 1] - v[n - 2]) / 2.0),
    };
    let mut e = vec![first - h0];
    e.extend(v.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    e.push(last + h1);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The difference panel: |L − L_gd|/L_gd at GD's save times, the other run interpolated
    /// linearly between its saves, times outside its range dropped, a run at another α and a
    /// staircase limit not compared.
    #[test]
    fn loss_differences_interpolate_at_the_reference_times() {
        let train = |name: &str, points: &[(f64, f64)], staircase, colour, alpha| Train {
            name: name.into(),
            points: points.to_vec(),
            staircase,
            colour,
            alpha,
        };
        let gd = train(
            "gd",
            &[(0.0, 1.0), (1.0, 0.5), (2.0, 0.25), (3.0, 0.125)],
            false,
            0,
            Some(1.0),
        );
        // Linear between its saves: 0.6 at t = 1 and 0.3 at t = 2; no save past 2.5.
        let saves = [(0.0, 1.0), (0.5, 0.8), (1.5, 0.4), (2.5, 0.2)];
        let flow = train("flow", &saves, false, 1, Some(1.0));
        let other_alpha = train("far", &saves, false, 2, Some(1e-3));
        let limit = train("limit", &saves, true, 3, Some(1.0));
        let chart = loss_differences(&[flow, gd, other_alpha, limit], "t", false).unwrap();
        assert_eq!(chart.series.len(), 1);
        let got = &chart.series[0].points;
        let want = [(0.0, 0.0), (1.0, 0.2), (2.0, 0.2)];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((x, y), (wx, wy)) in got.iter().zip(want) {
            assert_eq!(*x, wx);
            assert!((y - wy).abs() < 1e-15, "{got:?}");
        }
        // Nothing to compare: one run.
        let alone = train("gd", &[(0.0, 1.0)], false, 0, None);
        assert!(loss_differences(&[alone], "t", false).is_none());
    }

    #[test]
    fn cell_edges_centre_the_cells() {
        assert_eq!(cell_edges(&[1.0, 2.0, 4.0]), vec![0.5, 1.5, 3.0, 5.0]);
        assert_eq!(cell_edges(&[3.0]), vec![2.5, 3.5]);
        assert!(cell_edges(&[]).is_empty());
    }
}
