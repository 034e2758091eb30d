//! Diego's score arithmetic, shared by the indexed strategy and the plain scan so both
//! compute bit-for-bit the same number for the same cell and work.
//!
//! LRP score (lower wins) = mean fraction of memory, disk and containers used after
//! placement (memory including the cell's proxy memory) + `starting_container_weight` ×
//! starting containers + 1000 × instances of the same process on the cell +
//! `bin_pack_first_fit_weight` × zone-normalised cell index. The mean used fraction is
//! split into a part that depends only on the cell (`resource_base`) and a part that
//! depends only on the work and the cell's totals (`work_term`), so cells can be kept in
//! order of their cell-only part.

use diego_core::CellCapacity;

/// Score added per instance of the same process (or per Task) already on the cell.
pub const LOCALITY_OFFSET: f64 = 1000.0;

fn free_ratio(avail: i64, total: i32) -> f64 {
    if total <= 0 {
        1.0
    } else {
        avail as f64 / f64::from(total)
    }
}

fn need_ratio(need: i64, total: i32) -> f64 {
    if total <= 0 {
        0.0
    } else {
        need as f64 / f64::from(total)
    }
}

/// Mean fraction used *before* placement.
pub(crate) fn resource_base(memory: i64, disk: i64, containers: i64, total: &CellCapacity) -> f64 {
    (3.0 - free_ratio(memory, total.memory_mb)
        - free_ratio(disk, total.disk_mb)
        - free_ratio(containers, total.containers))
        / 3.0
}

/// What placing `memory`/`disk` and one container adds to the mean used fraction.
pub(crate) fn work_term(memory: i64, disk: i64, total: &CellCapacity) -> f64 {
    (need_ratio(memory, total.memory_mb)
        + need_ratio(disk, total.disk_mb)
        + need_ratio(1, total.containers))
        / 3.0
}

/// The cell-only part of an LRP score.
pub(crate) fn lrp_base(
    resource_base: f64,
    starting: i64,
    zone_index: u32,
    starting_weight: f64,
    bin_pack_weight: f64,
) -> f64 {
    resource_base + starting as f64 * starting_weight + f64::from(zone_index) * bin_pack_weight
}

/// The full LRP score.
#[inline]
pub(crate) fn lrp_score(base: f64, work_term: f64, same_process: u32) -> f64 {
    base + work_term + LOCALITY_OFFSET * f64::from(same_process)
}

/// The cell-only part of a Task score (no bin-pack term).
pub(crate) fn task_base(resource_base: f64, starting: i64, starting_weight: f64) -> f64 {
    resource_base + starting as f64 * starting_weight
}

/// The full Task score.
#[inline]
pub(crate) fn task_score(base: f64, work_term: f64, tasks: u32) -> f64 {
    base + work_term + LOCALITY_OFFSET * f64::from(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_gos_formula() {
        let total = CellCapacity {
            memory_mb: 100,
            disk_mb: 200,
            containers: 10,
        };
        let (am, ad, ac) = (60i64, 150i64, 7i64);
        let (m, d) = (10i64, 20i64);
        let go = ((1.0 - (am - m) as f64 / 100.0)
            + (1.0 - (ad - d) as f64 / 200.0)
            + (1.0 - (ac - 1) as f64 / 10.0))
            / 3.0
            + 2.0 * 0.25
            + 1000.0;
        let ours = lrp_score(
            lrp_base(resource_base(am, ad, ac, &total), 2, 0, 0.25, 0.0),
            work_term(m, d, &total),
            1,
        );
        assert!((go - ours).abs() < 1e-12, "{go} vs {ours}");
    }
}
