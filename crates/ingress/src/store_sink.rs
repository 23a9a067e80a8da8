//! The daemon's [`MailSink`]: a message row per thwonk in SQL, then a job per row on the
//! `inbound` queue.
//!
//! Order matters for "nothing lost, nothing twice": rows first (the system of record), jobs
//! second. If a job cannot be queued the rows are deleted again and the client is told 451,
//! so its retry is the only copy that will ever run.
//!
//! Bounces: mail to `bounces+TOKEN@domain` (a domain we serve) is accepted when `TOKEN` names
//! an outbox row (550 5.1.1 otherwise), and becomes bounce records on that row instead of a
//! message: it runs no script and is never answered with a DSN. Only a report about the row's
//! own recipients is recorded (a DSN, RFC 3464, or a plain 5xx report naming one, see
//! [`thwonk_mail::dsn::read_bounce`]), and at most `smtp.max_bounces_per_token_per_hour`
//! records a token per hour (or one per recipient of the row, if more): anyone who saw the
//! address in a message could otherwise mark the row's recipients as bouncing at will. Mail
//! that is not such a report, or over the cap, is accepted and dropped, with a log line.

use crate::sink::{DeliverError, Envelope, MailSink, RcptVerdict};
use std::sync::Arc;
use thwonk_core::status::ThwonkStatus;
use thwonk_core::{Address, Config};
use thwonk_mail::dsn::{ReportedRecipient, read_bounce};
use thwonk_mail::verp::{bounce_token, is_bounce_address};
use thwonk_store::{NewBounce, NewMessage, OutboxRow, Store, Thwonk};
use thwonk_thoonk::JobQueue;

/// Stores accepted mail with [`Store::insert_messages`] and queues it on `inbound`.
#[derive(Clone)]
pub struct StoreSink {
    pub store: Store,
    /// The `inbound` queue ([`thwonk_thoonk::INBOUND`]).
    pub queue: JobQueue,
    pub config: Arc<Config>,
}

impl StoreSink {
    pub fn new(store: Store, queue: JobQueue, config: Arc<Config>) -> StoreSink {
        StoreSink {
            store,
            queue,
            config,
        }
    }

    /// The outbox row whose bounce address `rcpt` is, if any.
    async fn bounced_row(&self, rcpt: &Address) -> Result<Option<OutboxRow>, DeliverError> {
        match bounce_token(rcpt.as_str()) {
            Some(token) => Ok(self.store.outbox_by_bounce_token(&token).await?),
            None => Ok(None),
        }
    }

    /// Record the bounce `raw` for each of `rows` it reports on, within each token's cap;
    /// the bounce records' ids (none for mail that is no report on the rows' recipients).
    async fn record_bounces(
        &self,
        envelope: &Envelope,
        rows: &[OutboxRow],
        raw: &[u8],
    ) -> Result<Vec<String>, DeliverError> {
        let hour_ago = envelope.received_at_ms - 3_600_000;
        let mut bounces = Vec::new();
        for row in rows {
            let token = row.bounce_token.as_deref().unwrap_or_default();
            let Some(reported) = read_bounce(raw, &row.rcpt_to) else {
                tracing::info!(
                    outbox = %row.id, mail_from = %envelope.mail_from, client_ip = %envelope.client_ip,
                    "mail to bounces+{token}@ dropped: not a delivery status notification (RFC 3464) or 5xx report naming a recipient of that message"
                );
                thwonk_core::metrics::INGRESS_REFUSED.inc(&["not_a_bounce"]);
                continue;
            };
            let cap = u64::from(self.config.smtp.max_bounces_per_token_per_hour)
                .max(row.rcpt_to.len() as u64);
            let recent = self
                .store
                .count_remote_bounces_since(&row.id, hour_ago)
                .await?;
            let room = usize::try_from(cap.saturating_sub(recent)).unwrap_or(usize::MAX);
            if room < reported.len() {
                tracing::warn!(
                    outbox = %row.id, mail_from = %envelope.mail_from, client_ip = %envelope.client_ip,
                    recent, cap, dropped = reported.len() - room,
                    "bounce records for bounces+{token}@ capped (smtp.max_bounces_per_token_per_hour): the rest dropped"
                );
                thwonk_core::metrics::INGRESS_REFUSED.inc(&["bounces_capped"]);
            }
            bounces.extend(
                reported
                    .iter()
                    .take(room)
                    .map(|r| bounce_record(row, r, &envelope.mail_from, envelope.received_at_ms)),
            );
        }
        for b in &bounces {
            tracing::info!(outbox = %b.outbox_id, rcpt = ?b.rcpt, status = ?b.status, "bounce received");
        }
        Ok(self.store.insert_bounces(&bounces).await?)
    }

