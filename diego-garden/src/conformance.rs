//! The conformance suite: scenarios every [`ContainerBackend`] must pass.
//!
//! Each scenario is an `async fn` over `&dyn ContainerBackend` that panics with a message
//! saying what the backend got wrong (like `assert!`), and destroys what it created when it
//! passes. Every backend of this crate runs all of them; run them against your own:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let backend = diego_garden::FakeBackend::new();
//! diego_garden::conformance::lifecycle(&backend).await;
//! diego_garden::conformance::exit_codes(&backend).await;
//! # }
//! ```
//!
//! or all at once with [`run_all`]. Processes are `/bin/sh -c` scripts using only `echo`,
//! `exit`, `sleep`, `trap '' TERM`, `cat` and `$VAR`; limits are tested only where
//! [`Capabilities`](crate::Capabilities) claims them (memory and pids scenarios need `sh`, `tail`, `seq` and
//! `/dev/zero` in the container, as busybox has). The scenarios run sequentially against
//! one backend; handles are unique, so a backend shared with other work is fine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::backend::{ByteStream, Container, ContainerBackend, Process};
use crate::error::Error;
use crate::info::{ContainerState, ExitStatus, Signal, OUT_OF_MEMORY_EVENT};
use crate::output::collect;
use crate::spec::{ContainerSpec, ProcessSpec, Properties, ResourceLimits};

/// How long a scenario waits for anything a process does.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A handle unique in this process and across runs.
pub fn unique_handle(name: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("conf-{name}-{n}-{}", &tag[..8])
}

#[track_caller]
fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what}: {err}"),
    }
}

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(PROCESS_TIMEOUT, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done within {PROCESS_TIMEOUT:?}"),
    }
}

async fn create(backend: &dyn ContainerBackend, spec: ContainerSpec) -> Arc<dyn Container> {
    let what = format!("create {}", spec.handle);
    ok(backend.create(spec).await, &what)
}

async fn destroy(backend: &dyn ContainerBackend, handle: &str) {
    ok(
        within("destroy", backend.destroy(handle)).await,
        &format!("destroy {handle}"),
    );
}

async fn text(stream: ByteStream) -> String {
    let bytes = ok(within("read output", collect(stream)).await, "read output");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs a shell script to its end: its status, stdout and stderr.
async fn sh(container: &dyn Container, spec: ProcessSpec) -> (ExitStatus, String, String) {
    let process = ok(container.run(spec).await, "run");
    let status = ok(within("wait", process.wait()).await, "wait");
    (
        status,
        text(process.stdout()).await,
        text(process.stderr()).await,
    )
}

/// Reads stdout until it contains `marker`.
async fn wait_for_output(process: &dyn Process, marker: &str) {
    let mut stream = process.stdout();
    let mut seen = String::new();
    within(&format!("output {marker:?}"), async {
        while let Some(chunk) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(&ok(chunk, "read stdout")));
            if seen.contains(marker) {
                return;
            }
        }
        panic!("stdout ended without {marker:?}: {seen:?}");
    })
    .await;
}

/// A tar archive of `(path, contents)` files, as a stream.
pub fn tar_of(files: &[(&str, &[u8])]) -> ByteStream {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        ok(builder.append_data(&mut header, path, *data), "build tar");
    }
    let bytes = ok(builder.into_inner(), "build tar");
    let chunk: std::io::Result<Bytes> = Ok(Bytes::from(bytes));
    Box::pin(futures::stream::iter([chunk]))
}

/// The regular files of a tar stream: `(path, contents)`.
pub async fn files_of(stream: ByteStream) -> Vec<(String, Vec<u8>)> {
    let bytes = ok(collect(stream).await, "read tar stream");
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut out = Vec::new();
    for entry in ok(archive.entries(), "read tar") {
        let mut entry = ok(entry, "read tar entry");
        if entry.header().entry_type().is_file() {
            let path = ok(entry.path(), "tar path").to_string_lossy().into_owned();
            let mut data = Vec::new();
            ok(
                std::io::Read::read_to_end(&mut entry, &mut data),
                "read tar entry",
            );
            out.push((path, data));
        }
    }
    out.sort();
    out
}

