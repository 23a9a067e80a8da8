//! One delivery attempt turned into what to record, per recipient and for the row, as plain
//! functions (the job loop does the I/O):
//!
//! - a recipient the server took is `sent`; one refused permanently is `failed`; one that
//!   failed transiently stays `queued` until its attempts reach `egress.max_attempts`, then is
//!   `failed` ("gave up after N attempts");
//! - the row is `sent` when every recipient is, retried while any is still `queued` (only those
//!   are attempted next time), and `failed` once none is left to try and any failed;
//! - when the row fails, every failed recipient is reported ([`FailedRecipient`]), for one DSN
//!   or bounce records (see [`crate::notice`]);
//! - the wait before the next attempt follows `egress.retry_schedule` ([`next_delay`]).

use crate::failure::{Class, Failure, classify};
use crate::transport::DeliveryReport;
use std::time::Duration;
use thwonk_core::status::DeliveryStatus;
use thwonk_mail::dsn::{FailedRecipient, status_for_reply};
use thwonk_store::{RecipientState, RecipientUpdate, RowOutcome};

/// Longest error text recorded on an outbox row: a message to a thousand recipients that all
/// fail must not write a megabyte into `last_error`.
pub const ERROR_TEXT_MAX: usize = 4096;

/// What to record after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub updates: Vec<RecipientUpdate>,
    pub outcome: RowOutcome,
    /// Set with [`RowOutcome::Retry`]: when to try again.
    pub delay: Option<Duration>,
    /// With [`RowOutcome::Failed`]: every failed recipient, this attempt's and earlier ones'.
    pub failed: Vec<FailedRecipient>,
}

/// The retry settings (`[egress]`).
#[derive(Debug, Clone, Copy)]
pub struct Retry<'a> {
    pub max_attempts: u32,
    pub schedule: &'a [Duration],
}

/// Plan the record of an attempt that delivered to the `queued` recipients of `states` and
/// got `report`. `row_attempts` is the row's attempts before this one; `now_ms` dates the
/// retry.
pub fn plan(
    states: &[RecipientState],
    report: &DeliveryReport,
    row_attempts: u32,
    retry: Retry<'_>,
    now_ms: i64,
) -> Plan {
    let mut updates = Vec::new();
    let mut failed = Vec::new();
    let mut still_queued = Vec::new();
    for state in states {
        match state.status {
            DeliveryStatus::Queued => {}
            DeliveryStatus::Failed => {
                failed.push(earlier_failure(&state.rcpt, state.last_reply.as_deref()));
                continue;
            }
            DeliveryStatus::Sent => continue,
        }
        let found = report.destinations.iter().find(|d| {
            d.recipients
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&state.rcpt))
        });
        let missing = Err(Failure::Network("the transport gave no result".into()));
        let (destination, result) = match found {
            Some(d) => (d.name.as_str(), &d.result),
            None => ("", &missing),
        };
        let attempts = u32::try_from(state.attempts.max(0)).unwrap_or(u32::MAX);
        let (status, reply) = match result {
            Ok(reply) => (DeliveryStatus::Sent, reply.clone()),
            Err(f) if classify(f) == Class::Permanent => {
                failed.push(failed_recipient(&state.rcpt, destination, f, None));
                (DeliveryStatus::Failed, reply_of(f))
            }
            Err(f) if attempts.saturating_add(1) < retry.max_attempts => {
                still_queued.push(format!("{}: {}", state.rcpt, reply_of(f)));
                (DeliveryStatus::Queued, reply_of(f))
            }
            Err(f) => {
                let n = retry.max_attempts;
                failed.push(failed_recipient(&state.rcpt, destination, f, Some(n)));
                (
                    DeliveryStatus::Failed,
                    format!("gave up after {n} attempts: {}", reply_of(f)),
                )
            }
        };
        updates.push(RecipientUpdate {
            rcpt: state.rcpt.clone(),
            status,
            reply,
        });
    }

    if !still_queued.is_empty() {
        let delay = next_delay(row_attempts, retry.schedule);
        let mut error = still_queued.join("; ");
        if !failed.is_empty() {
            error.push_str(&format!("; failed: {}", failures_text(&failed)));
        }
        return Plan {
            updates,
            outcome: RowOutcome::Retry {
                error: truncated(error),
                next_attempt_at_ms: now_ms
                    .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            },
            delay: Some(delay),
            failed: Vec::new(),
        };
    }
    if failed.is_empty() {
        return Plan {
            updates,
            outcome: RowOutcome::Sent,
            delay: None,
            failed,
        };
    }
    Plan {
        updates,
        outcome: RowOutcome::Failed {
            error: truncated(failures_text(&failed)),
        },
        delay: None,
        failed,
    }
}

