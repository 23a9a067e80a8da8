//! The wall around a sandbox worker: what the worker process may still do once it has started.
//!
//! Raised by the worker itself ([`raise`]) before it reads its first frame, in this order:
//! 1. rlimits: address space (`limits.memory_mib` + [`RUNTIME_HEADROOM_MIB`]), no core
//!    dumps, a handful of file descriptors; the CPU-time limit is re-armed before each job
//!    ([`arm_cpu_backstop`]) because it counts over the worker's whole life;
//! 2. landlock (when the kernel has it): no file access of any kind, no TCP bind or connect,
//!    no signals to processes outside the worker, no abstract unix sockets;
//! 3. seccomp: an allow-list of the system calls a worker needs after start-up (read on stdin,
//!    write on stdout/stderr, memory, threads, futexes, clocks, signals to itself, exit).
//!    Everything else — `open`, `socket`, `connect`, `execve`, process-creating `clone` —
//!    fails with `EPERM`; `clone3` fails with `ENOSYS` so that glibc falls back to `clone`,
//!    whose flags a filter can read (threads are allowed, new processes are not). Denied
//!    calls fail rather than kill, so that a denial shows up as an ordinary error.
//!
//! Before any of that, the worker closes every descriptor it inherited above stderr
//! ([`close_inherited`]): whatever the parent had open without `O_CLOEXEC` (a database file,
//! a socket) is out of a script's reach even if the wall had a hole.
//!
//! The parent sets `PR_SET_PDEATHSIG` and `MALLOC_ARENA_MAX` before exec (see
//! [`crate::spawner`]); a layer the kernel refuses is reported in [`WallReport`]. The pool
//! refuses such a worker ([`missing_layers`]) unless `runner.require_wall` is off, when
//! Thwonk runs scripts behind what is left, with a logged warning.
//! [`probe`] tries what the wall forbids: the tests use it to pin what is enforced.

use std::collections::BTreeMap;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use serde::{Deserialize, Serialize};

/// Address space a warm worker needs besides the script's heap: the executable's mappings,
/// the 256 MiB reservation of the engine thread's stack (only touched pages cost memory, but
/// all of it counts against `RLIMIT_AS`), glibc's second malloc arena (a 64 MiB reservation)
/// and the main thread. Measured (debug build, after 20 runs of twitter-list.js): peak
/// address space 401 MiB for `thwonk-sandbox-worker`, 416 MiB for `thwonk __sandbox-worker`;
/// idle 81–96 MiB; resident 15–18 MiB. 512 leaves ≈ 100 MiB of slack over that peak.
pub const RUNTIME_HEADROOM_MIB: u64 = 512;

/// Open file descriptors a worker may hold: stdin, stdout, stderr and a few spares.
const MAX_OPEN_FILES: u64 = 8;

/// CPU seconds a job may use beyond its wall-clock budget before the kernel stops the
/// worker with `SIGXCPU`. Only a backstop: the parent kills at the wall-clock deadline.
const CPU_SLACK_SECS: u64 = 2;

/// Which layers of the wall are up, as the worker found them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WallReport {
    /// `RLIMIT_AS` in MiB.
    pub address_space_mib: u64,
    pub landlock: Layer,
    pub seccomp: Layer,
}

/// One layer of the wall.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Layer {
    Enforced,
    /// Up, but some of what was asked for is missing from this kernel.
    Partial(String),
    /// Not up: why.
    Missing(String),
}

/// What the worker could still do behind its wall (see [`probe`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProbeReport {
    pub open_file: Result<(), String>,
    pub connect: Result<(), String>,
    pub spawn_process: Result<(), String>,
    /// Must stay `Ok`: every run starts an engine thread.
    pub spawn_thread: Result<(), String>,
}

/// Raises the wall around this process. Call once, while the process has a single thread.
pub fn raise(memory_mib: u64) -> WallReport {
    let address_space_mib = memory_mib.saturating_add(RUNTIME_HEADROOM_MIB);
    let bytes = address_space_mib.saturating_mul(1024 * 1024);
    // A failing setrlimit lowers nothing: there is nothing better to do than carry on with
    // the other layers (the parent still kills at the deadline).
    let _ = limit(Resource::As, bytes);
    let _ = limit(Resource::Core, 0);
    let _ = limit(Resource::Nofile, MAX_OPEN_FILES);
    let landlock = landlock();
    let seccomp = seccomp();
    WallReport {
        address_space_mib,
        landlock,
        seccomp,
    }
}

/// Closes every descriptor above stderr: the worker protocol needs only stdin, stdout and
/// stderr, and anything else was inherited by accident. Call first, single-threaded.
pub fn close_inherited() {
    // SAFETY: close_range(2) closes descriptors 3 and up; nothing in this process uses them
    // yet (the worker has not opened anything, std's stdin/stdout are 0 and 1).
    let closed = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if closed != 0 {
        // Kernels before 5.9: one by one, up to the descriptor limit.
        let max = getrlimit(Resource::Nofile)
            .current
            .unwrap_or(1024)
            .min(65536);
        for fd in 3..max as i32 {
            // SAFETY: closing a descriptor number this process does not use is harmless.
            unsafe {
                libc::close(fd);
            }
        }
    }
}