/// Create, lookup, list, info, destroy; lookup and destroy after destroy fail with
/// `ContainerNotFound`, and so does every operation on the stale container.
pub async fn lifecycle(backend: &dyn ContainerBackend) {
    let handle = unique_handle("lifecycle");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    assert_eq!(container.handle(), handle);
    let found = ok(backend.lookup(&handle).await, "lookup");
    assert_eq!(found.handle(), handle);
    let all = ok(backend.containers(&Properties::new()).await, "list");
    assert!(
        all.iter().any(|c| c.handle() == handle),
        "created container not listed"
    );
    let info = ok(container.info().await, "info");
    assert_eq!(info.handle, handle);
    assert_eq!(info.state, ContainerState::Active);
    destroy(backend, &handle).await;
    assert!(
        matches!(
            backend.lookup(&handle).await,
            Err(Error::ContainerNotFound { .. })
        ),
        "lookup after destroy must fail with ContainerNotFound"
    );
    assert!(
        matches!(
            backend.destroy(&handle).await,
            Err(Error::ContainerNotFound { .. })
        ),
        "second destroy must fail with ContainerNotFound"
    );
    assert!(
        matches!(container.info().await, Err(Error::ContainerNotFound { .. })),
        "info of a destroyed container must fail with ContainerNotFound"
    );
    assert!(
        matches!(
            container.run(ProcessSpec::shell("exit 0")).await,
            Err(Error::ContainerNotFound { .. })
        ),
        "run in a destroyed container must fail with ContainerNotFound"
    );
    let all = ok(backend.containers(&Properties::new()).await, "list");
    assert!(
        !all.iter().any(|c| c.handle() == handle),
        "destroyed container still listed"
    );
}

/// A handle in use is refused with `HandleExists`; an invalid one with `InvalidSpec`.
pub async fn duplicate_and_invalid_handles(backend: &dyn ContainerBackend) {
    let handle = unique_handle("dup");
    create(backend, ContainerSpec::new(&handle)).await;
    assert!(
        matches!(
            backend.create(ContainerSpec::new(&handle)).await,
            Err(Error::HandleExists { .. })
        ),
        "a second create with the same handle must fail with HandleExists"
    );
    for bad in ["", "a/b", ".."] {
        assert!(
            matches!(
                backend.create(ContainerSpec::new(bad)).await,
                Err(Error::InvalidSpec { .. })
            ),
            "handle {bad:?} must be refused with InvalidSpec"
        );
    }
    destroy(backend, &handle).await;
    // The handle is free again.
    create(backend, ContainerSpec::new(&handle)).await;
    destroy(backend, &handle).await;
}

/// Processes get the container's env overridden by their own, and run in their `dir`.
pub async fn env_and_dir(backend: &dyn ContainerBackend) {
    let handle = unique_handle("env");
    let container = create(
        backend,
        ContainerSpec::new(&handle)
            .env("FROM_CONTAINER", "c")
            .env("OVERRIDDEN", "container"),
    )
    .await;
    let (status, out, _) = sh(
        &*container,
        ProcessSpec::shell("echo $FROM_CONTAINER $OVERRIDDEN $FROM_PROCESS")
            .env("OVERRIDDEN", "process")
            .env("FROM_PROCESS", "p"),
    )
    .await;
    assert!(status.success(), "env script failed: {status}");
    assert_eq!(out, "c process p\n");

    ok(
        container
            .stream_in(
                "/work/dir",
                tar_of(&[("hello.txt", b"hello from the dir\n")]),
            )
            .await,
        "stream_in",
    );
    let (status, out, err) = sh(
        &*container,
        ProcessSpec::shell("cat hello.txt").dir("/work/dir"),
    )
    .await;
    assert!(status.success(), "cat in dir failed: {status}: {err}");
    assert_eq!(out, "hello from the dir\n");
    // A missing working dir is created.
    let (status, _, err) = sh(
        &*container,
        ProcessSpec::shell("exit 0").dir("/not/there/yet"),
    )
    .await;
    assert!(
        status.success(),
        "run in a missing dir failed: {status}: {err}"
    );
    destroy(backend, &handle).await;
}

