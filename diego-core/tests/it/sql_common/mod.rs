//! Scenarios shared by the SQLite and PostgreSQL store tests: encryption at rest and key
//! rotation, checked against the raw rows in the database.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use async_trait::async_trait;
use diego_core::models::actual_lrp::Presence;
use diego_core::store::conformance::{sample_actual, sample_desired, sample_task};
use diego_core::store::sql::{EncryptionKey, KeyRing};
use diego_core::store::{
    ActualLrpFilter, CellPresenceRecord, DesiredLrpFilter, Precondition, Record, Store, TaskFilter,
    WriteBatch,
};
use diego_core::{CellId, CellPresence, Domain, Timestamp};

/// What the encryption scenarios need beyond `Store`.
#[async_trait]
pub trait SqlUnderTest: Store {
    /// `(key_label, payload)` of every row of `table`.
    async fn raw(&self, table: &str) -> Vec<(String, Vec<u8>)>;
    fn set_keys(&self, keys: KeyRing);
    async fn rotate_keys(&self) -> diego_core::Result<u64>;
}

pub const TABLES: [&str; 5] = [
    "tasks",
    "desired_lrps",
    "actual_lrps",
    "domains",
    "cell_presences",
];

pub fn key_a() -> EncryptionKey {
    EncryptionKey::from_passphrase("key-a", "the first passphrase")
}

pub fn key_b() -> EncryptionKey {
    EncryptionKey::new("key-b", [0x5a; 32])
}

pub fn ring(keys: Vec<EncryptionKey>, active: &str) -> KeyRing {
    KeyRing::new(keys, active).unwrap()
}

const SECRET: &str = "SECRET-VALUE-1234";

/// Writes one record of every kind, each carrying `SECRET`; returns how many rows.
pub async fn write_fixtures(store: &dyn Store, prefix: &str) -> usize {
    let mut b = WriteBatch::new();
    let mut t = sample_task(&format!("{prefix}-t"), "apps", Some("cell-1"));
    t.task_definition.annotation = SECRET.into();
    b.put(Record::task(t), Precondition::Absent);
    let mut d = sample_desired(&format!("{prefix}-web"), "apps");
    d.scheduling_info.annotation = SECRET.into();
    b.put(Record::desired_lrp(d), Precondition::Absent);
    let mut a = sample_actual(
        &format!("{prefix}-web"),
        0,
        Presence::Ordinary,
        Some("cell-1"),
    );
    a.placement_error = SECRET.into();
    b.put(Record::actual_lrp(a), Precondition::Absent);
    b.put(
        Record::Domain(Domain {
            name: format!("{prefix}-{SECRET}"),
            expires_at: None,
        }),
        Precondition::None,
    );
    b.put(
        Record::CellPresence(CellPresenceRecord {
            presence: CellPresence {
                cell_id: CellId::new(format!("{prefix}-cell")),
                rep_address: SECRET.into(),
                ..Default::default()
            },
            expires_at: Timestamp(100),
        }),
        Precondition::None,
    );
    store.write(b).await.expect("write the fixtures");
    5
}

/// Reads everything back; panics on any error.
pub async fn read_all(store: &dyn Store) -> usize {
    store
        .tasks(&TaskFilter::default())
        .await
        .expect("tasks")
        .len()
        + store
            .desired_lrps(&DesiredLrpFilter::default())
            .await
            .expect("desired")
            .len()
        + store
            .actual_lrps(&ActualLrpFilter::default())
            .await
            .expect("actual")
            .len()
        + store.domains().await.expect("domains").len()
        + store.cell_presences().await.expect("cells").len()
}

async fn labels(store: &dyn SqlUnderTest) -> Vec<String> {
    let mut out = Vec::new();
    for t in TABLES {
        for (label, payload) in store.raw(t).await {
            assert!(
                !payload
                    .windows(SECRET.len())
                    .any(|w| w == SECRET.as_bytes())
                    || label.is_empty(),
                "table {t}: an encrypted payload contains the plaintext"
            );
            out.push(label);
        }
    }
    out
}

