//! The runner: claims `inbound` jobs, runs the thwonk's rule script in the sandbox, and commits
//! the result in one SQL transaction, then queues the outgoing mail for egress.
//!
//! - [`runner`]: the job loop, and per-thwonk ordering through the store's lease.
//! - [`execute`]: one run, start to commit: message → `msg`, sandbox worker, compose sends,
//!   commit.
//! - [`vfs`]: file reads during a run, served from the store.
//! - [`reconcile`]: re-queues queued messages and outbox rows whose Redis job was lost.
//! - [`feeds`]: a run's feed operations onto the thwonk's Thoonk feeds (`ADDRESS/NAME`),
//!   applied after the commit in order, retried while Redis is away.
//! - [`schedule`]: schedules: registration from SQL, firing each tick once, running
//!   `onSchedule` under the lease.
//! - [`invoke`]: HTTP invoke: a request job runs `onRequest` under the lease, committed once,
//!   its outcome sent back to the waiting caller over Redis.
//! - [`metrics`]: counting committed runs; the scrape with the queue depths from Redis.
//! - [`dry_run`]: `thwonk test`: one run with no daemon, no Redis and no database.
//!
//! Ordering: a job names a message, but the runner always processes the *oldest* queued
//! message of that thwonk while holding the thwonk's lease, so runs of one thwonk happen one
//! at a time in arrival order across every runner process; different thwonks run in parallel.
//!
//! Not for: SMTP in either direction, or the sandbox's internals.

pub mod dry_run;
pub mod execute;
pub mod feeds;
pub mod invoke;
pub mod metrics;
pub mod reconcile;
pub mod runner;
pub mod schedule;
pub mod vfs;

pub use runner::Runner;

/// Errors that stop a job from being processed now (it is retried later).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] thwonk_store::StoreError),
    #[error(transparent)]
    Queue(#[from] thwonk_thoonk::ThoonkError),
    #[error("bad job payload {payload:?}: {reason}")]
    BadJob { payload: String, reason: String },
    #[error("the sandbox failed: {0}")]
    Sandbox(String),
    #[error("the run could not be served: {0}")]
    Internal(String),
}