/// stdout and stderr are separate streams, complete once the process exited, and
/// replayed to every reader.
pub async fn stdout_and_stderr(backend: &dyn ContainerBackend) {
    let handle = unique_handle("output");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    let process = ok(
        container
            .run(ProcessSpec::shell(
                "echo to-out; echo to-err >&2; echo more-out",
            ))
            .await,
        "run",
    );
    let early = process.stdout();
    ok(within("wait", process.wait()).await, "wait");
    assert_eq!(text(early).await, "to-out\nmore-out\n");
    assert_eq!(
        text(process.stdout()).await,
        "to-out\nmore-out\n",
        "stdout not replayed"
    );
    assert_eq!(text(process.stderr()).await, "to-err\n");
    destroy(backend, &handle).await;
}

/// Exit codes are reported as they are.
pub async fn exit_codes(backend: &dyn ContainerBackend) {
    let handle = unique_handle("exit");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    for code in [0, 1, 3, 42, 255] {
        let (status, _, _) = sh(&*container, ProcessSpec::shell(format!("exit {code}"))).await;
        assert_eq!(status.code, code, "exit {code} reported as {status}");
        assert!(!status.out_of_memory);
    }
    let (status, _, _) = sh(
        &*container,
        ProcessSpec::new("/bin/sh").args(["-c", "true"]),
    )
    .await;
    assert_eq!(status.code, 0);
    destroy(backend, &handle).await;
}

/// A process whose executable does not exist fails to start with `ProcessStart`.
pub async fn missing_executable(backend: &dyn ContainerBackend) {
    let handle = unique_handle("missing");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    match container.run(ProcessSpec::new("/no/such/program")).await {
        Err(Error::ProcessStart { .. }) => {}
        Err(other) => panic!("a missing executable must fail with ProcessStart, got {other}"),
        Ok(process) => {
            // Some backends only learn it when the process fails; it must not succeed.
            let status = ok(within("wait", process.wait()).await, "wait");
            assert!(!status.success(), "a missing executable exited 0");
        }
    }
    destroy(backend, &handle).await;
}

/// terminate ends a process with 128+15, kill with 128+9.
pub async fn signals(backend: &dyn ContainerBackend) {
    let handle = unique_handle("signals");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    for (signal, code) in [(Signal::Terminate, 143), (Signal::Kill, 137)] {
        let process = ok(
            container
                .run(ProcessSpec::shell("echo ready; sleep 1000"))
                .await,
            "run",
        );
        wait_for_output(&*process, "ready").await;
        ok(process.signal(signal).await, "signal");
        let status = ok(within("wait after signal", process.wait()).await, "wait");
        assert_eq!(status.code, code, "{signal:?} reported as {status}");
        // Signalling an ended process is not an error.
        ok(process.signal(Signal::Kill).await, "signal after exit");
    }
    destroy(backend, &handle).await;
}

/// A process that ignores SIGTERM survives terminate and ends with kill (137).
pub async fn kill_after_ignored_terminate(backend: &dyn ContainerBackend) {
    let handle = unique_handle("stubborn");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    let process = ok(
        container
            .run(ProcessSpec::shell("trap '' TERM; echo ready; sleep 1000"))
            .await,
        "run",
    );
    wait_for_output(&*process, "ready").await;
    ok(process.signal(Signal::Terminate).await, "terminate");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), process.wait())
            .await
            .is_err(),
        "a process ignoring SIGTERM ended on terminate"
    );
    ok(process.signal(Signal::Kill).await, "kill");
    let status = ok(within("wait after kill", process.wait()).await, "wait");
    assert_eq!(status.code, 137, "kill reported as {status}");
    destroy(backend, &handle).await;
}

