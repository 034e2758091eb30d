//! The incremental index behind [`DiegoStrategy`](crate::DiegoStrategy): cells kept in
//! ordered sets by the part of Diego's score that does not depend on the work, and
//! per-process instance counts kept up to date as work is placed and as cells report.
//!
//! Cells are grouped into *buckets* of cells alike in zone, filter signature (rootfs
//! providers, tags, volume drivers) and capacity class (total resources and proxy
//! memory). Within a bucket the work-dependent part of the score is the same for every
//! cell, so the cell with the lowest cell-only part (`base`) is the best cell of the
//! bucket among those not holding the process — the same-process penalty is the
//! exception, paid only by the few cells that already run the process, which are scored
//! one by one. The index survives between rounds: a cell handed in as the same
//! `Arc<CellState>` snapshot is not read again (one dense array of snapshot addresses is
//! checked per round), a cell that reports exactly the work placed on it is taken as it
//! is (no reordering, no recount), and a changed cell whose LRP list only grew (its
//! [`LrpLineage`] says so) is updated from the new entries alone. The index keeps no copy
//! of a cell's instances, only how many it has counted.
//!
//! Exact per-process counts are kept only for processes that have come up for
//! placement (under small ids); the instances of every other process (the bulk of what
//! cells already run) only set four bits each in a Bloom filter when a cell is ingested,
//! read from the state's [`LrpFingerprints`](diego_core::models::cell::LrpFingerprints) when the
//! producer supplies them (one dense array per cell) or hashed from the guids otherwise.
//! A process first coming up for placement that the filter has not seen has no instances
//! anywhere; one it may have seen is counted once by a scan of the cells' instances (of
//! their fingerprints first, when present).

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};

use diego_core::models::cell::{process_fingerprint, LrpLineage};
use diego_core::{CellCapacity, CellId, CellState, LrpStartRequest, ProcessGuid, Resource};
use rand::rngs::SmallRng;
use rand::Rng;
use rustc_hash::FxHashMap;

use super::score::{lrp_base, lrp_score, resource_base, task_base, task_score, work_term};
use super::{DiegoConfig, TieBreak};
use crate::error::{Error, Shortfall};
use crate::filter::{filter_error, filter_reach, same_filter_signature, signature_id, FilterReach};

/// An `f64` as a `u64` whose unsigned order is the float's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u64);

impl Key {
    fn of(x: f64) -> Key {
        let b = x.to_bits();
        Key(if b >> 63 == 1 { !b } else { b | (1 << 63) })
    }
}

/// The cells holding one process, with their instance counts.
#[derive(Clone, Debug)]
enum Holders {
    One(u32, u32),
    Many(Vec<(u32, u32)>),
}

impl Holders {
    fn add(&mut self, cell: u32) {
        match self {
            Holders::One(c, n) if *c == cell => *n += 1,
            Holders::One(c, n) => *self = Holders::Many(vec![(*c, *n), (cell, 1)]),
            Holders::Many(v) if v.is_empty() => *self = Holders::One(cell, 1),
            Holders::Many(v) => match v.iter_mut().find(|h| h.0 == cell) {
                Some(h) => h.1 += 1,
                None => v.push((cell, 1)),
            },
        }
    }

    /// Removes one instance on `cell`; `true` when no holder is left.
    fn remove(&mut self, cell: u32) -> bool {
        match self {
            Holders::One(c, n) if *c == cell => {
                *n -= 1;
                *n == 0
            }
            Holders::One(..) => false,
            Holders::Many(v) => {
                if let Some(i) = v.iter().position(|h| h.0 == cell) {
                    v[i].1 -= 1;
                    if v[i].1 == 0 {
                        v.swap_remove(i);
                    }
                }
                v.is_empty()
            }
        }
    }
}

/// What the index knows of one cell.
#[derive(Clone, Debug)]
struct IndexedCell {
    cell_id: CellId,
    /// How many of the snapshot's LRPs are counted (0 for evacuating cells): a later
    /// snapshot of the same lineage adds only those after them.
    known: usize,
    live: bool,
    zone: u32,
    sig: u32,
    bucket: u32,
    zone_index: u32,
    avail_memory: i64,
    avail_disk: i64,
    avail_containers: i64,
    starting: i64,
    tasks: u32,
    base: f64,
    /// Processes (ids) of LRPs placed here since the cell last reported.
    placed: Vec<u32>,
    /// Tracked processes (ids) counted on this cell, possibly repeated: what to forget
    /// when the cell's list is read afresh.
    held: Vec<u32>,
    /// The lineage of the snapshot the first `known` LRPs were counted from: a later
    /// snapshot of the same lineage starts with them unchanged.
    lineage: LrpLineage,
}

#[derive(Clone, Debug)]
struct Bucket {
    zone: u32,
    sig: u32,
    total: CellCapacity,
    proxy: i64,
    cells: BTreeSet<(Key, u32)>,
}

