//! One run, from its trigger (a stored message, a schedule tick, an HTTP request) to the
//! transaction that
//! commits it.
//!
//! The sandbox returns buffered effects; here they become rows: sends are composed into
//! MIME (`thwonk-mail`) and become outbox rows, VFS operations pass through as they are, feed
//! operations are renamed to the thwonk's Thoonk feeds (`ADDRESS/NAME`). If
//! any send cannot be composed the whole run fails, as if the script had thrown: a run's
//! effects happen all together or not at all.

use crate::RunnerError;
use crate::vfs::StoreVfs;
use thwonk_core::ids::{new_id, new_token};
use thwonk_core::run::{
    ErrorKind, RunError, RunOutcome, RunRequest, RunStatus, SandboxLimits, SendKind, ThwonkContext,
    Trigger,
};
use thwonk_core::status::TriggerKind;
use thwonk_core::time::now_ms;
use thwonk_mail::{ComposeContext, InboundEnvelope};
use thwonk_sandbox::WorkerPool;
use thwonk_store::{NewOutbox, RunCommit, RunRecord, Store, StoredMessage, Thwonk};

/// Run the thwonk's active script on a stored message, in a sandbox worker of `pool`, and
/// build what to commit. Does not touch the database except to read the script and files.
pub async fn execute_message(
    store: &Store,
    pool: &WorkerPool,
    limits: &SandboxLimits,
    thwonk: &Thwonk,
    msg: &StoredMessage,
) -> Result<RunCommit, RunnerError> {
    let run_id = new_id();
    // The caller's `run` span declares the field; from here on every line names the run.
    tracing::Span::current().record("run", run_id.as_str());
    let started_at_ms = now_ms();
    let Some(script) = store.active_script(&thwonk.id).await? else {
        let outcome = RunOutcome::failed(ErrorKind::NoHandler, "the thwonk has no active script");
        return Ok(commit_for(
            &run_id,
            thwonk,
            Some(msg),
            None,
            0,
            started_at_ms,
            outcome,
            Vec::new(),
        ));
    };
    let to = msg
        .rcpt_to
        .first()
        .cloned()
        .unwrap_or_else(|| thwonk.address.to_string());
    let view = thwonk_mail::parse_message(
        &msg.raw,
        &InboundEnvelope {
            id: &msg.id,
            mail_from: &msg.mail_from,
            to: &to,
            recipients: &msg.rcpt_to,
            received_at_ms: msg.received_at_ms,
        },
    );
    let request = RunRequest {
        run_id: run_id.clone(),
        thwonk: context(thwonk),
        script: script.source,
        trigger: Trigger::Message(view),
        // The trigger's time, not the wall clock: a retried run sees the same `now()`.
        now_ms: msg.received_at_ms,
        limits: limits.clone(),
    };
    let outcome = run_in_sandbox(store, pool, thwonk, request).await?;
    let (outcome, outbox) = compose_sends(outcome, thwonk, Some(&msg.raw));
    Ok(commit_for(
        &run_id,
        thwonk,
        Some(msg),
        None,
        script.version,
        started_at_ms,
        outcome,
        outbox,
    ))
}

/// Run the thwonk's active script's `onSchedule` for the tick `at_ms` of `schedule`, and
/// build what to commit (guarded on the tick not having committed before). `now()` in the
/// script is the tick's time, so a retried tick sees the same clock.
pub async fn execute_schedule(
    store: &Store,
    pool: &WorkerPool,
    limits: &SandboxLimits,
    thwonk: &Thwonk,
    schedule: &str,
    at_ms: i64,
) -> Result<RunCommit, RunnerError> {
    let run_id = new_id();
    // The caller's `run` span declares the field; from here on every line names the run.
    tracing::Span::current().record("run", run_id.as_str());
    let started_at_ms = now_ms();
    let Some(script) = store.active_script(&thwonk.id).await? else {
        let outcome = RunOutcome::failed(ErrorKind::NoHandler, "the thwonk has no active script");
        return Ok(commit_for(
            &run_id,
            thwonk,
            None,
            Some(at_ms),
            0,
            started_at_ms,
            outcome,
            Vec::new(),
        ));
    };
    let at = thwonk_core::time::rfc3339_millis(at_ms);
    let request = RunRequest {
        run_id: run_id.clone(),
        thwonk: context(thwonk),
        script: script.source,
        trigger: Trigger::Schedule {
            at,
            schedule: schedule.to_string(),
        },
        now_ms: at_ms,
        limits: limits.clone(),
    };
    let outcome = run_in_sandbox(store, pool, thwonk, request).await?;
    // No incoming message: a forward has nothing to forward (composing it fails the run).
    let (outcome, outbox) = compose_sends(outcome, thwonk, None);
    Ok(commit_for(
        &run_id,
        thwonk,
        None,
        Some(at_ms),
        script.version,
        started_at_ms,
        outcome,
        outbox,
    ))
}