/// What is missing from `wall` for scripts to run when `runner.require_wall` is on: the
/// layers the kernel refused, with its reasons; `None` when both are up (a landlock ruleset
/// the kernel enforces in part is up: what it lacks, it lacks for every process).
pub fn missing_layers(wall: &WallReport) -> Option<String> {
    let missing: Vec<String> = [("seccomp", &wall.seccomp), ("landlock", &wall.landlock)]
        .into_iter()
        .filter_map(|(name, layer)| match layer {
            Layer::Missing(why) => Some(format!("{name} ({why})")),
            Layer::Enforced | Layer::Partial(_) => None,
        })
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// Lowers both the soft and the hard limit of `resource` to `value` (never raises them).
fn limit(resource: Resource, value: u64) -> rustix::io::Result<()> {
    let current = getrlimit(resource);
    let lower = |old: Option<u64>| Some(old.map_or(value, |old| old.min(value)));
    setrlimit(
        resource,
        Rlimit {
            current: lower(current.current),
            maximum: lower(current.maximum),
        },
    )
}

/// Re-arms `RLIMIT_CPU` for the next job: the CPU time used so far plus the job's wall-clock
/// budget and some slack. The soft limit moves, the hard limit stays as it was.
pub fn arm_cpu_backstop(wall_clock_ms: u64) {
    let used = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let used_secs = u64::try_from(used.tv_sec).unwrap_or(0);
    let allowed = used_secs + wall_clock_ms.div_ceil(1000) + CPU_SLACK_SECS;
    let current = getrlimit(Resource::Cpu);
    let soft = current.maximum.map_or(allowed, |hard| hard.min(allowed));
    let _ = setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(soft),
            maximum: current.maximum,
        },
    );
}

fn landlock() -> Layer {
    use landlock::{ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetStatus, Scope};
    // The newest ABI this crate knows; best-effort mode keeps what the kernel supports.
    let abi = ABI::V6;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create())
        // No rules: every handled access is denied, everywhere.
        .and_then(|r| r.restrict_self());
    match status {
        Ok(s) => match s.ruleset {
            RulesetStatus::FullyEnforced => Layer::Enforced,
            RulesetStatus::PartiallyEnforced => {
                Layer::Partial(format!("kernel landlock {:?}", s.landlock))
            }
            RulesetStatus::NotEnforced => {
                Layer::Missing(format!("kernel landlock {:?}", s.landlock))
            }
        },
        Err(e) => Layer::Missing(e.to_string()),
    }
}

fn seccomp() -> Layer {
    match install_filters() {
        Ok(()) => Layer::Enforced,
        Err(e) => Layer::Missing(e),
    }
}

fn install_filters() -> Result<(), String> {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let fail = |e: seccompiler::BackendError| e.to_string();
    let arg = |index: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
            .and_then(|c| SeccompRule::new(vec![c]))
            .map_err(fail)
    };
    let eq = |index: u8, value: u64| arg(index, SeccompCmpOp::Eq, value);

    let mut allowed: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for call in [
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_mprotect,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_futex,
        libc::SYS_set_robust_list,
        libc::SYS_rseq,
        libc::SYS_sigaltstack,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_restart_syscall,
        libc::SYS_sched_yield,
        libc::SYS_sched_getaffinity,
        libc::SYS_getrandom,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_gettimeofday,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_close,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ] {
        allowed.insert(call, Vec::new());
    }
    // Frames come in on stdin and go out on stdout; panics and aborts print to stderr.
    allowed.insert(libc::SYS_read, vec![eq(0, 0)?]);
    allowed.insert(libc::SYS_write, vec![eq(0, 1)?, eq(0, 2)?]);
    allowed.insert(libc::SYS_writev, vec![eq(0, 1)?, eq(0, 2)?]);
    // Threads (the engine runs on one per job), never processes.
    let thread = libc::CLONE_THREAD as u64;
    allowed.insert(
        libc::SYS_clone,
        vec![arg(0, SeccompCmpOp::MaskedEq(thread), thread)?],
    );
    // Naming a thread; the re-armed CPU limit (pid 0 is this process); `abort()` raising
    // SIGABRT on itself.
    allowed.insert(libc::SYS_prctl, vec![eq(0, libc::PR_SET_NAME as u64)?]);
    allowed.insert(libc::SYS_prlimit64, vec![eq(0, 0)?]);
    let me = std::process::id() as u64;
    allowed.insert(libc::SYS_tgkill, vec![eq(0, me)?]);

    // `clone3` passes its flags in memory, where a filter cannot read them: it must fail with
    // ENOSYS (glibc then retries `pthread_create` with `clone`). The allow-list lets it
    // through so that this older filter decides; the kernel applies the most severe verdict
    // of all installed filters, and ERRNO is more severe than ALLOW.
    allowed.insert(libc::SYS_clone3, Vec::new());
    let no_clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(fail)?;
    let allow_list = SeccompFilter::new(
        allowed,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(fail)?;
    // The allow-list goes last: once it is up, not even `seccomp` itself is allowed.
    for filter in [no_clone3, allow_list] {
        let program = BpfProgram::try_from(filter).map_err(fail)?;
        seccompiler::apply_filter_all_threads(&program).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Tries what the wall should forbid, from inside the worker.
pub fn probe() -> ProbeReport {
    let failed = |e: std::io::Error| e.to_string();
    ProbeReport {
        open_file: std::fs::File::open("/etc/passwd").map(drop).map_err(failed),
        connect: std::net::TcpStream::connect(("127.0.0.1", 9))
            .map(drop)
            .map_err(failed),
        spawn_process: std::process::Command::new("/bin/true")
            .status()
            .map(drop)
            .map_err(failed),
        spawn_thread: std::thread::Builder::new()
            .spawn(|| ())
            .map_err(failed)
            .and_then(|t| t.join().map_err(|_| "the thread panicked".to_string())),
    }
}