/// The placement-time view of one request's filters.
pub(crate) struct Compatible {
    /// Buckets whose cells pass the filters.
    buckets: Vec<u32>,
    /// Per signature: whether it passes.
    sig_pass: Vec<bool>,
}

/// Diego's scheduler state across rounds.
#[derive(Debug, Default)]
pub(crate) struct DiegoIndex {
    cells: Vec<IndexedCell>,
    /// Per cell, the snapshot its view was taken from. Weak: the owner may drop or move
    /// the state (no clone is forced on it), while the allocation stays reserved, so its
    /// address keeps identifying this snapshot. Kept apart from `cells` so the per-round
    /// check of unchanged cells reads one dense array.
    snapshots: Vec<Weak<CellState>>,
    /// Per cell, whether work was placed on it since it last reported.
    dirty: Vec<bool>,
    zones: Vec<String>,
    sigs: Vec<Arc<CellState>>,
    buckets: Vec<Bucket>,
    processes: Processes,
    in_flight: i64,
    /// Scratch: instances of the current process per cell.
    mark: Vec<u32>,
    /// Scratch: instances of the current process per zone.
    zone_counts: Vec<u32>,
    ties: Vec<u32>,
}

/// Counts the live cells' LRP instances in a first, light pass that also reads what the
/// passes after it need of every cell: its id and zone, its first rootfs provider, and
/// one word of each cache line of its fingerprints. States fresh from a producer are
/// mostly out of cache; this loop is simple enough for the processor to run ahead over
/// many cells and overlap their misses, which the heavier passes would meet one by one.
fn gather(cells: &[Arc<CellState>]) -> usize {
    let first = |s: &str| u64::from(s.as_bytes().first().copied().unwrap_or(0));
    let mut instances = 0;
    let mut read = 0u64;
    for c in cells {
        read = read
            .wrapping_add(first(c.cell_id.as_str()))
            .wrapping_add(first(&c.zone));
        if let Some((k, v)) = c.rootfs_providers.0.iter().next() {
            read = read.wrapping_add(first(k) + v.len() as u64);
        }
        if c.evacuating {
            continue;
        }
        instances += c.lrps.len();
        if let Some(fps) = c.lrp_fingerprints.of(&c.lrps) {
            // 16 fingerprints to a 64-byte line.
            read = fps
                .iter()
                .step_by(16)
                .fold(read, |r, &f| r.wrapping_add(u64::from(f)));
        }
    }
    std::hint::black_box(read);
    instances
}

fn holders_pairs(h: &Holders) -> impl Iterator<Item = (u32, u32)> + '_ {
    let (one, many) = match h {
        Holders::One(c, n) => (Some((*c, *n)), &[][..]),
        Holders::Many(v) => (None, &v[..]),
    };
    one.into_iter().chain(many.iter().copied())
}

impl DiegoIndex {
    /// The number of cells the index holds.
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// Containers starting across live cells, including work placed this round.
    pub(crate) fn in_flight(&self) -> i64 {
        self.in_flight
    }

    /// Whether any cell can take work.
    pub(crate) fn any_live(&self) -> bool {
        self.cells.iter().any(|c| c.live)
    }

    /// The id of the cell at `pos`.
    pub(crate) fn cell_id(&self, pos: u32) -> diego_core::CellId {
        self.cells[pos as usize].cell_id.clone()
    }

    /// Brings the index up to date with this round's cell states.
    pub(crate) fn sync(&mut self, cells: &[Arc<CellState>], config: &DiegoConfig) {
        if self.cells.len() != cells.len() {
            self.rebuild(cells, config);
            return;
        }
        for (i, new) in cells.iter().enumerate() {
            if std::ptr::eq(self.snapshots[i].as_ptr(), Arc::as_ptr(new)) {
                if self.dirty[i] {
                    self.refresh(i as u32, new, config);
                }
                continue;
            }
            let c = &self.cells[i];
            // Another snapshot of the same cell, in the same place: update it. Anything
            // else (cells added, removed, reordered, moved zone, evacuating) changes
            // the zone-normalised indices: start afresh.
            // A snapshot of the same lineage keeps the cell's zone (see `LrpLineage`).
            if c.cell_id != new.cell_id
                || (!c.lineage.same(&new.lrp_lineage) && self.zones[c.zone as usize] != new.zone)
                || c.live == new.evacuating
            {
                self.rebuild(cells, config);
                return;
            }
            self.refresh(i as u32, new, config);
        }
    }