/// Run the thwonk's active script's `onRequest` with `body` as run `run_id`, and build what
/// to commit (guarded on the run id not having committed before) along with the handler's
/// return value. `now()` in the script is the time the request was queued.
pub async fn execute_request(
    store: &Store,
    pool: &WorkerPool,
    limits: &SandboxLimits,
    thwonk: &Thwonk,
    run_id: &str,
    body: &serde_json::Value,
    queued_at_ms: i64,
) -> Result<(RunCommit, Option<serde_json::Value>), RunnerError> {
    let started_at_ms = now_ms();
    let Some(script) = store.active_script(&thwonk.id).await? else {
        let outcome = RunOutcome::failed(ErrorKind::NoHandler, "the thwonk has no active script");
        let mut commit = commit_for(
            run_id,
            thwonk,
            None,
            None,
            0,
            started_at_ms,
            outcome,
            Vec::new(),
        );
        commit.run.trigger = TriggerKind::Request;
        return Ok((commit, None));
    };
    let request = RunRequest {
        run_id: run_id.to_string(),
        thwonk: context(thwonk),
        script: script.source,
        trigger: Trigger::Request { body: body.clone() },
        now_ms: queued_at_ms,
        limits: limits.clone(),
    };
    let mut outcome = run_in_sandbox(store, pool, thwonk, request).await?;
    let value = outcome.response.take();
    // No incoming message: a forward has nothing to forward (composing it fails the run).
    let (outcome, outbox) = compose_sends(outcome, thwonk, None);
    let value = if outcome.is_ok() { value } else { None };
    let mut commit = commit_for(
        run_id,
        thwonk,
        None,
        None,
        script.version,
        started_at_ms,
        outcome,
        outbox,
    );
    commit.run.trigger = TriggerKind::Request;
    Ok((commit, value))
}

/// Who the script runs as.
fn context(thwonk: &Thwonk) -> ThwonkContext {
    ThwonkContext {
        address: thwonk.address.to_string(),
        domain: thwonk.address.domain().to_string(),
    }
}

/// Run `request` in a sandbox worker of `pool`, its file reads served from the store.
async fn run_in_sandbox(
    store: &Store,
    pool: &WorkerPool,
    thwonk: &Thwonk,
    request: RunRequest,
) -> Result<RunOutcome, RunnerError> {
    let mut reader = StoreVfs::new(store.clone(), thwonk.id.clone());
    let pool = pool.clone();
    // Blocking: the pool waits on the worker's pipe and serves its file reads meanwhile. A
    // worker that could not start is not the script's fault: the job is retried later.
    tokio::task::spawn_blocking(move || pool.run(&request, &mut reader))
        .await
        .map_err(|e| RunnerError::Sandbox(e.to_string()))?
        .map_err(|e| RunnerError::Sandbox(e.to_string()))
}

/// Compose every send of a successful run. A send that cannot be composed fails the run.
fn compose_sends(
    mut outcome: RunOutcome,
    thwonk: &Thwonk,
    original: Option<&[u8]>,
) -> (RunOutcome, Vec<NewOutbox>) {
    if !outcome.is_ok() {
        return (outcome, Vec::new());
    }
    let date_ms = now_ms();
    let mut outbox = Vec::with_capacity(outcome.effects.sends.len());
    for (i, send) in outcome.effects.sends.iter().enumerate() {
        let original = match send.kind {
            SendKind::Forward { .. } => original,
            _ => None,
        };
        // The row's own bounce token: its envelope sender is bounces+TOKEN@{thwonk domain}.
        let bounce_token = new_token();
        let ctx = ComposeContext {
            thwonk_address: thwonk.address.as_str(),
            date_ms,
            original,
            bounce_token: &bounce_token,
        };
        match thwonk_mail::compose(send, &ctx) {
            Ok(c) => outbox.push(NewOutbox {
                id: new_id(),
                mail_from: c.mail_from,
                rcpt_to: c.rcpt_to,
                raw: c.raw,
                bounce_token: Some(bounce_token),
            }),
            Err(e) => {
                outcome.status = RunStatus::Error;
                outcome.error = Some(RunError {
                    kind: ErrorKind::ScriptError,
                    message: format!("send #{} ({}): {e}", i + 1, send.id),
                    stack: None,
                });
                outcome.effects = Default::default();
                return (outcome, Vec::new());
            }
        }
    }
    (outcome, outbox)
}

