//! Criterion benchmarks of the BBS on the MemoryStore: one claim+start pair, and listing
//! 25,000 ActualLRPs.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use diego_core::prelude::*;
use diego_core::store::ActualLrpFilter;
use diego_core::{ActualLrpInstanceKey, ActualLrpNetInfo};

fn bbs(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no runtime: {e}"),
    };
    let bbs = match rt.block_on(diego_benches::bbs::populated(250, 100)) {
        Ok(bbs) => bbs,
        Err(e) => panic!("populating the BBS failed: {e}"),
    };
    let keys: Vec<_> = match rt.block_on(bbs.actual_lrps(&ActualLrpFilter::default())) {
        Ok(rows) => rows.iter().map(|r| r.key.clone()).collect(),
        Err(e) => panic!("listing failed: {e}"),
    };
    let net = ActualLrpNetInfo {
        address: "10.0.0.1".into(),
        ..Default::default()
    };
    let mut n = 0usize;
    let mut group = c.benchmark_group("bbs");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("claim_start_pair", |b| {
        b.iter(|| {
            let key = &keys[n % keys.len()];
            let ik = ActualLrpInstanceKey::new(format!("i{n}"), "cell-1");
            n += 1;
            rt.block_on(async {
                // A key already RUNNING from an earlier iteration goes back through UNCLAIMED.
                let _ = bbs.unclaim_actual_lrp(key).await;
                bbs.claim_actual_lrp(key, &ik).await?;
                bbs.start_actual_lrp(key, &ik, &net, true).await
            })
        })
    });
    group.bench_function("list_actual_25k", |b| {
        b.iter(|| rt.block_on(bbs.actual_lrps(&ActualLrpFilter::default())))
    });
    group.finish();
}

criterion_group!(benches, bbs);
criterion_main!(benches);
