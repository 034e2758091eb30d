//! What runs between `fork` and `exec` for a process of a Linux container.
//!
//! The forked child (the *shim*) joins the container's cgroups (and, in bridged mode, its
//! network namespace), unshares mount, uts, ipc and pid namespaces and clones the container's *init* (pid 1 of the new pid namespace)
//! with `CLONE_VM`: the init runs on its own stack in the shim's memory, and tells the
//! shim through a pipe when the main process has exec'd (or why it could not start it).
//! The init mounts `/proc`, a minimal `/dev` and the bind mounts, pivots into the
//! container's root and starts the *main* process with `clone(CLONE_VM | CLONE_VFORK)`:
//! it shares the init's memory (no page tables copied from the large process that forked
//! the shim) until it execs the program, prepared as `execve` arguments beforehand; a
//! failed exec exits 127 with the reason on stderr. The shim and the init forward SIGTERM
//! (and other catchable signals) down the chain and exit with
//! the main process's status (`128 + n` after signal `n`). Killing the shim kills the
//! init (parent-death signal), and with it the whole pid namespace.
//!
//! Everything here runs in a child of a multi-threaded process, so it only makes raw
//! system calls on data prepared beforehand: no allocation, no locks.

use std::ffi::{CStr, CString};
use std::io;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicI32, Ordering};

/// The pid the shim forwards signals to (the init's). The shim and the init share their
/// memory, so each has its own variable; the handler tells them apart by pid (the init
/// is pid 1 of its namespace, the shim never is).
static SHIM_FORWARD_TO: AtomicI32 = AtomicI32::new(0);
/// The pid the init forwards signals to (the main process's).
static INIT_FORWARD_TO: AtomicI32 = AtomicI32::new(0);

