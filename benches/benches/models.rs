//! Criterion benchmarks of the models: JSON round trip and validation of a full DesiredLRP.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use diego_core::Validate;

fn models(c: &mut Criterion) {
    let lrp = match diego_benches::models::sample_desired_lrp() {
        Ok(lrp) => lrp,
        Err(e) => panic!("the sample DesiredLRP does not parse: {e}"),
    };
    c.bench_function("desired_lrp_json_roundtrip", |b| {
        b.iter(|| diego_benches::models::json_roundtrip(std::hint::black_box(&lrp)))
    });
    c.bench_function("desired_lrp_validate", |b| {
        b.iter(|| std::hint::black_box(&lrp).validate())
    });
}

criterion_group!(benches, models);
criterion_main!(benches);
