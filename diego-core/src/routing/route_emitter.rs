//! [`RouteEmitter`]: follows the BBS's LRP events and keeps a [`Router`] up to date.
//!
//! Routes come from the DesiredLRPs (`cf-router`: host names → container port,
//! `tcp-router`: external port → container port); endpoints from the ActualLRPs that
//! are RUNNING and routable (an EVACUATING copy while it runs; a SUSPECT one while it
//! runs and is routable) with an index below the desired instances, the container port
//! mapped to a host port through the row's net info. Modification tags order the
//! updates of one record, so a stale one is dropped. On start, on `Lagged`, after a
//! broken stream and every sync interval the emitter lists everything and replaces the
//! router's table. It talks to the BBS only through [`BbsApi`] and knows nothing of
//! proxies or sockets.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use super::{normalize_host, Endpoint, RouteChange, RouteKey, Router, RoutingTable};
use crate::bbs::BbsApi;
use crate::error::Result;
use crate::events::{EventItem, LrpEvent};
use crate::models::actual_lrp::{ActualLrp, ActualLrpState, PreferredAddress, Presence};
use crate::models::desired_lrp::SchedulingInfo;
use crate::models::guid::ProcessGuid;
use crate::models::modification_tag::ModificationTag;

/// Events handled in one batch at most (one router update per batch).
const MAX_BATCH: usize = 1_024;

/// Builds a [`RouteEmitter`].
#[derive(Debug)]
pub struct RouteEmitterBuilder {
    bbs: Arc<dyn BbsApi>,
    router: Arc<dyn Router>,
    sync_interval: Option<Duration>,
    retry_delay: Duration,
}

impl RouteEmitterBuilder {
    /// How often the whole table is listed again as a safety net (60 s, as Diego's
    /// route emitter); `None`: only on start, `Lagged` and reconnection.
    #[must_use]
    pub fn sync_interval(mut self, interval: Option<Duration>) -> Self {
        self.sync_interval = interval;
        self
    }

    /// How long to wait before retrying after the BBS or the router failed (1 s).
    #[must_use]
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// The emitter.
    pub fn build(self) -> RouteEmitter {
        RouteEmitter {
            bbs: self.bbs,
            router: self.router,
            sync_interval: self.sync_interval,
            retry_delay: self.retry_delay,
            stats: Arc::new(EmitterStats::default()),
        }
    }
}

/// What an emitter did so far (for tests and metrics).
#[derive(Debug, Default)]
pub struct EmitterStats {
    resyncs: AtomicU64,
    events: AtomicU64,
    stale: AtomicU64,
}

impl EmitterStats {
    /// Full listings done (the first one included).
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(Ordering::Relaxed)
    }

    /// LRP events handled.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Events dropped because their record was older than the one already known.
    pub fn stale_dropped(&self) -> u64 {
        self.stale.load(Ordering::Relaxed)
    }
}

/// Keeps a [`Router`] in step with the BBS; see the module docs.
#[derive(Debug)]
pub struct RouteEmitter {
    bbs: Arc<dyn BbsApi>,
    router: Arc<dyn Router>,
    sync_interval: Option<Duration>,
    retry_delay: Duration,
    stats: Arc<EmitterStats>,
}