    fn rebuild(&mut self, cells: &[Arc<CellState>], config: &DiegoConfig) {
        self.cells.clear();
        self.snapshots.clear();
        self.dirty.clear();
        self.zones.clear();
        self.sigs.clear();
        self.buckets.clear();
        let instances = gather(cells);
        self.processes.reset(instances);
        self.in_flight = 0;
        let mut zone_sizes: Vec<u32> = Vec::new();
        for (i, state) in cells.iter().enumerate() {
            let zone = match self.zones.iter().position(|z| *z == state.zone) {
                Some(z) => z,
                None => {
                    self.zones.push(state.zone.clone());
                    zone_sizes.push(0);
                    self.zones.len() - 1
                }
            };
            let zone_index = zone_sizes[zone];
            let live = !state.evacuating;
            if live {
                zone_sizes[zone] += 1;
            }
            let sig = signature_id(&mut self.sigs, state, || Arc::new(signature_of(state)));
            let mut cell = IndexedCell {
                cell_id: state.cell_id.clone(),
                known: if live { state.lrps.len() } else { 0 },
                live,
                zone: zone as u32,
                sig,
                bucket: 0,
                zone_index,
                avail_memory: 0,
                avail_disk: 0,
                avail_containers: 0,
                starting: 0,
                tasks: 0,
                base: 0.0,
                placed: Vec::new(),
                held: Vec::new(),
                lineage: state.lrp_lineage.clone(),
            };
            self.snapshots.push(Arc::downgrade(state));
            self.dirty.push(false);
            cell.bucket = self.bucket_for(zone as u32, sig, state);
            self.cells.push(cell);
            self.load_scalars(i as u32, state, config);
            if live {
                self.in_flight += self.cells[i].starting;
                let b = self.cells[i].bucket as usize;
                self.buckets[b]
                    .cells
                    .insert((Key::of(self.cells[i].base), i as u32));
            }
        }
        // Nothing is tracked yet: only the filter learns of the cells' processes (in a
        // pass of its own, which streams through the cells' fingerprints).
        let bloom = &mut self.processes.untracked;
        for state in cells.iter().filter(|c| !c.evacuating) {
            match state.lrp_fingerprints.of(&state.lrps) {
                Some(fps) => bloom.insert_all(fps),
                None => {
                    for l in &state.lrps {
                        bloom.insert(process_fingerprint(l.key.process_guid.as_str()));
                    }
                }
            }
        }
        self.mark = vec![0; cells.len()];
        self.zone_counts = vec![0; self.zones.len()];
    }

    fn bucket_for(&mut self, zone: u32, sig: u32, state: &CellState) -> u32 {
        let proxy = i64::from(state.proxy_memory_allocation_mb);
        let found = self.buckets.iter().position(|b| {
            b.zone == zone && b.sig == sig && b.total == state.total_resources && b.proxy == proxy
        });
        match found {
            Some(b) => b as u32,
            None => {
                self.buckets.push(Bucket {
                    zone,
                    sig,
                    total: state.total_resources,
                    proxy,
                    cells: BTreeSet::new(),
                });
                (self.buckets.len() - 1) as u32
            }
        }
    }

    /// Loads the cell's resources from its state and recomputes its base.
    fn load_scalars(&mut self, i: u32, s: &CellState, config: &DiegoConfig) {
        let c = &mut self.cells[i as usize];
        c.avail_memory = s.available_resources.memory_mb.into();
        c.avail_disk = s.available_resources.disk_mb.into();
        c.avail_containers = s.available_resources.containers.into();
        c.starting = s.starting_container_count.into();
        c.tasks = s.tasks.len() as u32;
        c.base = cell_base(c, &s.total_resources, config);
    }

    /// Whether `new` is exactly what the index already holds for the live cell `idx`
    /// once the work placed there since it last reported is counted: same resources,
    /// starting count, Tasks, filters and capacity class, and an LRP list that is the
    /// previous one followed by the instances placed (in any order). Then only the snapshot
    /// needs taking (no reordering, no recount).
    fn reports_as_placed(&self, idx: usize, new: &CellState) -> bool {
        let c = &self.cells[idx];
        let bucket = &self.buckets[c.bucket as usize];
        let a = &new.available_resources;
        c.live
            && i64::from(a.memory_mb) == c.avail_memory
            && i64::from(a.disk_mb) == c.avail_disk
            && i64::from(a.containers) == c.avail_containers
            && i64::from(new.starting_container_count) == c.starting
            && new.tasks.len() == c.tasks as usize
            && new.total_resources == bucket.total
            && i64::from(new.proxy_memory_allocation_mb) == bucket.proxy
            // The same lineage also keeps the filters (rootfs, tags, volume drivers).
            && c.lineage.same(&new.lrp_lineage)
            && new.lrps.len() == c.known + c.placed.len()
            && same_guids_any_order(&new.lrps[c.known..], &c.placed, &self.processes.guids)
    }

