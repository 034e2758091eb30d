//! Separate processes: `diego bbs` ×2 on one PostgreSQL, `diego cell` ×2 running the
//! fixture app. kill -9 of the active BBS, kill -9 of a cell, a restart of PostgreSQL.
//!
//! PostgreSQL comes from `bash scripts/test.sh` (`DIEGO_TEST_POSTGRES_URL`); these
//! tests fail, not skip, without it.
#![cfg(all(feature = "daemon", feature = "fixture-app"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::{until, wait_for};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diego_core::http::BbsClient;
use diego_core::prelude::*;
use diego_core::store::ActualLrpFilter;
use diego_core::{
    ActualLrpState, Check, CheckDefinition, DesireTaskRequest, DesiredLrp, Presence, ProcessGuid,
    RunAction, TaskDefinition, TaskGuid,
};
use parking_lot::Mutex;

/// The tests take turns: one restarts PostgreSQL, which the other must not see.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn postgres_url() -> String {
    std::env::var("DIEGO_TEST_POSTGRES_URL").expect(
        "DIEGO_TEST_POSTGRES_URL is not set: run the tests with `bash scripts/test.sh`, \
         which starts a private PostgreSQL",
    )
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A child process killed (-9) when dropped.
struct Daemon {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Daemon {
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The cell presence TTL of every test BBS.
const PRESENCE_TTL_MS: u64 = 3_000;
/// The convergence interval of the cell test's BBS.
const CONVERGENCE_MS: u64 = 5_000;

struct Setup {
    dir: PathBuf,
    schema: String,
}

impl Setup {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("diego-daemons-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Setup {
            dir,
            schema: format!("daemons_{name}_{}", std::process::id()),
        }
    }

    /// A `diego bbs` with a 3 s cell presence TTL.
    fn bbs(&self, name: &str, lock_ttl_ms: u64, convergence_interval_ms: u64) -> Daemon {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let log = self.dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_diego"))
            .arg("bbs")
            .env("RUST_LOG", "info")
            .env("DIEGO_BBS_LISTEN_ADDRESS", format!("127.0.0.1:{port}"))
            .env("DIEGO_BBS_STORE__KIND", "postgres")
            .env("DIEGO_BBS_STORE__URL", postgres_url())
            .env("DIEGO_BBS_STORE__SCHEMA", &self.schema)
            .env("DIEGO_BBS_LOCK_TTL_MS", lock_ttl_ms.to_string())
            .env("DIEGO_BBS_LOCK_RETRY_INTERVAL_MS", "500")
            .env(
                "DIEGO_BBS_CONVERGENCE_INTERVAL_MS",
                convergence_interval_ms.to_string(),
            )
            .env(
                "DIEGO_BBS_CELL_PRESENCE_TTL_MS",
                PRESENCE_TTL_MS.to_string(),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, url, log }
    }

