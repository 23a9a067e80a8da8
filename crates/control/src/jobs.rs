//! What an `inbound` job carries, decoded once: mail the ingress stored, a schedule tick the
//! scheduler won, or an HTTP invoke's request. The payloads are JSON objects told apart by
//! their fields (in the order tick, request, mail, as they always have been), so a worker in
//! another language publishes the same shapes (see `thwonk_thoonk::inbound_payload`).
//!
//! The job ids follow the same split: a message's job id is the message id, a tick's is
//! `schedule/{thwonk_id}/{at_ms}`, a request's `request/{run_id}`.

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
    fn a_payload_of_no_known_shape_is_a_bad_job() {
        let e = InboundJob::decode(r#"{"thwonk_id":"t1"}"#).unwrap_err();
        assert_eq!(e.payload, r#"{"thwonk_id":"t1"}"#);
        assert!(e.reason.contains("message_id"), "{e}");
    }
}
