//! HTTP invoke (towtruck-style): a JSON request runs the thwonk's `onRequest(req, thwonk)`
//! through the same path as mail, and its return value comes back to the caller.
//!
//! - The caller ([`invoke`], used by the HTTP API) queues an `inbound` job
//!   `request/{run_id}` whose payload is a [`RequestJob`], then waits for the job's reply.
//! - A runner takes it like any inbound job: under the thwonk's lease, after the thwonk's
//!   messages that arrived before the request, it runs `onRequest` in a sandbox worker
//!   (`Trigger::Request`) and commits the run's effects (files, sends, feed operations) in one
//!   transaction, exactly like a message run; the outbox rows are queued for egress.
//! - Exactly once: the run's id is fixed by the caller and travels in the job, and the store
//!   commits a run id once. A job delivered twice (a runner killed after its commit, the
//!   reaper re-queueing the job) finds its run already recorded and answers from that record
//!   without running again; if two deliveries race, the second commit is refused.
//! - The answer travels back over Redis: the runner finishes the job with
//!   [`JobQueue::finish_with_reply`], which leaves the JSON [`InvokeOutcome`] in the job's own
//!   reply list (`job.reply:inbound:{id}`, see `thwonk_thoonk::keys`) and announces it on
//!   `event.job.finish:inbound` like every finish. The caller pops that one list with BLPOP,
//!   so it needs no subscription and cannot miss a reply that came early; the reply expires
//!   soon after the caller's deadline either way.
//! - Timeout: when no reply came within the caller's timeout, a job that no runner has taken
//!   yet is withdrawn (it never runs) and the caller gets [`InvokeError::Timeout`]. A job
//!   already taken may still commit after that: its run is then in the thwonk's runs. A
//!   runner that takes a request after its caller's deadline finishes it without running it.
//! - A value answered again from the record (the second delivery) has `value: None`: the
//!   value itself is not stored, only the run record.

pub use crate::jobs::RequestJob;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thwonk_core::config::InvokeConfig;
use thwonk_core::ids::new_id;
use thwonk_core::run::{ErrorKind, RunError, RunStatus};
use thwonk_core::status::ThwonkStatus;
use thwonk_core::time::now_ms;
use thwonk_store::{RunRecord, Store};
use thwonk_thoonk::{INBOUND, JobQueue, Redis};
use tracing::{info, warn};

/// What an invoke returns: the run and, when it succeeded, `onRequest`'s value. It is also
/// what `POST .../invoke` answers (`views::InvokeView`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvokeOutcome {
    pub run_id: String,
    #[schemars(with = "String")]
    pub status: RunStatus,
    /// `onRequest`'s return value (JSON). `None` when the run failed, and when the run had
    /// committed before and this answer comes from its record.
    pub value: Option<serde_json::Value>,
    /// `{kind, message, stack?}` when the run failed.
    #[schemars(with = "Option<serde_json::Value>")]
    pub error: Option<RunError>,
}

/// Why an invoke has no outcome. Script failures are not errors: they are an outcome with
/// `status: "error"`.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("no thwonk with id {0}")]
    NoSuchThwonk(String),
    #[error("thwonk {0} is disabled: enable it to invoke it")]
    Disabled(String),
    #[error("the request body is {size} bytes; at most {max} are accepted (invoke.max_body_bytes)")]
    TooLarge { size: u64, max: u64 },
    #[error(
        "the request body nests deeper than {max} levels of arrays and objects (invoke.max_body_depth)"
    )]
    TooDeep { max: u32 },
    #[error(
        "no runner answered in time: is a runner running? (a request a runner had already \
         taken may still complete; see the thwonk's runs)"
    )]
    Timeout,
    #[error("invoke is unavailable, try again later: {0}")]
    Unavailable(String),
}

/// Run the thwonk's `onRequest` with `body` through the runner and return its outcome, or
/// [`InvokeError::Timeout`] when no runner answered within `timeout`. The body is bounded by
/// the default `[invoke]` limits; [`invoke_with`] takes the configured ones.
pub async fn invoke(
    store: &Store,
    redis: &Redis,
    thwonk_id: &str,
    body: serde_json::Value,
    timeout: Duration,
) -> Result<InvokeOutcome, InvokeError> {
    invoke_with(
        store,
        redis,
        thwonk_id,
        body,
        timeout,
        &InvokeConfig::default(),
    )
    .await
}

