//! Deploying a script, the one path `thwonk deploy` and `PUT /v1/thwonks/{address}/script`
//! share, so a script the CLI refuses is refused over HTTP too: check → version → schedule.
//!
//! 1. [`check_script`]: the source is checked in a sandbox worker (parsing hostile source can
//!    crash Boa), then its `schedule` export is parsed as cron.
//! 2. [`write_version`]: only then is a version written (with a warning when the ingress
//!    refuses mail for the address's domain).
//! 3. [`register_schedule`]: the thwonk's schedule is registered on Redis now; when that
//!    fails, [`schedule_not_registered`] is the warning, and runners pick it up from SQL.

use crate::ControlError;
use crate::views::{DeployView, SCHEDULE_NOT_REGISTERED, ThwonkView};
use thwonk_core::run::SandboxLimits;
use thwonk_core::status::ThwonkStatus;
use thwonk_core::{Address, Config};
use thwonk_sandbox::{ScriptInfo, WorkerPool};
use thwonk_store::{Deployed, Store, StoreError, Thwonk};
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

/// A version written: what the deploy did and what its caller should be warned about.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub deployed: Deployed,
    pub info: ScriptInfo,
    pub warnings: Vec<String>,
}

impl Deployment {
    /// The deploy as the API answers it and the CLI prints it.
    pub fn view(&self) -> DeployView {
        DeployView {
            thwonk: ThwonkView::from(&self.deployed.thwonk),
            version: self.deployed.version,
            created: self.deployed.created,
            kind: self.info.kind,
            handlers: self.info.handlers.clone(),
            schedule: self.info.schedule.clone(),
            warnings: self.warnings.clone(),
        }
    }
}

/// Write a checked script as the thwonk's next version (creating the thwonk when the
/// address is free), warning when the ingress would refuse mail for its domain.
pub async fn write_version(
    store: &Store,
    config: &Config,
    address: &Address,
    source: &str,
    info: ScriptInfo,
) -> Result<Deployment, StoreError> {
    let deployed = store
        .deploy_script(address, source, info.schedule.as_deref())
        .await?;
    let mut warnings = Vec::new();
    if !config.accepts_domain(address.domain()) {
        warnings.push(format!(
            "{} is not in smtp.domains; the ingress refuses mail for it",
            address.domain()
        ));
    }
    Ok(Deployment {
        deployed,
        info,
        warnings,
    })
}

/// The warning when a schedule could not be registered now.
pub fn schedule_not_registered(why: impl std::fmt::Display) -> String {
    format!(
        "{SCHEDULE_NOT_REGISTERED} ({why}); runners register it within schedules.sync_interval_ms"
    )
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
pub async fn register_schedule(redis: &Redis, thwonk: &Thwonk) -> Result<(), ControlError> {
    crate::schedules::register(redis, &thwonk.id, live_schedule(thwonk)).await
}

/// Drop a thwonk's schedule (before the thwonk itself goes, so no tick fires for it).
pub async fn drop_schedule(redis: &Redis, thwonk: &Thwonk) -> Result<(), ControlError> {
    crate::schedules::register(redis, &thwonk.id, None).await
}
