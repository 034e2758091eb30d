//! Unit tests of the LinuxBackend's plans, without root: the cgroup layout read from a
//! mount table, the cgroup directories and files written for a container's limits, the
//! overlay and mount plan of its root, the namespace setup of its processes, and what it
//! maps in bridged mode, all recorded through the `Syscall` and `Netfilter` seams.

use std::ffi::CString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::cgroup::{self, Cgroup, CgroupLayout};
use super::mount_plan::{self, MountStep};
use super::netfilter::recording::{NfCall, RecordingNetfilter};
use super::network::{Attachment, Bridge, BridgeNetwork};
use super::rootfs::Overlay;
use super::syscall::recording::{Call, RecordingSyscall};
use super::syscall::{Errno, MountPoint, Signal, Syscall};
use super::*;
use crate::host::Isolation;
use crate::info::Capabilities;
use crate::spec::{BindMount, ContainerSpec, ProcessSpec, ResourceLimits};

fn p(path: &str) -> PathBuf {
    PathBuf::from(path)
}

fn write(path: &str, contents: &str) -> Call {
    Call::Write(p(path), contents.to_string())
}

fn mkdirs(path: &str) -> Call {
    Call::CreateDirAll(p(path))
}

fn mount_point(root: &str, path: &str, kind: MountPoint) -> Call {
    Call::MountPoint {
        root: p(root),
        path: path.to_string(),
        kind,
    }
}

/// The cgroup mounts of this machine's `/proc/self/mountinfo` (a hybrid host: v1
/// controllers, and cgroup2 at `/sys/fs/cgroup/unified`), with the lines around them.
const HYBRID_MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
23 22 0:22 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

/// A pure cgroup-v2 host (systemd's unified layout).
const V2_MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw
26 23 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

fn v1(mounts: &[(&str, &str)]) -> CgroupLayout {
    CgroupLayout::V1(mounts.iter().map(|(c, m)| (c.to_string(), p(m))).collect())
}

fn hybrid() -> CgroupLayout {
    v1(&[
        ("cpu", "/sys/fs/cgroup/cpu"),
        ("cpuacct", "/sys/fs/cgroup/cpuacct"),
        ("memory", "/sys/fs/cgroup/memory"),
        ("pids", "/sys/fs/cgroup/pids"),
    ])
}

fn layout_debug(layout: &CgroupLayout) -> String {
    format!("{layout:?}")
}

