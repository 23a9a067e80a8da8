//! One run, from its trigger (a stored message, a schedule tick, an HTTP request, a job's
//! result) to what the transaction commits: [`execute`] is the one path for all of them.
//!
//! The sandbox returns buffered effects; here they become rows: sends are composed into
//! MIME (`thwonk-mail`) and become outbox rows, VFS operations pass through as they are, feed
//! operations are renamed to the thwonk's Thoonk feeds (`THWONK_ID/NAME`), jobs to its Thoonk
//! job queues (`ADDRESS/QUEUE`). If
//! any send cannot be composed the whole run fails, as if the script had thrown: a run's
//! effects happen all together or not at all.

use crate::RunnerError;
use thwonk_control::jobs::JobResultJob;
use thwonk_control::vfs::StoreVfs;
use thwonk_core::Config;
use thwonk_core::ids::new_id;
use thwonk_core::run::{
    ErrorKind, RunOutcome, RunRequest, SendKind, ThwonkContext, Trigger, reply_key,
};
use thwonk_core::status::TriggerKind;
use thwonk_core::time::now_ms;
use thwonk_mail::InboundEnvelope;
use thwonk_sandbox::WorkerPool;
use thwonk_store::{NewOutbox, RunCommit, RunJobs, RunRecord, Store, StoredMessage, Thwonk};
use thwonk_thoonk::Redis;

