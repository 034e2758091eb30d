//! [`RecordingNetfilter`]: writes down every batch (as the JSON `nft -j -f` would read)
//! instead of applying it, and echoes added rules back with handles as nftables does.

use std::sync::{Mutex, MutexGuard};

use nftables::schema::{NfCmd, NfListObject, NfObject, Nftables};

use super::Netfilter;
use crate::error::BoxError;

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NfCall {
    /// A batch applied.
    Apply(serde_json::Value),
    /// A batch applied with its additions echoed.
    ApplyEchoed(serde_json::Value),
    /// A table listed.
    ListTable(String),
}

#[derive(Debug)]
struct State {
    calls: Vec<NfCall>,
    /// The handle the next added rule gets.
    next_handle: u32,
    /// Whether echoed rules carry their handle.
    tell_handles: bool,
    /// What listing a table returns.
    listing: Nftables<'static>,
    /// Whether every call fails.
    failing: bool,
}

/// Records batches instead of applying them (see the module docs).
#[derive(Debug)]
pub(crate) struct RecordingNetfilter {
    state: Mutex<State>,
}

impl Default for RecordingNetfilter {
    fn default() -> Self {
        RecordingNetfilter {
            state: Mutex::new(State {
                calls: Vec::new(),
                next_handle: 1,
                tell_handles: true,
                listing: Nftables {
                    objects: Vec::new().into(),
                },
                failing: false,
            }),
        }
    }
}

impl RecordingNetfilter {
    /// A recorder whose rule handles count from 1.
    pub(crate) fn new() -> RecordingNetfilter {
        RecordingNetfilter::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Echoes added rules without their handles.
    pub(crate) fn without_handles(self) -> Self {
        self.state().tell_handles = false;
        self
    }

    /// Listing a table returns `listing`.
    pub(crate) fn with_listing(self, listing: Nftables<'static>) -> Self {
        self.state().listing = listing;
        self
    }

    /// Makes every call fail.
    pub(crate) fn failing(self) -> Self {
        self.state().failing = true;
        self
    }

    /// The calls so far, forgetting them.
    pub(crate) fn take_calls(&self) -> Vec<NfCall> {
        std::mem::take(&mut self.state().calls)
    }

    fn record(&self, call: NfCall) -> Result<MutexGuard<'_, State>, BoxError> {
        let mut state = self.state();
        state.calls.push(call);
        if state.failing {
            return Err("nft: refused (recording)".into());
        }
        Ok(state)
    }
}

impl Netfilter for RecordingNetfilter {
    fn apply(&self, batch: &Nftables<'_>) -> Result<(), BoxError> {
        self.record(NfCall::Apply(serde_json::to_value(batch)?))
            .map(drop)
    }

    fn apply_echoed(&self, batch: &Nftables<'_>) -> Result<Nftables<'static>, BoxError> {
        let json = serde_json::to_value(batch)?;
        let mut echoed: Nftables<'static> = serde_json::from_value(json.clone())?;
        let mut state = self.record(NfCall::ApplyEchoed(json))?;
        for object in echoed.objects.to_mut() {
            if let NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(rule))) = object {
                if state.tell_handles {
                    rule.handle = Some(state.next_handle);
                    state.next_handle += 1;
                }
            }
        }
        Ok(echoed)
    }

    fn list_table(&self, table: &str) -> Result<Nftables<'static>, BoxError> {
        let state = self.record(NfCall::ListTable(table.to_string()))?;
        Ok(state.listing.clone())
    }
}