/// [`invoke`] with the body bounded by `limits` (`[invoke]` in the config).
pub async fn invoke_with(
    store: &Store,
    redis: &Redis,
    thwonk_id: &str,
    body: serde_json::Value,
    timeout: Duration,
    limits: &InvokeConfig,
) -> Result<InvokeOutcome, InvokeError> {
    invoke_request(store, redis, thwonk_id, body, None, timeout, limits).await
}

/// [`invoke_with`] for a full HTTP request: `http` (method, path, query, headers, caller,
/// the method it names) travels with the job to `onRequest`'s `req`.
pub async fn invoke_request(
    store: &Store,
    redis: &Redis,
    thwonk_id: &str,
    body: serde_json::Value,
    http: Option<thwonk_core::run::HttpRequestView>,
    timeout: Duration,
    limits: &InvokeConfig,
) -> Result<InvokeOutcome, InvokeError> {
    if json_depth(&body) > limits.max_body_depth as usize {
        return Err(InvokeError::TooDeep {
            max: limits.max_body_depth,
        });
    }
    let thwonk = store
        .thwonk(thwonk_id)
        .await
        .map_err(|e| InvokeError::Unavailable(e.to_string()))?
        .ok_or_else(|| InvokeError::NoSuchThwonk(thwonk_id.to_string()))?;
    if thwonk.status != ThwonkStatus::Active {
        return Err(InvokeError::Disabled(thwonk.address.to_string()));
    }
    let now = now_ms();
    let job = RequestJob {
        request_id: new_id(),
        thwonk_id: thwonk.id.clone(),
        body,
        http,
        queued_at_ms: now,
        reply_by_ms: now.saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)),
    };
    let payload =
        serde_json::to_string(&job).map_err(|e| InvokeError::Unavailable(e.to_string()))?;
    if payload.len() as u64 > limits.max_body_bytes {
        return Err(InvokeError::TooLarge {
            size: payload.len() as u64,
            max: limits.max_body_bytes,
        });
    }
    let inbound = JobQueue::new(redis, INBOUND);
    let job_id = job.job_id();
    let unavailable = |e: thwonk_thoonk::ThoonkError| InvokeError::Unavailable(e.to_string());
    inbound
        .publish(&job_id, &payload)
        .await
        .map_err(unavailable)?;
    let reply = match tokio::time::timeout(
        timeout + Duration::from_secs(1),
        inbound.wait_reply(&job_id, timeout),
    )
    .await
    {
        Ok(reply) => reply.map_err(unavailable)?,
        Err(_) => None,
    };
    match reply {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| InvokeError::Unavailable(format!("a runner's reply is not valid: {e}"))),
        None => {
            match inbound.withdraw(&job_id).await {
                Ok(true) => {}
                Ok(false) => {
                    info!(job = %job_id, "invoke timed out after a runner took it; it may still commit")
                }
                Err(e) => {
                    warn!(job = %job_id, error = %e, "invoke timed out; cannot withdraw its job")
                }
            }
            Err(InvokeError::Timeout)
        }
    }
}

/// How deep arrays and objects nest in `v` (a scalar is 0), without recursion: the body
/// comes from the network.
fn json_depth(v: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match v {
            serde_json::Value::Array(a) => Box::new(a.iter()),
            serde_json::Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    deepest
}

impl InvokeOutcome {
    /// The outcome of a committed run, from its record (so without `onRequest`'s value).
    pub fn of_record(run: &RunRecord) -> InvokeOutcome {
        InvokeOutcome {
            run_id: run.id.clone(),
            status: run.status,
            value: None,
            error: run.error_kind.as_ref().map(|kind| RunError {
                kind: *kind,
                message: run.error_message.clone().unwrap_or_default(),
                stack: run.error_stack.clone(),
            }),
        }
    }

    /// A request the runner refused to run (`message` says why).
    pub fn refused(run_id: &str, kind: ErrorKind, message: &str) -> InvokeOutcome {
        InvokeOutcome {
            run_id: run_id.to_string(),
            status: RunStatus::Error,
            value: None,
            error: Some(RunError {
                kind,
                message: message.to_string(),
                stack: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nested_arrays_and_objects() {
        assert_eq!(json_depth(&serde_json::json!(1)), 0);
        assert_eq!(json_depth(&serde_json::json!([])), 1);
        assert_eq!(json_depth(&serde_json::json!({"a": [1, {"b": []}]})), 4);
        let mut deep = serde_json::json!(0);
        for _ in 0..500 {
            deep = serde_json::Value::Array(vec![deep]);
        }
        assert_eq!(json_depth(&deep), 500);
    }
}
