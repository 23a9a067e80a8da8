//! The parent side: a warm pool of sandbox worker processes.
//!
//! Each job (a run, a deploy check) takes a worker of its own, so runs never share a worker
//! while they run; the pool starts workers on demand up to its size and keeps them for the
//! next job. The parent enforces the wall-clock deadline (`limits.wall_clock_ms` plus
//! [`DEADLINE_GRACE`]) by SIGKILLing the worker. A worker that dies or is killed fails only
//! the job it had — as `Timeout`, `OutOfMemory` or `WorkerCrashed` — and is replaced by a
//! fresh one on the next job; every other job goes on.
//!
//! The calls are blocking, like the [`VfsReader`] they serve: the runner calls them from
//! `tokio::task::spawn_blocking`. [`WorkerPool`] is cheap to clone.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use thwonk_core::run::{RunOutcome, RunRequest, SandboxLimits, VfsReader};
use tracing::{debug, info, warn};

use crate::check::{CheckError, ScriptInfo};
use crate::deadline::Deadline;
use crate::death::Death;
use crate::frame::{FrameError, FromWorker, ToWorker, VfsReply};
use crate::process::WorkerProcess;
use crate::spawner::Spawner;
use crate::wall::{Layer, ProbeReport, WallReport};

/// Time past `limits.wall_clock_ms` before the worker is killed: the worker's own clock check
/// reports an ordinary `Timeout` first whenever the script still reaches it.
pub const DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// The pool could not provide a worker. Not the script's fault: retry later.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("cannot start a sandbox worker ({program}): {reason}")]
    Start { program: String, reason: String },
    #[error("cannot watch the sandbox worker's deadline: {0}")]
    Watchdog(#[from] std::io::Error),
    #[error(
        "the sandbox wall is incomplete on this system: {missing} missing; scripts do not run \
         without it (set runner.require_wall = false to run them anyway, less safely)"
    )]
    WallMissing { missing: String },
}

/// What a deploy-time check concluded: the script's shape, or why it is refused.
pub type Checked = Result<ScriptInfo, CheckError>;

/// A pool of sandbox worker processes (see the module docs).
#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<Inner>,
}

struct Inner {
    /// The executable to start in worker mode; `None`: this process's own.
    program: Option<PathBuf>,
    size: usize,
    memory_mib: u64,
    spawner: Spawner,
    slots: Mutex<Slots>,
    freed: Condvar,
    warned: AtomicBool,
    /// Refuse workers whose wall misses a layer (`runner.require_wall`).
    require_wall: AtomicBool,
}

struct Slots {
    idle: Vec<WorkerProcess>,
    /// Workers alive or starting, idle or not.
    live: usize,
}

impl WorkerPool {
    /// At most `size` workers of this executable (`thwonk __sandbox-worker`), each with
    /// `memory_mib` of heap. Starts nothing yet: workers start on the first jobs, or in
    /// [`WorkerPool::warm_up`].
    pub fn new(size: usize, memory_mib: u64) -> WorkerPool {
        WorkerPool::build(None, size, memory_mib)
    }

    /// Like [`WorkerPool::new`], with workers started from `program` (tests and benchmarks
    /// point it at the `thwonk-sandbox-worker` binary).
    pub fn with_program(program: impl Into<PathBuf>, size: usize, memory_mib: u64) -> WorkerPool {
        WorkerPool::build(Some(program.into()), size, memory_mib)
    }

    fn build(program: Option<PathBuf>, size: usize, memory_mib: u64) -> WorkerPool {
        WorkerPool {
            inner: Arc::new(Inner {
                program,
                size: size.max(1),
                memory_mib,
                spawner: Spawner::default(),
                slots: Mutex::new(Slots {
                    idle: Vec::new(),
                    live: 0,
                }),
                freed: Condvar::new(),
                warned: AtomicBool::new(false),
                require_wall: AtomicBool::new(true),
            }),
        }
    }

    /// Whether a worker whose wall misses seccomp or landlock is refused (the default) or
    /// used with a warning (`runner.require_wall`).
    pub fn require_wall(self, required: bool) -> WorkerPool {
        self.inner.require_wall.store(required, Ordering::Relaxed);
        self
    }

    /// The process ids of the workers idle now (for operators' tools and tests).
    pub fn idle_worker_pids(&self) -> Vec<u32> {
        self.inner
            .lock()
            .idle
            .iter()
            .map(|w| w.pid().as_raw_nonzero().get() as u32)
            .collect()
    }

