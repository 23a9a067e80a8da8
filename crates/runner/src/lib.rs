//! The runner: the job loop that claims `inbound` jobs, runs the thwonk's rule script in the
//! sandbox, and commits the result in one SQL transaction, then queues the outgoing mail for
//! egress. The use cases it shares with the API and the CLI (job payloads, feeds, metrics,
//! schedule registration) are in `thwonk-control`.
//!
//! Modules, from the loop down (each uses only those below it):
//! - [`runner`]: the job loop (`runner.concurrency` tasks), the scheduler and the feed retry
//!   pass beside it; [`Runner::run_role`] adds the reconciler for a daemon.
//! - `handle`: one job, decoded once as a message, a schedule tick or a request, and handled
//!   by its kind.
//! - `drain`: a thwonk's queued mail, oldest first, up to a given message or instant.
//! - `lease`: `with_lease`, the owner's fair share (`share`) and the thwonk's run lease
//!   around a piece of work.
//! - [`execute`]: one run for any trigger: message → `msg`, sandbox worker, compose sends.
//! - `commit`: `commit_and_dispatch`, the one tail of every run: commit → metrics → log →
//!   queue outbox → apply feeds.
//! - [`scheduler`]: fires due schedule ticks as `inbound` jobs.
//! - [`feeds`]: the retry pass for feed operations left pending while Redis was away.
//! - [`script_jobs`]: follows the endings of script jobs (→ `onJobResult` jobs), publishes the
//!   jobs left unpublished, sweeps for endings nobody heard.
//! - [`reconcile`]: re-queues queued messages and outbox rows whose Redis job was lost.
//!
//! Ordering: a job names a message, but the runner always processes the *oldest* queued
//! message of that thwonk while holding the thwonk's lease, so runs of one thwonk happen one
//! at a time in arrival order across every runner process; different thwonks run in parallel.
//!
//! Not for: SMTP in either direction, the sandbox's internals, or anything the API or the CLI
//! calls (that is `thwonk-control`).

mod commit;
mod drain;
pub mod execute;
pub mod feeds;
mod handle;
mod lease;
pub mod reconcile;
pub mod runner;
pub mod scheduler;
pub mod script_jobs;
mod share;
mod state;

pub use runner::Runner;

/// Errors that stop a job from being processed now (it is retried later).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] thwonk_store::StoreError),
    #[error(transparent)]
    Queue(#[from] thwonk_thoonk::ThoonkError),
    #[error(transparent)]
    Control(#[from] thwonk_control::ControlError),
    #[error(transparent)]
    BadJob(#[from] thwonk_control::jobs::BadJob),
    #[error("the sandbox failed: {0}")]
    Sandbox(String),
    #[error("the run could not be served: {0}")]
    Internal(String),
}