/// The wait before the next attempt, after `attempts` failed ones: the schedule's entry at
/// that index, its last entry repeating. An empty schedule (refused by the config) retries at
/// once. The schedule is [`thwonk_core::config::EgressConfig::retry_schedule`].
pub fn next_delay(attempts: u32, schedule: &[Duration]) -> Duration {
    let i = (attempts as usize).min(schedule.len().saturating_sub(1));
    schedule.get(i).copied().unwrap_or(Duration::ZERO)
}

/// What a failure leaves in `last_reply`: the server's reply as it came (`550 5.1.1 ...`), or
/// what went wrong.
pub fn reply_of(f: &Failure) -> String {
    match f {
        Failure::Reply { code, message } => format!("{code} {message}"),
        other => other.to_string(),
    }
}

fn failures_text(failed: &[FailedRecipient]) -> String {
    failed
        .iter()
        .map(|f| format!("{}: {}", f.rcpt, f.explanation))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The DSN entry for a recipient that failed now; `gave_up_after` for retries exhausted.
fn failed_recipient(
    rcpt: &str,
    destination: &str,
    f: &Failure,
    gave_up_after: Option<u32>,
) -> FailedRecipient {
    let status = match (f, gave_up_after) {
        // X.4.7: delivery time expired (RFC 3463).
        (_, Some(_)) => "5.4.7".to_string(),
        (Failure::Reply { code, message }, None) => status_for_reply(*code, message),
        (Failure::BadAddress(_), None) => "5.1.3".to_string(),
        (Failure::NoSuchDomain(_), None) => "5.1.2".to_string(),
        (Failure::NullMx(_), None) => "5.1.10".to_string(),
        (Failure::NoMailServer(_), None) => "5.4.4".to_string(),
        _ => "5.0.0".to_string(),
    };
    let (remote_mta, smtp_reply) = match f {
        Failure::Reply { .. } => (
            Some(host_of(destination).to_string()).filter(|h| !h.is_empty()),
            Some(reply_of(f)),
        ),
        _ => (None, None),
    };
    let explanation = match gave_up_after {
        Some(n) => format!("gave up after {n} attempts: {}", reply_of(f)),
        None => reply_of(f),
    };
    FailedRecipient {
        rcpt: rcpt.to_string(),
        status,
        remote_mta,
        smtp_reply,
        explanation,
    }
}

/// The DSN entry for a recipient that failed on an earlier attempt, from its `last_reply`.
fn earlier_failure(rcpt: &str, last_reply: Option<&str>) -> FailedRecipient {
    let text = last_reply.unwrap_or("failed").to_string();
    let code: Option<u16> = text
        .get(..3)
        .and_then(|c| c.parse().ok())
        .filter(|c| (500..600).contains(c) && text.as_bytes().get(3) == Some(&b' '));
    let (status, smtp_reply) = match code {
        Some(c) => (status_for_reply(c, &text[4..]), Some(text.clone())),
        None if text.starts_with("gave up after") => ("5.4.7".to_string(), None),
        None => ("5.0.0".to_string(), None),
    };
    FailedRecipient {
        rcpt: rcpt.to_string(),
        status,
        remote_mta: None,
        smtp_reply,
        explanation: text,
    }
}

/// `host` of `host:port` (the relay's name in a report); a domain as it is.
fn host_of(destination: &str) -> &str {
    match destination.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            host.trim_start_matches('[').trim_end_matches(']')
        }
        _ => destination,
    }
}

