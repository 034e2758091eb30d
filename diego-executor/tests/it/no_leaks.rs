//! The executor never leaks a container or a reservation: a seeded random sequence of
//! allocations, runs, stops, deletes and clock jumps on the FakeBackend (paused time),
//! checking the books after every step and that nothing is left at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use crate::common;
use std::time::Duration;

use common::{fake_harness, request, sh};
use diego_executor::{AllocationRequest, ContainerResource, ContainerState, Resources};
use diego_garden::FakeBackend;

/// A small deterministic generator (64-bit LCG), so the sequence is the same every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn sum(containers: &[diego_executor::Container]) -> Resources {
    let mut used = Resources::default();
    for c in containers {
        used.memory_mb += c.resource.memory_mb;
        used.disk_mb += c.resource.disk_mb;
        used.containers += 1;
    }
    used
}

#[tokio::test(start_paused = true)]
async fn random_operations_leave_nothing_behind() {
    for seed in [1_u64, 7, 42] {
        let fake = FakeBackend::new();
        let h = fake_harness(&fake).await;
        let total = h.executor.total_resources();
        let mut rng = Lcg(seed);
        let (mut runs, mut stops, mut deletes) = (0, 0, 0);
        for _ in 0..400 {
            // Mostly act on containers that exist (reserved ones for runs), sometimes on
            // any name.
            let op = rng.next(5);
            let known = h.executor.list();
            let candidates: Vec<String> = known
                .iter()
                .filter(|c| op != 1 || c.state == ContainerState::Reserved)
                .map(|c| c.guid.clone())
                .collect();
            let guid = if !candidates.is_empty() && rng.next(4) != 0 {
                candidates[rng.next(candidates.len() as u64) as usize].clone()
            } else {
                format!("g{}", rng.next(12))
            };
            match op {
                0 => {
                    let memory = 64 * (1 + rng.next(4));
                    let _ = h
                        .executor
                        .allocate(vec![AllocationRequest::new(
                            guid,
                            ContainerResource::new(memory, 100),
                        )])
                        .await;
                }
                1 => {
                    let script = match rng.next(4) {
                        0 => "exit 0",
                        1 => "exit 3",
                        2 => "sleep 5",
                        _ => "trap '' TERM; sleep 100",
                    };
                    if h.executor.run(&guid, request(sh(script))).await.is_ok() {
                        runs += 1;
                    }
                }
                2 => {
                    if h.executor.stop(&guid).await.is_ok() {
                        stops += 1;
                    }
                }
                3 => {
                    if h.executor.delete(&guid).await.is_ok() {
                        deletes += 1;
                    }
                }
                _ => {
                    // Now and then long enough for reservations to expire.
                    let secs = if rng.next(5) == 0 { 61 } else { rng.next(10) };
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                }
            }
            // The books balance after every step.
            let known = h.executor.list();
            let used = sum(&known);
            let left = h.executor.remaining_resources();
            assert_eq!(left.memory_mb + used.memory_mb, total.memory_mb);
            assert_eq!(left.disk_mb + used.disk_mb, total.disk_mb);
            assert_eq!(left.containers + used.containers, total.containers);
            // Every backend container belongs to a known, non-reserved container.
            let in_backend = fake.container_count();
            let created = known
                .iter()
                .filter(|c| c.state != ContainerState::Reserved)
                .count();
            assert!(
                in_backend <= created,
                "seed {seed}: {in_backend} backend containers, {created} created"
            );
        }
        // The sequence did exercise the lifecycle.
        assert!(
            runs >= 10 && stops >= 10 && deletes >= 10,
            "{runs} {stops} {deletes}"
        );
        for container in h.executor.list() {
            h.executor.delete(&container.guid).await.unwrap();
        }
        assert_eq!(h.executor.remaining_resources(), total, "seed {seed}");
        assert_eq!(fake.container_count(), 0, "seed {seed}");
        assert!(h.executor.list().is_empty());
    }
}
