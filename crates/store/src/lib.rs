//! The system of record: thwonks, script versions, messages, runs, VFS files and the outbox,
//! in SQL (SQLite by default, PostgreSQL for scale-out; one code path through `sqlx::Any`).
//!
//! Every other role treats this crate as the truth: Redis carries work and events and can be
//! rebuilt from here. The invariants that make effects happen once live in SQL here:
//! - a run commits in one transaction ([`Store::commit_run`]), guarded on its message still
//!   being `queued`, so a job delivered twice commits once;
//! - a thwonk's runs are serialised by a lease row ([`Store::try_lease`]) that works across
//!   runner processes and hosts.
//!
//! Not for: queueing or events (that is `thwonk-thoonk`), composing mail (`thwonk-mail`).
//!
//! Times are `i64` milliseconds since the epoch; ids are text (UUID v7); blobs are bytes.
//!
//! Modules (each adds one group of [`Store`] methods, or one helper):
//! - `connect`: opening the pool (SQLite pragmas, WAL), migrations, and the one way to begin a
//!   write transaction (`BEGIN IMMEDIATE` on SQLite).
//! - `thwonks`: rules addresses and their script versions (`deploy_script`).
//! - `messages`: incoming mail as the ingress stored it, in arrival order, one row per thwonk
//!   of a delivery; the bytes are in `message_bodies`, one copy shared by the delivery's rows.
//! - `lease`: the per-thwonk run lease that serialises runs across runner processes.
//! - `runs`: committing a run's effects exactly once, and reading run records.
//! - `vfs`: a thwonk's files.
//! - `budgets`: sending budgets counted in a run's commit, runs per minute, thwonks per
//!   owner, and the domains an admin grants an owner.
//! - `users`: users, API tokens (stored hashed) and who owns a thwonk, for the HTTP API.
//! - `outbox`: reading outbox rows, claiming one for a delivery attempt, listing those queued.
//! - `deliveries`: per-recipient delivery state, recording one delivery attempt (with its DSN
//!   and bounce records) in one transaction, and bounce records.
//! - `feeds`: feed operations committed with their run, pending until applied to Redis.
//! - `schedules`: the schedules to register, and the guard that a schedule tick commits once.
//! - `script_jobs`: jobs scripts publish for workers, committed with their run, and the guard
//!   that a job's result runs `onJobResult` once.
//! - `rows`: decoding rows into the public types (JSON columns, flags, addresses).
//! - [`scratch`]: throw-away PostgreSQL databases, for tests and benchmarks only.
//!
//! SQL is written once for both engines: `$1, $2, ...` placeholders (SQLite binds `$N` by
//! number), only `i64`, text, bytes and their `Option`s cross the driver, and `ON CONFLICT`
//! upserts, which both engines speak.

mod auto_replies;
mod budgets;
mod connect;
mod deliveries;
mod feeds;
mod lease;
mod messages;
mod outbox;
mod rows;
mod runs;
mod schedules;
pub mod scratch;
mod script_jobs;
mod thwonks;
mod users;
mod vfs;

pub use budgets::{Budget, BudgetScope, BudgetWindow, Counted, OverBudget};
pub use connect::SQLITE_BUSY_TIMEOUT;
pub use deliveries::{Attempt, Bounce, NewBounce, RecipientState, RecipientUpdate, RowOutcome};
pub use feeds::PendingFeedOp;
pub use messages::{MessageState, QueuedMessageRef};
pub use schedules::ThwonkSchedule;
pub use script_jobs::{NewScriptJob, RunJobs, ScriptJob};
pub use users::{ApiToken, Role, User};

use thwonk_core::Address;
use thwonk_core::run::{ErrorKind, FeedOp, LogLine, RunStatus, VfsOp};
use thwonk_core::status::{DeliveryStatus, MessageStatus, ThwonkStatus, TriggerKind};

/// Which SQL engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors of the store, with messages an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {url}: cannot connect: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("already exists: {0}")]
    Conflict(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database (cheap to clone: a pool).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    pool: sqlx::AnyPool,
}

/// A rules address with its script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thwonk {
    pub id: String,
    pub address: Address,
    /// Only active thwonks accept mail.
    pub status: ThwonkStatus,
    /// The active script version, if one was deployed.
    pub active_version: Option<i64>,
    /// The active script's `schedule` export, if any.
    pub schedule: Option<String>,
    pub created_at_ms: i64,
}

/// One deployed version of a thwonk's script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptVersion {
    pub thwonk_id: String,
    pub version: i64,
    pub source: String,
    pub schedule: Option<String>,
    pub created_at_ms: i64,
}

/// What `deploy_script` did.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub thwonk: Thwonk,
    pub version: i64,
    /// True when the thwonk did not exist before.
    pub created: bool,
}

/// A message the ingress accepted for one thwonk.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub thwonk_id: String,
    /// Envelope sender, empty for the null sender.
    pub mail_from: String,
    /// The envelope recipients that belong to this thwonk.
    pub rcpt_to: Vec<String>,
    /// The message as received. Shared: the messages of one delivery (one per thwonk) hold
    /// the same bytes, and [`Store::insert_messages`] stores them once (`message_bodies`).
    pub raw: std::sync::Arc<Vec<u8>>,
    pub received_at_ms: i64,
}

/// A stored incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: String,
    /// Arrival order across all ingress processes (the database's sequence).
    pub seq: i64,
    pub thwonk_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
    pub received_at_ms: i64,
    pub status: MessageStatus,
}

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: String,
    pub thwonk_id: String,
    pub message_id: Option<String>,
    pub trigger: TriggerKind,
    pub script_version: i64,
    pub status: RunStatus,
    /// Set when `status` is `Error`.
    pub error_kind: Option<ErrorKind>,
    pub error_message: Option<String>,
    pub error_stack: Option<String>,
    pub logs: Vec<LogLine>,
    pub logs_truncated: bool,
    pub instructions: i64,
    pub wall_ms: i64,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
}

/// An outgoing message ready for egress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutbox {
    pub id: String,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The whole RFC 5322 message, CRLF line ends.
    pub raw: Vec<u8>,
    /// The token of the VERP envelope sender (`bounces+TOKEN@domain`); `None` for mail sent
    /// from the null sender (DSNs).
    pub bounce_token: Option<String>,
}

/// An outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: String,
    pub run_id: String,
    pub thwonk_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at_ms: i64,
    pub created_at_ms: i64,
    /// See [`NewOutbox::bounce_token`].
    pub bounce_token: Option<String>,
}

/// Everything one run commits, in one transaction.
#[derive(Debug, Clone)]
pub struct RunCommit {
    pub run: RunRecord,
    /// VFS changes; applied only when `run.status` is `Ok`.
    pub vfs: Vec<VfsOp>,
    /// Outgoing mail; inserted only when `run.status` is `Ok`.
    pub outbox: Vec<NewOutbox>,
    /// Feed operations, `feed` being the Thoonk feed's full name (`THWONK_ID/NAME`); recorded,
    /// pending, only when `run.status` is `Ok`.
    pub feed_ops: Vec<FeedOp>,
    /// For a schedule run, the tick it ran for (ms): the run commits only if that tick has
    /// not committed before.
    pub schedule_tick_ms: Option<i64>,
    /// Jobs for workers (recorded only when `run.status` is `Ok`) and, for an `onJobResult`
    /// run, the job whose result it took (the guard).
    pub jobs: RunJobs,
}

/// The result of [`Store::commit_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitResult {
    Committed,
    /// The run's message was no longer `queued`, its schedule tick had run, or its run id had
    /// committed: another run got there first. Nothing was written.
    AlreadyProcessed,
}
