//! `[budgets]`: how much mail a thwonk, and all the thwonks of one owner, may send over time,
//! how often a thwonk may run, and how many thwonks an owner may have. Per-run limits are in
//! `[limits]`; these hold across runs, runners and restarts (counted in SQL, in the run's
//! commit transaction).

use super::{ConfigError, require_positive_count};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetsConfig {
    /// Outgoing messages (sends) per clock minute, per thwonk.
    pub thwonk_messages_per_minute: u64,
    /// Envelope recipients per clock hour, per thwonk.
    pub thwonk_recipients_per_hour: u64,
    /// Envelope recipients per day (UTC), per thwonk.
    pub thwonk_recipients_per_day: u64,
    /// Outgoing messages per clock minute, over all the thwonks of one owner.
    pub owner_messages_per_minute: u64,
    /// Envelope recipients per clock hour, over all the thwonks of one owner.
    pub owner_recipients_per_hour: u64,
    /// Envelope recipients per day (UTC), over all the thwonks of one owner.
    pub owner_recipients_per_day: u64,
    /// Runs per clock minute, per thwonk; past it a run is refused (a `LimitError` run).
    pub thwonk_runs_per_minute: u64,
    /// Thwonks one owner may have (admins are not counted).
    pub thwonks_per_owner: u64,
}

impl Default for BudgetsConfig {
    fn default() -> Self {
        BudgetsConfig {
            thwonk_messages_per_minute: 1_000,
            thwonk_recipients_per_hour: 2_000,
            thwonk_recipients_per_day: 10_000,
            owner_messages_per_minute: 2_000,
            owner_recipients_per_hour: 5_000,
            owner_recipients_per_day: 20_000,
            thwonk_runs_per_minute: 600,
            thwonks_per_owner: 50,
        }
    }
}

impl BudgetsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            (
                "budgets.thwonk_messages_per_minute",
                self.thwonk_messages_per_minute,
            ),
            (
                "budgets.thwonk_recipients_per_hour",
                self.thwonk_recipients_per_hour,
            ),
            (
                "budgets.thwonk_recipients_per_day",
                self.thwonk_recipients_per_day,
            ),
            (
                "budgets.owner_messages_per_minute",
                self.owner_messages_per_minute,
            ),
            (
                "budgets.owner_recipients_per_hour",
                self.owner_recipients_per_hour,
            ),
            (
                "budgets.owner_recipients_per_day",
                self.owner_recipients_per_day,
            ),
            (
                "budgets.thwonk_runs_per_minute",
                self.thwonk_runs_per_minute,
            ),
            ("budgets.thwonks_per_owner", self.thwonks_per_owner),
        ] {
            require_positive_count(key, v)?;
        }
        if self.thwonk_recipients_per_day < self.thwonk_recipients_per_hour {
            return Err(ConfigError::new(
                "budgets.thwonk_recipients_per_day",
                "must be at least budgets.thwonk_recipients_per_hour",
            ));
        }
        if self.owner_recipients_per_day < self.owner_recipients_per_hour {
            return Err(ConfigError::new(
                "budgets.owner_recipients_per_day",
                "must be at least budgets.owner_recipients_per_hour",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn budgets_are_set_by_environment_and_checked() {
        let load = |vars: &[(&str, &str)]| {
            Config::load(
                None,
                vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            )
        };
        let c = load(&[("THWONK_BUDGETS_THWONK_RECIPIENTS_PER_HOUR", "7")]).unwrap();
        assert_eq!(c.budgets.thwonk_recipients_per_hour, 7);
        let e = load(&[("THWONK_BUDGETS_THWONKS_PER_OWNER", "0")]).unwrap_err();
        assert_eq!(e.key, "budgets.thwonks_per_owner");
        let e = load(&[("THWONK_BUDGETS_OWNER_RECIPIENTS_PER_DAY", "10")]).unwrap_err();
        assert_eq!(e.key, "budgets.owner_recipients_per_day");
    }
}