    fn cell(&self, id: &str, bbs_urls: &[&str]) -> Daemon {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let log = self.dir.join(format!("{id}.log"));
        let urls = serde_json::to_string(bbs_urls).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_diego"))
            .arg("cell")
            .env("RUST_LOG", "info")
            .env("DIEGO_CELL_CELL_ID", id)
            .env("DIEGO_CELL_BBS_URLS", urls)
            .env("DIEGO_CELL_LISTEN_ADDRESS", format!("127.0.0.1:{port}"))
            .env("DIEGO_CELL_WORK_DIR", self.dir.join("cells"))
            .env("DIEGO_CELL_PRESENCE_RENEW_INTERVAL_MS", "1000")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, url, log }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        kill_processes_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills the processes whose working directory is under `dir`: the fixture apps a
/// killed cell left behind, as its machine vanishing would have.
fn kill_processes_under(dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) {
            if cwd.starts_with(dir) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Whether the BBS at `url` is the active one (a standby answers "not the active BBS").
async fn is_active(url: &str) -> bool {
    BbsClient::new(url).unwrap().ping().await.is_ok()
}

fn task(guid: &str) -> DesireTaskRequest {
    DesireTaskRequest {
        task_guid: TaskGuid::new(guid),
        domain: "load".into(),
        task_definition: TaskDefinition::new(
            "preloaded:cflinuxfs4",
            RunAction::new("/bin/true", "vcap"),
        ),
    }
}

fn app(guid: &str, instances: i32) -> DesiredLrp {
    let mut lrp = DesiredLrp::new(
        guid,
        "apps",
        "preloaded:cflinuxfs4",
        instances,
        RunAction::new(env!("CARGO_BIN_EXE_diego-fixture-app"), "vcap"),
    );
    lrp.scheduling_info.memory_mb = 64;
    lrp.run_info.ports = vec![8080];
    lrp.run_info.check_definition = Some(CheckDefinition {
        checks: vec![Check::tcp(8080)],
        ..Default::default()
    });
    lrp
}

async fn running(bbs: &BbsClient, guid: &str) -> Vec<(i32, String)> {
    let rows = bbs
        .actual_lrps(&ActualLrpFilter::process(&ProcessGuid::new(guid)))
        .await
        .unwrap_or_default();
    let mut out: Vec<(i32, String)> = rows
        .iter()
        .filter(|r| r.presence == Presence::Ordinary && r.state == ActualLrpState::Running)
        .map(|r| {
            (
                r.key.index,
                r.cell_id().map(|c| c.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_active_bbs_loses_no_acknowledged_write() {
    let _serial = SERIAL.lock().await;
    let setup = Setup::new("failover");
    let ttl_ms = 5_000;
    let mut a = setup.bbs("bbs-a", ttl_ms, 2_000);
    let mut b = setup.bbs("bbs-b", ttl_ms, 2_000);
    let urls = vec![a.url.clone(), b.url.clone()];
    let client = BbsClient::with_urls(urls.clone()).unwrap();
    wait_for("a BBS becoming active", Duration::from_secs(30), || {
        let c = client.clone();
        async move { c.ping().await.is_ok() }
    })
    .await;
    let a_active = is_active(&a.url).await;
    assert_ne!(
        a_active,
        is_active(&b.url).await,
        "exactly one BBS is active"
    );
    let (active, standby) = if a_active {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };

    // Load: 8 writers desire tasks through the failing-over client, each remembering
    // what the BBS acknowledged.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..8 {
        let client = client.clone();
        let acked = acked.clone();
        let stop = stop.clone();
        let counter = counter.clone();
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let guid = format!("task-{}", counter.fetch_add(1, Ordering::Relaxed));
                match client.desire_task(task(&guid)).await {
                    Ok(()) => {
                        acked.lock().insert(guid);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }));
    }
    wait_for("writes before the kill", Duration::from_secs(30), || {
        let n = acked.lock().len();
        async move { n >= 200 }
    })
    .await;

    active.kill9();
    let killed_at = Instant::now();
    let before = acked.lock().len();
    wait_for(
        "the standby serving writes",
        Duration::from_millis(ttl_ms + 5_000),
        || {
            let n = acked.lock().len();
            async move { n > before + 50 }
        },
    )
    .await;
    let failover = killed_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(is_active(&standby.url).await, "{}", standby.log());

    // Every acknowledged task is there, read back through the new active BBS.
    let acked = acked.lock().clone();
    let stored: BTreeSet<String> = client
        .tasks(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.task_guid.to_string())
        .collect();
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged tasks lost (failover took {failover:?}): {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!(
        "failover: {failover:?}; {} acknowledged writes, none lost",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_a_cell_moves_its_instances_and_a_postgres_restart_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let setup = Setup::new("cells");
    let bbs = setup.bbs("bbs", 5_000, CONVERGENCE_MS);
    let client = BbsClient::new(&bbs.url).unwrap();
    wait_for("the BBS becoming active", Duration::from_secs(30), || {
        let c = client.clone();
        async move { c.ping().await.is_ok() }
    })
    .await;
    let mut cell1 = setup.cell("cell-1", &[&bbs.url]);
    let cell2 = setup.cell("cell-2", &[&bbs.url]);
    wait_for("both cells registering", Duration::from_secs(30), || {
        let c = client.clone();
        async move { c.cells().await.map(|c| c.len() == 2).unwrap_or(false) }
    })
    .await;

    client.desire_lrp(app("web", 4)).await.unwrap();
    let ok = until(Duration::from_secs(60), || {
        let c = client.clone();
        async move { running(&c, "web").await.len() == 4 }
    })
    .await;
    assert!(
        ok,
        "4 RUNNING instances: {:?}\n{:#?}\nBBS:\n{}\ncell-1:\n{}\ncell-2:\n{}",
        running(&client, "web").await,
        client.actual_lrps(&Default::default()).await,
        bbs.log(),
        cell1.log(),
        cell2.log()
    );
    let placed = running(&client, "web").await;
    assert!(
        placed.iter().any(|(_, c)| c == "cell-1") && placed.iter().any(|(_, c)| c == "cell-2"),
        "the auction spreads instances over both cells: {placed:?}"
    );

    // kill -9 cell-1: within one convergence interval + the presence TTL (the issue's
    // bound, which includes starting the app and passing its health check), every index
    // runs on cell-2. The presence lease ends at most 3 s after the kill and its expiry
    // starts a convergence pass at once (checked every second), so the interval is not
    // waited for.
    cell1.kill9();
    let killed_at = Instant::now();
    wait_for(
        "every instance RUNNING on cell-2",
        Duration::from_secs(30),
        || {
            let c = client.clone();
            async move {
                let r = running(&c, "web").await;
                r.len() == 4 && r.iter().all(|(_, cell)| cell == "cell-2")
            }
        },
    )
    .await;
    let moved = killed_at.elapsed();
    eprintln!("instances moved in {moved:?}");
    assert!(
        moved < Duration::from_millis(CONVERGENCE_MS + PRESENCE_TTL_MS),
        "moved in {moved:?}\nBBS:\n{}\ncell-2:\n{}",
        bbs.log(),
        cell2.log()
    );

    // A PostgreSQL restart under a stream of writes: the BBS reconnects and every
    // acknowledged write is there (a write that failed during the restart may or may
    // not have landed; it was never acknowledged).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut acked, mut failed) = (Vec::new(), 0usize);
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let guid = format!("across-restart-{n}");
                n += 1;
                match c.desire_task(task(&guid)).await {
                    Ok(()) => acked.push(guid),
                    Err(_) => {
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            (acked, failed)
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::spawn_blocking(restart_postgres).await.unwrap();
    let restarted_at = Instant::now();
    // The stream goes on until writes are acknowledged again after the restart.
    wait_for("a write after the restart", Duration::from_secs(60), || {
        let c = client.clone();
        async move { c.desire_task(task("after-restart")).await.is_ok() }
    })
    .await;
    let recovered = restarted_at.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let (acked, failed) = writer.await.unwrap();
    eprintln!(
        "PostgreSQL restart: writes again {recovered:?} after it returned; {} acknowledged, {failed} refused",
        acked.len()
    );
    assert!(acked.len() > 10, "the writer kept writing: {acked:?}");
    for guid in &acked {
        client
            .task_by_guid(&TaskGuid::new(guid))
            .await
            .unwrap_or_else(|e| panic!("acknowledged {guid} lost: {e}"));
    }
    // The outage may have outlived cell-2's presence lease (its renewals failed
    // meanwhile); the instances are RUNNING again once it renews.
    let ok = until(Duration::from_secs(30), || {
        let c = client.clone();
        async move { running(&c, "web").await.len() == 4 }
    })
    .await;
    assert!(ok, "{:?}\n{}", running(&client, "web").await, bbs.log());
}

/// Restarts the test PostgreSQL (`pg_ctl restart` on its data directory, which
/// `scripts/postgres-test-server.sh` exports as `DIEGO_TEST_POSTGRES_DATA`).
fn restart_postgres() {
    let data = std::env::var("DIEGO_TEST_POSTGRES_DATA")
        .expect("DIEGO_TEST_POSTGRES_DATA is not set: run `bash scripts/test.sh`");
    let bin = std::env::var("DIEGO_TEST_POSTGRES_BIN")
        .expect("DIEGO_TEST_POSTGRES_BIN is not set: run `bash scripts/test.sh`");
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(Path::new(&bin).join("pg_ctl"));
        c
    } else {
        Command::new(Path::new(&bin).join("pg_ctl"))
    };
    let status = cmd
        .args(["restart", "-w", "-m", "fast", "-D", &data])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl restart failed");
}