/// Files streamed in come back out the same, as files and as a directory.
pub async fn stream_round_trip(backend: &dyn ContainerBackend) {
    let handle = unique_handle("stream");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ok(
        container
            .stream_in("/data", tar_of(&[("a.txt", b"alpha"), ("sub/b.bin", &big)]))
            .await,
        "stream_in",
    );
    let files = files_of(ok(
        container.stream_out("/data/a.txt").await,
        "stream_out file",
    ))
    .await;
    assert_eq!(files, vec![("a.txt".to_string(), b"alpha".to_vec())]);
    let files = files_of(ok(container.stream_out("/data").await, "stream_out dir")).await;
    assert_eq!(
        files,
        vec![
            ("data/a.txt".to_string(), b"alpha".to_vec()),
            ("data/sub/b.bin".to_string(), big)
        ]
    );
    assert!(
        matches!(
            container.stream_out("/data/none").await,
            Err(Error::PathNotFound { .. })
        ),
        "stream_out of a missing path must fail with PathNotFound"
    );
    destroy(backend, &handle).await;
}

/// Properties are kept, changed, and filter the container list.
pub async fn properties_and_filters(backend: &dyn ContainerBackend) {
    let run = unique_handle("props");
    let mut handles = Vec::new();
    for (i, app) in ["a", "a", "b"].iter().enumerate() {
        let handle = format!("{run}-{i}");
        create(
            backend,
            ContainerSpec::new(&handle)
                .property("suite", &run)
                .property("app", *app),
        )
        .await;
        handles.push(handle);
    }
    let list = |filter: &[(&str, &str)]| {
        let filter: Properties = filter
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move {
            let mut found: Vec<String> = ok(backend.containers(&filter).await, "list")
                .iter()
                .map(|c| c.handle().to_string())
                .collect();
            found.sort();
            found
        }
    };
    assert_eq!(list(&[("suite", &run)]).await, handles);
    assert_eq!(
        list(&[("suite", &run), ("app", "a")]).await,
        handles[..2].to_vec()
    );
    assert_eq!(
        list(&[("suite", &run), ("app", "c")]).await,
        Vec::<String>::new()
    );

    let container = ok(backend.lookup(&handles[2]).await, "lookup");
    ok(container.set_property("app", "a").await, "set_property");
    ok(container.set_property("extra", "x").await, "set_property");
    assert_eq!(list(&[("suite", &run), ("app", "a")]).await, handles);
    ok(container.remove_property("extra").await, "remove_property");
    ok(
        container.remove_property("never-set").await,
        "remove_property of a missing one",
    );
    let props = ok(container.properties().await, "properties");
    assert_eq!(props.get("app").map(String::as_str), Some("a"));
    assert!(!props.contains_key("extra"));
    assert_eq!(ok(container.info().await, "info").properties, props);
    for handle in &handles {
        destroy(backend, handle).await;
    }
}

