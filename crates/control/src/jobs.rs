//! What an `inbound` job carries, decoded once: mail the ingress stored, a schedule tick the
//! scheduler won, or an HTTP invoke's request. The payloads are JSON objects told apart by
//! their fields (in the order tick, request, mail, as they always have been), so a worker in
//! another language publishes the same shapes (see `thwonk_thoonk::inbound_payload`).
//!
//! The job ids follow the same split: a message's job id is the message id, a tick's is
//! `schedule/{thwonk_id}/{at_ms}`, a request's `request/{run_id}`, a job result's
//! `job-result/{job_id}`.

use serde::{Deserialize, Serialize};

/// One `inbound` job, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundJob {
    /// A stored message is waiting for its run.
    Message(MessageJob),
    /// A schedule tick is due.
    Tick(ScheduleJob),
    /// An HTTP invoke waits for `onRequest`'s answer.
    Request(RequestJob),
    /// A worker finished (or gave up on) a job a script published: `onJobResult`.
    JobResult(JobResultJob),
}

/// Why a payload is not an inbound job.
#[derive(Debug, thiserror::Error)]
#[error("bad job payload {payload:?}: {reason}")]
pub struct BadJob {
    pub payload: String,
    pub reason: String,
}

impl InboundJob {
    /// Decode an `inbound` job's payload.
    pub fn decode(payload: &str) -> Result<InboundJob, BadJob> {
        if let Ok(tick) = serde_json::from_str(payload) {
            return Ok(InboundJob::Tick(tick));
        }
        if let Ok(req) = serde_json::from_str(payload) {
            return Ok(InboundJob::Request(req));
        }
        if let Ok(result) = serde_json::from_str(payload) {
            return Ok(InboundJob::JobResult(result));
        }
        serde_json::from_str(payload)
            .map(InboundJob::Message)
            .map_err(|e| BadJob {
                payload: payload.to_string(),
                reason: e.to_string(),
            })
    }
}

/// The payload of a message's `inbound` job (`thwonk_thoonk::inbound_payload` writes it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageJob {
    pub message_id: String,
}

/// The payload of an `inbound` job for a schedule tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleJob {
    pub thwonk_id: String,
    pub schedule: String,
    /// The tick (ms since the epoch, UTC).
    pub at_ms: i64,
}

impl ScheduleJob {
    pub fn job_id(&self) -> String {
        format!("schedule/{}/{}", self.thwonk_id, self.at_ms)
    }
}

/// The payload of an `inbound` job for an HTTP invoke.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestJob {
    /// The run's id, fixed by the caller: the same job delivered twice is the same run.
    pub request_id: String,
    pub thwonk_id: String,
    /// `req.body` in `onRequest(req, thwonk)`.
    pub body: serde_json::Value,
    /// The HTTP request around it (method, path, query, headers, caller, the method it
    /// names); `None` for a bare JSON invoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<thwonk_core::run::HttpRequestView>,
    /// When it was queued (ms): the script's `now()`, and the point in the thwonk's mail
    /// before which messages run first.
    pub queued_at_ms: i64,
    /// The caller stops waiting then (ms); a runner that takes the job later does not run it.
    pub reply_by_ms: i64,
}

impl RequestJob {
    pub fn job_id(&self) -> String {
        format!("request/{}", self.request_id)
    }
}

/// The payload of an `inbound` job for a script job's result (`crate::script_jobs` writes
/// it when a worker finishes the job or it becomes a dead letter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResultJob {
    /// The script job's id (`{run_id}.j{n}`).
    pub job_id: String,
    pub thwonk_id: String,
    /// The script's name for the queue.
    pub queue: String,
    /// `ok` (the worker finished it) or `error` (it became a dead letter, or its result was
    /// lost).
    pub status: String,
    /// The text the worker finished it with (none when it finished without one).
    pub result: Option<String>,
    pub error: Option<String>,
    /// When Thwonk learnt the result (ms): the script's `now()`.
    pub at_ms: i64,
}

impl JobResultJob {
    pub fn job_id(&self) -> String {
        format!("job-result/{}", self.job_id)
    }