    /// Takes a changed (or locally modified) cell's new state.
    fn refresh(&mut self, i: u32, new: &Arc<CellState>, config: &DiegoConfig) {
        let idx = i as usize;
        if self.reports_as_placed(idx, new) {
            // The common case after a round: the cell took what was placed on it.
            let c = &mut self.cells[idx];
            c.placed.clear();
            c.known = new.lrps.len();
            self.snapshots[idx] = Arc::downgrade(new);
            self.dirty[idx] = false;
            return;
        }
        let placed = std::mem::take(&mut self.cells[idx].placed);
        let live = self.cells[idx].live;
        let mut known = 0;
        if live {
            // Process counts: keep what is unchanged, move only the difference.
            let c = &self.cells[idx];
            if c.lineage.same(&new.lrp_lineage) && new.lrps.len() >= c.known {
                let suffix = &new.lrps[c.known..];
                let as_placed = suffix.len() == placed.len()
                    && suffix.iter().zip(&placed).all(|(l, &p)| {
                        same_guid(&l.key.process_guid, &self.processes.guids[p as usize])
                    });
                if !as_placed {
                    for &p in &placed {
                        self.processes.remove(p, i);
                    }
                    for l in suffix {
                        if let Some(p) = self.processes.add(&l.key.process_guid, i) {
                            self.cells[idx].held.push(p);
                        }
                    }
                }
            } else {
                // Read afresh: forget what was counted here, count the new list.
                let mut held = std::mem::take(&mut self.cells[idx].held);
                for &p in &held {
                    self.processes.forget(p, i);
                }
                held.clear();
                for l in &new.lrps {
                    if let Some(p) = self.processes.add(&l.key.process_guid, i) {
                        held.push(p);
                    }
                }
                self.cells[idx].held = held;
            }
            known = new.lrps.len();
            self.in_flight -= self.cells[idx].starting;
            let b = self.cells[idx].bucket as usize;
            let key = (Key::of(self.cells[idx].base), i);
            self.buckets[b].cells.remove(&key);
        }
        let same_lineage = self.cells[idx].lineage.same(&new.lrp_lineage);
        if !same_lineage && !same_filter_signature(&self.sigs[self.cells[idx].sig as usize], new) {
            let s = signature_id(&mut self.sigs, new, || Arc::new(signature_of(new)));
            self.cells[idx].sig = s;
        }
        let (zone, sig) = (self.cells[idx].zone, self.cells[idx].sig);
        let bucket = self.bucket_for(zone, sig, new);
        let c = &mut self.cells[idx];
        c.bucket = bucket;
        c.known = known;
        c.lineage = new.lrp_lineage.clone();
        self.snapshots[idx] = Arc::downgrade(new);
        self.dirty[idx] = false;
        self.load_scalars(i, new, config);
        if live {
            let c = &self.cells[idx];
            self.in_flight += c.starting;
            self.buckets[bucket as usize]
                .cells
                .insert((Key::of(c.base), i));
        }
    }

    /// Which buckets pass the filters for `request`'s constraint, or its filter error.
    pub(crate) fn compatible(
        &self,
        constraint: &diego_core::PlacementConstraint,
    ) -> Result<Compatible, Error> {
        let reaches: Vec<FilterReach> = self
            .sigs
            .iter()
            .map(|s| filter_reach(s, constraint))
            .collect();
        let mut furthest = None::<FilterReach>;
        let mut buckets = Vec::new();
        for (i, b) in self.buckets.iter().enumerate() {
            if b.cells.is_empty() {
                continue;
            }
            let r = reaches[b.sig as usize];
            if r == FilterReach::Pass {
                buckets.push(i as u32);
            } else {
                furthest = Some(furthest.map_or(r, |f| f.max(r)));
            }
        }
        if buckets.is_empty() {
            let f = furthest.unwrap_or(FilterReach::Rootfs);
            return Err(filter_error(f, constraint).unwrap_or(Error::NoCompatibleRootfs));
        }
        Ok(Compatible {
            buckets,
            sig_pass: reaches.iter().map(|r| *r == FilterReach::Pass).collect(),
        })
    }

    fn feasible(&self, cell: u32, memory: i64, disk: i64) -> bool {
        let c = &self.cells[cell as usize];
        c.avail_memory >= memory && c.avail_disk >= disk && c.avail_containers >= 1
    }

    fn shortfall(&self, compat: &Compatible, resource: &Resource, lrp: bool) -> Shortfall {
        let mut short = Shortfall::ALL;
        for &b in &compat.buckets {
            let bucket = &self.buckets[b as usize];
            let memory = i64::from(resource.memory_mb) + if lrp { bucket.proxy } else { 0 };
            for &(_, cell) in &bucket.cells {
                let c = &self.cells[cell as usize];
                short = short.intersect(Shortfall {
                    containers: c.avail_containers < 1,
                    disk: c.avail_disk < i64::from(resource.disk_mb),
                    memory: c.avail_memory < memory,
                });
            }
        }
        short
    }

    /// The id under which `guid`'s instances are counted from now on. `states` are this
    /// round's cell states (already [synced](Self::sync)): a process the filter may have
    /// seen is counted once by a scan of their instances.
    pub(crate) fn track(&mut self, guid: &ProcessGuid, states: &[Arc<CellState>]) -> u32 {
        self.processes.track(guid, &mut self.cells, states)
    }