/// Memory limits are accounted against capacity: what does not fit is refused with
/// `InsufficientResources`, and destroying gives it back.
pub async fn capacity_accounting(backend: &dyn ContainerBackend) {
    let before = ok(backend.capacity().await, "capacity");
    assert!(before.memory_bytes > 0, "capacity reports no memory");
    assert!(before.disk_bytes > 0, "capacity reports no disk");
    assert!(before.max_containers > 0, "capacity allows no container");
    let free = before
        .memory_bytes
        .saturating_sub(before.allocated_memory_bytes);
    let half = free / 2 + 1;
    let limits = ResourceLimits {
        memory_bytes: Some(half),
        ..ResourceLimits::default()
    };
    let first = unique_handle("cap");
    let second = unique_handle("cap");
    create(backend, ContainerSpec::new(&first).limits(limits.clone())).await;
    let during = ok(backend.capacity().await, "capacity");
    assert_eq!(
        during.allocated_memory_bytes,
        before.allocated_memory_bytes + half
    );
    assert_eq!(during.containers, before.containers + 1);
    assert!(
        matches!(
            backend
                .create(ContainerSpec::new(&second).limits(limits.clone()))
                .await,
            Err(Error::InsufficientResources { .. })
        ),
        "a container over the free memory must fail with InsufficientResources"
    );
    assert!(
        matches!(
            backend.lookup(&second).await,
            Err(Error::ContainerNotFound { .. })
        ),
        "a refused container exists"
    );
    destroy(backend, &first).await;
    let after = ok(backend.capacity().await, "capacity");
    assert_eq!(after.allocated_memory_bytes, before.allocated_memory_bytes);
    assert_eq!(after.containers, before.containers);
    create(backend, ContainerSpec::new(&second).limits(limits)).await;
    destroy(backend, &second).await;
}

/// Destroying a container with running processes ends them (their wait returns) and
/// removes it.
pub async fn destroy_while_running(backend: &dyn ContainerBackend) {
    let handle = unique_handle("busy");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    let first = ok(
        container
            .run(ProcessSpec::shell("echo ready; sleep 1000"))
            .await,
        "run",
    );
    let second = ok(
        container
            .run(ProcessSpec::shell("trap '' TERM; echo ready; sleep 1000"))
            .await,
        "run",
    );
    wait_for_output(&*first, "ready").await;
    wait_for_output(&*second, "ready").await;
    destroy(backend, &handle).await;
    for process in [first, second] {
        let status = ok(within("wait after destroy", process.wait()).await, "wait");
        assert!(!status.success(), "a process killed by destroy exited 0");
        // Output streams end too.
        text(process.stdout()).await;
    }
    assert!(matches!(
        backend.lookup(&handle).await,
        Err(Error::ContainerNotFound { .. })
    ));
}

/// Stop ends every process (SIGTERM first), marks the container stopped, and refuses
/// new processes with `ContainerStopped`; the container can still be destroyed.
pub async fn stop(backend: &dyn ContainerBackend) {
    let handle = unique_handle("stop");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    let process = ok(
        container
            .run(ProcessSpec::shell("echo ready; sleep 1000"))
            .await,
        "run",
    );
    wait_for_output(&*process, "ready").await;
    ok(within("stop", container.stop(false)).await, "stop");
    let status = ok(within("wait", process.wait()).await, "wait");
    assert_eq!(
        status.code, 143,
        "stop(false) must end with SIGTERM first; got {status}"
    );
    let info = ok(container.info().await, "info");
    assert_eq!(info.state, ContainerState::Stopped);
    assert!(
        info.process_ids.is_empty(),
        "processes listed after stop: {:?}",
        info.process_ids
    );
    assert!(
        matches!(
            container.run(ProcessSpec::shell("exit 0")).await,
            Err(Error::ContainerStopped { .. })
        ),
        "run after stop must fail with ContainerStopped"
    );
    destroy(backend, &handle).await;
}

