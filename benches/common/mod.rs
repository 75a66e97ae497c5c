//! Shared by the benchmarks: criterion's median for a benchmark of this run, for the ratios each
//! bench prints against its same-run baseline.

/// Median time in ns of `<group>/<id>` from criterion's estimates of the latest run.
pub fn median_ns(group: &str, id: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{dir}/criterion/{group}/{id}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}
