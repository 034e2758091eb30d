//! Helpers of the whole-cluster tests: fake programs, and watching that an LRP stays served.

use std::time::Duration;

use diego_core::prelude::*;
use diego_core::store::ActualLrpFilter;
use diego_core::{ActualLrpState, Bbs};

/// Samples the ActualLRP rows `samples` times, 50 ms apart, and returns the fewest of
/// the indices `0..instances` that had a RUNNING row (ordinary or evacuating) at once.
pub fn fewest_served(bbs: Bbs, instances: i32, samples: usize) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut worst = instances as usize;
        for _ in 0..samples {
            let rows = bbs.actual_lrps(&ActualLrpFilter::default()).await.unwrap();
            let serving = (0..instances)
                .filter(|i| {
                    rows.iter()
                        .any(|r| r.key.index == *i && r.state == ActualLrpState::Running)
                })
                .count();
            worst = worst.min(serving);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        worst
    })
}

/// Teaches `backend` the programs the cluster tests run: `/app/server` (listens on its
/// port, runs forever) and `/bin/task` (writes `42` to `/tmp/result`, exits 0).
pub fn app_and_task_programs(backend: &diego_garden::FakeBackend) {
    use diego_garden::{FakeScript, FakeStep};
    backend.set_program("/app/server", |_| {
        FakeScript::new()
            .then(FakeStep::Listen(0))
            .then(FakeStep::Forever)
    });
    backend.set_program("/bin/task", |_| {
        FakeScript::new()
            .then(FakeStep::WriteFile(
                "/tmp/result".into(),
                bytes::Bytes::from_static(b"42"),
            ))
            .then(FakeStep::Exit(0))
    });
}