// One parameter per part of the run record; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
fn commit_for(
    run_id: &str,
    thwonk: &Thwonk,
    msg: Option<&StoredMessage>,
    schedule_tick_ms: Option<i64>,
    script_version: i64,
    started_at_ms: i64,
    outcome: RunOutcome,
    outbox: Vec<NewOutbox>,
) -> RunCommit {
    let (error_kind, error_message, error_stack) = match &outcome.error {
        Some(e) => (Some(e.kind), Some(e.message.clone()), e.stack.clone()),
        None => (None, None, None),
    };
    let ok = outcome.is_ok();
    RunCommit {
        run: RunRecord {
            id: run_id.to_string(),
            thwonk_id: thwonk.id.clone(),
            message_id: msg.map(|m| m.id.clone()),
            trigger: if schedule_tick_ms.is_some() {
                TriggerKind::Schedule
            } else {
                TriggerKind::Message
            },
            script_version,
            status: outcome.status,
            error_kind,
            error_message,
            error_stack,
            logs: outcome.logs,
            logs_truncated: outcome.logs_truncated,
            instructions: outcome.cost.instructions as i64,
            wall_ms: outcome.cost.wall_ms as i64,
            started_at_ms,
            finished_at_ms: now_ms(),
        },
        vfs: if ok {
            outcome.effects.writes
        } else {
            Vec::new()
        },
        outbox: if ok { outbox } else { Vec::new() },
        feed_ops: if ok {
            crate::feeds::thoonk_feed_ops(thwonk, &outcome.effects.feed_ops)
        } else {
            Vec::new()
        },
        schedule_tick_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thwonk_core::Address;
    use thwonk_core::run::{Cost, Effects, SendRequest, VfsOp};
    use thwonk_core::status::ThwonkStatus;

    fn thwonk() -> Thwonk {
        Thwonk {
            id: "t1".into(),
            address: Address::parse("list@example.org").unwrap(),
            status: ThwonkStatus::Active,
            active_version: Some(1),
            schedule: None,
            created_at_ms: 0,
        }
    }

    fn forwarding_outcome() -> RunOutcome {
        RunOutcome {
            status: RunStatus::Ok,
            error: None,
            effects: Effects {
                sends: vec![SendRequest {
                    id: "r1.1".into(),
                    kind: SendKind::Forward {
                        original_message_id: "m1".into(),
                        subject_prefix: Some("list".into()),
                    },
                    to: vec!["bob@example.net".into()],
                    ..Default::default()
                }],
                writes: vec![VfsOp::Write {
                    path: "n".into(),
                    content: "1".into(),
                }],
                feed_ops: Vec::new(),
            },
            logs: Vec::new(),
            logs_truncated: false,
            cost: Cost::default(),
            response: None,
        }
    }

    #[test]
    fn a_forward_with_nothing_to_forward_fails_the_whole_run() {
        let (outcome, outbox) = compose_sends(forwarding_outcome(), &thwonk(), None);
        assert_eq!(outcome.status, RunStatus::Error);
        assert_eq!(outcome.error.unwrap().kind, ErrorKind::ScriptError);
        assert!(outbox.is_empty());
        assert!(outcome.effects.writes.is_empty(), "no partial effects");
    }

    #[test]
    fn a_forward_of_the_message_composes_one_outbox_row() {
        let original = b"From: a@example.net\r\nSubject: hi\r\n\r\nbody\r\n";
        let (outcome, outbox) = compose_sends(forwarding_outcome(), &thwonk(), Some(original));
        assert!(outcome.is_ok(), "{:?}", outcome.error);
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].rcpt_to, vec!["bob@example.net"]);
        let raw = String::from_utf8_lossy(&outbox[0].raw);
        assert!(raw.contains("Subject: [list] hi"), "{raw}");
        assert!(raw.contains("\r\n\r\nbody\r\n"), "{raw}");
    }
}
