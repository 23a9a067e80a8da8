//! After a run: commit it, count it, log it, queue its outgoing mail, apply its feed
//! operations, publish its jobs. The one tail that every trigger's run goes through.

use crate::RunnerError;
use crate::state::RunnerState;
use std::time::Duration;
use thwonk_core::config::BudgetsConfig;
use thwonk_core::run::ErrorKind;
use thwonk_core::run::RunStatus;
use thwonk_store::{Budget, BudgetScope, BudgetWindow, CommitResult, Counted, RunCommit};
use thwonk_thoonk::JobQueue;
use tracing::{Span, info, warn};

/// Attempts to queue a committed outbox row before leaving it to the reconciler.
const OUTBOUND_PUBLISH_ATTEMPTS: u32 = 5;

/// How a run's two endings read in the log.
pub(crate) struct LogLines {
    pub committed: &'static str,
    pub dropped: &'static str,
}

/// Commit `commit` in one transaction; once committed, count it, log it in `span`, queue its
/// outbox rows for egress and apply its feed operations (both after the commit: a failure
/// there delays them, never loses them). A run that Thwonk itself failed (the store went
/// away mid-run, say) commits nothing, so its trigger is not used up: that is an error, and
/// the job is retried.
pub(crate) async fn commit_and_dispatch(
    st: &RunnerState,
    outbound: &JobQueue,
    span: &Span,
    commit: &mut RunCommit,
    lines: LogLines,
) -> Result<CommitResult, RunnerError> {
    if commit.run.error_kind == Some(ErrorKind::Internal) {
        return Err(RunnerError::Internal(
            commit.run.error_message.clone().unwrap_or_default(),
        ));
    }
    let budgets = send_budgets(&st.config.budgets);
    let mut committed = st.store.commit_run_within(commit, &budgets).await;
    if let Ok(Err(over)) = &committed {
        // Over a sending budget: nothing of the run took effect; it is recorded as failed,
        // saying which budget, its value and when it resets.
        span.in_scope(|| warn!(run = %commit.run.id, budget = over.name, limit = over.limit, "run over a sending budget; its effects dropped"));
        refuse_over_budget(commit, &over.to_string());
        committed = st.store.commit_run_within(commit, &budgets).await;
    }
    if committed.is_err() {
        thwonk_core::metrics::RUN_COMMIT_FAILURES.inc(&[]);
    }
    let result = match committed? {
        Ok(result) => result,
        // A failed run sends nothing, so it cannot be over a sending budget.
        Err(over) => return Err(RunnerError::Internal(over.to_string())),
    };
    match result {
        CommitResult::Committed => {
            thwonk_control::metrics::record_run(&commit.run);
            span.in_scope(|| {
                info!(
                    run = %commit.run.id,
                    status = %commit.run.status,
                    error = commit.run.error_message.as_deref().unwrap_or(""),
                    sends = commit.outbox.len(),
                    instructions = commit.run.instructions,
                    "{}",
                    lines.committed
                )
            });
            for row in &commit.outbox {
                queue_outbound(outbound, &row.id).await;
            }
            thwonk_control::feeds::apply_after_commit(
                &st.store,
                &st.redis,
                &commit.run.thwonk_id,
                st.config.feeds.max_items,
            )
            .await;
            thwonk_control::script_jobs::publish_after_commit(
                &st.store,
                &st.redis,
                &commit.jobs.publish,
            )
            .await;
        }
        CommitResult::AlreadyProcessed => {
            span.in_scope(|| info!(run = %commit.run.id, "{}", lines.dropped));
        }
    }
    Ok(result)
}

/// Queue an outbox row for delivery. The row is already committed, so a failure here delays
/// the mail but does not lose it: the reconciler re-queues rows whose job is missing.
async fn queue_outbound(outbound: &JobQueue, outbox_id: &str) {
    let payload = thwonk_thoonk::outbound_payload(outbox_id);
    for attempt in 1..=OUTBOUND_PUBLISH_ATTEMPTS {
        match outbound.publish(outbox_id, &payload).await {
            Ok(_) => return,
            Err(e) => {
                warn!(outbox = %outbox_id, attempt, error = %e, "cannot queue outgoing mail");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
    }
}

/// The sending budgets of `[budgets]`, as the store checks them in a run's commit.
pub(crate) fn send_budgets(b: &BudgetsConfig) -> Vec<Budget> {
    let budget = |name, scope, window, counts, limit: u64| Budget {
        name,
        scope,
        window,
        counts,
        limit: i64::try_from(limit).unwrap_or(i64::MAX),
    };
    use BudgetScope::{Owner, Thwonk};
    use BudgetWindow::{Day, Hour, Minute};
    use Counted::{Messages, Recipients};
    vec![
        budget(
            "budgets.thwonk_messages_per_minute",
            Thwonk,
            Minute,
            Messages,
            b.thwonk_messages_per_minute,
        ),
        budget(
            "budgets.thwonk_recipients_per_hour",
            Thwonk,
            Hour,
            Recipients,
            b.thwonk_recipients_per_hour,
        ),
        budget(
            "budgets.thwonk_recipients_per_day",
            Thwonk,
            Day,
            Recipients,
            b.thwonk_recipients_per_day,
        ),
        budget(
            "budgets.owner_messages_per_minute",
            Owner,
            Minute,
            Messages,
            b.owner_messages_per_minute,
        ),
        budget(
            "budgets.owner_recipients_per_hour",
            Owner,
            Hour,
            Recipients,
            b.owner_recipients_per_hour,
        ),
        budget(
            "budgets.owner_recipients_per_day",
            Owner,
            Day,
            Recipients,
            b.owner_recipients_per_day,
        ),
    ]
}

/// Turn `commit` into the record of a run refused for `why` (`LimitError`): no mail, no
/// files, no feed items, no jobs; its logs are kept. A request run answers with the error.
fn refuse_over_budget(commit: &mut RunCommit, why: &str) {
    commit.run.status = RunStatus::Error;
    commit.run.error_kind = Some(ErrorKind::LimitError);
    commit.run.error_message = Some(why.to_string());
    commit.run.error_stack = None;
    commit.vfs.clear();
    commit.outbox.clear();
    commit.feed_ops.clear();
    commit.jobs.publish.clear();
}