/// Processes can be attached to by id (running or just exited); unknown ids fail with
/// `ProcessNotFound`; ids given in the spec are kept and must be unique.
pub async fn attach(backend: &dyn ContainerBackend) {
    let handle = unique_handle("attach");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    let process = ok(
        container
            .run(ProcessSpec::shell("echo ready; sleep 1000").id("my-process"))
            .await,
        "run",
    );
    assert_eq!(process.id(), "my-process");
    wait_for_output(&*process, "ready").await;
    assert!(
        matches!(
            container
                .run(ProcessSpec::shell("exit 0").id("my-process"))
                .await,
            Err(Error::ProcessIdExists { .. })
        ),
        "a process id in use must be refused with ProcessIdExists"
    );
    let info = ok(container.info().await, "info");
    assert!(
        info.process_ids.contains(&"my-process".to_string()),
        "running process not in info"
    );
    let attached = ok(container.attach("my-process").await, "attach");
    assert_eq!(attached.id(), "my-process");
    ok(
        attached.signal(Signal::Kill).await,
        "kill through the attached handle",
    );
    let status = ok(within("wait", process.wait()).await, "wait");
    assert_eq!(status.code, 137);
    assert_eq!(ok(attached.wait().await, "wait attached"), status);
    assert_eq!(text(attached.stdout()).await, "ready\n");
    assert!(
        matches!(
            container.attach("no-such-process").await,
            Err(Error::ProcessNotFound { .. })
        ),
        "attach to an unknown id must fail with ProcessNotFound"
    );
    destroy(backend, &handle).await;
}

/// `net_in` maps distinct host ports, reports them, and lists them in info.
pub async fn net_in(backend: &dyn ContainerBackend) {
    let handle = unique_handle("net");
    let mut spec = ContainerSpec::new(&handle);
    spec.net_in.push(crate::spec::NetIn {
        host_port: 0,
        container_port: 8080,
    });
    let container = create(backend, spec).await;
    let second = ok(container.net_in(0, 9090).await, "net_in");
    let info = ok(container.info().await, "info");
    assert_eq!(
        info.mapped_ports.len(),
        2,
        "mapped ports: {:?}",
        info.mapped_ports
    );
    let first = info.mapped_ports[0];
    assert_eq!(info.mapped_ports[1], second);
    for (mapping, asked) in [(first, 8080), (second, 9090)] {
        assert_ne!(mapping.host_port, 0, "host port 0 reported");
        assert!(
            mapping.container_port == asked || mapping.container_port == mapping.host_port,
            "container port {} is neither the one asked ({asked}) nor the host port",
            mapping.container_port
        );
    }
    assert_ne!(
        first.host_port, second.host_port,
        "one host port mapped twice"
    );
    let other = unique_handle("net");
    let other_container = create(backend, ContainerSpec::new(&other)).await;
    let third = ok(other_container.net_in(0, 8080).await, "net_in");
    assert!(
        third.host_port != first.host_port && third.host_port != second.host_port,
        "two containers got the same host port"
    );
    destroy(backend, &handle).await;
    destroy(backend, &other).await;
}

