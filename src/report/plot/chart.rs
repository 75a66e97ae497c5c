//! A figure as plain data (what to draw) and one renderer for it (how), so the figure builders
//! in `figures` read archives and never touch a drawing backend.

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::sync::Once;

/// The shipped font (DejaVu Sans, licence in assets/fonts): no system font libraries needed.
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are ours and known to parse; a failure would only lose the text.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Style {
    Line(u32),
    Dashed(u32),
    /// Filled circles of this radius.
    Points(u32),
}

#[derive(Clone, Debug)]
pub struct Series {
    /// Legend entry; `None` keeps the series out of the legend.
    pub label: Option<String>,
    pub points: Vec<(f64, f64)>,
    pub color: RGBAColor,
    pub style: Style,
}

/// A full-height or full-width reference line (a threshold, a jump time).
#[derive(Clone, Debug)]
pub struct Rule {
    pub vertical: bool,
    pub at: f64,
    pub color: RGBAColor,
    pub label: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    pub rules: Vec<Rule>,
    /// A heat map under the series (a 2-D density).
    pub heat: Option<Heat>,
    /// Further panels of the same figure: below this one (`below`) or beside it, each with its
    /// own axes.
    pub more: Vec<Chart>,
    pub below: bool,
}

/// Values on a grid of rectangles, coloured from light (0) to dark (the largest value).
#[derive(Clone, Debug)]
pub struct Heat {
    /// Cell edges along x and y (one more than cells).
    pub x_edges: Vec<f64>,
    pub y_edges: Vec<f64>,
    /// Row-major by x: value of cell (i, j) at i·(y cells) + j.
    pub values: Vec<f64>,
    /// Colour by log value from the smallest positive value to the largest, instead of linearly
    /// from 0 (errors spanning decades).
    pub log: bool,
    /// Print each cell's value in it (a coarse grid read as a table).
    pub labels: bool,
}

pub(crate) const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

pub fn color(i: usize, alpha: f64) -> RGBAColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBAColor(r, g, b, alpha)
}

pub(crate) const BLACK_A: RGBAColor = RGBAColor(0, 0, 0, 1.0);

/// A compact tick label: at most four significant digits, no float noise (0.30000000001).
pub fn number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-3..1e5).contains(&v.abs()) {
        crate::report::fixed(v, 4)
    } else {
        let s = format!("{v:.2e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        format!("{m}e{e}")
    }
}

/// Whether `values` fit a log axis: all finite ones positive and spread over at least `decades`.
pub(crate) fn fits_log(values: impl Iterator<Item = f64>, decades: f64) -> bool {
    let (mut lo, mut hi, mut any) = (f64::INFINITY, 0.0f64, false);
    for v in values.filter(|v| v.is_finite()) {
        if v <= 0.0 {
            return false;
        }
        lo = lo.min(v);
        hi = hi.max(v);
        any = true;
    }
    any && hi / lo >= 10f64.powf(decades)
}

impl Chart {
    /// The data range over every drawable point and rule, padded; on a log axis only positive
    /// values count. `None` when nothing is drawable.
    fn ranges(&self) -> Option<((f64, f64), (f64, f64))> {
        let ok = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
        let mut x = (f64::INFINITY, f64::NEG_INFINITY);
        let mut y = x;
        let grow = |r: &mut (f64, f64), v: f64| {
            r.0 = r.0.min(v);
            r.1 = r.1.max(v);
        };
        for s in &self.series {
            for &(px, py) in &s.points {
                if ok(px, self.log_x) && ok(py, self.log_y) {
                    grow(&mut x, px);
                    grow(&mut y, py);
                }
            }
        }
        if let Some(h) = &self.heat {
            for v in [h.x_edges.first(), h.x_edges.last()].into_iter().flatten() {
                grow(&mut x, *v);
            }
            for v in [h.y_edges.first(), h.y_edges.last()].into_iter().flatten() {
                grow(&mut y, *v);
            }
        }
        if !x.0.is_finite() {
            return None;
        }
        for r in &self.rules {
            let (range, log) = if r.vertical {
                (&mut x, self.log_x)
            } else {
                (&mut y, self.log_y)
            };
            if ok(r.at, log) {
                grow(range, r.at);
            }
        }
        Some((pad(x, self.log_x), pad(y, self.log_y)))
    }
}

