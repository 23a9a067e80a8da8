//! Who hears about a failed delivery: a DSN to the envelope sender, or a bounce record.
//!
//! The rules (docs/delivery.md explains them):
//! - the null sender `<>` (the failed mail was itself a DSN) gets nothing: never a bounce to a
//!   bounce;
//! - a VERP bounce address (`bounces+…`, which every script's send has) is Thwonk itself: a DSN
//!   would come straight back to us, so the failure is recorded as bounce records instead, on
//!   the outbox row and so on the run;
//! - an address of ours (a thwonk, or any address in a domain listed in `smtp.domains`) would
//!   also come back to us, into a script: recorded too;
//! - anyone else gets one DSN (RFC 3464) from `<>`, queued as a new outbox row in the same
//!   transaction that marks the original failed.

use thwonk_mail::dsn::{DsnContext, FailedRecipient, build_dsn};
use thwonk_mail::verp::is_bounce_address;
use thwonk_store::{NewBounce, NewOutbox};

/// How the failure of one outbox row is made known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Send a DSN to this address.
    Dsn(String),
    /// Record bounce records (`source = local`) on the row.
    Record,
}

/// Choose by the row's envelope sender; `is_ours` tells whether an address would be delivered
/// back to Thwonk.
pub fn notice_for(mail_from: &str, is_ours: impl FnOnce(&str) -> bool) -> Notice {
    if mail_from.is_empty() || is_bounce_address(mail_from) || is_ours(mail_from) {
        Notice::Record
    } else {
        Notice::Dsn(mail_from.to_string())
    }
}

/// The DSN outbox row for `failed` recipients of the row `outbox_id`: from `<>`, no bounce
/// token (nothing may answer it).
pub fn dsn_row(ctx: &DsnContext<'_>, failed: &[FailedRecipient], id: String) -> NewOutbox {
    NewOutbox {
        id,
        mail_from: String::new(),
        rcpt_to: vec![ctx.to.to_string()],
        raw: build_dsn(ctx, failed),
        bounce_token: None,
    }
}

/// One local bounce record per failed recipient.
pub fn bounce_records(outbox_id: &str, failed: &[FailedRecipient], now_ms: i64) -> Vec<NewBounce> {
    failed
        .iter()
        .map(|f| NewBounce {
            outbox_id: outbox_id.to_string(),
            source: "local".into(),
            rcpt: Some(f.rcpt.clone()),
            action: Some("failed".into()),
            status: Some(f.status.clone()),
            remote_mta: f.remote_mta.clone(),
            diagnostic: Some(
                f.smtp_reply
                    .clone()
                    .unwrap_or_else(|| f.explanation.clone()),
            ),
            reported_by: None,
            received_at_ms: now_ms,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_someone_else_gets_a_dsn() {
        let nobody = |_: &str| false;
        assert_eq!(
            notice_for("", nobody),
            Notice::Record,
            "never a bounce to a bounce"
        );
        assert_eq!(
            notice_for("bounces+0f3a@example.org", nobody),
            Notice::Record,
            "our own VERP address"
        );
        assert_eq!(
            notice_for("Bounces+x@elsewhere.example", nobody),
            Notice::Record
        );
        assert_eq!(
            notice_for("list@example.org", |a| a == "list@example.org"),
            Notice::Record,
            "a thwonk of ours"
        );
        assert_eq!(
            notice_for("alice@example.com", nobody),
            Notice::Dsn("alice@example.com".into())
        );
    }

    #[test]
    fn a_dsn_row_goes_from_the_null_sender_to_the_sender_only() {
        let failed = [FailedRecipient {
            rcpt: "bob@example.net".into(),
            status: "5.1.1".into(),
            remote_mta: None,
            smtp_reply: Some("550 5.1.1 no".into()),
            explanation: "550 5.1.1 no".into(),
        }];
        let ctx = DsnContext {
            reporting_mta: "mx.example.org",
            id: "o1",
            to: "alice@example.com",
            arrival_ms: 0,
            date_ms: 0,
            original: b"Subject: hi\r\n\r\nx",
        };
        let row = dsn_row(&ctx, &failed, "d1".into());
        assert_eq!(row.mail_from, "");
        assert_eq!(row.rcpt_to, ["alice@example.com"]);
        assert_eq!(row.bounce_token, None);
        assert!(
            String::from_utf8_lossy(&row.raw).contains("Final-Recipient: rfc822; bob@example.net")
        );
        let records = bounce_records("o1", &failed, 7);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].source, "local");
        assert_eq!(records[0].diagnostic.as_deref(), Some("550 5.1.1 no"));
    }
}