    /// The thwonk that takes mail for `rcpt`, if any.
    async fn active_thwonk(&self, rcpt: &Address) -> Result<Option<Thwonk>, DeliverError> {
        Ok(self.store.thwonk_by_address(rcpt).await?.filter(takes_mail))
    }
}

/// Only an active thwonk with a deployed script takes mail: without a script there is
/// nothing to run, and queued mail would pile up.
fn takes_mail(thwonk: &Thwonk) -> bool {
    thwonk.status == ThwonkStatus::Active && thwonk.active_version.is_some()
}

/// Recipients grouped by the thwonk that owns them, in order of first appearance:
/// `(thwonk id, its recipients)`.
fn group_by_thwonk(owners: Vec<(String, &Address)>) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (thwonk_id, rcpt) in owners {
        match groups.iter_mut().find(|(id, _)| *id == thwonk_id) {
            Some((_, rcpts)) => rcpts.push(rcpt.to_string()),
            None => groups.push((thwonk_id, vec![rcpt.to_string()])),
        }
    }
    groups
}

impl MailSink for StoreSink {
    async fn check_recipient(&self, rcpt: &Address) -> RcptVerdict {
        if !self.config.accepts_domain(rcpt.domain()) {
            return RcptVerdict::Relaying;
        }
        if is_bounce_address(rcpt.as_str()) {
            return match self.bounced_row(rcpt).await {
                Ok(Some(_)) => RcptVerdict::Accept,
                Ok(None) => RcptVerdict::Unknown,
                Err(e) => {
                    tracing::warn!(%rcpt, error = %e, "bounce address lookup failed");
                    RcptVerdict::TempFail("Cannot look the address up".into())
                }
            };
        }
        let found = match self.store.thwonk_by_address(rcpt).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(%rcpt, error = %e, "recipient lookup failed");
                return RcptVerdict::TempFail("Cannot look the address up".into());
            }
        };
        match found {
            Some(t) if takes_mail(&t) => RcptVerdict::Accept,
            // Disabled, or no script yet: a state its owner can change, so the sender keeps
            // the mail and tries again.
            Some(_) => RcptVerdict::NotTakingMail,
            // With no `smtp.domains`, the domains we serve are those that have a thwonk: mail
            // for any other is a relay attempt.
            None if self.config.smtp.domains.is_empty() => {
                match self.store.domain_has_thwonks(rcpt.domain()).await {
                    Ok(true) => RcptVerdict::Unknown,
                    Ok(false) => RcptVerdict::Relaying,
                    Err(e) => {
                        tracing::warn!(%rcpt, error = %e, "recipient domain lookup failed");
                        RcptVerdict::TempFail("Cannot look the address up".into())
                    }
                }
            }
            None => RcptVerdict::Unknown,
        }
    }

    async fn deliver(
        &self,
        envelope: &Envelope,
        raw: Vec<u8>,
    ) -> Result<Vec<String>, DeliverError> {
        // Bounces first: they become records, never messages.
        let mut bounced = Vec::new();
        for rcpt in envelope
            .rcpt_to
            .iter()
            .filter(|r| is_bounce_address(r.as_str()))
        {
            let row = self
                .bounced_row(rcpt)
                .await?
                .ok_or_else(|| DeliverError::RecipientGone(rcpt.clone()))?;
            bounced.push(row);
        }
        let mut bounce_ids = Vec::new();
        if !bounced.is_empty() {
            bounce_ids = self.record_bounces(envelope, &bounced, &raw).await?;
            if bounced.len() == envelope.rcpt_to.len() {
                return Ok(bounce_ids);
            }
        }

        // One message per thwonk, holding that thwonk's recipients. Looked up again: the
        // thwonk may have changed since RCPT.
        let mut owners = Vec::with_capacity(envelope.rcpt_to.len());
        for rcpt in envelope
            .rcpt_to
            .iter()
            .filter(|r| !is_bounce_address(r.as_str()))
        {
            let thwonk = self
                .active_thwonk(rcpt)
                .await?
                .ok_or_else(|| DeliverError::RecipientGone(rcpt.clone()))?;
            owners.push((thwonk.id, rcpt));
        }
        let groups = group_by_thwonk(owners);
        // One copy of the bytes for every thwonk's message: shared here, stored once.
        let raw = std::sync::Arc::new(raw);
        let messages: Vec<NewMessage> = groups
            .into_iter()
            .map(|(thwonk_id, rcpt_to)| NewMessage {
                thwonk_id,
                mail_from: envelope.mail_from.clone(),
                rcpt_to,
                raw: raw.clone(),
                received_at_ms: envelope.received_at_ms,
            })
            .collect();

        let ids = self.store.insert_messages(&messages).await?;
        if ids.len() != messages.len() {
            if let Err(e) = self.store.delete_queued_messages(&ids).await {
                tracing::error!(?ids, error = %e, "could not delete messages after a bad insert");
            }
            return Err(DeliverError::Unavailable(format!(
                "store returned {} ids for {} messages",
                ids.len(),
                messages.len()
            )));
        }
        for (id, message) in ids.iter().zip(&messages) {
            let payload = thwonk_thoonk::inbound_payload(id, &message.thwonk_id);
            if let Err(e) = self.queue.publish(id, &payload).await {
                // Jobs already published for this delivery find their message gone and must
                // end as no-ops; the client's retry is the one that runs.
                if let Err(del) = self.store.delete_queued_messages(&ids).await {
                    tracing::error!(
                        ?ids, error = %del,
                        "could not delete messages whose job failed; they may run twice"
                    );
                }
                return Err(DeliverError::Queue(e));
            }
        }
        // A retry of this delivery (after a 451 below this point) would record its bounces
        // again: a duplicate bounce record is harmless, a lost message is not.
        Ok(bounce_ids.into_iter().chain(ids).collect())
    }
}