impl Chart {
    /// The corner of the plot with the fewest data points, so the legend hides the least.
    fn legend_corner(&self) -> SeriesLabelPosition {
        let Some((xr, yr)) = self.ranges() else {
            return SeriesLabelPosition::UpperRight;
        };
        let unit = |v: f64, r: (f64, f64), log: bool| {
            if log {
                (v.log10() - r.0.log10()) / (r.1.log10() - r.0.log10())
            } else {
                (v - r.0) / (r.1 - r.0)
            }
        };
        let mut count = [0usize; 4];
        for s in &self.series {
            for &(x, y) in &s.points {
                let (u, v) = (unit(x, xr, self.log_x), unit(y, yr, self.log_y));
                if !(u.is_finite() && v.is_finite()) {
                    continue;
                }
                let (right, left, top, bottom) = (u > 0.6, u < 0.4, v > 0.7, v < 0.3);
                count[0] += usize::from(right && top);
                count[1] += usize::from(left && top);
                count[2] += usize::from(right && bottom);
                count[3] += usize::from(left && bottom);
            }
        }
        let corners = [
            SeriesLabelPosition::UpperRight,
            SeriesLabelPosition::UpperLeft,
            SeriesLabelPosition::LowerRight,
            SeriesLabelPosition::LowerLeft,
        ];
        let best = (0..4).min_by_key(|&i| count[i]).unwrap_or(0);
        corners[best].clone()
    }
}

fn pad(r: (f64, f64), log: bool) -> (f64, f64) {
    if log {
        let (a, b) = (r.0.log10(), r.1.log10());
        let m = ((b - a) * 0.05).max(0.05);
        (10f64.powf(a - m), 10f64.powf(b + m))
    } else {
        let m = ((r.1 - r.0) * 0.05).max(r.1.abs().max(1e-12) * 1e-3);
        (r.0 - m, r.1 + m)
    }
}

/// Renders `chart` into a PNG or SVG file chosen by the extension of `path`.
pub(crate) fn render(
    chart: &Chart,
    path: &std::path::Path,
    size: (u32, u32),
) -> Result<(), String> {
    register_font();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            panels(chart, &root)?;
            root.present().map_err(|e| e.to_string())
        }
        "svg" => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            panels(chart, &root)?;
            root.present().map_err(|e| e.to_string())
        }
        _ => Err(format!(
            "the output must end in .png or .svg, not '{}'",
            path.display()
        )),
    }
}

/// Tick values of a log axis over (lo, hi), at most `most` of them: m·10^k with m in 1..9,
/// thinned to 1, 2, 5 and then to powers of ten as the range widens (every k-th, counted from
/// the lowest), so that a range inside one decade is labelled too.
fn log_ticks((lo, hi): (f64, f64), most: usize) -> Vec<f64> {
    let within = |m: &[f64]| -> Vec<f64> {
        let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        (k0..=k1)
            .flat_map(|k| m.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| *v >= lo && *v <= hi)
            .collect()
    };
    let all: Vec<f64> = (1..10).map(f64::from).collect();
    for m in [&all[..], &[1.0, 2.0, 5.0]] {
        let t = within(m);
        if t.len() <= most {
            return t;
        }
    }
    // Powers of ten, and over many decades every other one or sparser.
    let t = within(&[1.0]);
    let step = t.len().div_ceil(most.max(1)).max(1);
    t.into_iter().step_by(step).collect()
}

