//! Draining a thwonk's queued mail in arrival order, under its lease: how a message job runs
//! its message, and how a tick or a request first runs the mail that arrived before it.

use crate::RunnerError;
use crate::commit::{LogLines, commit_and_dispatch};
use crate::execute::RunTrigger;
use crate::lease::renew;
use crate::state::RunnerState;
use thwonk_core::time::now_ms;
use thwonk_store::CommitResult;
use thwonk_thoonk::JobQueue;
use tracing::{Instrument, info_span, warn};

/// How a message run reads in the log.
const MESSAGE_LINES: LogLines = LogLines {
    committed: "run committed",
    dropped: "message already processed; run dropped",
};

/// Process the thwonk's queued messages oldest first, up to and including `target`; with
/// `past_target`, then also those that were already queued when `target` was done. Call
/// only while holding the thwonk's lease for `owner`.
///
/// The second part is for latency: a message that arrived while this task held the lease
/// had its own job put back by another task (the lease was busy, and a put-back job comes
/// back only with a later take, up to a second on an idle queue). Its job then finds it
/// processed. Messages that arrive after that point have jobs of their own, so the drain
/// still ends under a steady stream of mail.
pub(crate) async fn drain_until(
    st: &RunnerState,
    thwonk_id: &str,
    target: &str,
    owner: &str,
    outbound: &JobQueue,
    past_target: bool,
) -> Result<(), RunnerError> {
    let Some(thwonk) = st.store.thwonk(thwonk_id).await? else {
        return Ok(());
    };
    // Set once `target` is done: only messages received up to then are drained after it.
    let mut horizon_ms: Option<i64> = None;
    while let Some(msg) = st.store.next_queued_message(thwonk_id).await? {
        if horizon_ms.is_some_and(|h| msg.received_at_ms > h) {
            break;
        }
        let done = msg.id == target;
        // The run id is made by the run, which records it on the span at once.
        let span = info_span!("run", thwonk = %thwonk.address, message = %msg.id, run = tracing::field::Empty);
        let mut run = st
            .execute(&thwonk, RunTrigger::Message(&msg))
            .instrument(span.clone())
            .await?;
        let result =
            commit_and_dispatch(st, outbound, &span, &mut run.commit, MESSAGE_LINES).await?;
        if result == CommitResult::Committed && !run.auto_replies.is_empty() {
            // After the commit: a crash in between lets one more reply through, no more.
            if let Err(e) = st
                .store
                .record_auto_replies(&thwonk.id, &run.auto_replies, now_ms())
                .await
            {
                warn!(thwonk = %thwonk.address, error = %e, "cannot record the run's auto-replies");
            }
        }
        if done {
            if !past_target {
                break;
            }
            horizon_ms.get_or_insert_with(now_ms);
        }
        if !renew(st, thwonk_id, owner).await? {
            // Another runner took over after our lease expired; it continues in order.
            break;
        }
    }
    Ok(())
}

/// Run the thwonk's mail that was queued up to `before_ms` (and no later mail), so that a
/// tick or a request at `before_ms` follows it in arrival order.
pub(crate) async fn drain_before(
    st: &RunnerState,
    thwonk_id: &str,
    before_ms: i64,
    owner: &str,
    outbound: &JobQueue,
) -> Result<(), RunnerError> {
    if let Some(last) = st
        .store
        .last_queued_message_at(thwonk_id, before_ms)
        .await?
    {
        drain_until(st, thwonk_id, &last, owner, outbound, false).await?;
    }
    Ok(())
}
