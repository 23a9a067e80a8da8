//! Sending budgets over time (`[budgets]`), counted in SQL so that they hold across runner
//! processes and restarts, and the domains an admin grants an owner.
//!
//! A run's sends are counted in its commit transaction, in the rows of `budget_counts` for
//! its thwonk and its owner, one row per fixed window (clock minute, clock hour, UTC day).
//! The count is an upsert and the check reads the row back in the same transaction: on
//! PostgreSQL the upsert holds the row's lock until the commit, so two runners committing at
//! once for one owner are counted one after the other; on SQLite the whole transaction holds
//! the write lock. A run that would go past a budget rolls back: nothing of it is written.

use sqlx::{Any, Row, Transaction};
use thwonk_core::time::now_ms;

use crate::{NewOutbox, Result, Store};

/// Windows older than this are pruned when their scope next counts.
const KEEP_WINDOWS_MS: i64 = 2 * DAY_MS;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Whose sends a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetScope {
    /// The run's thwonk.
    Thwonk,
    /// Every thwonk of the run's thwonk's owner (a thwonk without an owner has none).
    Owner,
}

impl BudgetScope {
    fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Thwonk => "thwonk",
            BudgetScope::Owner => "owner",
        }
    }
}

/// A fixed window: the clock minute, the clock hour, the UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetWindow {
    Minute,
    Hour,
    Day,
}

impl BudgetWindow {
    pub fn ms(self) -> i64 {
        match self {
            BudgetWindow::Minute => MINUTE_MS,
            BudgetWindow::Hour => HOUR_MS,
            BudgetWindow::Day => DAY_MS,
        }
    }

    /// The start of the window that holds `at_ms`.
    pub fn start(self, at_ms: i64) -> i64 {
        at_ms - at_ms.rem_euclid(self.ms())
    }
}

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Outgoing messages (outbox rows).
    Messages,
    /// Envelope recipients over all outbox rows.
    Recipients,
}

/// One budget a run's commit is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Its setting (`budgets.thwonk_recipients_per_hour`), named in the refusal.
    pub name: &'static str,
    pub scope: BudgetScope,
    pub window: BudgetWindow,
    pub counts: Counted,
    pub limit: i64,
}

/// A commit refused because its sends would go past `name`: nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    pub name: &'static str,
    pub limit: i64,
    /// What the window would have counted with this run.
    pub would_be: i64,
    /// When the window ends and the budget is whole again, ms.
    pub resets_at_ms: i64,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sending budget {} ({}) reached: this run's sends would make {}; it resets at {}; \
             nothing of this run took effect",
            self.name,
            self.limit,
            self.would_be,
            thwonk_core::time::rfc3339_millis(self.resets_at_ms)
        )
    }
}

