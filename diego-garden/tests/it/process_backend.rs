//! The ProcessBackend: the whole conformance suite, and that nothing leaks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::path::PathBuf;
use std::time::Duration;

use diego_garden::conformance;
use diego_garden::{collect, ContainerBackend, ContainerSpec, ProcessBackend, ProcessSpec, Signal};

/// A fresh containers directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("garden-process-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn assert_empty(dir: &PathBuf) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

macro_rules! conformance_tests {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let dir = scratch(stringify!($scenario));
                let backend = ProcessBackend::new(&dir).unwrap();
                conformance::$scenario(&backend).await;
                assert_empty(&dir);
                drop(backend);
                std::fs::remove_dir_all(&dir).unwrap();
            }
        )*
    };
}

conformance_tests!(
    lifecycle,
    duplicate_and_invalid_handles,
    env_and_dir,
    stdout_and_stderr,
    exit_codes,
    missing_executable,
    signals,
    kill_after_ignored_terminate,
    stream_round_trip,
    properties_and_filters,
    capacity_accounting,
    destroy_while_running,
    stop,
    attach,
    net_in,
    metrics_and_bulk,
    nofile_limit,
);

fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

async fn wait_gone(pid: i32) {
    // An orphan is reaped by init, which may take a moment; our own children must not
    // stay zombies.
    let mut state = None;
    for _ in 0..400 {
        state = process_state(pid);
        if state.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("process {pid} still exists (state {state:?})");
}

async fn read_pid(
    container: &std::sync::Arc<dyn diego_garden::Container>,
    script: &str,
) -> (std::sync::Arc<dyn diego_garden::Process>, i32) {
    let process = container.run(ProcessSpec::shell(script)).await.unwrap();
    let mut out = process.stdout();
    let mut seen = String::new();
    use futures::StreamExt;
    while !seen.contains('\n') {
        let chunk = tokio::time::timeout(Duration::from_secs(30), out.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    (
        process,
        seen.lines().next().unwrap().trim().parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_handles_leave_no_zombie() {
    let dir = scratch("zombie");
    let backend = ProcessBackend::new(&dir).unwrap();
    let container = backend.create(ContainerSpec::new("z")).await.unwrap();
    let (process, pid) = read_pid(&container, "echo $$; exit 0").await;
    drop(process);
    wait_gone(pid).await;
    backend.destroy("z").await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_children_end_with_their_process() {
    let dir = scratch("children");
    let backend = ProcessBackend::new(&dir).unwrap();
    let container = backend.create(ContainerSpec::new("c")).await.unwrap();
    let (process, _) = read_pid(&container, "sleep 1000 & echo $!; exit 0").await;
    let status = tokio::time::timeout(Duration::from_secs(30), process.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let out = collect(process.stdout()).await.unwrap();
    let child: i32 = String::from_utf8_lossy(&out).trim().parse().unwrap();
    wait_gone(child).await;
    backend.destroy("c").await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_backend_kills_processes_and_removes_directories() {
    let dir = scratch("drop");
    let backend = ProcessBackend::new(&dir).unwrap();
    let container = backend.create(ContainerSpec::new("d")).await.unwrap();
    let (process, pid) = read_pid(&container, "echo $$; exec sleep 1000").await;
    drop(container);
    drop(backend);
    let status = tokio::time::timeout(Duration::from_secs(30), process.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code, 137);
    wait_gone(pid).await;
    assert_empty(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_listens_on_its_mapped_port() {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(busybox) = busybox else {
        precondition_missing(
            "process_backend::a_process_listens_on_its_mapped_port",
            "no busybox on this host (for `nc -l`; scripts/setup-garden.sh installs it)",
        );
        return;
    };
    let dir = scratch("listen");
    let backend = ProcessBackend::new(&dir).unwrap();
    let container = backend.create(ContainerSpec::new("l")).await.unwrap();
    let mapping = container.net_in(0, 8080).await.unwrap();
    assert_eq!(
        mapping.host_port, mapping.container_port,
        "host network reports the host port"
    );
    let server = container
        .run(ProcessSpec::new(busybox).args([
            "nc",
            "-l",
            "-p",
            &mapping.container_port.to_string(),
        ]))
        .await
        .unwrap();
    let mut connected = None;
    for _ in 0..200 {
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", mapping.host_port)).await {
            connected = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut stream = connected.expect("nothing listens on the mapped port");
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"ping\n")
        .await
        .unwrap();
    drop(stream);
    let status = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(&collect(server.stdout()).await.unwrap()[..], b"ping\n");
    server.signal(Signal::Kill).await.unwrap();
    backend.destroy("l").await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

use crate::common::{container_paths, precondition_missing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_out_of_a_container_stay_inside() {
    let dir = scratch("links-out");
    let backend = ProcessBackend::new(dir.join("containers")).unwrap();
    let root_of = |handle: &str| backend.container_dir(handle).unwrap();
    container_paths::links_out_stay_inside(&backend, root_of, &dir.join("outside")).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_swapped_during_copies_never_leads_outside() {
    let dir = scratch("swapped");
    let backend = ProcessBackend::new(dir.join("containers")).unwrap();
    let root_of = |handle: &str| backend.container_dir(handle).unwrap();
    container_paths::a_link_swapped_during_copies_never_leads_outside(
        &backend,
        root_of,
        &dir.join("outside"),
    )
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_and_huge_files_stream_out_promptly() {
    let dir = scratch("special-files");
    let backend = ProcessBackend::new(dir.join("containers")).unwrap();
    let root_of = |handle: &str| backend.container_dir(handle).unwrap();
    container_paths::fifos_and_huge_files_stream_out_promptly(&backend, root_of).await;
    std::fs::remove_dir_all(&dir).unwrap();
}