    /// Chooses the cell for one LRP instance of the process tracked as `pid`: the lowest
    /// Diego score within the zones holding the fewest instances of the process.
    pub(crate) fn choose_lrp(
        &mut self,
        request: &LrpStartRequest,
        pid: u32,
        compat: &Compatible,
        config: &DiegoConfig,
        rng: &mut SmallRng,
    ) -> Result<u32, Error> {
        let memory = i64::from(request.resource.memory_mb);
        let disk = i64::from(request.resource.disk_mb);
        let holders = &self.processes.holders[pid as usize];
        self.zone_counts.iter_mut().for_each(|z| *z = 0);
        for (c, n) in holders_pairs(holders) {
            self.mark[c as usize] = n;
            self.zone_counts[self.cells[c as usize].zone as usize] += n;
        }
        // Zones of the compatible buckets, fewest instances first.
        let mut zones: Vec<(u32, u32)> = Vec::with_capacity(4);
        for &b in &compat.buckets {
            let z = self.buckets[b as usize].zone;
            if !zones.iter().any(|&(zz, _)| zz == z) {
                zones.push((z, self.zone_counts[z as usize]));
            }
        }
        zones.sort_by_key(|&(_, n)| n);
        let random = config.tie_break == TieBreak::Random;
        let mut winner = None;
        let mut g = 0;
        while g < zones.len() {
            let count = zones[g].1;
            let mut end = g;
            while end < zones.len() && zones[end].1 == count {
                end += 1;
            }
            let group = &zones[g..end];
            let mut best: Option<(f64, u32)> = None;
            self.ties.clear();
            for &b in &compat.buckets {
                let bucket = &self.buckets[b as usize];
                if !group.iter().any(|&(z, _)| z == bucket.zone) {
                    continue;
                }
                let need = memory + bucket.proxy;
                let wt = work_term(need, disk, &bucket.total);
                for &(_, cell) in &bucket.cells {
                    let score = lrp_score(self.cells[cell as usize].base, wt, 0);
                    if let Some((bs, _)) = best {
                        if score > bs {
                            break;
                        }
                    }
                    if self.mark[cell as usize] > 0 || !self.feasible(cell, need, disk) {
                        continue;
                    }
                    consider(&mut best, &mut self.ties, score, cell);
                    if !random {
                        break;
                    }
                }
            }
            {
                for (cell, n) in holders_pairs(holders) {
                    let c = &self.cells[cell as usize];
                    if !c.live
                        || !group.iter().any(|&(z, _)| z == c.zone)
                        || !compat.sig_pass[c.sig as usize]
                    {
                        continue;
                    }
                    let bucket = &self.buckets[c.bucket as usize];
                    let need = memory + bucket.proxy;
                    if !self.feasible(cell, need, disk) {
                        continue;
                    }
                    let score = lrp_score(c.base, work_term(need, disk, &bucket.total), n);
                    consider(&mut best, &mut self.ties, score, cell);
                }
            }
            if let Some((_, cell)) = best {
                winner = Some(if random && self.ties.len() > 1 {
                    self.ties[rng.random_range(0..self.ties.len())]
                } else {
                    cell
                });
                break;
            }
            g = end;
        }
        for (c, _) in holders_pairs(holders) {
            self.mark[c as usize] = 0;
        }
        match winner {
            Some(cell) => {
                let proxy = if config.options.reserve_proxy_memory {
                    self.buckets[self.cells[cell as usize].bucket as usize].proxy
                } else {
                    0
                };
                self.reserve(cell, memory + proxy, disk, false, config);
                self.processes.add_id(pid, cell);
                let c = &mut self.cells[cell as usize];
                c.placed.push(pid);
                c.held.push(pid);
                Ok(cell)
            }
            None => Err(Error::InsufficientResources(self.shortfall(
                compat,
                &request.resource,
                true,
            ))),
        }
    }

    /// Chooses the cell for one Task: the lowest Task score over every compatible cell.
    pub(crate) fn choose_task(
        &mut self,
        resource: &Resource,
        compat: &Compatible,
        config: &DiegoConfig,
        rng: &mut SmallRng,
    ) -> Result<u32, Error> {
        let memory = i64::from(resource.memory_mb);
        let disk = i64::from(resource.disk_mb);
        let w = config.starting_container_weight;
        let mut best: Option<(f64, u32)> = None;
        self.ties.clear();
        let mut cells: Vec<u32> = compat
            .buckets
            .iter()
            .flat_map(|&b| self.buckets[b as usize].cells.iter().map(|&(_, c)| c))
            .collect();
        cells.sort_unstable();
        for cell in cells {
            if !self.feasible(cell, memory, disk) {
                continue;
            }
            let c = &self.cells[cell as usize];
            let total = &self.buckets[c.bucket as usize].total;
            let base = task_base(
                resource_base(c.avail_memory, c.avail_disk, c.avail_containers, total),
                c.starting,
                w,
            );
            let score = task_score(base, work_term(memory, disk, total), c.tasks);
            consider(&mut best, &mut self.ties, score, cell);
        }
        let Some((_, first)) = best else {
            return Err(Error::InsufficientResources(
                self.shortfall(compat, resource, false),
            ));
        };
        let cell = if config.tie_break == TieBreak::Random && self.ties.len() > 1 {
            self.ties[rng.random_range(0..self.ties.len())]
        } else {
            first
        };
        self.reserve(cell, memory, disk, true, config);
        Ok(cell)
    }

