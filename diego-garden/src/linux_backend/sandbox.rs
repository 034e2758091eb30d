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
//! system calls on data prepared beforehand: no allocation, no locks. What the shim, the
//! init and the main process set up (cgroups and namespaces joined, the mount plan,
//! credentials and limits) goes through the [`Syscall`] seam ([`LinuxSyscall`] here), so
//! tests replay those stages against a recorder; process creation, signals and `execve`
//! are made directly.

use std::ffi::CString;
use std::io;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicI32, Ordering};

use super::mount_plan::MountStep;
use super::syscall::{LinuxSyscall, Syscall};

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

/// Everything the child needs, prepared in the parent.
#[derive(Debug)]
pub(crate) struct SandboxPlan {
    /// Files to write `0` (the calling process) to, to join the container's cgroups.
    pub(crate) cgroup_join: Vec<CString>,
    /// The container's network namespace (a descriptor open in the parent, inherited by
    /// the forked child), joined before the other namespaces are made; `None`: the host's.
    pub(crate) netns: Option<c_int>,
    /// What the init mounts, then its pivot into the container's root (see the
    /// `mount_plan` module).
    pub(crate) root_steps: Vec<MountStep>,
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
    /// The shim's setup: joins the container's cgroups (as the calling thread: the child
    /// is single-threaded after fork, so the process moves) and network namespace, leaves
    /// the OOM killer the program to pick, unshares mount, uts, ipc and pid namespaces.
    pub(crate) fn join<S: Syscall + ?Sized>(&self, sys: &S) -> io::Result<()> {
        for join in &self.cgroup_join {
            sys.write_file(join, b"0")?;
        }
        if let Some(netns) = self.netns {
            sys.setns(netns, libc::CLONE_NEWNET)?;
        }
        // The shim and the init are tiny; the OOM killer should pick the program.
        let _ = sys.write_file(c"/proc/self/oom_score_adj", b"-1000");
        sys.unshare(
            libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID,
        )?;
        Ok(())
    }

    /// The init's setup: takes the mount plan, ending in the container's root.
    pub(crate) fn mount_root<S: Syscall + ?Sized>(&self, sys: &S) -> io::Result<()> {
        for step in &self.root_steps {
            step.run(sys)?;
        }
        Ok(())
    }

    /// The main process's setup before `execve`: its OOM score back to normal, the
    /// working directory, `RLIMIT_NOFILE`, the user.
    pub(crate) fn prepare_exec<S: Syscall + ?Sized>(&self, sys: &S) -> io::Result<()> {
        let _ = sys.write_file(c"/proc/self/oom_score_adj", b"0");
        sys.chdir(&self.cwd)?;
        if let Some(nofile) = self.nofile {
            sys.set_nofile(nofile)?;
        }
        if let Some((uid, gid)) = self.user {
            sys.set_id(uid, gid)?;
        }
        Ok(())
    }

    /// Runs in the forked child: the shim, the init and the main process, which execs the
    /// program itself. Returns only on failure, in the shim or in the init before it starts
    /// the main process.
    ///
    /// # Safety
    /// Call only between `fork` and `exec` (as a `pre_exec` hook).
    pub(crate) unsafe fn enter(&self) -> io::Result<()> {
        // SAFETY (whole function): raw system calls on data prepared by the parent.
        unsafe {
            self.join(&LinuxSyscall)?;
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
            self.mount_root(&LinuxSyscall)?;
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
            self.prepare_exec(&LinuxSyscall)?;
            libc::execve(
                self.exec.program.as_ptr(),
                self.exec.argv.as_ptr(),
                self.exec.envp.as_ptr(),
            );
            Err(io::Error::last_os_error())
        }
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
