//! Power laws fitted to measurements: the slope of log y on log x, with its interval.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// A least-squares line through (log x, log y).
#[derive(Debug, Clone, Copy)]
pub struct LogLog {
    pub slope: f64,
    /// The slope's 95% confidence interval (Student t).
    pub ci_low: f64,
    pub ci_high: f64,
    pub intercept: f64,
}

/// Ordinary least squares on (log x, log y); None with fewer than 3 distinct x or non-positive y.
pub fn loglog_fit(x: &[f64], y: &[f64]) -> Option<LogLog> {
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| **a > 0.0 && **b > 0.0 && b.is_finite())
        .map(|(a, b)| (a.ln(), b.ln()))
        .collect();
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup();
    if xs.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let resid: f64 = pts
        .iter()
        .map(|p| (p.1 - my - slope * (p.0 - mx)).powi(2))
        .sum();
    let dof = n - 2.0;
    let se = (resid / dof / sxx).sqrt();
    let t = StudentsT::new(0.0, 1.0, dof).ok()?.inverse_cdf(0.975);
    Some(LogLog {
        slope,
        ci_low: slope - t * se,
        ci_high: slope + t * se,
        intercept: my - slope * mx,
    })
}