/// Signals passed down the chain.
const FORWARDED: [c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

extern "C" fn forward(signal: c_int) {
    // SAFETY: getpid(2) is async-signal-safe.
    let in_init = unsafe { libc::getpid() } == 1;
    let pid = if in_init {
        INIT_FORWARD_TO.load(Ordering::SeqCst)
    } else {
        SHIM_FORWARD_TO.load(Ordering::SeqCst)
    };
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// A bind mount, as host source and target under the container's root (on the host).
#[derive(Debug)]
pub(crate) struct PlannedBind {
    pub(crate) source: CString,
    pub(crate) target: CString,
    pub(crate) read_only: bool,
}

/// Everything the child needs, prepared in the parent.
#[derive(Debug)]
pub(crate) struct SandboxPlan {
    /// Files to write `0` (the calling process) to, to join the container's cgroups.
    pub(crate) cgroup_join: Vec<CString>,
    /// The container's network namespace (a descriptor open in the parent, inherited by
    /// the forked child), joined before the other namespaces are made; `None`: the host's.
    pub(crate) netns: Option<c_int>,
    /// The container's root (the overlay mount) on the host.
    pub(crate) root: CString,
    /// The hostname.
    pub(crate) hostname: Vec<u8>,
    /// `<root>/proc`, `<root>/dev`, `<root>/dev/shm`, `<root>/dev/pts`.
    pub(crate) proc_dir: CString,
    pub(crate) dev_dir: CString,
    pub(crate) shm_dir: CString,
    pub(crate) pts_dir: CString,
    /// (host device, target file) pairs bound into `/dev`.
    pub(crate) devices: Vec<(CString, CString)>,
    /// (link target, link path) pairs made in `/dev`.
    pub(crate) links: Vec<(CString, CString)>,
    /// Bind mounts.
    pub(crate) binds: Vec<PlannedBind>,
    /// The working directory, a container path.
    pub(crate) cwd: CString,
    /// `RLIMIT_NOFILE` for the process.
    pub(crate) nofile: Option<u64>,
    /// (uid, gid) to run as.
    pub(crate) user: Option<(u32, u32)>,
    /// What the main process execs.
    pub(crate) exec: ExecPlan,
    /// The stack the main process runs on between `clone` and `execve`.
    pub(crate) stack: Vec<u8>,
    /// The stack the init runs on.
    pub(crate) init_stack: Vec<u8>,
    /// Why the init could not start the main process (an errno), or 0; the init writes it
    /// for the shim, whose memory it shares.
    pub(crate) init_error: AtomicI32,
}

/// Bytes of each stack the init and the main process use.
pub(crate) const STACK_BYTES: usize = 64 * 1024;

/// The program, arguments and environment of the main process, as `execve` takes them.
#[derive(Debug)]
pub(crate) struct ExecPlan {
    program: CString,
    /// Owns the strings `argv` points to.
    _args: Vec<CString>,
    /// Owns the strings `envp` points to.
    _env: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into the `CString`s the plan owns (heap memory that moves
// with it) and are only read.
unsafe impl Send for ExecPlan {}
// SAFETY: as above; nothing mutates through them.
unsafe impl Sync for ExecPlan {}

impl ExecPlan {
    /// `program` with `args` (the first, `argv[0]`, included) and `env`.
    pub(crate) fn new(program: CString, args: Vec<CString>, env: Vec<CString>) -> ExecPlan {
        let pointers = |strings: &[CString]| -> Vec<*const libc::c_char> {
            strings
                .iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        ExecPlan {
            argv: pointers(&args),
            envp: pointers(&env),
            program,
            _args: args,
            _env: env,
        }
    }
}

fn check(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Writes `data` to the file at `path` (no allocation).
unsafe fn write_file(path: &CStr, data: &[u8]) -> io::Result<()> {
    // SAFETY (whole function): plain system calls on valid pointers.
    unsafe {
        let fd = check(libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC))?;
        let written = libc::write(fd, data.as_ptr().cast(), data.len());
        let error = io::Error::last_os_error();
        libc::close(fd);
        if written < 0 {
            return Err(error);
        }
    }
    Ok(())
}

/// `128 + n` after signal `n`, else the exit code.
fn code_of(status: c_int) -> c_int {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

unsafe fn install_forwarding(target: c_int, in_init: bool) {
    if in_init {
        INIT_FORWARD_TO.store(target, Ordering::SeqCst);
    } else {
        SHIM_FORWARD_TO.store(target, Ordering::SeqCst);
    }
    // SAFETY (whole function): sigaction(2) with a zeroed, then filled, struct.
    unsafe {
        for signal in FORWARDED {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

unsafe fn set_signal_mask(how: c_int, all: bool) {
    // SAFETY (whole function): sigprocmask(2) on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if all {
            libc::sigfillset(&mut set);
        } else {
            libc::sigemptyset(&mut set);
        }
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

/// Closes every file descriptor (the shim and the init need none, and must not keep the
/// pipe the parent watches for a failed exec).
unsafe fn close_all() {
    // SAFETY: close_range(2) takes plain integers.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
            for fd in 0..1024 {
                libc::close(fd);
            }
        }
    }
}

/// The entry point of the main process (see [`SandboxPlan::exec_main`]): execs, or
/// reports why not on stderr and exits 127.
extern "C" fn main_process(plan: *mut libc::c_void) -> c_int {
    // SAFETY: `plan` is the init's `SandboxPlan`, alive while the init waits for the exec.
    unsafe {
        let plan = &*(plan as *const SandboxPlan);
        let error = plan.exec_main().err();
        let code = error.and_then(|e| e.raw_os_error()).unwrap_or(0);
        let mut message = *b"diego-garden: cannot exec the program: errno    \n";
        let mut n = code.clamp(0, 9999);
        for i in (45..49).rev() {
            message[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::_exit(127);
    }
}

/// What the init gets from the shim (on the shim's stack, which it shares).
struct InitStart<'a> {
    plan: &'a SandboxPlan,
    ready_read: c_int,
    ready_write: c_int,
}

/// The entry point of the init (pid 1 of the container's pid namespace).
extern "C" fn init_process(start: *mut libc::c_void) -> c_int {
    // SAFETY: `start` points to the shim's `InitStart`, alive while the shim waits on the
    // ready pipe; after that the init uses only its own copy of the descriptors and the
    // plan, which the shim never frees (it exits instead of returning).
    unsafe {
        let start = &*(start as *const InitStart<'_>);
        let (plan, ready_write) = (start.plan, start.ready_write);
        libc::close(start.ready_read);
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        match plan.start_main() {
            Ok(main) => {
                install_forwarding(main, true);
                libc::close(ready_write);
                close_all();
                set_signal_mask(libc::SIG_SETMASK, false);
                wait_and_exit(main, true);
            }
            Err(err) => {
                let code = err.raw_os_error().filter(|c| *c != 0).unwrap_or(libc::EIO);
                plan.init_error.store(code, Ordering::SeqCst);
                libc::_exit(255);
            }
        }
    }
}

/// Waits for `child` (or, for the init, reaps any orphan until `child` ends) and exits
/// with its status.
unsafe fn wait_and_exit(child: c_int, reap_all: bool) -> ! {
    // SAFETY (whole function): waitpid(2) and _exit(2).
    unsafe {
        loop {
            let mut status: c_int = 0;
            let target = if reap_all { -1 } else { child };
            let pid = libc::waitpid(target, &mut status, 0);
            if pid == -1 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                libc::_exit(255);
            }
            if pid == child {
                libc::_exit(code_of(status));
            }
        }
    }
}

impl SandboxPlan {
    /// Runs in the forked child: the shim, the init and the main process, which execs the
    /// program itself. Returns only on failure, in the shim or in the init before it starts
    /// the main process.
    ///
    /// # Safety
    /// Call only between `fork` and `exec` (as a `pre_exec` hook).
    pub(crate) unsafe fn enter(&self) -> io::Result<()> {
        // SAFETY (whole function): raw system calls on data prepared by the parent.
        unsafe {
            // Single-threaded after fork: joining as the current thread moves the process.
            for join in &self.cgroup_join {
                write_file(join, b"0")?;
            }
            if let Some(netns) = self.netns {
                check(libc::setns(netns, libc::CLONE_NEWNET))?;
            }
            // The shim and the init are tiny; the OOM killer should pick the program.
            let _ = write_file(c"/proc/self/oom_score_adj", b"-1000");
            check(libc::unshare(
                libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID,
            ))?;
            set_signal_mask(libc::SIG_BLOCK, true);
            // The init shares the shim's memory (no copy of the page tables of the process
            // that forked the shim): it runs on its own stack and says through `ready`
            // when the main process has exec'd, or through `init_error` why it failed.
            let mut ready = [0 as c_int; 2];
            check(libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC))?;
            let start = InitStart {
                plan: self,
                ready_read: ready[0],
                ready_write: ready[1],
            };
            let stack_top = self.init_stack.as_ptr().add(self.init_stack.len()) as usize & !0xf;
            let init = libc::clone(
                init_process,
                stack_top as *mut libc::c_void,
                libc::CLONE_VM | libc::SIGCHLD,
                &start as *const InitStart<'_> as *mut libc::c_void,
            );
            let clone_error = io::Error::last_os_error();
            libc::close(ready[1]);
            if init == -1 {
                libc::close(ready[0]);
                return Err(clone_error);
            }
            // Signals are blocked: the read ends at EOF, when the init has closed its end.
            let mut byte = 0u8;
            while libc::read(ready[0], (&mut byte as *mut u8).cast(), 1) > 0 {}
            libc::close(ready[0]);
            let failed = self.init_error.load(Ordering::SeqCst);
            if failed != 0 {
                let mut status = 0;
                libc::waitpid(init, &mut status, 0);
                return Err(io::Error::from_raw_os_error(failed));
            }
            install_forwarding(init, false);
            close_all();
            set_signal_mask(libc::SIG_SETMASK, false);
            wait_and_exit(init, false);
        }
    }

    /// The init, after `clone`: mounts, pivots and starts the main process, whose pid it
    /// returns once the main process has exec'd (or failed to, and exited 127).
    unsafe fn start_main(&self) -> io::Result<c_int> {
        // SAFETY (whole function): raw system calls on data prepared by the parent.
        unsafe {
            self.mount_root()?;
            // The main process shares the init's memory until it execs (the init waits
            // meanwhile): no page tables copied, none to tear down at exec.
            let stack_top = self.stack.as_ptr().add(self.stack.len()) as usize & !0xf;
            check(libc::clone(
                main_process,
                stack_top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                self as *const SandboxPlan as *mut libc::c_void,
            ))
        }
    }

    /// The main process, from `clone` to `execve`: only system calls on the plan, which it
    /// shares with the (suspended) init.
    unsafe fn exec_main(&self) -> io::Result<()> {
        // SAFETY (whole function): raw system calls on data prepared by the parent.
        unsafe {
            set_signal_mask(libc::SIG_SETMASK, false);
            let _ = write_file(c"/proc/self/oom_score_adj", b"0");
            check(libc::chdir(self.cwd.as_ptr()))?;
            if let Some(nofile) = self.nofile {
                let limit = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                check(libc::setrlimit(libc::RLIMIT_NOFILE, &limit))?;
            }
            if let Some((uid, gid)) = self.user {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
            libc::execve(
                self.exec.program.as_ptr(),
                self.exec.argv.as_ptr(),
                self.exec.envp.as_ptr(),
            );
            Err(io::Error::last_os_error())
        }
    }

    unsafe fn mount_root(&self) -> io::Result<()> {
        let none = std::ptr::null::<libc::c_char>();
        // SAFETY (whole function): mount(2) and friends on C strings made by the parent.
        unsafe {
            check(libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::sethostname(
                self.hostname.as_ptr().cast(),
                self.hostname.len(),
            ))?;
            check(libc::mount(
                c"proc".as_ptr(),
                self.proc_dir.as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                c"tmpfs".as_ptr(),
                self.dev_dir.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_STRICTATIME,
                c"mode=755,size=65536k".as_ptr().cast(),
            ))?;
            for (device, target) in &self.devices {
                let fd = check(libc::open(
                    target.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o666,
                ))?;
                libc::close(fd);
                check(libc::mount(
                    device.as_ptr(),
                    target.as_ptr(),
                    none,
                    libc::MS_BIND,
                    std::ptr::null(),
                ))?;
            }
            for (target, link) in &self.links {
                check(libc::symlink(target.as_ptr(), link.as_ptr()))?;
            }
            check(libc::mkdir(self.shm_dir.as_ptr(), 0o1777))?;
            check(libc::mount(
                c"shm".as_ptr(),
                self.shm_dir.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"mode=1777,size=65536k".as_ptr().cast(),
            ))?;
            check(libc::mkdir(self.pts_dir.as_ptr(), 0o755))?;
            // A private devpts is nice to have; hosts that refuse it still run processes.
            let _ = libc::mount(
                c"devpts".as_ptr(),
                self.pts_dir.as_ptr(),
                c"devpts".as_ptr(),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                c"newinstance,ptmxmode=0666,mode=0620".as_ptr().cast(),
            );
            for bind in &self.binds {
                check(libc::mount(
                    bind.source.as_ptr(),
                    bind.target.as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?;
                if bind.read_only {
                    check(libc::mount(
                        none,
                        bind.target.as_ptr(),
                        none,
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC,
                        std::ptr::null(),
                    ))?;
                }
            }
            check(libc::chdir(self.root.as_ptr()))?;
            check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as c_int)?;
            check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
            check(libc::chdir(c"/".as_ptr()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_codes() {
        assert_eq!(code_of(3 << 8), 3);
        assert_eq!(code_of(libc::SIGKILL), 137);
    }
}