    fn reserve(&mut self, cell: u32, memory: i64, disk: i64, task: bool, config: &DiegoConfig) {
        let b = self.cells[cell as usize].bucket as usize;
        let old = (Key::of(self.cells[cell as usize].base), cell);
        self.buckets[b].cells.remove(&old);
        let c = &mut self.cells[cell as usize];
        c.avail_memory -= memory;
        c.avail_disk -= disk;
        c.avail_containers -= 1;
        c.starting += 1;
        if task {
            c.tasks += 1;
        }
        self.dirty[cell as usize] = true;
        c.base = cell_base(c, &self.buckets[b].total, config);
        self.buckets[b].cells.insert((Key::of(c.base), cell));
        self.in_flight += 1;
    }
}

/// Keeps the lowest `(score, cell)`; with equal scores the lower cell position, and
/// every cell of the lowest score in `ties`.
fn consider(best: &mut Option<(f64, u32)>, ties: &mut Vec<u32>, score: f64, cell: u32) {
    match *best {
        Some((b, c)) if score > b || (score == b && cell > c) => {
            if score == b {
                ties.push(cell);
            }
        }
        Some((b, _)) if score == b => {
            ties.push(cell);
            *best = Some((score, cell));
        }
        _ => {
            ties.clear();
            ties.push(cell);
            *best = Some((score, cell));
        }
    }
}

fn cell_base(c: &IndexedCell, total: &CellCapacity, config: &DiegoConfig) -> f64 {
    lrp_base(
        resource_base(c.avail_memory, c.avail_disk, c.avail_containers, total),
        c.starting,
        c.zone_index,
        config.starting_container_weight,
        config.bin_pack_first_fit_weight,
    )
}

/// A cell state carrying only what the filters look at.
fn signature_of(s: &CellState) -> CellState {
    CellState {
        rootfs_providers: s.rootfs_providers.clone(),
        placement_tags: s.placement_tags.clone(),
        optional_placement_tags: s.optional_placement_tags.clone(),
        volume_drivers: s.volume_drivers.clone(),
        ..CellState::default()
    }
}

/// Whether `lrps` name the processes `placed` in some order (a rep takes its work
/// largest first, not in placement order). Only for the few instances of one round.
fn same_guids_any_order(
    lrps: &[diego_core::LrpSummary],
    placed: &[u32],
    guids: &[ProcessGuid],
) -> bool {
    const MAX: usize = 64;
    if lrps.len() != placed.len() || placed.len() > MAX {
        return false;
    }
    let mut taken = [false; MAX];
    lrps.iter().all(|l| {
        let found = placed
            .iter()
            .enumerate()
            .position(|(k, &p)| !taken[k] && same_guid(&l.key.process_guid, &guids[p as usize]));
        match found {
            Some(k) => {
                taken[k] = true;
                true
            }
            None => false,
        }
    })
}

fn same_guid(a: &ProcessGuid, b: &ProcessGuid) -> bool {
    let (x, y) = (a.as_str(), b.as_str());
    std::ptr::eq(x, y) || x == y
}

/// Per-process instance counts, kept exactly for the processes work has been placed for
/// (*tracked*, each under a small id), while every other instance a cell reports only
/// sets bits in a filter of process-guid hashes: ingesting a cell's instances costs a
/// hash of each guid, not a map insertion, and a process the filter has never seen needs
/// no search when it first comes up for placement. A process the filter may have seen is
/// counted, once, by a scan of every cell's instances when it is first tracked.
#[derive(Debug, Default)]
struct Processes {
    ids: FxHashMap<ProcessGuid, u32>,
    /// Per id, the process.
    guids: Vec<ProcessGuid>,
    /// Per id, the cells holding it.
    holders: Vec<Holders>,
    untracked: Bloom,
}

impl Processes {
    /// Forgets everything; `instances` is about how many the filter will hold.
    fn reset(&mut self, instances: usize) {
        self.ids.clear();
        self.guids.clear();
        self.holders.clear();
        self.untracked.reset(instances);
    }

    /// Counts one more instance of `guid` on `cell`; its id when it is tracked.
    fn add(&mut self, guid: &ProcessGuid, cell: u32) -> Option<u32> {
        match self.ids.get(guid.as_str()) {
            Some(&p) => {
                self.holders[p as usize].add(cell);
                Some(p)
            }
            None => {
                self.untracked.insert(process_fingerprint(guid.as_str()));
                None
            }
        }
    }

    /// Counts one more instance of the tracked process `p` on `cell`.
    fn add_id(&mut self, p: u32, cell: u32) {
        self.holders[p as usize].add(cell);
    }

    /// Counts one instance fewer of the tracked process `p` on `cell`.
    fn remove(&mut self, p: u32, cell: u32) {
        let h = &mut self.holders[p as usize];
        if h.remove(cell) {
            *h = Holders::Many(Vec::new());
        }
    }

