//! Core types of Thwonk: the vocabulary every other crate speaks, with no I/O.
//!
//! - [`config`]: the one configuration loader (TOML file + `THWONK_<SECTION>_<KEY>` overrides),
//!   one file per section with its defaults and checks; values parsed once at load
//!   (`SocketAddr`, `Duration`, `Option`), refused with the key and the reason.
//! - [`address`]: rules addresses (`local@domain`), normalised and validated.
//! - [`cron`]: the cron expressions of a script's `schedule` export (5 fields, UTC), on the
//!   `croner` crate.
//! - [`vfs`]: the path rules of a thwonk's virtual file system.
//! - [`public_routes`]: a script's `publicRoutes` entries (`GET /archive/*`), parsed and
//!   matched; method names `.../invoke/{name}` may call.
//! - [`run`]: the contract between the runner and the sandbox: what a run is given
//!   ([`run::RunRequest`]), what it may read ([`run::VfsReader`]) and what it returns
//!   ([`run::RunOutcome`]: status, buffered effects, logs, cost). Every type here is serde so the
//!   same contract can travel over the IPC frames of sandbox worker processes.
//! - [`status`]: the states of stored things (thwonk, message, run trigger, outbox row and
//!   recipient) as enums, with the exact words SQL and JSON use, parsed once.
//! - [`loop_mark`]: the header outgoing mail carries so a thwonk recognises its own mail.
//! - [`metrics`]: every process metric (counters, histograms) and the Prometheus text format,
//!   on the `prometheus-client` crate.
//! - [`ids`]: identifiers (UUID v7) and unguessable tokens.
//! - [`report`]: an error chain on one line without repeats, and repeated warnings thinned
//!   out ([`report::Throttle`]).
//! - [`time`]: the one clock unit (milliseconds since the epoch) and every date format
//!   (RFC 5322 for mail, RFC 3339 for JSON), on `chrono`.
//!
//! Not for: talking to SQL, Redis, SMTP or Boa. Those live in the role and model crates, which
//! depend on this one and never the other way round.

pub mod address;
pub mod config;
pub mod cron;
pub mod ids;
pub mod loop_mark;
pub mod metrics;
pub mod public_routes;
pub mod report;
pub mod run;
pub mod status;
pub mod time;
pub mod vfs;

pub use address::Address;
pub use config::Config;