impl RouteEmitter {
    /// A builder reading `bbs` and writing `router`.
    pub fn builder(bbs: Arc<dyn BbsApi>, router: Arc<dyn Router>) -> RouteEmitterBuilder {
        RouteEmitterBuilder {
            bbs,
            router,
            sync_interval: Some(Duration::from_secs(60)),
            retry_delay: Duration::from_secs(1),
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> Arc<EmitterStats> {
        self.stats.clone()
    }

    /// Runs until `cancel`. Failures of the BBS or the router are logged and retried
    /// (with a fresh subscription and a full listing).
    ///
    /// # Errors
    /// None today; the `Result` leaves room for fatal errors.
    #[tracing::instrument(name = "route_emitter", skip_all)]
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        let mut first = true;
        loop {
            if !first && !self.pause(&cancel).await {
                return Ok(());
            }
            first = false;
            let subscribed = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                s = self.bbs.subscribe_lrp_events(None) => s,
            };
            let mut events = match subscribed {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "route emitter: cannot subscribe to LRP events");
                    continue;
                }
            };
            let mut state = match self.resync(&cancel).await {
                Ok(Some(s)) => s,
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "route emitter: resync failed");
                    continue;
                }
            };
            let mut ticker = self.sync_interval.map(|every| {
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            loop {
                let tick = async {
                    match ticker.as_mut() {
                        Some(t) => {
                            t.tick().await;
                        }
                        None => std::future::pending().await,
                    }
                };
                let item = tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tick => Some(EventItem::Lagged { missed: 0 }),
                    item = events.next() => item,
                };
                let result = match item {
                    None => {
                        tracing::warn!("route emitter: the LRP event stream ended; resubscribing");
                        break;
                    }
                    Some(EventItem::Lagged { missed }) => {
                        if missed > 0 {
                            tracing::info!(missed, "route emitter: fell behind; resyncing");
                        }
                        match self.resync(&cancel).await {
                            Ok(Some(s)) => {
                                state = s;
                                Ok(())
                            }
                            Ok(None) => return Ok(()),
                            Err(e) => Err(e),
                        }
                    }
                    Some(EventItem::Event(first)) => {
                        // Take what else is ready, so a burst costs one router update.
                        let mut batch = vec![first];
                        let mut lagged = false;
                        while batch.len() < MAX_BATCH {
                            match events.next().now_or_never() {
                                Some(Some(EventItem::Event(e))) => batch.push(e),
                                Some(Some(EventItem::Lagged { .. })) => {
                                    lagged = true;
                                    break;
                                }
                                _ => break,
                            }
                        }
                        self.stats
                            .events
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        let changes = state.handle(batch.iter().map(|e| &e.event), &self.stats);
                        let applied = if changes.is_empty() {
                            Ok(())
                        } else {
                            self.router.apply(&changes).await
                        };
                        match applied {
                            Ok(()) if lagged => match self.resync(&cancel).await {
                                Ok(Some(s)) => {
                                    state = s;
                                    Ok(())
                                }
                                Ok(None) => return Ok(()),
                                Err(e) => Err(e),
                            },
                            other => other,
                        }
                    }
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "route emitter: update failed; starting over");
                    break;
                }
            }
        }
    }

    /// Waits the retry delay; `false` when cancelled meanwhile.
    async fn pause(&self, cancel: &CancellationToken) -> bool {
        tokio::select! {
            () = cancel.cancelled() => false,
            () = tokio::time::sleep(self.retry_delay) => true,
        }
    }

    /// Lists everything, builds the table and replaces the router's with it.
    /// `Ok(None)` when cancelled meanwhile.
    async fn resync(&self, cancel: &CancellationToken) -> Result<Option<RouteState>> {
        let listing = async {
            let desired = self
                .bbs
                .desired_lrp_scheduling_infos(&Default::default())
                .await?;
            let actual = self.bbs.actual_lrps(&Default::default()).await?;
            Ok::<_, crate::Error>((desired, actual))
        };
        let (desired, actual) = tokio::select! {
            () = cancel.cancelled() => return Ok(None),
            r = listing => r?,
        };
        let state = RouteState::from_listing(&desired, actual);
        self.router.replace(state.table.clone()).await?;
        self.stats.resyncs.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            http_routes = state.table.http.len(),
            tcp_routes = state.table.tcp.len(),
            "route emitter: table replaced"
        );
        Ok(Some(state))
    }
}

/// What routing needs of a DesiredLRP.
#[derive(Clone, Debug, PartialEq)]
struct DesiredRoutes {
    instances: i32,
    /// (route, container port)
    routes: Vec<(RouteKey, u32)>,
    tag: ModificationTag,
}