/// Metrics report disk use and a growing age; bulk calls report unknown handles apart.
pub async fn metrics_and_bulk(backend: &dyn ContainerBackend) {
    let handle = unique_handle("metrics");
    let container = create(backend, ContainerSpec::new(&handle)).await;
    let first = ok(container.metrics().await, "metrics");
    let payload = vec![7u8; 1 << 20];
    ok(
        container
            .stream_in("/blob", tar_of(&[("one-mib", &payload)]))
            .await,
        "stream_in",
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = ok(container.metrics().await, "metrics");
    assert!(
        second.disk_bytes >= first.disk_bytes + (1 << 20),
        "disk use did not grow by the 1 MiB streamed in: {} -> {}",
        first.disk_bytes,
        second.disk_bytes
    );
    assert!(second.age > first.age, "age did not grow");

    let missing = unique_handle("missing");
    let handles = vec![handle.clone(), missing.clone()];
    let infos = ok(backend.bulk_info(&handles).await, "bulk_info");
    assert!(matches!(infos.get(&handle), Some(Ok(info)) if info.handle == handle));
    assert!(matches!(
        infos.get(&missing),
        Some(Err(Error::ContainerNotFound { .. }))
    ));
    let metrics = ok(backend.bulk_metrics(&handles).await, "bulk_metrics");
    assert!(matches!(metrics.get(&handle), Some(Ok(m)) if m.disk_bytes >= 1 << 20));
    assert!(matches!(
        metrics.get(&missing),
        Some(Err(Error::ContainerNotFound { .. }))
    ));
    destroy(backend, &handle).await;
}

/// `nofile` applies to processes (when the backend claims it).
pub async fn nofile_limit(backend: &dyn ContainerBackend) {
    if !backend.capabilities().nofile_limit {
        return;
    }
    let handle = unique_handle("nofile");
    let limits = ResourceLimits {
        nofile: Some(321),
        ..ResourceLimits::default()
    };
    let container = create(backend, ContainerSpec::new(&handle).limits(limits)).await;
    let (status, out, err) = sh(&*container, ProcessSpec::shell("ulimit -n")).await;
    assert!(status.success(), "ulimit -n failed: {err}");
    assert_eq!(out.trim(), "321");
    let mut spec = ProcessSpec::shell("ulimit -n");
    spec.limits.nofile = Some(123);
    let (_, out, _) = sh(&*container, spec).await;
    assert_eq!(out.trim(), "123", "the process's own nofile must win");
    destroy(backend, &handle).await;
}

/// A process over the memory limit is killed and reported out of memory, in its exit
/// and in the container's events (when the backend claims memory limits).
pub async fn memory_limit(backend: &dyn ContainerBackend) {
    if !backend.capabilities().memory_limit {
        return;
    }
    let handle = unique_handle("oom");
    let limits = ResourceLimits {
        memory_bytes: Some(32 << 20),
        ..ResourceLimits::default()
    };
    let container = create(backend, ContainerSpec::new(&handle).limits(limits)).await;
    // `tail` keeps the current line in memory; /dev/zero has no newline.
    let (status, _, _) = sh(&*container, ProcessSpec::shell("exec tail /dev/zero")).await;
    assert!(
        status.out_of_memory,
        "memory hog not reported out of memory: {status}"
    );
    assert_eq!(status.code, 137);
    assert!(status.to_string().contains("(out of memory)"));
    let info = ok(container.info().await, "info");
    assert!(
        info.events.iter().any(|e| e == OUT_OF_MEMORY_EVENT),
        "no out-of-memory event: {:?}",
        info.events
    );
    // The container still works after its process was killed.
    let (status, out, _) = sh(&*container, ProcessSpec::shell("echo alive")).await;
    assert!(status.success());
    assert_eq!(out, "alive\n");
    destroy(backend, &handle).await;
}

/// Forks stop at the pids limit (when the backend claims pids limits).
pub async fn pids_limit(backend: &dyn ContainerBackend) {
    if !backend.capabilities().pids_limit {
        return;
    }
    let handle = unique_handle("pids");
    let limits = ResourceLimits {
        pids: Some(10),
        ..ResourceLimits::default()
    };
    let container = create(backend, ContainerSpec::new(&handle).limits(limits)).await;
    let (_, _, err) = sh(
        &*container,
        ProcessSpec::shell("for i in $(seq 1 30); do sleep 1000 & done; echo done"),
    )
    .await;
    assert!(
        err.to_lowercase().contains("fork"),
        "30 forks under a limit of 10 all succeeded (stderr: {err:?})"
    );
    destroy(backend, &handle).await;
}

/// Every scenario, in order.
pub async fn run_all(backend: &dyn ContainerBackend) {
    lifecycle(backend).await;
    duplicate_and_invalid_handles(backend).await;
    env_and_dir(backend).await;
    stdout_and_stderr(backend).await;
    exit_codes(backend).await;
    missing_executable(backend).await;
    signals(backend).await;
    kill_after_ignored_terminate(backend).await;
    stream_round_trip(backend).await;
    properties_and_filters(backend).await;
    capacity_accounting(backend).await;
    destroy_while_running(backend).await;
    stop(backend).await;
    attach(backend).await;
    net_in(backend).await;
    metrics_and_bulk(backend).await;
    nofile_limit(backend).await;
    memory_limit(backend).await;
    pids_limit(backend).await;
}