    /// Forgets every instance of the tracked process `p` on `cell`.
    fn forget(&mut self, p: u32, cell: u32) {
        let h = &mut self.holders[p as usize];
        let empty = match h {
            Holders::One(c, _) => *c == cell,
            Holders::Many(v) => {
                v.retain(|x| x.0 != cell);
                v.is_empty()
            }
        };
        if empty {
            *h = Holders::Many(Vec::new());
        }
    }

    /// The id of `guid`, tracking it from now on: an untracked process that the filter
    /// may have seen is counted by a scan of the live cells' instances in `states`
    /// (what the index holds for every cell, work placed since aside, which is of
    /// tracked processes only).
    fn track(
        &mut self,
        guid: &ProcessGuid,
        cells: &mut [IndexedCell],
        states: &[Arc<CellState>],
    ) -> u32 {
        if let Some(&p) = self.ids.get(guid.as_str()) {
            return p;
        }
        let p = self.guids.len() as u32;
        let mut holders = Holders::Many(Vec::new());
        let fingerprint = process_fingerprint(guid.as_str());
        if self.untracked.may_contain(fingerprint) {
            for (i, (c, s)) in cells.iter_mut().zip(states).enumerate() {
                if !c.live {
                    continue;
                }
                let lrps = &s.lrps[..c.known.min(s.lrps.len())];
                match s.lrp_fingerprints.of(&s.lrps) {
                    Some(fps) if !any_equal(&fps[..lrps.len()], fingerprint) => {}
                    Some(fps) => {
                        for (k, _) in fps[..lrps.len()]
                            .iter()
                            .enumerate()
                            .filter(|(_, f)| **f == fingerprint)
                        {
                            if same_guid(&lrps[k].key.process_guid, guid) {
                                holders.add(i as u32);
                                c.held.push(p);
                            }
                        }
                    }
                    None => {
                        for l in lrps {
                            if same_guid(&l.key.process_guid, guid) {
                                holders.add(i as u32);
                                c.held.push(p);
                            }
                        }
                    }
                }
            }
        }
        self.ids.insert(guid.clone(), p);
        self.guids.push(guid.clone());
        self.holders.push(holders);
        p
    }
}

/// Whether any of `fingerprints` is `f`: a branch-free test per chunk, which compiles to
/// vector compares (a scan of a hundred thousand takes a few microseconds).
fn any_equal(fingerprints: &[u32], f: u32) -> bool {
    fingerprints
        .chunks(64)
        .any(|c| c.iter().fold(false, |found, &x| found | (x == f)))
}

/// Four distinct bits of a 64-bit word per entry, drawn from a splitmix64 sequence:
/// the bits a [`Bloom`] entry sets.
static BLOOM_BITS: [u64; 4096] = bloom_bits();

const fn bloom_bits() -> [u64; 4096] {
    let mut table = [0u64; 4096];
    let mut state: u64 = 0x1234_5678_9abc_def0;
    let mut i = 0;
    while i < table.len() {
        let mut bits = 0u64;
        let mut set = 0;
        while set < 4 {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let bit = 1u64 << (z & 63);
            if bits & bit == 0 {
                bits |= bit;
                set += 1;
            }
        }
        table[i] = bits;
        i += 1;
    }
    table
}

/// A Bloom filter of process-guid [fingerprints](process_fingerprint), blocked: the
/// four bits of a guid lie in one 64-bit word, so an insertion or a query reads one
/// word. Never a false negative.
#[derive(Debug, Default)]
struct Bloom {
    words: Vec<u64>,
}

impl Bloom {
    fn reset(&mut self, entries: usize) {
        // 32 to 64 bits per entry: about 0.05% false positives.
        let bits = entries.saturating_mul(32).next_power_of_two().max(4096);
        self.words.clear();
        self.words.resize(bits / 64, 0);
    }

    /// The word and the bits within it of a fingerprint. Fingerprints are hashes
    /// already: one multiplication spreads one over the word index, and its top twelve
    /// bits pick the four bits from [`BLOOM_BITS`] — a table read in place of four
    /// variable shifts, which made up most of an insertion's cost.
    #[inline]
    fn place(mask: usize, fingerprint: u32) -> (usize, u64) {
        let x = u64::from(fingerprint).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (((x >> 24) as usize) & mask, BLOOM_BITS[(x >> 52) as usize])
    }

    fn mask(&self) -> usize {
        self.words.len().wrapping_sub(1)
    }

    #[inline]
    fn insert(&mut self, fingerprint: u32) {
        self.insert_all(&[fingerprint]);
    }

    /// Inserts many fingerprints (the filter's words and size read once).
    fn insert_all(&mut self, fingerprints: &[u32]) {
        if self.words.is_empty() {
            self.reset(0);
        }
        let mask = self.mask();
        let words = &mut self.words[..];
        for &f in fingerprints {
            let (w, bits) = Self::place(mask, f);
            words[w] |= bits;
        }
    }