/// The whole story: plaintext rows, then key A, then key B active with A kept, rotation,
/// then A removed; wrong keys and missing keys are clear errors.
pub async fn encryption_and_rotation(store: &dyn SqlUnderTest) {
    // Plaintext: rows carry an empty label and the payload is readable JSON.
    store.set_keys(KeyRing::plaintext());
    let n_plain = write_fixtures(store, "p").await;
    let raw_tasks = store.raw("tasks").await;
    assert_eq!(raw_tasks[0].0, "");
    assert!(String::from_utf8_lossy(&raw_tasks[0].1).contains(SECRET));

    // Key A active: new rows are under A and their payloads hide the plaintext.
    store.set_keys(ring(vec![key_a()], "key-a"));
    let n_a = write_fixtures(store, "a").await;
    assert_eq!(read_all(store).await, n_plain + n_a);
    let l = labels(store).await;
    assert_eq!(l.iter().filter(|l| *l == "key-a").count(), n_a);
    assert_eq!(l.iter().filter(|l| l.is_empty()).count(), n_plain);

    // B active, A kept: everything is readable; new rows are under B.
    store.set_keys(ring(vec![key_a(), key_b()], "key-b"));
    let n_b = write_fixtures(store, "b").await;
    let total = n_plain + n_a + n_b;
    assert_eq!(read_all(store).await, total);

    // Without A, rows under A are a clear error naming the label.
    store.set_keys(ring(vec![key_b()], "key-b"));
    let err = store.tasks(&TaskFilter::default()).await.unwrap_err();
    assert_eq!(err.kind(), "InvalidRecord");
    assert!(err.to_string().contains("\"key-a\""), "{err}");
    // A wrong key under A's label: decryption fails (authenticated), clearly.
    store.set_keys(ring(
        vec![EncryptionKey::new("key-a", [1; 32]), key_b()],
        "key-b",
    ));
    let err = store.tasks(&TaskFilter::default()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("does not decrypt under key \"key-a\""),
        "{err}"
    );
    let err = store.rotate_keys().await.unwrap_err();
    assert_eq!(err.kind(), "InvalidRecord", "{err}");

    // Rotation with A and B: every row ends under B, checked in the raw rows.
    store.set_keys(ring(vec![key_a(), key_b()], "key-b"));
    let rewritten = store.rotate_keys().await.expect("rotate");
    assert_eq!(
        rewritten as usize,
        n_plain + n_a,
        "rows not under B were rewritten"
    );
    let l = labels(store).await;
    assert_eq!(l.len(), total);
    assert!(
        l.iter().all(|l| l == "key-b"),
        "labels after rotation: {l:?}"
    );
    for t in TABLES {
        for (_, payload) in store.raw(t).await {
            assert!(
                !payload
                    .windows(SECRET.len())
                    .any(|w| w == SECRET.as_bytes()),
                "table {t}: plaintext in a rotated payload"
            );
        }
    }
    assert_eq!(store.rotate_keys().await.expect("rotate again"), 0);

    // A removed: everything still reads.
    store.set_keys(ring(vec![key_b()], "key-b"));
    assert_eq!(read_all(store).await, total);
    let d = store
        .desired_lrp(&diego_core::ProcessGuid::new("a-web"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.scheduling_info.annotation, SECRET);
}

/// Rotation runs while writers update the same rows: every row ends under the active
/// key, no write is lost, and rotation never overwrites a newer version.
pub async fn rotation_is_online(store: std::sync::Arc<dyn SqlUnderTest>) {
    store.set_keys(ring(vec![key_a()], "key-a"));
    let mut b = WriteBatch::new();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let t = sample_task(&format!("t{i:03}"), "apps", None);
        tasks.push(t.clone());
        b.put(Record::task(t), Precondition::Absent);
    }
    store.write(b).await.unwrap();
    store.set_keys(ring(vec![key_a(), key_b()], "key-b"));
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for t in tasks.iter().step_by(3) {
                let mut next = t.clone();
                next.modification_tag = t.modification_tag.incremented();
                next.failure_reason = "updated".into();
                let mut b = WriteBatch::new();
                b.put(
                    Record::task(next),
                    Precondition::Tag(t.modification_tag.clone()),
                );
                store.write(b).await.expect("a CAS write during rotation");
            }
        })
    };
    let rotated = store.rotate_keys().await.expect("rotate");
    writer.await.unwrap();
    assert!(rotated <= 300, "rotated {rotated}");
    // Writers wrote under B; rotation rewrote the rest (a second pass finds nothing
    // unless a writer raced it between its read and its write).
    store.rotate_keys().await.expect("rotate again");
    let raw = store.raw("tasks").await;
    assert_eq!(raw.len(), 300);
    assert!(raw.iter().all(|(l, _)| l == "key-b"));
    let all = store.tasks(&TaskFilter::default()).await.unwrap();
    let updated = all.iter().filter(|t| t.failure_reason == "updated").count();
    assert_eq!(updated, 100, "every concurrent update survived rotation");
    assert!(all
        .iter()
        .filter(|t| t.failure_reason == "updated")
        .all(|t| t.modification_tag.index == 1));
}