/// What started a run, with what that trigger brings to it.
#[derive(Debug, Clone, Copy)]
pub enum RunTrigger<'a> {
    /// A stored message: the script's `onMessage` (or a classic script) sees it as `msg`.
    Message(&'a StoredMessage),
    /// A schedule tick at `at_ms` of `schedule`: `onSchedule`.
    Tick { schedule: &'a str, at_ms: i64 },
    /// An HTTP invoke: `onRequest` with `body`, as run `run_id` (fixed by the caller).
    Request {
        run_id: &'a str,
        body: &'a serde_json::Value,
        http: Option<&'a thwonk_core::run::HttpRequestView>,
        queued_at_ms: i64,
    },
    /// A worker's result for a job the script published: `onJobResult`.
    JobResult(&'a JobResultJob),
}

impl RunTrigger<'_> {
    /// The run record's `trigger`.
    fn kind(&self) -> TriggerKind {
        match self {
            RunTrigger::Message(_) => TriggerKind::Message,
            RunTrigger::Tick { .. } => TriggerKind::Schedule,
            RunTrigger::Request { .. } => TriggerKind::Request,
            RunTrigger::JobResult(_) => TriggerKind::JobResult,
        }
    }

    /// `now()` in the script: the trigger's time, not the wall clock, so a retried run sees
    /// the same clock.
    fn now_ms(&self) -> i64 {
        match self {
            RunTrigger::Message(msg) => msg.received_at_ms,
            RunTrigger::Tick { at_ms, .. } => *at_ms,
            RunTrigger::Request { queued_at_ms, .. } => *queued_at_ms,
            RunTrigger::JobResult(result) => result.at_ms,
        }
    }
}

/// A run done, not yet committed.
#[derive(Debug)]
pub struct Executed {
    pub commit: RunCommit,
    /// The replies (`reply_key`) the run's `thwonk.reply` calls sent, when it succeeded:
    /// recorded after the commit (`runner.auto_reply_interval_secs`).
    pub auto_replies: Vec<String>,
    /// `onRequest`'s return value, for a request run that succeeded.
    pub value: Option<serde_json::Value>,
}

/// Run the thwonk's active script for `trigger` in a sandbox worker of `pool` (with the
/// sandbox limits, the auto-reply interval and the public base URL of `config`), and build what
/// to commit (a tick's commit is guarded on the tick, a request's on its run id). Does not
/// touch the database except to read the script and files.
pub async fn execute(
    store: &Store,
    redis: &Redis,
    pool: &WorkerPool,
    config: &Config,
    thwonk: &Thwonk,
    trigger: RunTrigger<'_>,
) -> Result<Executed, RunnerError> {
    let limits = &config.limits;
    let auto_reply_interval_ms =
        i64::try_from(config.runner.auto_reply_interval.as_millis()).unwrap_or(i64::MAX);
    let public_base_url = config.public.base_url.as_str();
    let run_id = match trigger {
        RunTrigger::Request { run_id, .. } => run_id.to_string(),
        _ => new_id(),
    };
    // The caller's `run` span declares the field; from here on every line names the run.
    tracing::Span::current().record("run", run_id.as_str());
    let started_at_ms = now_ms();
    let Some(script) = store.active_script(&thwonk.id).await? else {
        let outcome = RunOutcome::failed(ErrorKind::NoHandler, "the thwonk has no active script");
        return Ok(Executed {
            commit: commit_for(
                &run_id,
                thwonk,
                trigger,
                0,
                started_at_ms,
                outcome,
                Vec::new(),
            ),
            auto_replies: Vec::new(),
            value: None,
        });
    };
    // RFC 3834: the replies this thwonk sent the message's envelope sender lately are not
    // sent again (`thwonk.reply` returns false).
    let mut auto_replied = Vec::new();
    if let RunTrigger::Message(msg) = trigger
        && auto_reply_interval_ms > 0
        && !msg.mail_from.is_empty()
    {
        let correspondent = msg.mail_from.trim().to_lowercase();
        let since = now_ms() - auto_reply_interval_ms;
        auto_replied = store
            .auto_replies_since(&thwonk.id, &correspondent, since)
            .await?;
    }
    let (run_trigger, original) = match trigger {
        RunTrigger::Message(msg) => {
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
            (Trigger::Message(view), Some(msg.raw.as_slice()))
        }
        RunTrigger::Tick { schedule, at_ms } => {
            let at = thwonk_core::time::rfc3339_millis(at_ms);
            let schedule = schedule.to_string();
            // No incoming message: a forward has nothing to forward (composing it fails the run).
            (Trigger::Schedule { at, schedule }, None)
        }
        RunTrigger::Request { body, http, .. } => (
            Trigger::Request {
                body: body.clone(),
                http: http.cloned(),
            },
            None,
        ),
        RunTrigger::JobResult(result) => (
            Trigger::JobResult {
                result: result.script_value(),
            },
            None,
        ),
    };
    let request = RunRequest {
        run_id: run_id.clone(),
        thwonk: context(thwonk, public_base_url),
        script: script.source,
        trigger: run_trigger,
        now_ms: trigger.now_ms(),
        limits: limits.clone(),
        auto_replied,
    };
    let outcome = run_in_sandbox(store, redis, pool, thwonk, request).await?;
    // The worker is not trusted: what it returns is checked again here.
    let mut outcome =
        thwonk_control::outbox::recheck_worker_result(outcome, thwonk.address.as_str(), limits);
    let value = match trigger {
        RunTrigger::Request { .. } => outcome.response.take(),
        _ => None,
    };
    let replied: Vec<String> = outcome
        .effects
        .sends
        .iter()
        .filter(|send| matches!(send.kind, SendKind::Reply { .. }))
        .filter_map(|send| {
            let to = send.to.first()?;
            Some(reply_key(to, send.text.as_deref(), send.html.as_deref()))
        })
        .collect();
    let (outcome, outbox) = compose_sends(outcome, thwonk, original);
    let value = if outcome.is_ok() { value } else { None };
    let auto_replies = if outcome.is_ok() { replied } else { Vec::new() };
    Ok(Executed {
        commit: commit_for(
            &run_id,
            thwonk,
            trigger,
            script.version,
            started_at_ms,
            outcome,
            outbox,
        ),
        auto_replies,
        value,
    })
}

/// A run refused before it ran (`kind`, `why`): what to commit, the script not started.
pub(crate) fn refused(
    thwonk: &Thwonk,
    trigger: RunTrigger<'_>,
    kind: ErrorKind,
    why: impl Into<String>,
) -> Executed {
    let run_id = match trigger {
        RunTrigger::Request { run_id, .. } => run_id.to_string(),
        _ => new_id(),
    };
    tracing::Span::current().record("run", run_id.as_str());
    let started_at_ms = now_ms();
    let outcome = RunOutcome::failed(kind, why);
    Executed {
        commit: commit_for(
            &run_id,
            thwonk,
            trigger,
            thwonk.active_version.unwrap_or(0),
            started_at_ms,
            outcome,
            Vec::new(),
        ),
        value: None,
        auto_replies: Vec::new(),
    }
}

/// Who the script runs as, and its public URL when `public.base_url` is set.
fn context(thwonk: &Thwonk, public_base_url: &str) -> ThwonkContext {
    ThwonkContext {
        address: thwonk.address.to_string(),
        domain: thwonk.address.domain().to_string(),
        public_url: (!public_base_url.is_empty())
            .then(|| format!("{public_base_url}/pub/{}", thwonk.address)),
    }
}

/// Run `request` in a sandbox worker of `pool`, its file reads served from the store and its
/// feed reads from Redis.
async fn run_in_sandbox(
    store: &Store,
    redis: &Redis,
    pool: &WorkerPool,
    thwonk: &Thwonk,
    request: RunRequest,
) -> Result<RunOutcome, RunnerError> {
    let mut reader =
        StoreVfs::new(store.clone(), thwonk.id.clone()).with_feeds(redis.clone(), thwonk);
    let pool = pool.clone();
    // Blocking: the pool waits on the worker's pipe and serves its file reads meanwhile. A
    // worker that could not start is not the script's fault: the job is retried later.
    tokio::task::spawn_blocking(move || pool.run(&request, &mut reader))
        .await
        .map_err(|e| RunnerError::Sandbox(e.to_string()))?
        .map_err(|e| RunnerError::Sandbox(e.to_string()))
}

/// Compose every send of a successful run. A send that cannot be composed fails the run.
/// The same function gives the dry run its verdict (`thwonk_control::outbox`).
fn compose_sends(
    outcome: RunOutcome,
    thwonk: &Thwonk,
    original: Option<&[u8]>,
) -> (RunOutcome, Vec<NewOutbox>) {
    thwonk_control::outbox::compose_sends(outcome, thwonk.address.as_str(), original)
}

fn commit_for(
    run_id: &str,
    thwonk: &Thwonk,
    trigger: RunTrigger<'_>,
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
    let (message_id, schedule_tick_ms) = match trigger {
        RunTrigger::Message(msg) => (Some(msg.id.clone()), None),
        RunTrigger::Tick { at_ms, .. } => (None, Some(at_ms)),
        RunTrigger::Request { .. } | RunTrigger::JobResult(_) => (None, None),
    };
    let result_of = match trigger {
        RunTrigger::JobResult(result) => Some(result.job_id.clone()),
        _ => None,
    };
    RunCommit {
        run: RunRecord {
            id: run_id.to_string(),
            thwonk_id: thwonk.id.clone(),
            message_id,
            trigger: trigger.kind(),
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
            thwonk_control::feeds::thoonk_feed_ops(thwonk, &outcome.effects.feed_ops)
        } else {
            Vec::new()
        },
        schedule_tick_ms,
        jobs: RunJobs {
            publish: if ok {
                thwonk_control::script_jobs::new_script_jobs(thwonk, &outcome.effects.jobs)
            } else {
                Vec::new()
            },
            result_of,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thwonk_core::Address;
    use thwonk_core::run::{Cost, Effects, RunStatus, SendKind, SendRequest, VfsOp};
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
                jobs: Vec::new(),
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
