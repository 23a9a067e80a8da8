//! The use cases that the HTTP API, the CLI and the runner share, so each is written once:
//! the API and the CLI depend on this crate, never on the runner; the runner uses its job
//! types and feed operations.
//!
//! - [`deploy`]: deploy a script: check in a sandbox worker → write the version → register
//!   the schedule.
//! - [`schedules`]: a thwonk's schedule as a Thoonk recurring task: registering one, and the
//!   sync of every schedule from SQL.
//! - [`jobs`]: the `inbound` job kinds ([`jobs::InboundJob`]: message, schedule tick,
//!   request), decoded once.
//! - [`invoke`]: the caller's side of HTTP invoke: queue a request job, wait for its reply.
//! - [`feeds`]: a thwonk's Thoonk feeds: their names (`THWONK_ID/NAME`) and applying a run's
//!   committed feed operations to Redis in order.
//! - [`script_jobs`]: jobs scripts publish for workers (`ADDRESS/QUEUE`): publishing them after
//!   the commit, and turning a worker's finish (or a dead letter) into an `onJobResult` job.
//! - [`dry_run`]: one run with nothing committed (`thwonk test`, `POST .../test`).
//! - [`outbox`]: a run's sends composed into outbox rows: the commit's last refusal, which
//!   the dry run applies too.
//! - [`policy`]: which addresses an owner may claim, and how many thwonks an owner may have.
//! - [`vfs`]: a run's file reads, served from the store.
//! - [`metrics`]: counting committed runs; the scrape, with the queue depths from Redis.
//! - [`views`]: what the API answers, one type per resource, shared with the CLI.
//!
//! Not for: the job loop (`thwonk-runner`), HTTP (`thwonk-api`) or printing (the `thwonk`
//! binary).

pub mod deploy;
pub mod dry_run;
pub mod feeds;
pub mod invoke;
pub mod jobs;
pub mod metrics;
pub mod outbox;
pub mod policy;
pub mod schedules;
pub mod script_jobs;
pub mod vfs;
pub mod views;

/// Why a shared use case could not finish now (the database or Redis is away).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Store(#[from] thwonk_store::StoreError),
    #[error(transparent)]
    Queue(#[from] thwonk_thoonk::ThoonkError),
    #[error("bad schedule: {0}")]
    Schedule(String),
}