    /// Starts every worker now, so that the first runs do not pay for it.
    pub fn warm_up(&self) -> Result<(), PoolError> {
        let mut leases = Vec::with_capacity(self.inner.size);
        for _ in 0..self.inner.size {
            leases.push(self.acquire()?);
        }
        Ok(())
    }

    /// Runs `request` in a worker; file reads are answered from `vfs` on this thread.
    /// A worker that dies or overruns the deadline gives a failed outcome, not an error.
    pub fn run(
        &self,
        request: &RunRequest,
        vfs: &mut dyn VfsReader,
    ) -> Result<RunOutcome, PoolError> {
        let started = Instant::now();
        let limits = &request.limits;
        let job = ToWorker::Run(Cow::Borrowed(request));
        let ended = self.exchange(&job, limits.wall_clock_ms, |reply, worker| match reply {
            FromWorker::VfsRead { path } => {
                let answer = VfsReply::Read(vfs.read(&path));
                worker.send(&ToWorker::VfsReply(answer)).map(|()| None)
            }
            FromWorker::VfsList { prefix } => {
                let answer = VfsReply::List(vfs.list(&prefix));
                worker.send(&ToWorker::VfsReply(answer)).map(|()| None)
            }
            FromWorker::FeedItems { feed, limit } => {
                let answer = VfsReply::Feed(vfs.feed_items(&feed, limit));
                worker.send(&ToWorker::VfsReply(answer)).map(|()| None)
            }
            FromWorker::Outcome(outcome) => Ok(Some(*outcome)),
            other => Err(unexpected(&other)),
        })?;
        let mut outcome = ended.unwrap_or_else(|death| {
            let error = death.run_error(limits.wall_clock_ms, self.inner.memory_mib);
            let mut outcome = RunOutcome::failed(error.kind, error.message);
            outcome.cost.wall_ms = started.elapsed().as_millis() as u64;
            outcome
        });
        // Again on this side: the worker's word is not taken for it.
        outcome.cap_error(limits.error_max_bytes);
        Ok(outcome)
    }

    /// The deploy-time check ([`crate::check`]) in a worker. A worker that dies on the script
    /// (a parser stack overflow, say) refuses it.
    pub fn check(&self, source: &str, limits: &SandboxLimits) -> Result<Checked, PoolError> {
        let job = ToWorker::Check {
            source: Cow::Borrowed(source),
            limits: Cow::Borrowed(limits),
        };
        let ended = self.exchange(&job, limits.wall_clock_ms, |reply, _| match reply {
            FromWorker::Checked(checked) => Ok(Some(checked)),
            other => Err(unexpected(&other)),
        })?;
        Ok(ended.unwrap_or_else(|death| {
            let error = death.run_error(limits.wall_clock_ms, self.inner.memory_mib);
            Err(CheckError {
                line: 1,
                column: 1,
                message: format!("the script cannot be checked safely: {}", error.message),
            })
        }))
    }

    /// Asks a worker to try what its wall forbids (open a file, connect, start a process).
    pub fn probe(&self) -> Result<(WallReport, ProbeReport), PoolError> {
        let mut wall = None;
        let ended = self.exchange(&ToWorker::Probe, 0, |reply, worker| {
            wall = Some(worker.wall.clone());
            match reply {
                FromWorker::Probed(report) => Ok(Some(report)),
                other => Err(unexpected(&other)),
            }
        })?;
        let report = ended.map_err(|death| PoolError::Start {
            program: self.program_name(),
            reason: death.describe(),
        })?;
        let wall = wall.ok_or_else(|| PoolError::Start {
            program: self.program_name(),
            reason: "the worker never answered".into(),
        })?;
        Ok((wall, report))
    }

    /// One job on one worker: send `job`, then feed each frame from the worker to `on_reply`
    /// until it returns the job's result. `Err(Death)` if the worker did not survive it.
    fn exchange<T>(
        &self,
        job: &ToWorker<'_>,
        wall_clock_ms: u64,
        mut on_reply: impl FnMut(FromWorker, &mut WorkerProcess) -> Result<Option<T>, FrameError>,
    ) -> Result<Result<T, Death>, PoolError> {
        let mut lease = self.acquire()?;
        let worker = lease.worker();
        let deadline = Deadline::arm(
            worker.pid(),
            Duration::from_millis(wall_clock_ms) + DEADLINE_GRACE,
        )?;
        let result = (|| -> Result<T, FrameError> {
            worker.send(job)?;
            loop {
                let reply = worker.recv()?;
                if let Some(done) = on_reply(reply, worker)? {
                    return Ok(done);
                }
            }
        })();
        let timed_out = deadline.disarm();
        match result {
            // Killed just after it answered: the answer stands, the worker does not.
            Ok(done) if timed_out => {
                lease.retire();
                Ok(Ok(done))
            }
            Ok(done) => Ok(Ok(done)),
            Err(broken) => {
                let death = lease.retire().end(timed_out, broken.to_string());
                if timed_out {
                    // A script's own failure, recorded with its run: not worth a warning.
                    info!(worker = %death.describe(), "sandbox worker killed at the deadline; it will be replaced");
                } else {
                    warn!(worker = %death.describe(), "sandbox worker died; it will be replaced");
                }
                Ok(Err(death))
            }
        }
    }