    fn may_contain(&self, fingerprint: u32) -> bool {
        if self.words.is_empty() {
            return false;
        }
        let (w, bits) = Self::place(self.mask(), fingerprint);
        self.words[w] & bits == bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell_with(guids: &[&str]) -> (IndexedCell, Arc<CellState>) {
        let state = CellState {
            lrps: guids
                .iter()
                .map(|g| diego_core::LrpSummary {
                    key: diego_core::ActualLrpKey::new(ProcessGuid::new(*g), 0, "d"),
                    resource: Resource::default(),
                })
                .collect(),
            ..CellState::default()
        };
        let cell = IndexedCell {
            cell_id: CellId::new("c"),
            known: guids.len(),
            live: true,
            zone: 0,
            sig: 0,
            bucket: 0,
            zone_index: 0,
            avail_memory: 0,
            avail_disk: 0,
            avail_containers: 0,
            starting: 0,
            tasks: 0,
            base: 0.0,
            placed: Vec::new(),
            held: Vec::new(),
            lineage: LrpLineage::default(),
        };
        (cell, Arc::new(state))
    }

    fn count(p: &Processes, id: u32) -> Vec<(u32, u32)> {
        let mut v: Vec<_> = holders_pairs(&p.holders[id as usize]).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn any_equal_finds_a_fingerprint_wherever_it_lies() {
        for len in [0usize, 1, 63, 64, 65, 200] {
            let fps: Vec<u32> = (0..len as u32).map(|i| i * 7 + 1).collect();
            for (i, &f) in fps.iter().enumerate() {
                assert!(any_equal(&fps, f), "len {len}, at {i}");
            }
            assert!(!any_equal(&fps, 0), "len {len}: 0 is not there");
        }
    }

    /// At the size `reset` gives it, the filter never forgets a fingerprint and answers
    /// "maybe" for few others (each such answer costs a scan of the cells), whatever
    /// the guids look like: the table of bits and the one multiplication spread them.
    #[test]
    fn the_filter_has_no_false_negatives_and_few_false_positives() {
        for (entries, prefix) in [(100_000, "pre-cell-p"), (20_000, "p"), (1_000, "x")] {
            let mut bloom = Bloom::default();
            bloom.reset(entries);
            let fps: Vec<u32> = (0..entries)
                .map(|i| process_fingerprint(&format!("{prefix}-{i}")))
                .collect();
            bloom.insert_all(&fps);
            assert!(
                fps.iter().all(|&f| bloom.may_contain(f)),
                "{entries}: a false negative"
            );
            let queries = 200_000;
            let positives = (0..queries)
                .filter(|i| bloom.may_contain(process_fingerprint(&format!("app-{i}"))))
                .count();
            let rate = positives as f64 / f64::from(queries);
            assert!(
                rate < 0.002,
                "{entries} entries: false positive rate {rate}"
            );
        }
    }

    /// Every path of `Processes::track`: never seen, seen (counted by a scan), and a
    /// filter false positive (a scan that finds nothing), on a filter small enough to
    /// be full of false positives.
    #[test]
    fn tracking_counts_exactly_whatever_the_filter_says() {
        let names: Vec<String> = (0..1200).map(|i| format!("pre-{i}")).collect();
        let (mut cells, states): (Vec<IndexedCell>, Vec<Arc<CellState>>) = names
            .chunks(400)
            .map(|c| cell_with(&c.iter().map(String::as_str).collect::<Vec<_>>()))
            .unzip();
        let mut p = Processes::default();
        p.reset(0);
        for s in &states {
            for l in &s.lrps {
                p.untracked
                    .insert(process_fingerprint(l.key.process_guid.as_str()));
            }
        }
        let mut positives = 0;
        for i in 0..400 {
            let absent = ProcessGuid::new(format!("app-{i}"));
            positives += usize::from(
                p.untracked
                    .may_contain(process_fingerprint(absent.as_str())),
            );
            let id = p.track(&absent, &mut cells, &states);
            assert!(count(&p, id).is_empty());
        }
        assert!(positives > 0, "the test wants false positives");
        let pre = ProcessGuid::new("pre-650");
        let id = p.track(&pre, &mut cells, &states);
        assert_eq!(count(&p, id), [(1, 1)]);
        // The cell knows to forget it if its list is read afresh.
        assert_eq!(cells[1].held, [id]);
        // Tracked from now on: the same id; additions and removals are counted exactly.
        assert_eq!(p.track(&pre, &mut cells, &states), id);
        assert_eq!(p.add(&pre, 2), Some(id));
        p.add_id(id, 2);
        p.remove(id, 1);
        assert_eq!(count(&p, id), [(2, 2)]);
        p.remove(id, 2);
        assert_eq!(count(&p, id), [(2, 1)]);
        p.add_id(id, 0);
        p.forget(id, 2);
        assert_eq!(count(&p, id), [(0, 1)]);
        p.forget(id, 0);
        assert!(count(&p, id).is_empty());
        // An untracked process only reaches the filter.
        assert_eq!(p.add(&ProcessGuid::new("new"), 0), None);
        assert!(p.untracked.may_contain(process_fingerprint("new")));
    }
}
