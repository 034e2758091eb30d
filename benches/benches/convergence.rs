//! Criterion benchmark of convergence planning: a pure plan over 25,000 ActualLRPs of 250
//! DesiredLRPs with 1% of them on a lost cell.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::collections::HashSet;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use diego_core::convergence::{plan_lrp_convergence, LrpConvergenceConfig, LrpSnapshot};
use diego_core::{
    ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, ActualLrpState, CellId,
    Domain, Timestamp,
};

fn snapshot() -> (LrpSnapshot, HashSet<CellId>) {
    let now = Timestamp(1_767_225_600_000_000_000);
    let mut desired = Vec::new();
    let mut actual = Vec::new();
    for i in 0..250 {
        let info = diego_benches::bbs::realistic_lrp(i, 100).scheduling_info;
        for index in 0..100 {
            let mut row = ActualLrp::unclaimed(
                ActualLrpKey::new(info.process_guid.clone(), index, info.domain.clone()),
                now,
            );
            row.state = ActualLrpState::Running;
            let cell = format!("cell-{:03}", (i * 100 + index as usize) % 100);
            row.instance_key = Some(ActualLrpInstanceKey::new(format!("i-{i}-{index}"), cell));
            row.net_info = Some(ActualLrpNetInfo {
                address: "10.0.0.1".into(),
                ..Default::default()
            });
            actual.push(Arc::new(row));
        }
        desired.push(info);
    }
    let live = (0..99)
        .map(|c| CellId::new(format!("cell-{c:03}")))
        .collect();
    let domains = vec![Domain {
        name: "cf-apps".into(),
        expires_at: None,
    }];
    (
        LrpSnapshot {
            desired,
            actual,
            domains,
        },
        live,
    )
}

fn convergence(c: &mut Criterion) {
    let (snap, live) = snapshot();
    let config = LrpConvergenceConfig::default();
    let now = Timestamp(1_767_225_600_000_000_000);
    c.bench_function("plan_lrp_convergence_25k", |b| {
        b.iter(|| plan_lrp_convergence(std::hint::black_box(&snap), now, &live, &config))
    });
}

criterion_group!(benches, convergence);
criterion_main!(benches);
