//! Rows of the SQL stores: which table and key columns a record goes to, its indexed
//! columns, and its (possibly encrypted) JSON payload. Shared by both backends; knows no
//! SQL dialect.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::KeyRing;
use crate::error::{Error, Result};
use crate::models::actual_lrp::Presence;
use crate::store::{Record, RecordKey};

/// A table of records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Tasks,
    DesiredLrps,
    ActualLrps,
    Domains,
    CellPresences,
}

impl Table {
    pub(crate) const ALL: [Table; 5] = [
        Table::Tasks,
        Table::DesiredLrps,
        Table::ActualLrps,
        Table::Domains,
        Table::CellPresences,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Tasks => "tasks",
            Table::DesiredLrps => "desired_lrps",
            Table::ActualLrps => "actual_lrps",
            Table::Domains => "domains",
            Table::CellPresences => "cell_presences",
        }
    }

    /// The primary key columns, in order.
    pub(crate) fn key_columns(self) -> &'static [&'static str] {
        match self {
            Table::Tasks => &["guid"],
            Table::DesiredLrps => &["process_guid"],
            Table::ActualLrps => &["process_guid", "idx", "presence"],
            Table::Domains => &["name"],
            Table::CellPresences => &["id"],
        }
    }
}

/// The columns after the key columns that every table has, in bind order.
pub(crate) const DATA_COLUMNS: [&str; 7] = [
    "domain",
    "cell_id",
    "tag_epoch",
    "tag_index",
    "expires_at",
    "key_label",
    "payload",
];

/// One value of a key column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyValue {
    Text(String),
    Int(i64),
}

/// A record's table and primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RowKey {
    pub table: Table,
    pub values: Vec<KeyValue>,
}

/// A row ready to be written.
#[derive(Clone, Debug)]
pub(crate) struct EncodedRow {
    pub key: RowKey,
    pub domain: Option<String>,
    pub cell_id: Option<String>,
    pub tag_epoch: Option<String>,
    pub tag_index: Option<i64>,
    pub expires_at: Option<i64>,
    pub key_label: String,
    pub payload: Vec<u8>,
}

pub(crate) fn presence_code(p: Presence) -> i64 {
    match p {
        Presence::Ordinary => 0,
        Presence::Evacuating => 1,
        Presence::Suspect => 2,
    }
}

impl RowKey {
    pub(crate) fn of(key: &RecordKey) -> RowKey {
        let text = |s: &str| KeyValue::Text(s.to_owned());
        match key {
            RecordKey::Task(g) => RowKey {
                table: Table::Tasks,
                values: vec![text(g.as_ref())],
            },
            RecordKey::DesiredLrp(g) => RowKey {
                table: Table::DesiredLrps,
                values: vec![text(g.as_ref())],
            },
            RecordKey::ActualLrp(k) => RowKey {
                table: Table::ActualLrps,
                values: vec![
                    text(k.process_guid.as_ref()),
                    KeyValue::Int(i64::from(k.index)),
                    KeyValue::Int(presence_code(k.presence)),
                ],
            },
            RecordKey::Domain(n) => RowKey {
                table: Table::Domains,
                values: vec![text(n)],
            },
            RecordKey::CellPresence(c) => RowKey {
                table: Table::CellPresences,
                values: vec![text(c.as_ref())],
            },
        }
    }
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::invalid_record_from("cannot encode record", e))
}

/// Encodes `record` as a row, its payload encrypted under the ring's active key.
pub(crate) fn encode(record: &Record, keys: &KeyRing) -> Result<EncodedRow> {
    let key = RowKey::of(&record.key());
    let (domain, cell_id, expires_at, plain) = match record {
        Record::Task(t) => (
            Some(t.domain.clone()),
            t.cell_id.as_ref().map(|c| c.to_string()),
            None,
            json(&**t)?,
        ),
        Record::DesiredLrp(d) => (
            Some(d.scheduling_info.domain.clone()),
            None,
            None,
            json(&**d)?,
        ),
        Record::ActualLrp(a) => (
            Some(a.key.domain.clone()),
            a.cell_id().map(|c| c.to_string()),
            None,
            json(&**a)?,
        ),
        Record::Domain(d) => (None, None, None, json(d)?),
        Record::CellPresence(c) => (None, None, Some(c.expires_at.unix_nanos()), json(c)?),
    };
    let tag = record.modification_tag();
    let (key_label, payload) = keys.encrypt(&plain)?;
    Ok(EncodedRow {
        key,
        domain,
        cell_id,
        tag_epoch: tag.map(|t| t.epoch.clone()),
        tag_index: tag.map(|t| i64::from(t.index)),
        expires_at,
        key_label,
        payload,
    })
}

/// Decrypts and decodes one stored payload of `table`.
pub(crate) fn decode<T: DeserializeOwned>(
    table: Table,
    keys: &KeyRing,
    key_label: &str,
    payload: &[u8],
) -> Result<T> {
    let plain = keys
        .decrypt(key_label, payload)
        .map_err(|e| in_table(table, e))?;
    serde_json::from_slice(&plain).map_err(|e| {
        Error::invalid_record_from(format_args!("{}: undecodable payload", table.name()), e)
    })
}

/// `e` with the name of the table whose record it is about, when it is an
/// `InvalidRecord` (its cause kept).
pub(crate) fn in_table(table: Table, e: Error) -> Error {
    match e {
        Error::InvalidRecord { message, source } => Error::InvalidRecord {
            message: format!("{}: {message}", table.name()),
            source,
        },
        other => other,
    }
}
