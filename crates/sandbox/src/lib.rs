//! The sandbox: runs one rule script (JavaScript, on the Boa engine) for one trigger and
//! returns what it wants done, without doing any of it.
//!
//! The runner hands a [`WorkerPool`] a [`RunRequest`](thwonk_core::run::RunRequest) and a
//! [`VfsReader`](thwonk_core::run::VfsReader); the script's sends, file writes and feed items
//! come back buffered in the [`RunOutcome`](thwonk_core::run::RunOutcome), to be committed by
//! the runner in one transaction, or dropped if the run failed. [`WorkerPool::check`] vets a
//! script at deploy time. docs/rule-scripts.md is the contract scripts program against.
//!
//! Boa runs only in sandbox worker processes (`thwonk __sandbox-worker`): a script can abort
//! Boa (a failed huge allocation, a native stack overflow) or spin in a built-in nothing can
//! interrupt, so the worker process is the wall, and the parent kills it at the deadline.
//! [`run`] and [`check`] are what a worker calls, in-process; the daemon never calls them.
//!
//! Modules, from the parent to the worker and then in the order a run meets them:
//! - [`pool`]: the parent side: a warm pool of workers, deadlines, crash → failed run.
//! - `process`: one worker process from the parent's side: pipes, start-up, reaping.
//! - `spawner`: the long-lived thread that forks workers (so `PR_SET_PDEATHSIG` holds).
//! - `deadline`: the watchdog that SIGKILLs a worker at the wall-clock deadline.
//! - `worker_log`: a worker's stderr → the parent's log, and the last words that explain a death.
//! - `death`: how a worker ended → `Timeout`, `OutOfMemory` or `WorkerCrashed`.
//! - `frame`: the wire: length-prefixed JSON frames on the worker's stdin and stdout.
//! - [`worker`]: the worker process's main loop: one job at a time, file reads over frames.
//! - [`wall`]: rlimits, landlock and seccomp, raised by the worker before its first job.
//! - [`check`]: deploy checks; script kind (module or classic) from the parsed AST.
//! - `scan`: size and bracket-nesting scan that runs before Boa parses anything.
//! - `run`: one run: thread, handler dispatch, outcome.
//! - `engine`: a fresh Boa context per run with the limits, fixed clock and seeded random.
//! - `meter`: built-ins (`JSON.stringify`, `sort`, `repeat`, ...) charged by their work.
//! - `remote`: file reads from the engine thread, answered on the caller's thread.
//! - `host`: what native functions capture; conversions at the JS boundary.
//! - `state`: buffered effects, logs and every per-run limit, in plain Rust.
//! - `overlay`: this run's writes laid over the stored files.
//! - `outgoing`: address, `from`, reply-subject and `References` rules.
//! - `api/msg`, `api/thwonk`, `api/files`, `api/feed`: the ES-module API.
//! - `legacy`: the classic-script API (`thwonk.print`, `thwonk.message.sendAll`, ...).
//! - `settle`: awaiting promises by draining the job queue.
//! - `failure`: engine errors → the `RunError` users read.
//!
//! Not for: deciding when scripts run, storing anything, composing MIME or sending mail (the
//! runner, store, mail and egress crates do that). Linux only (the wall is made of Linux
//! system calls).

mod api;
mod check;
mod deadline;
mod death;
mod engine;
mod failure;
mod frame;
mod host;
mod legacy;
mod meter;
mod outgoing;
mod overlay;
pub mod pool;
mod process;
mod remote;
mod run;
mod scan;
mod settle;
mod spawner;
mod state;
pub mod wall;
pub mod worker;
mod worker_log;

pub use check::{CheckError, ScriptInfo, ScriptKind, check};
pub use pool::{Checked, PoolError, WorkerPool};
pub use run::run;
