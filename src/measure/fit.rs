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

/// Ordinary least squares on (log x, log y); None with fewer than 3 distinct x, or when y does
/// not vary (by 1e-6 relative: a constant has no meaningful power law, and its "slope 0 [0, 0]"
/// would read as a measurement). Non-positive y are dropped.
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
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    // y spread by less than 1e-6 relative: a constant up to rounding or solver tolerance (the
    // linearized model's test loss across α), whose slope would be noise.
    if syy <= 1e-12 * n {
        return None;
    }
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

#[cfg(test)]
mod tests {
    use super::loglog_fit;

    #[test]
    fn exact_power_law_and_constant() {
        let x = [1.0, 2.0, 4.0, 8.0, 16.0];
        let y: Vec<f64> = x.iter().map(|v: &f64| 3.0 * v.powf(-0.5)).collect();
        let f = loglog_fit(&x, &y).expect("a power law fits");
        assert!((f.slope + 0.5).abs() < 1e-12 && (f.intercept - 3f64.ln()).abs() < 1e-12);
        // A constant measurement is not fitted (it would print as slope 0 [0, 0]).
        assert!(loglog_fit(&x, &[0.2; 5]).is_none());
        let noisy: Vec<f64> = (0..5).map(|i| 0.2 * (1.0 + 1e-9 * f64::from(i))).collect();
        assert!(loglog_fit(&x, &noisy).is_none());
        let varying: Vec<f64> = (0..5).map(|i| 0.2 * (1.0 + 1e-3 * f64::from(i))).collect();
        assert!(loglog_fit(&x, &varying).is_some());
    }
}