    /// `result` in `onJobResult(result, thwonk)`: `{id, queue, status, ok, value, error}`,
    /// `value` being the worker's result parsed as JSON when it is JSON, else the text itself
    /// (`null` without one).
    pub fn script_value(&self) -> serde_json::Value {
        let value = match &self.result {
            None => serde_json::Value::Null,
            Some(text) => serde_json::from_str(text)
                .unwrap_or_else(|_| serde_json::Value::String(text.clone())),
        };
        serde_json::json!({
            "id": self.job_id,
            "queue": self.queue,
            "status": self.status,
            "ok": self.status == "ok",
            "value": value,
            "error": self.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_jobs_are_told_apart_from_mail_jobs() {
        let j = ScheduleJob {
            thwonk_id: "t1".into(),
            schedule: "0 0 * * *".into(),
            at_ms: 86_400_000,
        };
        let payload = serde_json::to_string(&j).unwrap();
        assert_eq!(
            InboundJob::decode(&payload).unwrap(),
            InboundJob::Tick(j.clone())
        );
        assert_eq!(j.job_id(), "schedule/t1/86400000");
        assert_eq!(
            InboundJob::decode(r#"{"message_id":"m1","thwonk_id":"t1"}"#).unwrap(),
            InboundJob::Message(MessageJob {
                message_id: "m1".into()
            })
        );
    }

    #[test]
    fn request_jobs_are_told_apart_from_schedule_and_mail_jobs() {
        let j = RequestJob {
            http: None,
            request_id: "r1".into(),
            thwonk_id: "t1".into(),
            body: serde_json::json!({"a": [1, 2]}),
            queued_at_ms: 5,
            reply_by_ms: 10,
        };
        let payload = serde_json::to_string(&j).unwrap();
        assert_eq!(
            InboundJob::decode(&payload).unwrap(),
            InboundJob::Request(j.clone())
        );
        assert_eq!(j.job_id(), "request/r1");
        assert!(matches!(
            InboundJob::decode(&thwonk_thoonk::inbound_payload("m1", "t1")).unwrap(),
            InboundJob::Message(_)
        ));
        let tick = r#"{"thwonk_id":"t1","schedule":"* * * * *","at_ms":1}"#;
        assert!(matches!(
            InboundJob::decode(tick).unwrap(),
            InboundJob::Tick(_)
        ));
    }

    #[test]
    fn job_results_are_told_apart_and_give_the_script_its_value() {
        let j = JobResultJob {
            job_id: "r1.j1".into(),
            thwonk_id: "t1".into(),
            queue: "reports".into(),
            status: "ok".into(),
            result: Some(r#"{"pages":3}"#.into()),
            error: None,
            at_ms: 7,
        };
        let payload = serde_json::to_string(&j).unwrap();
        assert_eq!(
            InboundJob::decode(&payload).unwrap(),
            InboundJob::JobResult(j.clone())
        );
        assert_eq!(j.job_id(), "job-result/r1.j1");
        assert_eq!(
            j.script_value(),
            serde_json::json!({"id": "r1.j1", "queue": "reports", "status": "ok", "ok": true,
                "value": {"pages": 3}, "error": null})
        );
        let text = JobResultJob {
            result: Some("DONE".into()),
            ..j.clone()
        };
        assert_eq!(text.script_value()["value"], "DONE");
        let failed = JobResultJob {
            status: "error".into(),
            result: None,
            error: Some("boom".into()),
            ..j
        };
        let v = failed.script_value();
        assert_eq!(
            (v["ok"].clone(), v["value"].clone()),
            (false.into(), serde_json::Value::Null)
        );
        assert_eq!(v["error"], "boom");
    }

    #[test]
    fn a_payload_of_no_known_shape_is_a_bad_job() {
        let e = InboundJob::decode(r#"{"thwonk_id":"t1"}"#).unwrap_err();
        assert_eq!(e.payload, r#"{"thwonk_id":"t1"}"#);
        assert!(e.reason.contains("message_id"), "{e}");
    }
}