impl Store {
    /// Count a committing run in `tx`: one run for its thwonk's minute, and when `counted`
    /// (the run succeeded) its messages and recipients in every window of `budgets` for its
    /// thwonk and its owner. The first budget gone past, if any (the caller rolls back).
    pub(crate) async fn count_budgets(
        tx: &mut Transaction<'static, Any>,
        thwonk_id: &str,
        outbox: &[NewOutbox],
        counted: bool,
        budgets: &[Budget],
        now: i64,
    ) -> Result<Option<OverBudget>> {
        let (messages, recipients) = if counted {
            (
                outbox.len() as i64,
                outbox.iter().map(|m| m.rcpt_to.len() as i64).sum::<i64>(),
            )
        } else {
            (0, 0)
        };
        let owner: Option<Option<String>> =
            sqlx::query_scalar("SELECT owner_id FROM thwonks WHERE id = $1")
                .bind(thwonk_id)
                .fetch_optional(&mut **tx)
                .await?;
        let owner = owner.flatten();
        let mut windows: Vec<(BudgetScope, BudgetWindow)> =
            vec![(BudgetScope::Thwonk, BudgetWindow::Minute)];
        for b in budgets {
            if !windows.contains(&(b.scope, b.window)) {
                windows.push((b.scope, b.window));
            }
        }
        let mut pruned: Vec<BudgetScope> = Vec::new();
        for (scope, window) in windows {
            let scope_id = match scope {
                BudgetScope::Thwonk => thwonk_id,
                BudgetScope::Owner => match &owner {
                    Some(o) => o.as_str(),
                    None => continue,
                },
            };
            let runs = i64::from(scope == BudgetScope::Thwonk && window == BudgetWindow::Minute);
            if messages == 0 && runs == 0 {
                continue;
            }
            if !pruned.contains(&scope) {
                pruned.push(scope);
                sqlx::query(
                    "DELETE FROM budget_counts WHERE scope = $1 AND scope_id = $2 AND bucket_ms < $3",
                )
                .bind(scope.as_str())
                .bind(scope_id)
                .bind(now - KEEP_WINDOWS_MS)
                .execute(&mut **tx)
                .await?;
            }
            let bucket = window.start(now);
            let row = sqlx::query(
                "INSERT INTO budget_counts \
                 (scope, scope_id, window_ms, bucket_ms, runs, messages, recipients) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (scope, scope_id, window_ms, bucket_ms) DO UPDATE SET \
                 runs = budget_counts.runs + excluded.runs, \
                 messages = budget_counts.messages + excluded.messages, \
                 recipients = budget_counts.recipients + excluded.recipients \
                 RETURNING messages, recipients",
            )
            .bind(scope.as_str())
            .bind(scope_id)
            .bind(window.ms())
            .bind(bucket)
            .bind(runs)
            .bind(messages)
            .bind(recipients)
            .fetch_one(&mut **tx)
            .await?;
            let used_messages: i64 = row.try_get(0)?;
            let used_recipients: i64 = row.try_get(1)?;
            if messages == 0 {
                continue;
            }
            for b in budgets
                .iter()
                .filter(|b| b.scope == scope && b.window == window)
            {
                let would_be = match b.counts {
                    Counted::Messages => used_messages,
                    Counted::Recipients => used_recipients,
                };
                if would_be > b.limit {
                    return Ok(Some(OverBudget {
                        name: b.name,
                        limit: b.limit,
                        would_be,
                        resets_at_ms: bucket + window.ms(),
                    }));
                }
            }
        }
        Ok(None)
    }

    /// Runs of `thwonk_id` committed in the clock minute that holds `at_ms`.
    pub async fn runs_this_minute(&self, thwonk_id: &str, at_ms: i64) -> Result<i64> {
        let runs: Option<i64> = sqlx::query_scalar(
            "SELECT runs FROM budget_counts \
             WHERE scope = 'thwonk' AND scope_id = $1 AND window_ms = $2 AND bucket_ms = $3",
        )
        .bind(thwonk_id)
        .bind(MINUTE_MS)
        .bind(BudgetWindow::Minute.start(at_ms))
        .fetch_optional(&self.pool)
        .await?;
        Ok(runs.unwrap_or(0))
    }

    /// How many thwonks `user_id` owns.
    pub async fn count_thwonks_owned_by(&self, user_id: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM thwonks WHERE owner_id = $1")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Grant `user_id` the domain `domain` (lower case). False when it had it already.
    pub async fn add_user_domain(&self, user_id: &str, domain: &str) -> Result<bool> {
        let added = sqlx::query(
            "INSERT INTO user_domains (user_id, domain, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, domain) DO NOTHING",
        )
        .bind(user_id)
        .bind(domain)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(added == 1)
    }

    /// Take the domain back (its thwonks stay). False when the user did not have it.
    pub async fn remove_user_domain(&self, user_id: &str, domain: &str) -> Result<bool> {
        let removed = sqlx::query("DELETE FROM user_domains WHERE user_id = $1 AND domain = $2")
            .bind(user_id)
            .bind(domain)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(removed == 1)
    }

    /// The domains granted to `user_id`, in order.
    pub async fn user_domains(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar(
                "SELECT domain FROM user_domains WHERE user_id = $1 ORDER BY domain",
            )
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?,
        )
    }
}