/// The bounce record of one recipient block ([`read_bounce`] keeps only those naming a
/// recipient of `row`).
fn bounce_record(
    row: &OutboxRow,
    r: &ReportedRecipient,
    reported_by: &str,
    received_at_ms: i64,
) -> NewBounce {
    NewBounce {
        outbox_id: row.id.clone(),
        source: "remote".into(),
        rcpt: r.rcpt.clone(),
        action: r.action.clone(),
        status: r.status.clone(),
        remote_mta: r.remote_mta.clone(),
        diagnostic: r.diagnostic.clone(),
        reported_by: Some(reported_by.to_string()),
        received_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thwonk_core::status::DeliveryStatus;

    fn row() -> OutboxRow {
        OutboxRow {
            id: "o1".into(),
            run_id: "r1".into(),
            thwonk_id: "t1".into(),
            mail_from: "bounces+abc@example.org".into(),
            rcpt_to: vec!["bob@example.net".into(), "carol@example.net".into()],
            raw: Vec::new(),
            status: DeliveryStatus::Sent,
            attempts: 0,
            last_error: None,
            next_attempt_at_ms: 0,
            created_at_ms: 0,
            bounce_token: Some("abc".into()),
        }
    }

    #[test]
    fn a_bounce_record_keeps_what_the_report_says() {
        let r = ReportedRecipient {
            rcpt: Some("bob@example.net".into()),
            status: Some("5.1.1".into()),
            ..Default::default()
        };
        let got = bounce_record(&row(), &r, "mailer@x", 7);
        assert_eq!(got.rcpt.as_deref(), Some("bob@example.net"));
        assert_eq!(got.status.as_deref(), Some("5.1.1"));
        assert_eq!(got.source, "remote");
        assert_eq!(got.outbox_id, "o1");
        assert_eq!(got.reported_by.as_deref(), Some("mailer@x"));
        assert_eq!(got.received_at_ms, 7);
    }

    #[test]
    fn recipients_are_grouped_per_thwonk_in_order() {
        let a = Address::parse("a@example.org").unwrap();
        let b = Address::parse("b@example.org").unwrap();
        let c = Address::parse("c@example.org").unwrap();
        let groups = group_by_thwonk(vec![
            ("t2".into(), &a),
            ("t1".into(), &b),
            ("t2".into(), &c),
        ]);
        assert_eq!(
            groups,
            vec![
                (
                    "t2".to_string(),
                    vec!["a@example.org".to_string(), "c@example.org".to_string()]
                ),
                ("t1".to_string(), vec!["b@example.org".to_string()]),
            ]
        );
    }

    #[test]
    fn only_active_thwonks_with_a_script_take_mail() {
        let mut t = Thwonk {
            id: "t".into(),
            address: Address::parse("a@example.org").unwrap(),
            status: ThwonkStatus::Active,
            active_version: Some(1),
            schedule: None,
            created_at_ms: 0,
        };
        assert!(takes_mail(&t));
        t.active_version = None;
        assert!(!takes_mail(&t));
        t.active_version = Some(1);
        t.status = ThwonkStatus::Disabled;
        assert!(!takes_mail(&t));
    }
}