/// The chart and its further panels: stacked (the first panel taller: the others are
/// companions, e.g. a difference) or side by side (equal widths).
fn panels<DB: DrawingBackend>(chart: &Chart, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    if chart.more.is_empty() {
        return draw(chart, root);
    }
    let (_, h) = root.dim_in_pixel();
    let k = chart.more.len() as u32;
    let areas = if chart.below {
        let first = h * 2 / (2 + k);
        let (top, rest) = root.split_vertically(first);
        let mut v = vec![top];
        v.extend(rest.split_evenly((chart.more.len(), 1)));
        v
    } else {
        root.split_evenly((1, chart.more.len() + 1))
    };
    for (c, area) in std::iter::once(chart).chain(&chart.more).zip(&areas) {
        draw(c, area)?;
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(chart: &Chart, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let Some((xr, yr)) = chart.ranges() else {
        return Err("nothing to draw: every value is missing or not finite".into());
    };
    // As many log labels as fit the plotting area (the panel less its caption and label
    // areas): one per 60 px across, one per 26 px up, 12 at most.
    let (w, h) = root.dim_in_pixel();
    let (most_x, most_y) = (
        (w.saturating_sub(90) as usize / 60).clamp(2, 12),
        (h.saturating_sub(80) as usize / 26).clamp(2, 12),
    );
    let mut b = ChartBuilder::on(root);
    b.caption(&chart.title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72);
    // The four axis combinations are four coordinate types; one generic body serves them all.
    match (chart.log_x, chart.log_y) {
        (false, false) => body(
            chart,
            b.build_cartesian_2d(xr.0..xr.1, yr.0..yr.1).map_err(err)?,
        ),
        (true, false) => body(
            chart,
            b.build_cartesian_2d(
                (xr.0..xr.1)
                    .log_scale()
                    .with_key_points(log_ticks(xr, most_x)),
                yr.0..yr.1,
            )
            .map_err(err)?,
        ),
        (false, true) => body(
            chart,
            b.build_cartesian_2d(
                xr.0..xr.1,
                (yr.0..yr.1)
                    .log_scale()
                    .with_key_points(log_ticks(yr, most_y)),
            )
            .map_err(err)?,
        ),
        (true, true) => body(
            chart,
            b.build_cartesian_2d(
                (xr.0..xr.1)
                    .log_scale()
                    .with_key_points(log_ticks(xr, most_x)),
                (yr.0..yr.1)
                    .log_scale()
                    .with_key_points(log_ticks(yr, most_y)),
            )
            .map_err(err)?,
        ),
    }
}

fn body<'a, DB, X, Y>(
    chart: &Chart,
    mut ctx: ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    // A tick at lo + k·step that should be 0 comes out as ±1e-17: call it 0.
    let (xs, ys) = (ctx.x_range(), ctx.y_range());
    let span = |lo: f64, hi: f64, log: bool| if log { 0.0 } else { (hi - lo).abs() };
    let (xspan, yspan) = (
        span(xs.start, xs.end, chart.log_x),
        span(ys.start, ys.end, chart.log_y),
    );
    let tick = |v: f64, span: f64| number(if v.abs() < 1e-9 * span { 0.0 } else { v });
    ctx.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .label_style((FAMILY, 14))
        .x_label_formatter(&|v| tick(*v, xspan))
        .y_label_formatter(&|v| tick(*v, yspan))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(RGBAColor(0, 0, 0, 0.04))
        .bold_line_style(RGBAColor(0, 0, 0, 0.12))
        .draw()
        .map_err(err)?;
    if let Some(h) = &chart.heat {
        let ok = |v: f64| v.is_finite() && (!h.log || v > 0.0);
        let (lo, top) = h
            .values
            .iter()
            .copied()
            .filter(|&v| ok(v))
            .fold((f64::INFINITY, 0.0f64), |(l, t), v| (l.min(v), t.max(v)));
        let shade = |v: f64| -> f64 {
            if !ok(v) || top <= 0.0 {
                0.0
            } else if h.log {
                let span = (top / lo).ln();
                if span > 0.0 {
                    (v / lo).ln() / span
                } else {
                    1.0
                }
            } else {
                (v / top).clamp(0.0, 1.0)
            }
        };
        let ny = h.y_edges.len().saturating_sub(1);
        let cell = |k: usize| -> Option<(f64, f64, f64, f64)> {
            let (i, j) = (k / ny.max(1), k % ny.max(1));
            Some((
                *h.x_edges.get(i)?,
                *h.x_edges.get(i + 1)?,
                *h.y_edges.get(j)?,
                *h.y_edges.get(j + 1)?,
            ))
        };
        let cells = h.values.iter().enumerate().filter_map(|(k, &v)| {
            let (x0, x1, y0, y1) = cell(k)?;
            let s = shade(v);
            // White to a deep blue.
            let c = RGBColor(
                (255.0 - 230.0 * s) as u8,
                (255.0 - 180.0 * s) as u8,
                (255.0 - 75.0 * s) as u8,
            );
            Some(Rectangle::new([(x0, y0), (x1, y1)], c.filled()))
        });
        ctx.draw_series(cells).map_err(err)?;
        if h.labels {
            // A cell without a value (a grid point not run) stays blank.
            let texts = h.values.iter().enumerate().filter_map(|(k, &v)| {
                if !v.is_finite() {
                    return None;
                }
                let (x0, x1, y0, y1) = cell(k)?;
                let ink: &'static RGBColor = if shade(v) > 0.55 { &WHITE } else { &BLACK };
                let style = TextStyle::from((FAMILY, 13).into_font())
                    .color(ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                Some(Text::new(
                    number(v),
                    ((x0 + x1) / 2.0, (y0 + y1) / 2.0),
                    style,
                ))
            });
            ctx.draw_series(texts).map_err(err)?;
        }
    }
    let (xr, yr) = (ctx.x_range(), ctx.y_range());
    let in_x = |v: f64| v.is_finite() && (!chart.log_x || v > 0.0);
    let in_y = |v: f64| v.is_finite() && (!chart.log_y || v > 0.0);
    let mut legend = false;
    for r in &chart.rules {
        let pts = if r.vertical {
            if !in_x(r.at) {
                continue;
            }
            vec![(r.at, yr.start), (r.at, yr.end)]
        } else {
            if !in_y(r.at) {
                continue;
            }
            vec![(xr.start, r.at), (xr.end, r.at)]
        };
        let style = ShapeStyle::from(r.color).stroke_width(2);
        let a = ctx
            .draw_series(DashedLineSeries::new(pts, 8, 5, style))
            .map_err(err)?;
        if let Some(l) = &r.label {
            legend = true;
            a.label(l.as_str()).legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (8, 0)], style)
                    + PathElement::new(vec![(13, 0), (20, 0)], style)
            });
        }
    }
    for s in &chart.series {
        // A log axis cannot show zero or negative values; a break in the data breaks the line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![vec![]];
        for &(x, y) in &s.points {
            if in_x(x) && in_y(y) {
                runs.last_mut().expect("never empty").push((x, y));
            } else if !runs.last().expect("never empty").is_empty() {
                runs.push(vec![]);
            }
        }
        let mut labelled = false;
        // A labelled series with no points is a legend entry only (what solid and dashed mean).
        if s.points.is_empty() && s.label.is_some() {
            runs[0].clear();
        } else {
            runs.retain(|r| !r.is_empty());
        }
        for pts in runs {
            let anno = match s.style {
                Style::Line(w) => ctx
                    .draw_series(LineSeries::new(pts, s.color.stroke_width(w)))
                    .map_err(err)?,
                Style::Dashed(w) => ctx
                    .draw_series(DashedLineSeries::new(pts, 6, 4, s.color.stroke_width(w)))
                    .map_err(err)?,
                Style::Points(r) => ctx
                    .draw_series(pts.into_iter().map(|p| Circle::new(p, r, s.color.filled())))
                    .map_err(err)?,
            };
            if let (Some(l), false) = (&s.label, labelled) {
                labelled = true;
                legend = true;
                let (c, style) = (s.color, s.style);
                // A short stroke (thick for points), broken in two for a dashed line.
                let w = match style {
                    Style::Points(_) => 6,
                    Style::Line(w) | Style::Dashed(w) => w.max(2),
                };
                let gap = if matches!(style, Style::Dashed(_)) {
                    (8, 13)
                } else {
                    (20, 20)
                };
                anno.label(l.as_str()).legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (gap.0, 0)], c.stroke_width(w))
                        + PathElement::new(vec![(gap.1, 0), (20, 0)], c.stroke_width(w))
                });
            }
        }
    }
    if legend {
        ctx.configure_series_labels()
            .position(chart.legend_corner())
            .background_style(RGBAColor(255, 255, 255, 0.85))
            .border_style(RGBAColor(0, 0, 0, 0.3))
            .label_font((FAMILY, 13))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}