impl DesiredRoutes {
    fn of(info: &SchedulingInfo) -> Self {
        let mut routes = Vec::new();
        match info.routes.http_routes() {
            Ok(http) => {
                for r in http {
                    for host in &r.hostnames {
                        routes.push((RouteKey::Http(normalize_host(host)), r.port));
                    }
                }
            }
            Err(e) => tracing::warn!(process_guid = %info.process_guid, error = %e,
                "route emitter: cf-router routes are malformed; ignored"),
        }
        match info.routes.tcp_routes() {
            Ok(tcp) => {
                for r in tcp {
                    match u16::try_from(r.external_port) {
                        Ok(port) if port != 0 => {
                            routes.push((RouteKey::Tcp(port), r.container_port));
                        }
                        _ => tracing::warn!(process_guid = %info.process_guid,
                            external_port = r.external_port,
                            "route emitter: TCP external port out of range; ignored"),
                    }
                }
            }
            Err(e) => tracing::warn!(process_guid = %info.process_guid, error = %e,
                "route emitter: tcp-router routes are malformed; ignored"),
        }
        routes.sort();
        routes.dedup();
        DesiredRoutes {
            instances: info.instances,
            routes,
            tag: info.modification_tag.clone(),
        }
    }

    fn keys(&self) -> impl Iterator<Item = &RouteKey> + '_ {
        self.routes.iter().map(|(k, _)| k)
    }
}

/// Whether `new` may replace a record at `old`: a later write of the same row, or a
/// row of another epoch (recreated).
fn newer(new: &ModificationTag, old: &ModificationTag) -> bool {
    new.epoch != old.epoch || new.index > old.index
}

/// Which copy of which index.
type Slot = (i32, Presence);

/// The emitter's view: DesiredLRP routes, ActualLRP rows, and the table derived from them.
#[derive(Debug, Default)]
struct RouteState {
    desired: HashMap<ProcessGuid, DesiredRoutes>,
    actual: HashMap<ProcessGuid, BTreeMap<Slot, Arc<ActualLrp>>>,
    /// Route → the processes that declare it.
    owners: HashMap<RouteKey, BTreeSet<ProcessGuid>>,
    table: RoutingTable,
}

impl RouteState {
    fn from_listing(desired: &[SchedulingInfo], actual: Vec<Arc<ActualLrp>>) -> Self {
        let mut state = RouteState::default();
        for info in desired {
            state.set_desired(info.process_guid.clone(), DesiredRoutes::of(info));
        }
        for row in actual {
            state
                .actual
                .entry(row.key.process_guid.clone())
                .or_default()
                .insert((row.key.index, row.presence), row);
        }
        let routes: Vec<RouteKey> = state.owners.keys().cloned().collect();
        for route in routes {
            let endpoints = state.endpoints_of(&route);
            state.table.set(route, endpoints);
        }
        state
    }

    fn set_desired(&mut self, guid: ProcessGuid, routes: DesiredRoutes) {
        self.remove_desired(&guid);
        for key in routes.keys() {
            self.owners
                .entry(key.clone())
                .or_default()
                .insert(guid.clone());
        }
        self.desired.insert(guid, routes);
    }

    fn remove_desired(&mut self, guid: &ProcessGuid) -> Option<DesiredRoutes> {
        let old = self.desired.remove(guid)?;
        for key in old.keys() {
            if let Some(owners) = self.owners.get_mut(key) {
                owners.remove(guid);
                if owners.is_empty() {
                    self.owners.remove(key);
                }
            }
        }
        Some(old)
    }

