//! `headline garden`: the container backends' figures.
//!
//! - `process_backend_containers_per_sec`: create + run `/bin/true` + wait + destroy on
//!   the ProcessBackend, 4 at a time.
//! - `fake_backend_100k_ms`: create 100,000 fake containers, list them, destroy them.
//! - `linux_backend_containers_per_sec` (root, busybox rootfs present): the same cycle on
//!   the LinuxBackend; with `runc` on PATH also `runc run` of `/bin/true` over the same
//!   rootfs, 4 at a time, and `linux_backend_runc_ratio` = ours ÷ runc.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use diego_garden::{
    ContainerBackend, ContainerSpec, FakeBackend, LinuxBackend, LinuxBackendConfig, ProcessBackend,
    ProcessSpec, Properties,
};

use crate::{print_figure, print_skipped};

/// Containers in flight at once in the throughput figures.
const CONCURRENCY: usize = 4;

/// Where `scripts/setup-garden.sh` builds the busybox rootfs.
pub const DEFAULT_ROOTFS: &str = "/var/lib/diego-rs/rootfs/busybox";

/// The busybox rootfs directory: `$DIEGO_GARDEN_ROOTFS` or [`DEFAULT_ROOTFS`].
pub fn rootfs_dir() -> PathBuf {
    std::env::var_os("DIEGO_GARDEN_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOTFS))
}

/// Runs the group, printing one line per figure.
pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let scratch =
            std::env::temp_dir().join(format!("diego-bench-garden-{}", std::process::id()));
        let process = process_backend_rate(&scratch.join("process")).await;
        match process {
            Ok(rate) => print_figure("process_backend_containers_per_sec", rate, "containers/s"),
            Err(err) => print_skipped("process_backend_containers_per_sec", &format!("{err:#}")),
        }
        let fake_ms = fake_backend_100k_ms().await?;
        print_figure("fake_backend_100k_ms", fake_ms, "ms");
        linux_figures(&scratch.join("linux")).await;
        let _ = std::fs::remove_dir_all(&scratch);
        Ok(())
    })
}

/// Create + run `/bin/true` + wait + destroy, `total` times, `CONCURRENCY` at a time.
pub async fn cycle_rate(
    backend: Arc<dyn ContainerBackend>,
    total: usize,
    prefix: &str,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let backend = Arc::clone(&backend);
        let next = Arc::clone(&next);
        let prefix = prefix.to_string();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                let handle = format!("{prefix}-{i}");
                let container = backend.create(ContainerSpec::new(&handle)).await?;
                let process = container.run(ProcessSpec::new("/bin/true")).await?;
                let status = process.wait().await?;
                if !status.success() {
                    bail!("/bin/true in {handle} ended with {status}");
                }
                backend.destroy(&handle).await?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

async fn process_backend_rate(dir: &Path) -> anyhow::Result<f64> {
    let backend: Arc<dyn ContainerBackend> = Arc::new(ProcessBackend::new(dir)?);
    // Warm up, then measure.
    cycle_rate(Arc::clone(&backend), 20, "warm").await?;
    cycle_rate(backend, 1000, "bench").await
}

/// Create 100,000 fake containers, list them, destroy them: milliseconds.
pub async fn fake_backend_100k_ms() -> anyhow::Result<f64> {
    let fake = FakeBackend::new();
    let handles: Vec<String> = (0..100_000).map(|i| format!("fake-{i}")).collect();
    let start = Instant::now();
    for handle in &handles {
        fake.create(ContainerSpec::new(handle)).await?;
    }
    let listed = fake.containers(&Properties::new()).await?.len();
    if listed != handles.len() {
        bail!("listed {listed} of {} fake containers", handles.len());
    }
    for handle in &handles {
        fake.destroy(handle).await?;
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

async fn linux_figures(dir: &Path) {
    const OURS: &str = "linux_backend_containers_per_sec";
    const RATIO: &str = "linux_backend_runc_ratio";
    let rootfs = rootfs_dir();
    if let Err(why) = LinuxBackend::available() {
        print_skipped(OURS, &why);
        print_skipped(RATIO, &why);
        return;
    }
    if !rootfs.join("bin/true").exists() {
        let why = format!(
            "no busybox rootfs at {} (run scripts/setup-garden.sh)",
            rootfs.display()
        );
        print_skipped(OURS, &why);
        print_skipped(RATIO, &why);
        return;
    }
    let ours = async {
        let config = LinuxBackendConfig::new(dir.join("containers"), rootfs.display().to_string());
        let backend: Arc<dyn ContainerBackend> = Arc::new(LinuxBackend::new(config)?);
        cycle_rate(Arc::clone(&backend), 20, "warm").await?;
        cycle_rate(backend, 400, "bench").await
    }
    .await;
    let ours = match ours {
        Ok(rate) => {
            print_figure(OURS, rate, "containers/s");
            rate
        }
        Err(err) => {
            print_skipped(OURS, &format!("{err:#}"));
            print_skipped(RATIO, "no figure for the LinuxBackend");
            return;
        }
    };
    match runc_rate(&dir.join("runc"), &rootfs).await {
        Ok(Some(runc)) => {
            print_figure("runc_containers_per_sec", runc, "containers/s");
            print_figure(RATIO, ours / runc, "x");
        }
        Ok(None) => print_skipped(RATIO, "runc is not on PATH (apt-get install runc)"),
        Err(err) => print_skipped(RATIO, &format!("runc failed: {err:#}")),
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// `runc run` of `/bin/true` in an OCI bundle over `rootfs`, [`CONCURRENCY`] at a time.
async fn runc_rate(dir: &Path, rootfs: &Path) -> anyhow::Result<Option<f64>> {
    let Some(runc) = on_path("runc") else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir)?;
    let spec = tokio::process::Command::new(&runc)
        .args(["spec", "--bundle"])
        .arg(dir)
        .output()
        .await?;
    if !spec.status.success() && !dir.join("config.json").exists() {
        bail!("runc spec: {}", String::from_utf8_lossy(&spec.stderr));
    }
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
    config["process"]["terminal"] = serde_json::Value::Bool(false);
    config["process"]["args"] = serde_json::json!(["/bin/true"]);
    config["root"] = serde_json::json!({ "path": rootfs.display().to_string(), "readonly": true });
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    let root = dir.join("state");
    let bundle = dir.to_path_buf();
    runc_run(
        runc.clone(),
        root.clone(),
        bundle.clone(),
        "warm".to_string(),
    )
    .await?;
    let total = 200;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let next = Arc::clone(&next);
        let (runc, root, bundle) = (runc.clone(), root.clone(), bundle.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                let id = format!("diego-bench-{}-{i}", std::process::id());
                runc_run(runc.clone(), root.clone(), bundle.clone(), id).await?;
            }
        }));
    }
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(120), worker).await???;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(dir);
    Ok(Some(rate))
}

/// `runc --root <root> run --bundle <bundle> <id>`, waiting for it to end.
async fn runc_run(runc: PathBuf, root: PathBuf, bundle: PathBuf, id: String) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(&runc)
        .arg("--root")
        .arg(&root)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("starting runc")?;
    if !out.status.success() {
        bail!("runc run {id}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}
