//! The `models` headline group and the shared sample DesiredLRP of the model benches.

use std::time::{Duration, Instant};

use diego_core::DesiredLrp;

/// A DesiredLRP with every field set (the checked-in fixture).
pub fn sample_desired_lrp() -> anyhow::Result<DesiredLrp> {
    let text = include_str!("../../diego-core/tests/fixtures/desired_lrp.json");
    Ok(serde_json::from_str(text)?)
}

/// Serialises and parses `lrp` once; returns the JSON length (so the work is not optimised away).
pub fn json_roundtrip(lrp: &DesiredLrp) -> anyhow::Result<usize> {
    let json = serde_json::to_vec(lrp)?;
    let back: DesiredLrp = serde_json::from_slice(&json)?;
    anyhow::ensure!(&back == lrp, "round trip changed the DesiredLRP");
    Ok(json.len())
}

/// Prints `model_json_roundtrip_per_sec`: serialise + parse of a full DesiredLRP.
pub fn run() -> anyhow::Result<()> {
    let lrp = sample_desired_lrp()?;
    // Warm up, then measure for about two seconds.
    for _ in 0..1_000 {
        json_roundtrip(&lrp)?;
    }
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..1_000 {
            json_roundtrip(&lrp)?;
        }
        n += 1_000;
    }
    let per_sec = n as f64 / start.elapsed().as_secs_f64();
    crate::print_figure("model_json_roundtrip_per_sec", per_sec, "ops/s");
    Ok(())
}
