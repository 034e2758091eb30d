//! The LinuxBackend: the whole conformance suite and the isolation tests. They need root
//! and the busybox rootfs that `scripts/setup-garden.sh` builds; without them each test
//! says why it did not run; under the README's test command or in CI a missing one is a
//! failure ([`precondition_missing`]).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use diego_garden::conformance;
use diego_garden::{
    collect, BindMount, Container, ContainerBackend, ContainerSpec, Error, ExitStatus,
    LinuxBackend, LinuxBackendConfig, ProcessSpec, ResourceLimits,
};

fn rootfs() -> PathBuf {
    std::env::var_os("DIEGO_GARDEN_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/diego-rs/rootfs/busybox"))
}

struct Fixture {
    backend: LinuxBackend,
    dir: PathBuf,
    cgroup_parent: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A backend for one test, or `None` (having said why) when this host cannot run it.
fn fixture(name: &str) -> Option<Fixture> {
    if let Err(why) = LinuxBackend::available() {
        precondition_missing(&format!("linux_backend::{name}"), &why);
        return None;
    }
    let rootfs = rootfs();
    if !rootfs.join("bin/sh").exists() {
        let why = format!(
            "no busybox rootfs at {} (run scripts/setup-garden.sh)",
            rootfs.display()
        );
        precondition_missing(&format!("linux_backend::{name}"), &why);
        return None;
    }
    let dir = std::env::temp_dir().join(format!("garden-linux-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cgroup_parent = format!("diego-rs-test-{name}-{}", std::process::id());
    let mut config = LinuxBackendConfig::new(dir.join("containers"), rootfs.display().to_string());
    config.cgroup_parent = Some(cgroup_parent.clone());
    let backend = LinuxBackend::new(config).unwrap();
    Some(Fixture {
        backend,
        dir,
        cgroup_parent,
    })
}

impl Fixture {
    /// Nothing left: no container directory, no mount under our directory, no cgroup.
    fn assert_clean(&self) {
        let containers = self.dir.join("containers");
        let left: Vec<_> = std::fs::read_dir(&containers)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".rootfs-cache")
            .collect();
        assert!(left.is_empty(), "container directories left: {left:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let ours = self.dir.display().to_string();
        let leaked: Vec<&str> = mounts.lines().filter(|l| l.contains(&ours)).collect();
        assert!(leaked.is_empty(), "mounts left: {leaked:?}");
        for controller in ["memory", "pids", "cpu", "cpuacct", "unified"] {
            let dir = PathBuf::from("/sys/fs/cgroup")
                .join(controller)
                .join(&self.cgroup_parent);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                let cgroups: Vec<_> = entries
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.path())
                    .collect();
                assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
            }
        }
    }
}

macro_rules! conformance_tests {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(fixture) = fixture(stringify!($scenario)) else { return };
                conformance::$scenario(&fixture.backend).await;
                fixture.assert_clean();
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
    memory_limit,
    pids_limit,
);

async fn sh(container: &Arc<dyn Container>, script: &str) -> (ExitStatus, String, String) {
    let process = container.run(ProcessSpec::shell(script)).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), process.wait())
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&collect(process.stdout()).await.unwrap()).into_owned();
    let err = String::from_utf8_lossy(&collect(process.stderr()).await.unwrap()).into_owned();
    (status, out, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_is_pid_1s_child_and_sees_only_its_namespace() {
    let Some(fixture) = fixture("pidns") else {
        return;
    };
    let container = fixture
        .backend
        .create(ContainerSpec::new("pidns"))
        .await
        .unwrap();
    let (status, out, err) = sh(
        &container,
        "echo $$ $PPID; ls /proc | grep -c '^[0-9]'; hostname",
    )
    .await;
    assert!(status.success(), "{status}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "2 1",
        "the process is not pid 1's child in its own namespace"
    );
    let visible: usize = lines[1].parse().unwrap();
    assert!(
        visible <= 5,
        "the container sees {visible} processes (the host's?)"
    );
    assert_eq!(lines[2], "pidns");
    fixture.backend.destroy("pidns").await.unwrap();
    fixture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_files_are_invisible_and_writes_stay_in_the_container() {
    let Some(fixture) = fixture("fs") else { return };
    let marker = fixture.dir.join("host-marker");
    std::fs::write(&marker, "secret").unwrap();
    let container = fixture
        .backend
        .create(ContainerSpec::new("fs"))
        .await
        .unwrap();
    let script = format!(
        "cat {} 2>/dev/null && echo SEEN; test -e /etc/os-release && echo HOST-ETC; \
         echo mine > /etc/written; cat /etc/written; ls /dev",
        marker.display()
    );
    let (status, out, err) = sh(&container, &script).await;
    assert!(status.success(), "{status}: {err}");
    assert!(!out.contains("SEEN"), "a host file is visible: {out}");
    assert!(
        !out.contains("HOST-ETC"),
        "the host's /etc is visible: {out}"
    );
    assert!(out.contains("mine"));
    for device in ["null", "zero", "urandom", "tty", "shm", "pts"] {
        assert!(
            out.lines().any(|l| l == device),
            "/dev/{device} missing: {out}"
        );
    }
    assert!(
        !rootfs().join("etc/written").exists(),
        "a write reached the shared rootfs"
    );
    // Another container does not see it.
    let other = fixture
        .backend
        .create(ContainerSpec::new("fs-other"))
        .await
        .unwrap();
    let (status, _, _) = sh(&other, "test -e /etc/written").await;
    assert!(!status.success(), "a write leaked into another container");
    fixture.backend.destroy("fs").await.unwrap();
    fixture.backend.destroy("fs-other").await.unwrap();
    fixture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_oom_killed_and_the_host_is_unaffected() {
    let Some(fixture) = fixture("oom") else {
        return;
    };
    let limits = ResourceLimits {
        memory_bytes: Some(24 << 20),
        ..ResourceLimits::default()
    };
    let container = fixture
        .backend
        .create(ContainerSpec::new("oom").limits(limits))
        .await
        .unwrap();
    let (status, _, _) = sh(&container, "echo started; tail /dev/zero").await;
    assert_eq!(status.code, 137, "{status}");
    assert!(status.out_of_memory, "{status}");
    let info = container.info().await.unwrap();
    assert_eq!(
        info.events,
        vec![diego_garden::OUT_OF_MEMORY_EVENT.to_string()]
    );
    // The host goes on.
    assert!(std::process::Command::new("true")
        .status()
        .unwrap()
        .success());
    fixture.backend.destroy("oom").await.unwrap();
    fixture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_stops_at_the_pids_limit() {
    let Some(fixture) = fixture("bomb") else {
        return;
    };
    let limits = ResourceLimits {
        pids: Some(32),
        ..ResourceLimits::default()
    };
    let container = fixture
        .backend
        .create(ContainerSpec::new("bomb").limits(limits))
        .await
        .unwrap();
    let bomb = container
        .run(ProcessSpec::shell("b() { b | b & }; b; sleep 1000"))
        .await
        .unwrap();
    let cgroup = ["pids", "unified"]
        .iter()
        .map(|h| {
            PathBuf::from("/sys/fs/cgroup")
                .join(h)
                .join(&fixture.cgroup_parent)
                .join("bomb")
        })
        .find(|dir| dir.join("pids.current").exists())
        .expect("no pids cgroup for the container");
    let mut most = 0u64;
    let mut refused = 0u64;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let current: u64 = std::fs::read_to_string(cgroup.join("pids.current"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        most = most.max(current);
        let events = std::fs::read_to_string(cgroup.join("pids.events")).unwrap_or_default();
        refused = events
            .lines()
            .find_map(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse().ok()))
            .unwrap_or(0);
    }
    assert!(most <= 32, "{most} processes under a limit of 32");
    assert!(
        refused > 0,
        "no fork was refused at the limit (at most {most} processes)"
    );
    // The host still forks.
    assert!(std::process::Command::new("true")
        .status()
        .unwrap()
        .success());
    tokio::time::timeout(Duration::from_secs(60), fixture.backend.destroy("bomb"))
        .await
        .unwrap()
        .unwrap();
    let status = bomb.wait().await.unwrap();
    assert!(!status.success());
    fixture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tarball_rootfs_bind_mounts_and_users() {
    let Some(fixture) = fixture("rootfs") else {
        return;
    };
    let tarball = format!("{}.tar", rootfs().display());
    if !std::path::Path::new(&tarball).exists() {
        precondition_missing(
            "linux_backend::tarball_rootfs_bind_mounts_and_users",
            &format!("no {tarball}"),
        );
        return;
    }
    let shared = fixture.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("greeting"), "from the host\n").unwrap();
    let mut spec = ContainerSpec::new("tarball").rootfs(&tarball);
    spec.bind_mounts.push(BindMount {
        src_path: shared.display().to_string(),
        dst_path: "/mnt/shared".to_string(),
        read_only: true,
    });
    let container = fixture.backend.create(spec).await.unwrap();
    let (status, out, err) = sh(
        &container,
        "cat /mnt/shared/greeting; touch /mnt/shared/x 2>/dev/null || echo read-only",
    )
    .await;
    assert!(status.success(), "{status}: {err}");
    assert_eq!(out, "from the host\nread-only\n");
    let mut as_vcap = ProcessSpec::shell("id -u");
    as_vcap.user = Some("vcap".to_string());
    let process = container.run(as_vcap).await.unwrap();
    assert!(process.wait().await.unwrap().success());
    assert_eq!(&collect(process.stdout()).await.unwrap()[..], b"2000\n");
    // The tarball was unpacked once: a second container shares it.
    fixture
        .backend
        .create(ContainerSpec::new("tarball-2").rootfs(&tarball))
        .await
        .unwrap();
    let cache = fixture.dir.join("containers/.rootfs-cache");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    assert!(matches!(
        fixture
            .backend
            .create(ContainerSpec::new("bad").rootfs("docker:///busybox"))
            .await,
        Err(Error::Unsupported { .. })
    ));
    assert!(fixture
        .backend
        .create(ContainerSpec::new("bad").rootfs("/no/such/rootfs"))
        .await
        .is_err());
    fixture.backend.destroy("tarball").await.unwrap();
    fixture.backend.destroy("tarball-2").await.unwrap();
    fixture.assert_clean();
}

/// The main process execs by itself: programs are found by absolute path, by `PATH`, by a
/// path relative to the working directory and inside bind mounts; a missing one fails to
/// start, one that cannot be exec'd exits 127 with the reason on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_are_found_where_execve_would_find_them() {
    let Some(fixture) = fixture("exec") else {
        return;
    };
    let tools = fixture.dir.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::fs::write(tools.join("hello"), "#!/bin/sh\necho hello from $0\n").unwrap();
    std::fs::write(tools.join("plain"), "not a program\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tools.join("hello"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut spec = ContainerSpec::new("exec");
    spec.bind_mounts.push(BindMount {
        src_path: tools.display().to_string(),
        dst_path: "/tools".to_string(),
        read_only: true,
    });
    let container = fixture.backend.create(spec).await.unwrap();
    let run = |spec: ProcessSpec| {
        let container = Arc::clone(&container);
        async move {
            let process = container.run(spec).await?;
            let status = process.wait().await?;
            let out = collect(process.stdout()).await.unwrap();
            let err = collect(process.stderr()).await.unwrap();
            Ok::<_, Error>((
                status,
                String::from_utf8_lossy(&out).into_owned(),
                String::from_utf8_lossy(&err).into_owned(),
            ))
        }
    };
    let (status, out, _) = run(ProcessSpec::new("/tools/hello")).await.unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(out, "hello from /tools/hello\n");
    let mut relative = ProcessSpec::new("./hello");
    relative.dir = Some("/tools".to_string());
    let (status, out, _) = run(relative).await.unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(out, "hello from ./hello\n");
    let mut by_path = ProcessSpec::new("echo");
    by_path.args = vec!["found".to_string(), "on PATH".to_string()];
    let (status, out, _) = run(by_path).await.unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(out, "found on PATH\n");
    assert!(matches!(
        run(ProcessSpec::new("no-such-program")).await,
        Err(Error::ProcessStart { .. })
    ));
    let (status, _, err) = run(ProcessSpec::new("/tools/plain")).await.unwrap();
    assert_eq!(status.code, 127, "{status}");
    assert!(err.contains("cannot exec"), "{err}");
    fixture.backend.destroy("exec").await.unwrap();
    fixture.assert_clean();
}

/// When the init cannot prepare the container's mounts (here a bind mount source removed
/// after create), `run` fails to start the process and nothing is left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_setup_fails_to_start() {
    let Some(fixture) = fixture("setup") else {
        return;
    };
    let gone = fixture.dir.join("gone");
    std::fs::create_dir_all(&gone).unwrap();
    let mut spec = ContainerSpec::new("setup");
    spec.bind_mounts.push(BindMount {
        src_path: gone.display().to_string(),
        dst_path: "/gone".to_string(),
        read_only: false,
    });
    let container = fixture.backend.create(spec).await.unwrap();
    std::fs::remove_dir(&gone).unwrap();
    match container.run(ProcessSpec::new("/bin/true")).await {
        Err(Error::ProcessStart { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}");
        }
        Err(other) => panic!("expected ProcessStart, got {other}"),
        Ok(_) => panic!("a process started without its bind mount"),
    }
    std::fs::create_dir_all(&gone).unwrap();
    let (status, _, err) = sh(&container, "true").await;
    assert!(status.success(), "{status}: {err}");
    fixture.backend.destroy("setup").await.unwrap();
    fixture.assert_clean();
}

use crate::common::{container_paths, precondition_missing};

impl Fixture {
    /// The host directory of a container's root (its overlay's mount point).
    fn root_of(&self, handle: &str) -> PathBuf {
        self.dir.join("containers").join(handle).join("rootfs")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_out_of_a_container_stay_inside() {
    let Some(fixture) = fixture("links-out") else {
        return;
    };
    let outside = fixture.dir.join("outside");
    container_paths::links_out_stay_inside(&fixture.backend, |h| fixture.root_of(h), &outside)
        .await;
    fixture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_swapped_during_copies_never_leads_outside() {
    let Some(fixture) = fixture("swapped") else {
        return;
    };
    let outside = fixture.dir.join("outside");
    container_paths::a_link_swapped_during_copies_never_leads_outside(
        &fixture.backend,
        |h| fixture.root_of(h),
        &outside,
    )
    .await;
    fixture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_and_huge_files_stream_out_promptly() {
    let Some(fixture) = fixture("special-files") else {
        return;
    };
    container_paths::fifos_and_huge_files_stream_out_promptly(&fixture.backend, |h| {
        fixture.root_of(h)
    })
    .await;
    fixture.assert_clean();
}

/// The container's `/etc/passwd` as a FIFO, a 10 GB sparse file and an absolute link to a
/// passwd elsewhere in the container: a process as a named user fails to start at once
/// with a clear error for the first two, and finds the user through the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_a_huge_passwd_fails_a_named_user_at_once() {
    let Some(fixture) = fixture("passwd") else {
        return;
    };
    let container = fixture
        .backend
        .create(ContainerSpec::new("passwd"))
        .await
        .unwrap();
    let passwd = fixture.root_of("passwd").join("etc/passwd");
    let as_user = |user: &str| {
        let mut spec = ProcessSpec::shell("id -u");
        spec.user = Some(user.to_string());
        spec
    };
    let start = |spec: ProcessSpec| {
        let container = Arc::clone(&container);
        async move {
            tokio::time::timeout(Duration::from_secs(10), container.run(spec))
                .await
                .expect("starting a process hung on /etc/passwd")
        }
    };
    std::fs::remove_file(&passwd).unwrap();
    nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let err = start(as_user("vcap"))
        .await
        .err()
        .expect("a FIFO passwd was read");
    assert!(
        err.to_string().contains("not a regular file but a FIFO"),
        "{err}"
    );

    std::fs::remove_file(&passwd).unwrap();
    std::fs::File::create(&passwd)
        .unwrap()
        .set_len(10 << 30)
        .unwrap();
    let err = start(as_user("vcap"))
        .await
        .err()
        .expect("a 10 GB passwd was read");
    assert!(
        err.to_string()
            .contains("10737418240 bytes, more than the limit of 1048576"),
        "{err}"
    );

    // An absolute link resolves inside the container: to its own /usr/share/passwd,
    // not the host's file of that name.
    std::fs::remove_file(&passwd).unwrap();
    let shared = fixture.root_of("passwd").join("usr/share");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(
        shared.join("passwd"),
        "vcap:x:3000:3000::/home/vcap:/bin/sh\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/usr/share/passwd", &passwd).unwrap();
    let process = start(as_user("vcap")).await.unwrap();
    assert!(process.wait().await.unwrap().success());
    assert_eq!(&collect(process.stdout()).await.unwrap()[..], b"3000\n");

    // A numeric user needs no passwd at all.
    let process = start(as_user("2000")).await.unwrap();
    assert!(process.wait().await.unwrap().success());
    assert_eq!(&collect(process.stdout()).await.unwrap()[..], b"2000\n");
    fixture.backend.destroy("passwd").await.unwrap();
    fixture.assert_clean();
}