    /// Applies a batch of events; returns the table changes they cause.
    fn handle<'a>(
        &mut self,
        events: impl Iterator<Item = &'a LrpEvent>,
        stats: &EmitterStats,
    ) -> Vec<RouteChange> {
        let mut touched: HashSet<RouteKey> = HashSet::new();
        for event in events {
            if !self.handle_one(event, &mut touched) {
                stats.stale.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut touched: Vec<RouteKey> = touched.into_iter().collect();
        touched.sort();
        let mut changes = Vec::new();
        for route in touched {
            if self.owners.contains_key(&route) {
                let endpoints = self.endpoints_of(&route);
                if self.table.endpoints(&route) != Some(endpoints.as_slice()) {
                    self.table.set(route.clone(), endpoints.clone());
                    changes.push(RouteChange::Set { route, endpoints });
                }
            } else if self.table.remove(&route) {
                changes.push(RouteChange::Remove { route });
            }
        }
        changes
    }

    /// Applies one event, noting the routes it may change; `false` when it was stale.
    fn handle_one(&mut self, event: &LrpEvent, touched: &mut HashSet<RouteKey>) -> bool {
        match event {
            LrpEvent::DesiredLrpCreated(d) | LrpEvent::DesiredLrpChanged { after: d, .. } => {
                let info = &d.scheduling_info;
                let guid = &info.process_guid;
                if let Some(old) = self.desired.get(guid) {
                    if !newer(&info.modification_tag, &old.tag) {
                        return false;
                    }
                }
                let routes = DesiredRoutes::of(info);
                if let Some(old) = self.desired.get(guid) {
                    touched.extend(old.keys().cloned());
                }
                touched.extend(routes.keys().cloned());
                self.set_desired(guid.clone(), routes);
            }
            LrpEvent::DesiredLrpRemoved(d) => {
                let info = &d.scheduling_info;
                let guid = &info.process_guid;
                if let Some(old) = self.desired.get(guid) {
                    if old.tag.epoch == info.modification_tag.epoch
                        && old.tag.index > info.modification_tag.index
                    {
                        return false;
                    }
                }
                if let Some(old) = self.remove_desired(guid) {
                    touched.extend(old.keys().cloned());
                }
            }
            LrpEvent::ActualLrpInstanceCreated(row) => return self.put_row(row, touched),
            LrpEvent::ActualLrpInstanceChanged { before, after } => {
                if (before.key.index, before.presence) != (after.key.index, after.presence) {
                    // The row moved to another slot (an evacuation): the old slot goes
                    // if it still holds this version.
                    let guid = &before.key.process_guid;
                    let slot = (before.key.index, before.presence);
                    let rows = self.actual.entry(guid.clone()).or_default();
                    if rows.get(&slot).map(|r| &r.modification_tag)
                        == Some(&before.modification_tag)
                    {
                        rows.remove(&slot);
                    }
                }
                return self.put_row(after, touched);
            }
            LrpEvent::ActualLrpInstanceRemoved(row) => {
                let guid = &row.key.process_guid;
                let slot = (row.key.index, row.presence);
                if let Some(rows) = self.actual.get_mut(guid) {
                    if let Some(old) = rows.get(&slot) {
                        if old.modification_tag.epoch == row.modification_tag.epoch
                            && old.modification_tag.index > row.modification_tag.index
                        {
                            return false;
                        }
                        rows.remove(&slot);
                        if rows.is_empty() {
                            self.actual.remove(guid);
                        }
                    }
                }
                self.touch_process(guid, touched);
            }
            // The row's own change event follows; a crash alone changes no route.
            LrpEvent::ActualLrpCrashed(_) => {}
        }
        true
    }

    fn put_row(&mut self, row: &Arc<ActualLrp>, touched: &mut HashSet<RouteKey>) -> bool {
        let guid = &row.key.process_guid;
        let rows = self.actual.entry(guid.clone()).or_default();
        let slot = (row.key.index, row.presence);
        if let Some(old) = rows.get(&slot) {
            if !newer(&row.modification_tag, &old.modification_tag) {
                return false;
            }
        }
        rows.insert(slot, row.clone());
        self.touch_process(guid, touched);
        true
    }

    fn touch_process(&self, guid: &ProcessGuid, touched: &mut HashSet<RouteKey>) {
        if let Some(d) = self.desired.get(guid) {
            touched.extend(d.keys().cloned());
        }
    }

    /// The endpoints of `route` over every process declaring it, in a stable order.
    fn endpoints_of(&self, route: &RouteKey) -> Vec<Endpoint> {
        let mut endpoints = Vec::new();
        let Some(owners) = self.owners.get(route) else {
            return endpoints;
        };
        for guid in owners {
            let (Some(desired), Some(rows)) = (self.desired.get(guid), self.actual.get(guid))
            else {
                continue;
            };
            for row in rows.values() {
                if !is_routed(row, desired.instances) {
                    continue;
                }
                for (_, container_port) in desired.routes.iter().filter(|(k, _)| k == route) {
                    if let Some(e) = endpoint_of(row, *container_port) {
                        if !endpoints.contains(&e) {
                            endpoints.push(e);
                        }
                    }
                }
            }
        }
        endpoints
    }
}

/// RUNNING and routable (EVACUATING: running), with an index below the desired instances.
fn is_routed(row: &ActualLrp, instances: i32) -> bool {
    row.state == ActualLrpState::Running
        && row.key.index < instances
        && match row.presence {
            Presence::Ordinary | Presence::Suspect => row.routable,
            Presence::Evacuating => true,
        }
}

/// Where `row` serves `container_port`: the host address and mapped host port, or the
/// instance address and container port when the row prefers it.
fn endpoint_of(row: &ActualLrp, container_port: u32) -> Option<Endpoint> {
    let net = row.net_info.as_ref()?;
    let instance = row.instance_key.as_ref()?;
    let mapping = net
        .ports
        .iter()
        .find(|p| p.container_port == container_port)?;
    let (address, port) = if net.preferred_address == PreferredAddress::Instance
        && !net.instance_address.is_empty()
    {
        (net.instance_address.clone(), mapping.container_port)
    } else {
        (net.address.clone(), mapping.host_port)
    };
    let port = u16::try_from(port).ok().filter(|p| *p != 0)?;
    Some(Endpoint {
        address,
        port,
        process_guid: row.key.process_guid.clone(),
        instance_guid: instance.instance_guid.clone(),
        index: row.key.index,
        modification_tag: row.modification_tag.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::action::RunAction;
    use crate::models::actual_lrp::{
        ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, PortMapping,
    };
    use crate::models::desired_lrp::DesiredLrp;
    use crate::models::routes::{Routes, TcpRoute};
    use crate::time::Timestamp;

    fn desired(instances: i32) -> DesiredLrp {
        let mut d = DesiredLrp::new("web", "apps", "r", instances, RunAction::new("/a", "u"));
        d.scheduling_info.routes = Routes::http(&["Web.Example"], 8080);
        d.scheduling_info.routes.set_tcp_routes(&[TcpRoute {
            router_group_guid: String::new(),
            external_port: 6000,
            container_port: 9000,
        }]);
        d.scheduling_info.modification_tag = ModificationTag::fresh();
        d
    }

    fn running(index: i32, host_port: u32) -> ActualLrp {
        let mut a = ActualLrp::unclaimed(ActualLrpKey::new("web", index, "apps"), Timestamp(1));
        a.instance_key = Some(ActualLrpInstanceKey::new(format!("i-{index}"), "cell"));
        a.net_info = Some(ActualLrpNetInfo {
            address: "10.0.0.1".into(),
            ports: vec![
                PortMapping {
                    container_port: 8080,
                    host_port,
                    ..Default::default()
                },
                PortMapping {
                    container_port: 9000,
                    host_port: host_port + 1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        a.state = ActualLrpState::Running;
        a.routable = true;
        a
    }

    fn web() -> RouteKey {
        RouteKey::http("web.example")
    }

    #[test]
    fn routes_follow_desired_and_actual_rows() {
        let stats = EmitterStats::default();
        let mut s = RouteState::default();
        let d = desired(2);
        let changes = s.handle([LrpEvent::DesiredLrpCreated(d.clone())].iter(), &stats);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(s.table.endpoints(&web()), Some(&[][..]));

        let r0 = Arc::new(running(0, 61000));
        s.handle(
            [LrpEvent::ActualLrpInstanceCreated(r0.clone())].iter(),
            &stats,
        );
        let eps = s.table.endpoints(&web()).unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].authority(), "10.0.0.1:61000");
        assert_eq!(
            s.table.endpoints(&RouteKey::tcp(6000)).unwrap()[0].port,
            61001
        );

        // Not routable: no endpoint.
        let mut r1 = running(1, 62000);
        r1.routable = false;
        s.handle(
            [LrpEvent::ActualLrpInstanceCreated(Arc::new(r1))].iter(),
            &stats,
        );
        assert_eq!(s.table.endpoints(&web()).unwrap().len(), 1);

        // A stale update (lower index, same epoch) is dropped.
        let mut newer_row = ActualLrp::clone(&r0);
        newer_row.modification_tag = r0.modification_tag.incremented().incremented();
        s.handle(
            [LrpEvent::ActualLrpInstanceChanged {
                before: r0.clone(),
                after: Arc::new(newer_row.clone()),
            }]
            .iter(),
            &stats,
        );
        let mut stale = ActualLrp::clone(&r0);
        stale.modification_tag = r0.modification_tag.incremented();
        stale.state = ActualLrpState::Crashed;
        let changes = s.handle(
            [LrpEvent::ActualLrpInstanceChanged {
                before: r0.clone(),
                after: Arc::new(stale),
            }]
            .iter(),
            &stats,
        );
        assert!(changes.is_empty());
        assert_eq!(stats.stale_dropped(), 1);
        assert_eq!(s.table.endpoints(&web()).unwrap().len(), 1);

        // Scaling to 0 keeps the route known but empty; removing it makes it unknown.
        let mut scaled = d.clone();
        scaled.scheduling_info.instances = 0;
        scaled.scheduling_info.modification_tag = d.scheduling_info.modification_tag.incremented();
        s.handle(
            [LrpEvent::DesiredLrpChanged {
                before: d.clone(),
                after: scaled.clone(),
            }]
            .iter(),
            &stats,
        );
        assert_eq!(s.table.endpoints(&web()), Some(&[][..]));
        let changes = s.handle([LrpEvent::DesiredLrpRemoved(scaled)].iter(), &stats);
        assert_eq!(changes.len(), 2);
        assert!(s.table.is_empty());
    }

    #[test]
    fn an_evacuating_copy_keeps_serving() {
        let stats = EmitterStats::default();
        let mut s = RouteState::default();
        s.handle([LrpEvent::DesiredLrpCreated(desired(1))].iter(), &stats);
        let ord = Arc::new(running(0, 61000));
        s.handle(
            [LrpEvent::ActualLrpInstanceCreated(ord.clone())].iter(),
            &stats,
        );
        let mut evac = ActualLrp::clone(&ord);
        evac.presence = Presence::Evacuating;
        evac.modification_tag = ModificationTag::fresh();
        let mut replacement =
            ActualLrp::unclaimed(ActualLrpKey::new("web", 0, "apps"), Timestamp(2));
        replacement.modification_tag = ord.modification_tag.incremented();
        s.handle(
            [
                LrpEvent::ActualLrpInstanceChanged {
                    before: ord.clone(),
                    after: Arc::new(evac.clone()),
                },
                LrpEvent::ActualLrpInstanceCreated(Arc::new(replacement)),
            ]
            .iter(),
            &stats,
        );
        let eps = s.table.endpoints(&web()).unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].instance_guid.as_str(), "i-0");
        s.handle(
            [LrpEvent::ActualLrpInstanceRemoved(Arc::new(evac))].iter(),
            &stats,
        );
        assert_eq!(s.table.endpoints(&web()), Some(&[][..]));
    }

    #[test]
    fn a_listing_builds_the_same_table_as_the_events() {
        let stats = EmitterStats::default();
        let d = desired(2);
        let rows = vec![Arc::new(running(0, 61000)), Arc::new(running(1, 62000))];
        let mut by_events = RouteState::default();
        let mut events = vec![LrpEvent::DesiredLrpCreated(d.clone())];
        events.extend(rows.iter().cloned().map(LrpEvent::ActualLrpInstanceCreated));
        by_events.handle(events.iter(), &stats);
        let listed = RouteState::from_listing(std::slice::from_ref(&d.scheduling_info), rows);
        assert_eq!(listed.table, by_events.table);
        assert_eq!(listed.table.endpoints(&web()).unwrap().len(), 2);
    }

    #[test]
    fn preferred_instance_address() {
        let mut row = running(0, 61000);
        if let Some(n) = row.net_info.as_mut() {
            n.instance_address = "172.16.0.4".into();
            n.preferred_address = PreferredAddress::Instance;
        }
        let e = endpoint_of(&row, 8080).unwrap();
        assert_eq!(e.authority(), "172.16.0.4:8080");
        assert!(endpoint_of(&row, 1234).is_none());
    }
}
