//! Deploying a script: the checks `thwonk deploy` and `PUT /v1/thwonks/{address}/script`
//! share, so a script the CLI refuses is refused over HTTP too.
//!
//! The source is checked in a sandbox worker (parsing hostile source can crash Boa), then its
//! `schedule` export is parsed as cron. Only then is a version written.

use thwonk_core::run::SandboxLimits;
use thwonk_core::status::ThwonkStatus;
use thwonk_sandbox::{ScriptInfo, WorkerPool};
use thwonk_store::Thwonk;
use thwonk_thoonk::Redis;

/// Why a script cannot be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The script was refused; `line`/`column` are 1-based.
    #[error("{line}:{column}: {message}")]
    Refused {
        line: u32,
        column: u32,
        message: String,
    },
    /// No sandbox worker could check it.
    #[error("the script could not be checked: {0}")]
    Sandbox(#[from] thwonk_sandbox::PoolError),
}

/// Check `source` as deploy does (blocking: call from a blocking thread).
pub fn check_script(
    pool: &WorkerPool,
    source: &str,
    limits: &SandboxLimits,
) -> Result<ScriptInfo, DeployError> {
    let info = pool
        .check(source, limits)?
        .map_err(|e| DeployError::Refused {
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
    if let Some(expr) = &info.schedule
        && let Err(e) = thwonk_core::cron::Cron::parse(expr)
    {
        return Err(DeployError::Refused {
            line: 1,
            column: 1,
            message: format!("schedule: {e}"),
        });
    }
    Ok(info)
}

/// The schedule a thwonk should have registered now: its script's, while it is active.
pub fn live_schedule(thwonk: &Thwonk) -> Option<&str> {
    thwonk
        .schedule
        .as_deref()
        .filter(|_| thwonk.status == ThwonkStatus::Active)
}

/// Register (or drop) the thwonk's schedule on Redis now. On failure runners still pick it
/// up from SQL within `schedules.sync_interval_ms`, so this is an optimisation.
pub async fn register_schedule(redis: &Redis, thwonk: &Thwonk) -> Result<(), String> {
    thwonk_runner::schedule::register(redis, &thwonk.id, live_schedule(thwonk))
        .await
        .map_err(|e| e.to_string())
}
