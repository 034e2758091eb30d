//! Domains (freshness with a TTL) and cell presences (leases with a TTL).

use std::time::Duration;

use tracing::instrument;

use super::Bbs;
use crate::cell::CellPresence;
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::guid::CellId;
use crate::store::{CellPresenceRecord, Precondition, Record, RecordKey, WriteBatch};
use crate::validation::{FieldPath, Validate, Validator};

impl Bbs {
    /// Marks `domain` fresh for `ttl` from now (zero: forever).
    #[instrument(skip(self))]
    pub async fn upsert_domain(&self, domain: &str, ttl: Duration) -> Result<()> {
        let d = Domain::fresh_for(domain, ttl, self.inner.clock.now());
        d.validate()?;
        let mut b = WriteBatch::new();
        b.put(Record::Domain(d), Precondition::None);
        self.inner.store.write(b).await
    }

    /// Every stored domain, fresh or not.
    pub async fn all_domains(&self) -> Result<Vec<Domain>> {
        self.inner.store.domains().await
    }

    /// The names of the fresh domains.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn domains(&self) -> Result<Vec<String>> {
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

    /// Registers or renews `presence` for the configured TTL.
    #[instrument(skip_all, fields(cell_id = %presence.cell_id))]
    pub async fn register_cell(&self, presence: &CellPresence) -> Result<()> {
        presence.validate()?;
        let record = CellPresenceRecord {
            presence: presence.clone(),
            expires_at: self.inner.clock.now() + self.inner.config.cell_presence_ttl,
        };
        let mut b = WriteBatch::new();
        b.put(Record::CellPresence(record), Precondition::None);
        self.inner.store.write(b).await
    }

    /// Removes a cell's presence at once.
    #[instrument(skip(self))]
    pub async fn remove_cell(&self, cell_id: &CellId) -> Result<()> {
        let mut v = Validator::new();
        v.non_empty(cell_id.as_str(), &FieldPath::ROOT.field("cell_id"));
        v.finish()?;
        let mut b = WriteBatch::new();
        b.delete(RecordKey::CellPresence(cell_id.clone()), Precondition::None);
        self.inner.store.write(b).await
    }

    /// The cells whose lease has not ended.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn cells(&self) -> Result<Vec<CellPresence>> {
        let now = self.inner.clock.now();
        Ok(self
            .inner
            .store
            .cell_presences()
            .await?
            .into_iter()
            .filter(|c| c.expires_at > now)
            .map(|c| c.presence)
            .collect())
    }

    /// One live cell.
    pub async fn cell_by_id(&self, cell_id: &CellId) -> Result<CellPresence> {
        let now = self.inner.clock.now();
        match self.inner.store.cell_presence(cell_id).await? {
            Some(c) if c.expires_at > now => Ok(c.presence),
            _ => Err(Error::ResourceNotFound),
        }
    }

    /// Deletes the leases that ended; returns the cells they belonged to.
    pub async fn expire_cells(&self) -> Result<Vec<CellPresence>> {
        let now = self.inner.clock.now();
        let expired: Vec<CellPresenceRecord> = self
            .inner
            .store
            .cell_presences()
            .await?
            .into_iter()
            .filter(|c| c.expires_at <= now)
            .collect();
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = WriteBatch::new();
        for c in &expired {
            b.delete(
                RecordKey::CellPresence(c.presence.cell_id.clone()),
                Precondition::None,
            );
        }
        self.inner.store.write(b).await?;
        Ok(expired.into_iter().map(|c| c.presence).collect())
    }
}