    /// A worker of its own for one job: an idle one, or a new one while the pool has room;
    /// otherwise waits for one to be returned.
    fn acquire(&self) -> Result<Lease<'_>, PoolError> {
        let inner = &*self.inner;
        let mut slots = inner.lock();
        loop {
            while let Some(mut worker) = slots.idle.pop() {
                if worker.is_alive() {
                    return Ok(Lease {
                        pool: inner,
                        worker: Some(worker),
                    });
                }
                slots.live -= 1;
            }
            if slots.live < inner.size {
                slots.live += 1;
                drop(slots);
                // Dropped without a worker, the lease gives the slot back.
                let mut lease = Lease {
                    pool: inner,
                    worker: None,
                };
                let program = match &inner.program {
                    Some(p) => p.clone(),
                    None => std::env::current_exe().map_err(|e| PoolError::Start {
                        program: "the thwonk executable".into(),
                        reason: e.to_string(),
                    })?,
                };
                let worker = WorkerProcess::start(&inner.spawner, &program, inner.memory_mib)?;
                self.note_wall(&worker.wall);
                if inner.require_wall.load(Ordering::Relaxed)
                    && let Some(missing) = crate::wall::missing_layers(&worker.wall)
                {
                    // Dropped, the worker is killed; the lease gives its slot back.
                    return Err(PoolError::WallMissing { missing });
                }
                lease.worker = Some(worker);
                return Ok(lease);
            }
            slots = inner.freed.wait(slots).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Logs how a new worker is walled in; warns once if a layer is missing.
    fn note_wall(&self, wall: &WallReport) {
        let complete = wall.seccomp == Layer::Enforced && wall.landlock == Layer::Enforced;
        if !complete && !self.inner.warned.swap(true, Ordering::Relaxed) {
            if self.inner.require_wall.load(Ordering::Relaxed) {
                warn!(
                    ?wall,
                    "sandbox workers have an incomplete wall on this kernel; refused (runner.require_wall)"
                );
            } else {
                warn!(
                    ?wall,
                    "sandbox workers run with an incomplete wall on this kernel (runner.require_wall = false)"
                );
            }
        } else {
            debug!(?wall, "sandbox worker started");
        }
    }

    fn program_name(&self) -> String {
        match &self.inner.program {
            Some(p) => p.display().to_string(),
            None => "the thwonk executable".into(),
        }
    }
}

fn unexpected(frame: &FromWorker) -> FrameError {
    let name = match frame {
        FromWorker::Ready(_) => "Ready",
        FromWorker::VfsRead { .. } => "VfsRead",
        FromWorker::VfsList { .. } => "VfsList",
        FromWorker::FeedItems { .. } => "FeedItems",
        FromWorker::Outcome(_) => "Outcome",
        FromWorker::Checked(_) => "Checked",
        FromWorker::Probed(_) => "Probed",
    };
    FrameError::Unexpected(name.into())
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        // The slots are consistent at every unlock; a panic elsewhere does not spoil them.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One job's hold on one worker. Dropped, it returns the worker to the pool — or, once
/// [`Lease::retire`]d, frees the worker's slot for a replacement.
struct Lease<'a> {
    pool: &'a Inner,
    worker: Option<WorkerProcess>,
}

impl Lease<'_> {
    fn worker(&mut self) -> &mut WorkerProcess {
        // Set by `acquire` before a lease is handed out.
        self.worker
            .as_mut()
            .expect("a lease handed out always holds a worker")
    }

    /// Takes the worker out of the pool for good.
    fn retire(&mut self) -> WorkerProcess {
        self.worker
            .take()
            .expect("a lease handed out always holds a worker")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut slots = self.pool.lock();
        match self.worker.take() {
            Some(worker) => slots.idle.push(worker),
            None => slots.live -= 1,
        }
        drop(slots);
        self.pool.freed.notify_one();
    }
}
