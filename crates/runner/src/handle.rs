//! One `inbound` job, decoded once ([`InboundJob`]) and handled by its kind. Every kind runs
//! through the same path: the thwonk's lease ([`with_lease`]), the mail queued before it
//! ([`crate::drain`]), one run ([`execute`]) and one commit ([`commit_and_dispatch`]).
//! Kinds: message, schedule tick, request, a script job's result.

use crate::RunnerError;
use crate::commit::{LogLines, commit_and_dispatch};
use crate::drain::{drain_before, drain_until};
use crate::execute::RunTrigger;
use crate::lease::with_lease;
use crate::state::{Queues, RunnerState};
use thwonk_control::invoke::InvokeOutcome;
use thwonk_control::jobs::{InboundJob, JobResultJob, RequestJob, ScheduleJob};
use thwonk_core::run::{ErrorKind, RunStatus};
use thwonk_core::status::{MessageStatus, ThwonkStatus};
use thwonk_core::time::now_ms;
use thwonk_store::{CommitResult, Thwonk};
use thwonk_thoonk::Job;
use tracing::{Instrument, info_span};

/// A job result waiting for a disabled thwonk looks again this much later (no attempt counted).
const DISABLED_RETRY_MS: i64 = 60_000;

/// How long a reply outlives its caller's deadline, ms: the caller's clock and the runner's
/// may differ a little, and a reply nobody takes costs only its few bytes until then.
const REPLY_GRACE_MS: i64 = 5_000;

/// Handle one job; an error leaves it to be retried later.
pub(crate) async fn handle(
    st: &RunnerState,
    q: &Queues,
    job: &Job,
    owner: &str,
) -> Result<(), RunnerError> {
    match InboundJob::decode(&job.payload)? {
        InboundJob::Message(m) => message(st, q, job, &m.message_id, owner).await,
        InboundJob::Tick(tick) => schedule_tick(st, q, job, &tick, owner).await,
        InboundJob::Request(req) => request(st, q, job, &req, owner).await,
        InboundJob::JobResult(result) => job_result(st, q, job, &result, owner).await,
    }
}

/// A message's job: the message it names is processed once, in its thwonk's order.
async fn message(
    st: &RunnerState,
    q: &Queues,
    job: &Job,
    message_id: &str,
    owner: &str,
) -> Result<(), RunnerError> {
    // Only where the message stands: its bytes are read once, by the run that drains it.
    let Some(msg) = st.store.message_state(message_id).await? else {
        // Removed after a failed enqueue (the client was told 451), or never stored.
        q.inbound.finish(&job.id, Some("no such message")).await?;
        return Ok(());
    };
    if msg.status != MessageStatus::Queued {
        q.inbound.finish(&job.id, Some(msg.status.as_str())).await?;
        return Ok(());
    }
    let drain = drain_until(st, &msg.thwonk_id, message_id, owner, &q.outbound, true);
    if with_lease(st, &q.inbound, job, &msg.thwonk_id, owner, drain)
        .await?
        .is_none()
    {
        return Ok(());
    }
    q.inbound.finish(&job.id, Some("processed")).await?;
    Ok(())
}

/// A schedule tick's job: under the thwonk's lease, the messages that arrived before the
/// tick first, then `onSchedule`, committed once per tick.
async fn schedule_tick(
    st: &RunnerState,
    q: &Queues,
    job: &Job,
    tick: &ScheduleJob,
    owner: &str,
) -> Result<(), RunnerError> {
    let Some(thwonk) = st.store.thwonk(&tick.thwonk_id).await? else {
        q.inbound.finish(&job.id, Some("no such thwonk")).await?;
        return Ok(());
    };
    if thwonk.status != ThwonkStatus::Active
        || st.store.schedule_tick_ran(&thwonk.id, tick.at_ms).await?
    {
        q.inbound.finish(&job.id, Some("nothing to run")).await?;
        return Ok(());
    }
    let run = run_tick(st, q, &thwonk, tick, owner);
    if with_lease(st, &q.inbound, job, &thwonk.id, owner, run)
        .await?
        .is_none()
    {
        return Ok(());
    }
    q.inbound.finish(&job.id, Some("processed")).await?;
    Ok(())
}

async fn run_tick(
    st: &RunnerState,
    q: &Queues,
    thwonk: &Thwonk,
    tick: &ScheduleJob,
    owner: &str,
) -> Result<(), RunnerError> {
    // Mail that arrived before the tick is part of the day the tick closes; mail after the
    // tick belongs after the tick's run.
    drain_before(st, &thwonk.id, tick.at_ms, owner, &q.outbound).await?;
    let span = info_span!("run", thwonk = %thwonk.address, schedule = %tick.schedule, at_ms = tick.at_ms, run = tracing::field::Empty);
    let trigger = RunTrigger::Tick {
        schedule: &tick.schedule,
        at_ms: tick.at_ms,
    };
    let mut run = st.execute(thwonk, trigger).instrument(span.clone()).await?;
    let lines = LogLines {
        committed: "schedule run committed",
        dropped: "tick already ran; run dropped",
    };
    commit_and_dispatch(st, &q.outbound, &span, &mut run.commit, lines).await?;
    Ok(())
}