#[test]
fn the_cgroup_layout_is_read_from_the_mount_table() {
    // This host: the v1 controllers the containers use, in mount order; the cgroup2
    // mount beside them is not used.
    assert_eq!(
        layout_debug(&CgroupLayout::from_mountinfo(HYBRID_MOUNTINFO)),
        layout_debug(&hybrid())
    );
    // A pure v2 host.
    assert_eq!(
        layout_debug(&CgroupLayout::from_mountinfo(V2_MOUNTINFO)),
        layout_debug(&CgroupLayout::V2(p("/sys/fs/cgroup")))
    );
    // A hybrid host whose v1 hierarchies hold no memory controller: the unified mount.
    let no_v1_memory: String = HYBRID_MOUNTINFO
        .lines()
        .filter(|line| !line.ends_with("rw,memory"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(
        layout_debug(&CgroupLayout::from_mountinfo(&no_v1_memory)),
        layout_debug(&CgroupLayout::V2(p("/sys/fs/cgroup/unified")))
    );
    // Co-mounted controllers share a directory; escaped mount points are undone.
    let comounted = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory
";
    assert_eq!(
        layout_debug(&CgroupLayout::from_mountinfo(comounted)),
        layout_debug(&v1(&[
            ("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
            ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
            ("memory", "/sys/fs/cgroup/mem ory"),
        ]))
    );
    // No cgroup mounted, or no mount table: no limits.
    let none = layout_debug(&CgroupLayout::None);
    assert_eq!(layout_debug(&CgroupLayout::from_mountinfo("")), none);
    assert_eq!(
        layout_debug(&CgroupLayout::detect(&RecordingSyscall::new())),
        none
    );
    let sys = RecordingSyscall::new().with_file("/proc/self/mountinfo", V2_MOUNTINFO);
    assert_eq!(
        layout_debug(&CgroupLayout::detect(&sys)),
        layout_debug(&CgroupLayout::V2(p("/sys/fs/cgroup")))
    );
}

fn limits() -> ResourceLimits {
    ResourceLimits {
        memory_bytes: Some(64 << 20),
        pids: Some(100),
        cpu_weight: Some(50),
        ..ResourceLimits::default()
    }
}

#[test]
fn a_v1_cgroup_is_a_directory_per_controller_with_its_limit_files() {
    let sys = Arc::new(RecordingSyscall::new());
    let shared: Arc<dyn Syscall> = sys.clone();
    let cgroup = Cgroup::create(&shared, &hybrid(), "diego-rs-test", "web-1", &limits()).unwrap();
    assert_eq!(
        sys.take_calls(),
        vec![
            mkdirs("/sys/fs/cgroup/cpu/diego-rs-test/web-1"),
            mkdirs("/sys/fs/cgroup/cpuacct/diego-rs-test/web-1"),
            mkdirs("/sys/fs/cgroup/memory/diego-rs-test/web-1"),
            mkdirs("/sys/fs/cgroup/pids/diego-rs-test/web-1"),
            write(
                "/sys/fs/cgroup/memory/diego-rs-test/web-1/memory.limit_in_bytes",
                "67108864"
            ),
            // No swapping past the limit either (where swap is accounted).
            write(
                "/sys/fs/cgroup/memory/diego-rs-test/web-1/memory.memsw.limit_in_bytes",
                "67108864"
            ),
            write("/sys/fs/cgroup/pids/diego-rs-test/web-1/pids.max", "100"),
            // Weight 50 (v2 scale) as runc converts it to shares.
            write("/sys/fs/cgroup/cpu/diego-rs-test/web-1/cpu.shares", "1286"),
        ]
    );
    // A process joins through `tasks` in every hierarchy, in path order.
    assert_eq!(
        cgroup.join_files(),
        vec![
            p("/sys/fs/cgroup/cpu/diego-rs-test/web-1/tasks"),
            p("/sys/fs/cgroup/cpuacct/diego-rs-test/web-1/tasks"),
            p("/sys/fs/cgroup/memory/diego-rs-test/web-1/tasks"),
            p("/sys/fs/cgroup/pids/diego-rs-test/web-1/tasks"),
        ]
    );

    // Co-mounted cpu and cpuacct: one directory, joined once. (The second controller
    // finds the directory the first made, and empties and makes it again.)
    let comounted = v1(&[
        ("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
        ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
        ("memory", "/sys/fs/cgroup/memory"),
    ]);
    let cgroup = Cgroup::create(&shared, &comounted, "p", "h", &ResourceLimits::default()).unwrap();
    assert_eq!(
        sys.take_calls(),
        vec![
            mkdirs("/sys/fs/cgroup/cpu,cpuacct/p/h"),
            Call::RemoveDir(p("/sys/fs/cgroup/cpu,cpuacct/p/h")),
            mkdirs("/sys/fs/cgroup/cpu,cpuacct/p/h"),
            mkdirs("/sys/fs/cgroup/memory/p/h"),
        ]
    );
    assert_eq!(
        cgroup.join_files(),
        vec![
            p("/sys/fs/cgroup/cpu,cpuacct/p/h/tasks"),
            p("/sys/fs/cgroup/memory/p/h/tasks"),
        ]
    );

    // Without a pids hierarchy a pids limit is not written anywhere.
    let no_pids = v1(&[("memory", "/sys/fs/cgroup/memory")]);
    let pids_only = ResourceLimits {
        pids: Some(10),
        ..ResourceLimits::default()
    };
    Cgroup::create(&shared, &no_pids, "p", "h2", &pids_only).unwrap();
    assert_eq!(sys.take_calls(), vec![mkdirs("/sys/fs/cgroup/memory/p/h2")]);
}

#[test]
fn a_v2_cgroup_enables_the_controllers_down_to_its_parent() {
    // A pure v2 host, and the unified mount of a hybrid one: the same plan under each root.
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let sys = Arc::new(RecordingSyscall::new().with_dir(root));
        let shared: Arc<dyn Syscall> = sys.clone();
        let layout = CgroupLayout::V2(p(root));
        let cgroup = Cgroup::create(&shared, &layout, "diego/cells", "web-1", &limits()).unwrap();
        let at = |sub: &str| p(&format!("{root}/{sub}"));
        let controllers = "+memory +pids +cpu".to_string();
        assert_eq!(
            sys.take_calls(),
            vec![
                Call::Write(at("cgroup.subtree_control"), controllers.clone()),
                Call::CreateDirAll(at("diego")),
                Call::Write(at("diego/cgroup.subtree_control"), controllers.clone()),
                Call::CreateDirAll(at("diego/cells")),
                Call::Write(at("diego/cells/cgroup.subtree_control"), controllers),
                Call::CreateDirAll(at("diego/cells/web-1")),
                Call::Write(at("diego/cells/web-1/memory.max"), "67108864".into()),
                Call::Write(at("diego/cells/web-1/memory.swap.max"), "0".into()),
                Call::Write(at("diego/cells/web-1/pids.max"), "100".into()),
                Call::Write(at("diego/cells/web-1/cpu.weight"), "50".into()),
            ],
            "under {root}"
        );
        assert_eq!(
            cgroup.join_files(),
            vec![at("diego/cells/web-1/cgroup.procs")]
        );
    }
}

#[test]
fn a_cgroup_left_by_a_dead_backend_is_emptied_and_made_afresh() {
    let dir = "/sys/fs/cgroup/memory/p/web-1";
    let sys =
        Arc::new(RecordingSyscall::new().with_file(format!("{dir}/cgroup.procs"), "41\n42\n"));
    let shared: Arc<dyn Syscall> = sys.clone();
    let layout = v1(&[("memory", "/sys/fs/cgroup/memory")]);
    Cgroup::create(&shared, &layout, "p", "web-1", &ResourceLimits::default()).unwrap();
    assert_eq!(
        sys.take_calls(),
        vec![
            Call::Kill(41, Signal::SIGKILL),
            Call::Kill(42, Signal::SIGKILL),
            Call::RemoveDir(p(dir)),
            mkdirs(dir),
        ]
    );
}

#[test]
fn a_limit_that_cannot_be_written_fails_the_cgroup_and_removes_it() {
    let pids_max = "/sys/fs/cgroup/pids/diego-rs-test/web-1/pids.max";
    let sys = Arc::new(RecordingSyscall::new().fail_at(pids_max));
    let shared: Arc<dyn Syscall> = sys.clone();
    let err = Cgroup::create(&shared, &hybrid(), "diego-rs-test", "web-1", &limits()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "backend failure while writing \"100\" to {pids_max}: Permission denied (os error 13)"
        )
    );
    let calls = sys.take_calls();
    let failed_at = calls
        .iter()
        .position(|call| *call == write(pids_max, "100"))
        .unwrap();
    // Nothing more is written; every directory made is removed.
    assert_eq!(
        calls[failed_at + 1..],
        [
            Call::RemoveDir(p("/sys/fs/cgroup/cpu/diego-rs-test/web-1")),
            Call::RemoveDir(p("/sys/fs/cgroup/cpuacct/diego-rs-test/web-1")),
            Call::RemoveDir(p("/sys/fs/cgroup/memory/diego-rs-test/web-1")),
            Call::RemoveDir(p("/sys/fs/cgroup/pids/diego-rs-test/web-1")),
        ]
    );
}

#[test]
fn usage_oom_kills_and_killing_read_and_write_the_controllers_files() {
    let sys = Arc::new(RecordingSyscall::new());
    let shared: Arc<dyn Syscall> = sys.clone();
    let cgroup = Cgroup::create(&shared, &hybrid(), "p", "h", &ResourceLimits::default()).unwrap();
    // What the kernel shows.
    let v1_file = |c: &str, file: &str| format!("/sys/fs/cgroup/{c}/p/h/{file}");
    sys.put_file(v1_file("memory", "memory.usage_in_bytes"), "4096\n");
    sys.put_file(v1_file("cpuacct", "cpuacct.usage"), "2500000000\n");
    sys.put_file(
        v1_file("memory", "memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    sys.put_file(v1_file("pids", "cgroup.procs"), "7\n");
    assert_eq!(cgroup.memory_bytes(), 4096);
    assert_eq!(cgroup.cpu_time(), Duration::from_millis(2500));
    assert_eq!(cgroup.oom_kills(), 3);
    sys.take_calls();
    cgroup.kill_all();
    assert_eq!(sys.take_calls(), vec![Call::Kill(7, Signal::SIGKILL)]);

    let root = "/sys/fs/cgroup";
    let dir = format!("{root}/p/h");
    let at = |file: &str| format!("{dir}/{file}");
    let sys = Arc::new(RecordingSyscall::new().with_dir(root));
    let shared: Arc<dyn Syscall> = sys.clone();
    let layout = CgroupLayout::V2(p(root));
    let cgroup = Cgroup::create(&shared, &layout, "p", "h", &ResourceLimits::default()).unwrap();
    sys.put_file(at("memory.current"), "8192\n");
    sys.put_file(at("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n");
    sys.put_file(
        at("memory.events"),
        "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n",
    );
    sys.put_file(at("cgroup.procs"), "12\n34\n");
    assert_eq!(cgroup.memory_bytes(), 8192);
    assert_eq!(cgroup.cpu_time(), Duration::from_micros(1500));
    assert_eq!(cgroup.oom_kills(), 2);
    sys.take_calls();
    cgroup.kill_all();
    assert_eq!(
        sys.take_calls(),
        vec![
            write(&at("cgroup.kill"), "1"),
            Call::Kill(12, Signal::SIGKILL),
            Call::Kill(34, Signal::SIGKILL),
        ]
    );
    cgroup.remove().unwrap();
    assert_eq!(
        sys.take_calls(),
        vec![write(&at("cgroup.kill"), "1"), Call::RemoveDir(p(&dir))]
    );
    cgroup::remove_parent(&*sys, &layout, "p");
    assert_eq!(
        sys.take_calls(),
        vec![Call::RemoveDir(p("/sys/fs/cgroup/p"))]
    );
}

#[test]
fn the_capabilities_follow_the_controllers_there_are() {
    let config = LinuxBackendConfig::new("/c", "/rootfs");
    let sys = Arc::new(RecordingSyscall::new().with_file(
        "/sys/fs/cgroup/cgroup.controllers",
        "cpuset cpu io memory\n",
    ));
    let isolation =
        NamespaceIsolation::new(&config, sys, CgroupLayout::V2(p("/sys/fs/cgroup")), None);
    let base = Capabilities::none()
        .with_nofile_limit(true)
        .with_isolation(true);
    assert_eq!(
        isolation.capabilities(),
        base.with_memory_limit(true).with_cpu_weight(true)
    );
    let isolation = NamespaceIsolation::new(
        &config,
        Arc::new(RecordingSyscall::new()),
        v1(&[("memory", "/m"), ("pids", "/p")]),
        None,
    );
    assert_eq!(
        isolation.capabilities(),
        base.with_memory_limit(true).with_pids_limit(true)
    );
    let isolation = NamespaceIsolation::new(
        &config,
        Arc::new(RecordingSyscall::new()),
        CgroupLayout::None,
        None,
    );
    assert_eq!(isolation.capabilities(), base);
}

#[test]
fn the_overlay_is_mounted_over_the_rootfs_from_the_containers_directory() {
    let sys = Arc::new(RecordingSyscall::new());
    let shared: Arc<dyn Syscall> = sys.clone();
    let overlay =
        Overlay::mount(&shared, Path::new("/c/web-1"), Path::new("/rootfs/busybox")).unwrap();
    assert_eq!(overlay.root, p("/c/web-1/rootfs"));
    assert_eq!(overlay.upper, p("/c/web-1/upper"));
    overlay.unmount().unwrap();
    assert_eq!(
        sys.take_calls(),
        vec![
            mkdirs("/c/web-1/rootfs"),
            mkdirs("/c/web-1/upper"),
            mkdirs("/c/web-1/work"),
            Call::Mount {
                source: Some("overlay".into()),
                target: p("/c/web-1/rootfs"),
                fstype: Some("overlay".into()),
                flags: 0,
                data: Some(
                    "lowerdir=/rootfs/busybox,upperdir=/c/web-1/upper,workdir=/c/web-1/work".into()
                ),
            },
            // Lazily: copies in the processes' mount namespaces go with them.
            Call::Umount2(p("/c/web-1/rootfs"), libc::MNT_DETACH),
        ]
    );
    // A refused mount says where.
    let sys: Arc<dyn Syscall> = Arc::new(RecordingSyscall::new().fail_mount_at("/c/web-2/rootfs"));
    let err =
        Overlay::mount(&sys, Path::new("/c/web-2"), Path::new("/rootfs/busybox")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "backend failure while mounting the overlay at /c/web-2/rootfs: EACCES: Permission denied"
    );
}

fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Call {
    Call::Mount {
        source: source.map(str::to_string),
        target: p(target),
        fstype: fstype.map(str::to_string),
        flags,
        data: data.map(str::to_string),
    }
}

/// The calls of the mount plan of a container whose overlay is at `root`, called
/// `web-1`, with `/host/data` bound at `/data` and `/host/app.conf` at `/etc/app.conf`
/// read-only.
fn web_1_mount_plan(root: &str) -> Vec<Call> {
    let under = |sub: &str| format!("{root}/{sub}");
    let mut calls = vec![
        mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None),
        Call::SetHostname("web-1".into()),
        mount(
            Some("proc"),
            &under("proc"),
            Some("proc"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
        ),
        mount(
            Some("tmpfs"),
            &under("dev"),
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
    ];
    for device in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = under(&format!("dev/{device}"));
        calls.push(Call::CreateFile(p(&target), 0o666));
        calls.push(mount(
            Some(&format!("/dev/{device}")),
            &target,
            None,
            libc::MS_BIND,
            None,
        ));
    }
    for (target, link) in [
        ("/proc/self/fd", "dev/fd"),
        ("/proc/self/fd/0", "dev/stdin"),
        ("/proc/self/fd/1", "dev/stdout"),
        ("/proc/self/fd/2", "dev/stderr"),
        ("pts/ptmx", "dev/ptmx"),
    ] {
        calls.push(Call::Symlink {
            target: p(target),
            link: p(&under(link)),
        });
    }
    calls.extend([
        Call::Mkdir(p(&under("dev/shm")), 0o1777),
        mount(
            Some("shm"),
            &under("dev/shm"),
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some("mode=1777,size=65536k"),
        ),
        Call::Mkdir(p(&under("dev/pts")), 0o755),
        mount(
            Some("devpts"),
            &under("dev/pts"),
            Some("devpts"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ),
        mount(
            Some("/host/data"),
            &under("data"),
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        ),
        mount(
            Some("/host/app.conf"),
            &under("etc/app.conf"),
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        ),
        // Read-only: a bind mount is made writable, then remounted read-only.
        mount(
            None,
            &under("etc/app.conf"),
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC,
            None,
        ),
        Call::Chdir(p(root)),
        Call::PivotRoot(p("."), p(".")),
        Call::Umount2(p("."), libc::MNT_DETACH),
        Call::Chdir(p("/")),
    ]);
    calls
}

fn web_1_binds(root: &str) -> Vec<(PathBuf, PathBuf, bool)> {
    vec![
        (p("/host/data"), p(&format!("{root}/data")), false),
        (
            p("/host/app.conf"),
            p(&format!("{root}/etc/app.conf")),
            true,
        ),
    ]
}

#[test]
fn the_mount_plan_builds_the_containers_view_then_pivots_into_it() {
    let root = "/c/web-1/rootfs";
    let steps = mount_plan::root_steps(Path::new(root), b"web-1", &web_1_binds(root)).unwrap();
    let sys = RecordingSyscall::new();
    for step in &steps {
        step.run(&sys).unwrap();
    }
    assert_eq!(sys.calls(), web_1_mount_plan(root));
}

#[test]
fn only_an_optional_mount_may_fail_without_failing_the_plan() {
    let sys = RecordingSyscall::new().fail_at("/c/rootfs/dev/pts");
    let devpts = |optional| MountStep::Mount {
        source: Some(CString::from(c"devpts")),
        target: CString::from(c"/c/rootfs/dev/pts"),
        fstype: Some(CString::from(c"devpts")),
        flags: 0,
        data: None,
        optional,
    };
    assert_eq!(devpts(true).run(&sys), Ok(()));
    assert_eq!(devpts(false).run(&sys), Err(Errno::EACCES));
    assert_eq!(sys.calls().len(), 2);
    // In a plan only devpts is optional.
    let steps = mount_plan::root_steps(Path::new("/c/rootfs"), b"h", &[]).unwrap();
    let optional: Vec<&MountStep> = steps
        .iter()
        .filter(|step| matches!(step, MountStep::Mount { optional: true, .. }))
        .collect();
    assert_eq!(optional.len(), 1);
    assert!(matches!(
        optional[0],
        MountStep::Mount { fstype: Some(t), .. } if t.as_c_str() == c"devpts"
    ));
}

/// A scratch directory with a rootfs directory and a containers directory in it.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("garden-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        std::fs::create_dir_all(dir.join("containers")).unwrap();
        Scratch(dir)
    }

    fn path(&self, sub: &str) -> String {
        self.0.join(sub).display().to_string()
    }

    /// Makes a real file (the program lookup and `/etc/passwd` read the host's view of
    /// the container's root).
    fn file(&self, sub: &str, contents: &str) {
        let path = self.0.join(sub);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_container_on_the_hosts_network_from_create_to_destroy() {
    let scratch = Scratch::new("host-net");
    let config = LinuxBackendConfig::new(scratch.path("containers"), scratch.path("rootfs"))
        .with_cgroup_parent("diego-rs-test");
    let sys = Arc::new(
        RecordingSyscall::new()
            .with_dir("/host/data")
            .with_file("/host/app.conf", "x=1\n"),
    );
    let isolation = NamespaceIsolation::new(&config, sys.clone(), hybrid(), None);
    let spec = ContainerSpec {
        bind_mounts: vec![
            BindMount {
                src_path: "/host/data".into(),
                dst_path: "/data".into(),
                read_only: false,
            },
            BindMount {
                src_path: "/host/app.conf".into(),
                dst_path: "/etc/app.conf".into(),
                read_only: true,
            },
        ],
        ..ContainerSpec::new("web-1").limits(limits())
    };
    let dir = scratch.path("containers/web-1");
    let root = format!("{dir}/rootfs");
    let sandbox = isolation.create(&spec, Path::new(&dir)).unwrap();
    let cg = |c: &str| format!("/sys/fs/cgroup/{c}/diego-rs-test/web-1");
    assert_eq!(
        sys.take_calls(),
        vec![
            mkdirs(&dir),
            mkdirs(&root),
            mkdirs(&format!("{dir}/upper")),
            mkdirs(&format!("{dir}/work")),
            mount(
                Some("overlay"),
                &root,
                Some("overlay"),
                0,
                Some(&format!(
                    "lowerdir={},upperdir={dir}/upper,workdir={dir}/work",
                    scratch.path("rootfs")
                )),
            ),
            // The mount points the plan needs, where the rootfs has none.
            // (each resolved inside the root: the recorder's model holds no links).
            mount_point(&root, "/proc", MountPoint::Dir(0o555)),
            mount_point(&root, "/dev", MountPoint::Dir(0o755)),
            mount_point(&root, "/tmp", MountPoint::Dir(0o1777)),
            // A directory is bound onto a directory, a file onto a file.
            mount_point(&root, "/data", MountPoint::Dir(0o755)),
            mount_point(&root, "/etc/app.conf", MountPoint::File),
            mkdirs(&cg("cpu")),
            mkdirs(&cg("cpuacct")),
            mkdirs(&cg("memory")),
            mkdirs(&cg("pids")),
            write(
                &format!("{}/memory.limit_in_bytes", cg("memory")),
                "67108864"
            ),
            write(
                &format!("{}/memory.memsw.limit_in_bytes", cg("memory")),
                "67108864"
            ),
            write(&format!("{}/pids.max", cg("pids")), "100"),
            write(&format!("{}/cpu.shares", cg("cpu")), "1286"),
        ]
    );
    assert_eq!(isolation.container_ip(&sandbox), None);
    assert_eq!(isolation.map_port(&sandbox, 61_001, 8080).unwrap(), 61_001);

    // A process: the shim joins the cgroups and unshares, the init takes the mount
    // plan, the main process sets its limits and user.
    scratch.file("containers/web-1/rootfs/bin/sh", "");
    scratch.file(
        "containers/web-1/rootfs/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nvcap:x:2000:2001:vcap:/home/vcap:/bin/sh\n",
    );
    let process = ProcessSpec {
        user: Some("vcap".into()),
        ..ProcessSpec::shell("exit 0")
    };
    let container_limits = ResourceLimits {
        nofile: Some(1024),
        ..ResourceLimits::default()
    };
    let (program, plan) = isolation
        .sandbox_plan(&sandbox, &process, &[], "/home/vcap", &container_limits)
        .unwrap();
    assert_eq!(program, p("/bin/sh"));
    assert_eq!(plan.netns, None);
    plan.join(&*sys).unwrap();
    assert_eq!(
        sys.take_calls(),
        vec![
            Call::WriteFile(p(&format!("{}/tasks", cg("cpu"))), "0".into()),
            Call::WriteFile(p(&format!("{}/tasks", cg("cpuacct"))), "0".into()),
            Call::WriteFile(p(&format!("{}/tasks", cg("memory"))), "0".into()),
            Call::WriteFile(p(&format!("{}/tasks", cg("pids"))), "0".into()),
            Call::WriteFile(p("/proc/self/oom_score_adj"), "-1000".into()),
            Call::Unshare(
                libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID
            ),
        ]
    );
    assert_eq!(sandbox.binds, web_1_binds(&root));
    plan.mount_root(&*sys).unwrap();
    assert_eq!(sys.take_calls(), web_1_mount_plan(&root));
    plan.prepare_exec(&*sys).unwrap();
    assert_eq!(
        sys.take_calls(),
        vec![
            Call::WriteFile(p("/proc/self/oom_score_adj"), "0".into()),
            Call::Chdir(p("/home/vcap")),
            Call::SetNofile(1024),
            Call::SetId(2000, 2001),
        ]
    );
    // The process's own nofile wins over the container's; no user, no change of user.
    let process = ProcessSpec {
        limits: crate::spec::ProcessLimits { nofile: Some(64) },
        ..ProcessSpec::new("/bin/sh")
    };
    let (_, plan) = isolation
        .sandbox_plan(&sandbox, &process, &[], "/", &container_limits)
        .unwrap();
    plan.prepare_exec(&*sys).unwrap();
    assert_eq!(
        sys.take_calls(),
        vec![
            Call::WriteFile(p("/proc/self/oom_score_adj"), "0".into()),
            Call::Chdir(p("/")),
            Call::SetNofile(64),
        ]
    );

    // Destroy: the cgroups, the overlay, the directory; then the backend's parent cgroups.
    isolation.destroy(&sandbox).unwrap();
    assert_eq!(
        sys.take_calls(),
        vec![
            Call::RemoveDir(p(&cg("cpu"))),
            Call::RemoveDir(p(&cg("cpuacct"))),
            Call::RemoveDir(p(&cg("memory"))),
            Call::RemoveDir(p(&cg("pids"))),
            Call::Umount2(p(&root), libc::MNT_DETACH),
            Call::RemoveDirAll(p(&dir)),
        ]
    );
    drop(isolation);
    assert_eq!(
        sys.take_calls(),
        ["cpu", "cpuacct", "memory", "pids"]
            .map(|c| Call::RemoveDir(p(&format!("/sys/fs/cgroup/{c}/diego-rs-test"))))
    );
}

#[test]
fn a_failed_create_leaves_nothing_made() {
    let scratch = Scratch::new("failed-create");
    let config = LinuxBackendConfig::new(scratch.path("containers"), scratch.path("rootfs"))
        .with_cgroup_parent("p");
    let dir = scratch.path("containers/web-1");
    let memory_limit = "/sys/fs/cgroup/memory/p/web-1/memory.limit_in_bytes";
    let sys = Arc::new(RecordingSyscall::new().fail_at(memory_limit));
    let isolation = NamespaceIsolation::new(&config, sys.clone(), hybrid(), None);
    let spec = ContainerSpec::new("web-1").limits(limits());
    let err = isolation.create(&spec, Path::new(&dir)).err().unwrap();
    assert!(err.to_string().contains(memory_limit), "{err}");
    let calls = sys.take_calls();
    let failed_at = calls
        .iter()
        .position(|call| *call == write(memory_limit, "67108864"))
        .unwrap();
    assert_eq!(
        calls[failed_at + 1..],
        [
            Call::RemoveDir(p("/sys/fs/cgroup/cpu/p/web-1")),
            Call::RemoveDir(p("/sys/fs/cgroup/cpuacct/p/web-1")),
            Call::RemoveDir(p("/sys/fs/cgroup/memory/p/web-1")),
            Call::RemoveDir(p("/sys/fs/cgroup/pids/p/web-1")),
            Call::Umount2(p(&format!("{dir}/rootfs")), libc::MNT_DETACH),
            Call::RemoveDirAll(p(&dir)),
        ]
    );
}

#[test]
fn a_bridged_container_joins_its_network_namespace_and_maps_ports_by_dnat() {
    let scratch = Scratch::new("bridged");
    let network = BridgeNetwork::new("dg0", "10.254.0.0/22").enforce_net_out(true);
    let config = LinuxBackendConfig::new(scratch.path("containers"), scratch.path("rootfs"))
        .network(NetworkMode::Bridged(network.clone()));
    let sys = Arc::new(RecordingSyscall::new());
    let netfilter = Arc::new(RecordingNetfilter::new());
    let bridge = Bridge::unstarted(network, sys.clone(), netfilter.clone()).unwrap();
    let netns: std::os::fd::OwnedFd = File::open("/dev/null").unwrap().into();
    let netns_fd = std::os::fd::AsRawFd::as_raw_fd(&netns);
    let net = Attachment::unlinked(&bridge, netns, 2);
    let isolation = NamespaceIsolation::new(&config, sys.clone(), CgroupLayout::None, Some(bridge));
    assert!(isolation.capabilities().net_out);

    let dir = scratch.path("containers/web-1");
    let shared: Arc<dyn Syscall> = sys.clone();
    let sandbox = LinuxSandbox {
        dir: p(&dir),
        overlay: Overlay::mount(&shared, Path::new(&dir), Path::new(&scratch.path("rootfs")))
            .unwrap(),
        cgroup: Cgroup::create(&shared, &CgroupLayout::None, "p", "web-1", &limits()).unwrap(),
        hostname: b"web-1".to_vec(),
        binds: Vec::new(),
        net: Some(net),
    };
    assert_eq!(
        isolation.container_ip(&sandbox).as_deref(),
        Some("10.254.0.2")
    );

    // The process listens on the host port's number when no container port is asked.
    assert_eq!(isolation.map_port(&sandbox, 61_001, 0).unwrap(), 61_001);
    assert_eq!(isolation.map_port(&sandbox, 61_002, 8080).unwrap(), 8080);
    let dnat = |host_port: u16, container_port: u16| {
        NfCall::ApplyEchoed(json!({ "nftables": [{ "add": { "rule": {
            "family": "ip", "table": "diego_dg0", "chain": "ports", "comment": "c2",
            "expr": [
                { "match": {
                    "left": { "payload": { "protocol": "tcp", "field": "dport" } },
                    "right": host_port, "op": "==" } },
                { "dnat": { "addr": "10.254.0.2", "family": "ip", "port": container_port } },
            ],
        } } }] }))
    };
    assert_eq!(
        netfilter.take_calls(),
        vec![dnat(61_001, 61_001), dnat(61_002, 8080)]
    );

    // Its processes join the namespace before making their own.
    scratch.file("containers/web-1/rootfs/bin/sh", "");
    sys.take_calls();
    let (_, plan) = isolation
        .sandbox_plan(
            &sandbox,
            &ProcessSpec::new("/bin/sh"),
            &[],
            "/",
            &ResourceLimits::default(),
        )
        .unwrap();
    assert_eq!(plan.netns, Some(netns_fd));
    plan.join(&*sys).unwrap();
    assert_eq!(
        sys.take_calls(),
        vec![
            Call::SetNs(netns_fd, libc::CLONE_NEWNET),
            Call::WriteFile(p("/proc/self/oom_score_adj"), "-1000".into()),
            Call::Unshare(
                libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID
            ),
        ]
    );
}

#[test]
fn a_backend_without_a_cgroup_parent_gets_one_named_after_its_directory() {
    let a = default_cgroup_parent(Path::new("/var/lib/a"));
    let digits = a.strip_prefix("diego-rs-").unwrap();
    assert_eq!(digits.len(), 16);
    assert!(digits.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
    assert_eq!(a, default_cgroup_parent(Path::new("/var/lib/a")));
    assert_ne!(a, default_cgroup_parent(Path::new("/var/lib/b")));

    let sys = Arc::new(RecordingSyscall::new());
    let config = LinuxBackendConfig::new("/var/lib/a", "/rootfs");
    drop(NamespaceIsolation::new(
        &config,
        sys.clone(),
        v1(&[("memory", "/m")]),
        None,
    ));
    assert_eq!(
        sys.take_calls(),
        vec![Call::RemoveDir(p(&format!("/m/{a}")))]
    );
    let config = config.with_cgroup_parent("mine");
    drop(NamespaceIsolation::new(
        &config,
        sys.clone(),
        v1(&[("memory", "/m")]),
        None,
    ));
    assert_eq!(sys.take_calls(), vec![Call::RemoveDir(p("/m/mine"))]);
}

#[test]
fn the_settings_setters_set_their_fields() {
    let config = LinuxBackendConfig::new("/c", "/r")
        .with_rootfs_cache_dir("/cache")
        .with_default_rootfs("/r2")
        .with_preloaded("cflinuxfs4", "/fs4.tar")
        .with_cgroup_parent("parent")
        .with_memory_bytes(1 << 30)
        .with_disk_bytes(2 << 30)
        .with_max_containers(7)
        .with_port_range(1000..=2000)
        .with_stop_grace(Duration::from_secs(3))
        .with_host_ip("10.0.0.1")
        .network(NetworkMode::Bridged(
            BridgeNetwork::default().with_nft("/sbin/nft"),
        ));
    assert_eq!(config.containers_dir, p("/c"));
    assert_eq!(config.rootfs_cache_dir, p("/cache"));
    assert_eq!(config.default_rootfs, "/r2");
    assert_eq!(config.preloaded.get("cflinuxfs4"), Some(&p("/fs4.tar")));
    assert_eq!(config.cgroup_parent.as_deref(), Some("parent"));
    assert_eq!(config.memory_bytes, Some(1 << 30));
    assert_eq!(config.disk_bytes, Some(2 << 30));
    assert_eq!(config.max_containers, 7);
    assert_eq!(config.port_range, 1000..=2000);
    assert_eq!(config.stop_grace, Duration::from_secs(3));
    assert_eq!(config.host_ip, "10.0.0.1");
    let NetworkMode::Bridged(network) = &config.network else {
        panic!("{:?}", config.network);
    };
    assert_eq!(network.nft, "/sbin/nft");
    // The defaults.
    let config = LinuxBackendConfig::new("/c", "/r");
    assert_eq!(config.rootfs_cache_dir, p("/c/.rootfs-cache"));
    assert_eq!(config.max_containers, 256);
    assert_eq!(config.port_range, 61_000..=65_000);
    assert_eq!(config.stop_grace, Duration::from_secs(10));
    assert_eq!(config.network, NetworkMode::Host);
}
