//! Domains (freshness with a TTL) and cell presences (leases with a TTL on the BBS's
//! [`Lock`](crate::lock::Lock), by default the store's own).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use tracing::instrument;

use super::{Bbs, CellApi, DomainApi};
use crate::error::{Error, Result};
use crate::lock::Lease;
use crate::models::cell::CellPresence;
use crate::models::domain::Domain;
use crate::models::guid::CellId;
use crate::models::validation::{FieldPath, Validate, Validator};
use crate::store::{CellPresenceRecord, Precondition, Record, RecordKey, WriteBatch};

impl Bbs {
    /// Every stored domain, fresh or not.
    pub async fn all_domains(&self) -> Result<Vec<Domain>> {
        self.inner.store.domains().await
    }

    /// Deletes expired domains; returns their names.
    pub async fn prune_expired_domains(&self) -> Result<Vec<String>> {
        let now = self.inner.clock.now();
        let expired: Vec<Domain> = self
            .inner
            .store
            .domains()
            .await?
            .into_iter()
            .filter(|d| !d.is_fresh(now))
            .collect();
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = WriteBatch::new();
        for d in &expired {
            b.delete(RecordKey::Domain(d.name.clone()), Precondition::None);
        }
        self.inner.store.write(b).await?;
        Ok(expired.into_iter().map(|d| d.name).collect())
    }

    /// The presence records with the cells' leases: `(record, live)`; the record's
    /// `expires_at` is its lease's (a record without a lease is not live).
    async fn presences(&self) -> Result<Vec<(CellPresenceRecord, bool)>> {
        let now = self.inner.clock.now();
        let leases: HashMap<String, Lease> = self
            .inner
            .lock
            .leases(PRESENCE_PREFIX)
            .await?
            .into_iter()
            .map(|l| (l.name.clone(), l))
            .collect();
        Ok(self
            .inner
            .store
            .cell_presences()
            .await?
            .into_iter()
            .map(|mut record| {
                let lease = leases.get(&presence_lease(&record.presence.cell_id));
                let live = match lease {
                    Some(l) if l.owner == record.presence.rep_address => {
                        record.expires_at = l.expires_at;
                        !l.is_expired(now)
                    }
                    _ => false,
                };
                (record, live)
            })
            .collect())
    }

    /// Deletes the presences whose lease ended; returns the cells they belonged to.
    pub async fn expire_cells(&self) -> Result<Vec<CellPresence>> {
        let expired: Vec<CellPresenceRecord> = self
            .presences()
            .await?
            .into_iter()
            .filter(|(_, live)| !*live)
            .map(|(c, _)| c)
            .collect();
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = WriteBatch::new();
        for c in &expired {
            // Only the record as read: a rep renewing meanwhile writes a new one.
            b.delete(
                RecordKey::CellPresence(c.presence.cell_id.clone()),
                Precondition::None,
            );
        }
        self.inner.store.write(b).await?;
        Ok(expired.into_iter().map(|c| c.presence).collect())
    }
}

#[async_trait]
impl DomainApi for Bbs {
    #[instrument(skip(self))]
    async fn upsert_domain(&self, domain: &str, ttl: Duration) -> Result<()> {
        let d = Domain::fresh_for(domain, ttl, self.inner.clock.now());
        d.validate()?;
        let mut b = WriteBatch::new();
        b.put(Record::Domain(d), Precondition::None);
        self.inner.store.write(b).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn domains(&self) -> Result<Vec<String>> {
        let now = self.inner.clock.now();
        Ok(self
            .inner
            .store
            .domains()
            .await?
            .into_iter()
            .filter(|d| d.is_fresh(now))
            .map(|d| d.name)
            .collect())
    }
}

#[async_trait]
impl CellApi for Bbs {
    #[instrument(skip_all, fields(cell_id = %presence.cell_id))]
    async fn register_cell(&self, presence: &CellPresence) -> Result<()> {
        presence.validate()?;
        let name = presence_lease(&presence.cell_id);
        let now = self.inner.clock.now();
        let ttl = self.inner.config.cell_presence_ttl;
        let lock = &self.inner.lock;
        let lease = match lock.acquire(&name, &presence.rep_address, ttl, now).await? {
            Some(lease) => lease,
            None => {
                let holder = lock.holder(&name).await?;
                let owner = holder.map(|l| l.owner).unwrap_or_default();
                return Err(Error::LockCollision(format!(
                    "cell {} is registered by {owner}, not {}",
                    presence.cell_id, presence.rep_address
                )));
            }
        };
        let record = CellPresenceRecord {
            presence: presence.clone(),
            expires_at: lease.expires_at,
        };
        let mut b = WriteBatch::new();
        b.put(Record::CellPresence(record), Precondition::None);
        self.inner.store.write(b).await
    }

    #[instrument(skip(self))]
    async fn remove_cell(&self, cell_id: &CellId) -> Result<()> {
        let mut v = Validator::new();
        v.non_empty(cell_id.as_str(), &FieldPath::ROOT.field("cell_id"));
        v.finish()?;
        let lock = &self.inner.lock;
        let name = presence_lease(cell_id);
        if let Some(lease) = lock.holder(&name).await? {
            lock.release(&name, &lease.owner).await?;
        }
        let mut b = WriteBatch::new();
        b.delete(RecordKey::CellPresence(cell_id.clone()), Precondition::None);
        self.inner.store.write(b).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn cells(&self) -> Result<Vec<CellPresence>> {
        Ok(self
            .presences()
            .await?
            .into_iter()
            .filter(|(_, live)| *live)
            .map(|(c, _)| c.presence)
            .collect())
    }

    async fn cell_by_id(&self, cell_id: &CellId) -> Result<CellPresence> {
        let now = self.inner.clock.now();
        let lease = self.inner.lock.holder(&presence_lease(cell_id)).await?;
        match (lease, self.inner.store.cell_presence(cell_id).await?) {
            (Some(l), Some(c)) if !l.is_expired(now) && l.owner == c.presence.rep_address => {
                Ok(c.presence)
            }
            _ => Err(Error::ResourceNotFound),
        }
    }
}

/// Every cell presence lease is named with this prefix.
pub(crate) const PRESENCE_PREFIX: &str = "cells/";

/// The name of `cell_id`'s presence lease.
fn presence_lease(cell_id: &CellId) -> String {
    format!("{PRESENCE_PREFIX}{cell_id}")
}
