//! `[limits]`: what one run may use. The struct is [`SandboxLimits`] in [`crate::run`], the
//! contract the sandbox obeys; its checks at load live here with the other sections'.

use super::{ConfigError, require_positive_count};
use crate::run::SandboxLimits;

pub(super) fn validate(l: &SandboxLimits) -> Result<(), ConfigError> {
    for (key, v) in [
        ("limits.instructions", l.instructions),
        ("limits.wall_clock_ms", l.wall_clock_ms),
        ("limits.memory_mib", l.memory_mib),
        ("limits.script_max_bytes", l.script_max_bytes),
        ("limits.recipients_per_run", l.recipients_per_run),
        ("limits.vfs_bytes_per_run", l.vfs_bytes_per_run),
        ("limits.file_max_bytes", l.file_max_bytes),
        ("limits.log_bytes_per_run", l.log_bytes_per_run),
        ("limits.vfs_total_bytes", l.vfs_total_bytes),
        ("limits.outbox_bytes_per_run", l.outbox_bytes_per_run),
        ("limits.error_max_bytes", l.error_max_bytes),
    ] {
        require_positive_count(key, v)?;
    }
    if l.script_max_depth == 0 || l.recursion_depth == 0 {
        return Err(ConfigError::new(
            "limits.script_max_depth",
            "script_max_depth and recursion_depth must be greater than 0",
        ));
    }
    Ok(())
}