/// Cut to [`ERROR_TEXT_MAX`] bytes at a character boundary.
pub fn truncated(mut text: String) -> String {
    if text.len() > ERROR_TEXT_MAX {
        let mut at = ERROR_TEXT_MAX;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Destination;

    const RETRY: Retry<'static> = Retry {
        max_attempts: 3,
        schedule: &[Duration::from_secs(30), Duration::from_secs(120)],
    };

    fn state(rcpt: &str, status: DeliveryStatus, attempts: i64) -> RecipientState {
        RecipientState {
            rcpt: rcpt.into(),
            status,
            attempts,
            last_reply: None,
            updated_at_ms: 0,
        }
    }

    fn dest(rcpts: &[&str], result: Result<&str, Failure>) -> Destination {
        Destination {
            name: "relay.test:25".into(),
            recipients: rcpts.iter().map(|r| r.to_string()).collect(),
            result: result.map(str::to_string),
        }
    }

    fn reply(code: u16, message: &str) -> Failure {
        Failure::Reply {
            code,
            message: message.into(),
        }
    }

    fn statuses(plan: &Plan) -> Vec<(&str, &str)> {
        plan.updates
            .iter()
            .map(|u| (u.rcpt.as_str(), u.status.as_str()))
            .collect()
    }

    #[test]
    fn one_refused_recipient_fails_alone_and_the_row_fails_with_its_reply() {
        let states = [
            state("a@x.test", DeliveryStatus::Queued, 0),
            state("b@x.test", DeliveryStatus::Queued, 0),
        ];
        let report = DeliveryReport {
            destinations: vec![
                dest(&["a@x.test"], Ok("250 2.0.0 queued")),
                dest(&["b@x.test"], Err(reply(550, "5.1.1 no such user"))),
            ],
        };
        let p = plan(&states, &report, 0, RETRY, 1000);
        assert_eq!(statuses(&p), [("a@x.test", "sent"), ("b@x.test", "failed")]);
        assert_eq!(p.updates[1].reply, "550 5.1.1 no such user");
        let RowOutcome::Failed { error } = &p.outcome else {
            panic!("{:?}", p.outcome)
        };
        assert_eq!(error, "b@x.test: 550 5.1.1 no such user");
        assert_eq!(p.failed.len(), 1);
        assert_eq!(p.failed[0].status, "5.1.1");
        assert_eq!(p.failed[0].remote_mta.as_deref(), Some("relay.test"));
        assert_eq!(
            p.failed[0].smtp_reply.as_deref(),
            Some("550 5.1.1 no such user")
        );
    }

    #[test]
    fn a_transient_failure_retries_only_that_recipient() {
        let states = [
            state("a@x.test", DeliveryStatus::Queued, 0),
            state("b@x.test", DeliveryStatus::Queued, 0),
        ];
        let report = DeliveryReport {
            destinations: vec![
                dest(&["a@x.test"], Ok("250 ok")),
                dest(&["b@x.test"], Err(reply(451, "greylisted"))),
            ],
        };
        let p = plan(&states, &report, 0, RETRY, 1000);
        assert_eq!(statuses(&p), [("a@x.test", "sent"), ("b@x.test", "queued")]);
        assert_eq!(p.delay, Some(Duration::from_secs(30)));
        assert_eq!(
            p.outcome,
            RowOutcome::Retry {
                error: "b@x.test: 451 greylisted".into(),
                next_attempt_at_ms: 31_000
            }
        );
        assert!(p.failed.is_empty());

        // The next attempt went to b only; a stays as it was (no update at all).
        let states = [
            state("a@x.test", DeliveryStatus::Sent, 1),
            state("b@x.test", DeliveryStatus::Queued, 1),
        ];
        let report = DeliveryReport {
            destinations: vec![dest(&["b@x.test"], Ok("250 ok"))],
        };
        let p = plan(&states, &report, 1, RETRY, 2000);
        assert_eq!(statuses(&p), [("b@x.test", "sent")]);
        assert_eq!(p.outcome, RowOutcome::Sent);
    }

    #[test]
    fn the_last_allowed_attempt_gives_up_with_an_expired_status() {
        let states = [state("b@x.test", DeliveryStatus::Queued, 2)];
        let report = DeliveryReport {
            destinations: vec![dest(&["b@x.test"], Err(reply(451, "4.3.0 later")))],
        };
        let p = plan(&states, &report, 2, RETRY, 0);
        assert_eq!(statuses(&p), [("b@x.test", "failed")]);
        assert_eq!(
            p.updates[0].reply,
            "gave up after 3 attempts: 451 4.3.0 later"
        );
        assert!(
            matches!(&p.outcome, RowOutcome::Failed { error } if error.contains("gave up after 3 attempts"))
        );
        assert_eq!(p.failed[0].status, "5.4.7");
    }

    #[test]
    fn recipients_that_failed_earlier_are_reported_when_the_row_fails() {
        let mut earlier = state("a@x.test", DeliveryStatus::Failed, 1);
        earlier.last_reply = Some("550 5.1.1 unknown".into());
        let states = [earlier, state("b@x.test", DeliveryStatus::Queued, 1)];
        let report = DeliveryReport {
            destinations: vec![dest(&["B@X.test"], Ok("250 ok"))],
        };
        let p = plan(&states, &report, 1, RETRY, 0);
        assert_eq!(statuses(&p), [("b@x.test", "sent")]);
        assert!(
            matches!(&p.outcome, RowOutcome::Failed { error } if error == "a@x.test: 550 5.1.1 unknown")
        );
        assert_eq!(p.failed.len(), 1);
        assert_eq!(p.failed[0].status, "5.1.1");
        assert_eq!(p.failed[0].smtp_reply.as_deref(), Some("550 5.1.1 unknown"));
    }

    #[test]
    fn permanent_failures_without_a_reply_get_their_own_status() {
        let states = [
            state("a@gone.test", DeliveryStatus::Queued, 0),
            state("b@null.test", DeliveryStatus::Queued, 0),
        ];
        let report = DeliveryReport {
            destinations: vec![
                dest(
                    &["a@gone.test"],
                    Err(Failure::NoSuchDomain("gone.test".into())),
                ),
                dest(&["b@null.test"], Err(Failure::NullMx("null.test".into()))),
            ],
        };
        let p = plan(&states, &report, 0, RETRY, 0);
        let got: Vec<&str> = p.failed.iter().map(|f| f.status.as_str()).collect();
        assert_eq!(got, ["5.1.2", "5.1.10"]);
        assert!(p.failed.iter().all(|f| f.smtp_reply.is_none()));
    }

    #[test]
    fn a_recipient_missing_from_the_report_is_retried() {
        let states = [state("a@x.test", DeliveryStatus::Queued, 0)];
        let p = plan(&states, &DeliveryReport::default(), 0, RETRY, 0);
        assert_eq!(statuses(&p), [("a@x.test", "queued")]);
        assert!(matches!(p.outcome, RowOutcome::Retry { .. }));
    }

    #[test]
    fn delays_follow_the_schedule_and_the_last_one_repeats() {
        let s: Vec<Duration> = [30, 120, 600].map(Duration::from_secs).to_vec();
        assert_eq!(next_delay(0, &s), Duration::from_secs(30));
        assert_eq!(next_delay(1, &s), Duration::from_secs(120));
        assert_eq!(next_delay(2, &s), Duration::from_secs(600));
        assert_eq!(next_delay(9, &s), Duration::from_secs(600));
        assert_eq!(next_delay(u32::MAX, &s), Duration::from_secs(600));
        assert_eq!(next_delay(3, &[]), Duration::ZERO);
    }

    #[test]
    fn error_texts_are_cut() {
        let s = truncated("é".repeat(5000));
        assert!(s.len() <= ERROR_TEXT_MAX + '…'.len_utf8());
    }
}