/// A request job: under the thwonk's lease, the messages that arrived before it first, then
/// `onRequest`, committed once per request; the outcome is the job's reply.
async fn request(
    st: &RunnerState,
    q: &Queues,
    job: &Job,
    req: &RequestJob,
    owner: &str,
) -> Result<(), RunnerError> {
    let reply_ttl_ms = (req.reply_by_ms - now_ms() + REPLY_GRACE_MS).max(1) as u64;
    let reply = |outcome: &InvokeOutcome| serde_json::to_string(outcome).unwrap_or_default();
    if let Some(done) = st.store.run(&req.request_id).await? {
        // Delivered again after its commit: answer from the record, never run twice.
        let text = reply(&InvokeOutcome::of_record(&done));
        q.inbound
            .finish_with_reply(&job.id, &text, reply_ttl_ms)
            .await?;
        return Ok(());
    }
    if now_ms() > req.reply_by_ms {
        // Its caller has given up (and was told so): running it now would surprise them.
        q.inbound.finish(&job.id, Some("expired")).await?;
        return Ok(());
    }
    let refusal = match st.store.thwonk(&req.thwonk_id).await? {
        None => Some("the thwonk no longer exists"),
        Some(t) if t.status != ThwonkStatus::Active => Some("the thwonk is disabled"),
        Some(_) => None,
    };
    if let Some(why) = refusal {
        let text = reply(&InvokeOutcome::refused(
            &req.request_id,
            ErrorKind::NoHandler,
            why,
        ));
        q.inbound
            .finish_with_reply(&job.id, &text, reply_ttl_ms)
            .await?;
        return Ok(());
    }
    let run = run_request(st, q, req, owner);
    let Some(outcome) = with_lease(st, &q.inbound, job, &req.thwonk_id, owner, run).await? else {
        return Ok(());
    };
    q.inbound
        .finish_with_reply(&job.id, &reply(&outcome), reply_ttl_ms)
        .await?;
    Ok(())
}

async fn run_request(
    st: &RunnerState,
    q: &Queues,
    req: &RequestJob,
    owner: &str,
) -> Result<InvokeOutcome, RunnerError> {
    // Mail that arrived before the request comes first: runs of a thwonk follow arrival;
    // mail that arrived after the request runs after the request.
    drain_before(st, &req.thwonk_id, req.queued_at_ms, owner, &q.outbound).await?;
    let Some(thwonk) = st.store.thwonk(&req.thwonk_id).await? else {
        return Ok(InvokeOutcome::refused(
            &req.request_id,
            ErrorKind::NoHandler,
            "the thwonk no longer exists",
        ));
    };
    let span = info_span!("run", thwonk = %thwonk.address, request = %req.request_id, run = %req.request_id);
    let trigger = RunTrigger::Request {
        run_id: &req.request_id,
        body: &req.body,
        http: req.http.as_ref(),
        queued_at_ms: req.queued_at_ms,
    };
    let mut run = st
        .execute(&thwonk, trigger)
        .instrument(span.clone())
        .await?;
    let lines = LogLines {
        committed: "request run committed",
        dropped: "request already ran; run dropped",
    };
    match commit_and_dispatch(st, &q.outbound, &span, &mut run.commit, lines).await? {
        CommitResult::Committed => {
            let mut outcome = InvokeOutcome::of_record(&run.commit.run);
            outcome.value = if run.commit.run.status == RunStatus::Ok {
                run.value
            } else {
                None
            };
            Ok(outcome)
        }
        // Another delivery committed it first: answer from its record.
        CommitResult::AlreadyProcessed => match st.store.run(&req.request_id).await? {
            Some(done) => Ok(InvokeOutcome::of_record(&done)),
            None => Err(RunnerError::Internal(
                "the request's run was refused but is not recorded".into(),
            )),
        },
    }
}

/// A script job's result: under the thwonk's lease, the messages that arrived before it
/// first, then `onJobResult`, committed once per job (the event and the sweep may both queue
/// it; the commit is guarded on the job's row).
async fn job_result(
    st: &RunnerState,
    q: &Queues,
    job: &Job,
    result: &JobResultJob,
    owner: &str,
) -> Result<(), RunnerError> {
    match st.store.script_job(&result.job_id).await? {
        Some(j) if j.thwonk_id == result.thwonk_id && j.result_run_id.is_none() => {}
        Some(j) if j.thwonk_id == result.thwonk_id => {
            q.inbound
                .finish(&job.id, Some("result already taken"))
                .await?;
            return Ok(());
        }
        _ => {
            q.inbound.finish(&job.id, Some("no such job")).await?;
            return Ok(());
        }
    }
    let Some(thwonk) = st.store.thwonk(&result.thwonk_id).await? else {
        q.inbound.finish(&job.id, Some("no such thwonk")).await?;
        return Ok(());
    };
    if thwonk.status != ThwonkStatus::Active {
        // Kept, not dropped: the result runs once the thwonk is enabled again.
        q.inbound
            .retry_at(
                &job.id,
                now_ms() + DISABLED_RETRY_MS,
                "the thwonk is disabled",
            )
            .await?;
        return Ok(());
    }
    let run = run_job_result(st, q, &thwonk, result, owner);
    if with_lease(st, &q.inbound, job, &thwonk.id, owner, run)
        .await?
        .is_none()
    {
        return Ok(());
    }
    q.inbound.finish(&job.id, Some("processed")).await?;
    Ok(())
}

async fn run_job_result(
    st: &RunnerState,
    q: &Queues,
    thwonk: &Thwonk,
    result: &JobResultJob,
    owner: &str,
) -> Result<(), RunnerError> {
    drain_before(st, &thwonk.id, result.at_ms, owner, &q.outbound).await?;
    let span = info_span!("run", thwonk = %thwonk.address, job = %result.job_id, run = tracing::field::Empty);
    let mut run = st
        .execute(thwonk, RunTrigger::JobResult(result))
        .instrument(span.clone())
        .await?;
    let lines = LogLines {
        committed: "job result run committed",
        dropped: "job result already taken; run dropped",
    };
    commit_and_dispatch(st, &q.outbound, &span, &mut run.commit, lines).await?;
    Ok(())
}
