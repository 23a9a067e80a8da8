//! The sandbox: runs one rule script (JavaScript, on the Boa engine) for one trigger and
//! returns what it wants done, without doing any of it.
//!
//! The runner hands [`run`] a [`RunRequest`](thwonk_core::run::RunRequest) and a
//! [`VfsReader`](thwonk_core::run::VfsReader); the script's sends, file writes and feed items
//! come back buffered in the [`RunOutcome`](thwonk_core::run::RunOutcome), to be committed by
//! the runner in one transaction, or dropped if the run failed. [`check`] vets a script at
//! deploy time. JS-API.md is the contract scripts program against.
//!
//! Modules, in the order a run meets them:
//! - [`check`]: deploy checks; script kind (module or classic) from the parsed AST.
//! - `scan`: size and bracket-nesting scan that runs before Boa parses anything.
//! - `run`: one run: thread, handler dispatch, outcome.
//! - `engine`: a fresh Boa context per run with the limits, fixed clock and seeded random.
//! - `remote`: file reads from the engine thread, answered on the caller's thread.
//! - `host`: what native functions capture; conversions at the JS boundary.
//! - `state`: buffered effects, logs and every per-run limit, in plain Rust.
//! - `overlay`: this run's writes laid over the stored files.
//! - `outgoing`: address, `from`, reply-subject and `References` rules.
//! - `api/msg`, `api/thwonk`, `api/files`, `api/feed`: the ES-module API.
//! - `legacy`: the classic-script API (`thwonk.print`, `thwonk.message.sendAll`, ...).
//! - `settle`: awaiting promises by draining the job queue.
//! - `failure`: engine errors → the `RunError` users read.
//! - `iso`: ISO 8601 timestamps.
//!
//! Not for: deciding when scripts run, storing anything, composing MIME or sending mail (the
//! runner, store, mail and egress crates do that), nor containing a hostile script that
//! crashes the process (native stack overflow, huge allocations, regex blow-ups): that needs
//! the sandbox worker processes the runner will kill.

mod api;
mod check;
mod engine;
mod failure;
mod host;
mod iso;
mod legacy;
mod outgoing;
mod overlay;
mod remote;
mod run;
mod scan;
mod settle;
mod state;

pub use check::{CheckError, ScriptInfo, ScriptKind, check};
pub use run::run;
