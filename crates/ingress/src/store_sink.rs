//! The daemon's [`MailSink`]: a message row per thwonk in SQL, then a job per row on the
//! `inbound` queue.
//!
//! Order matters for "nothing lost, nothing twice": rows first (the system of record), jobs
//! second. If a job cannot be queued the rows are deleted again and the client is told 451,
//! so its retry is the only copy that will ever run.
//!
//! Bounces: mail to `bounces+TOKEN@domain` (a domain we serve) is accepted when `TOKEN` names
//! an outbox row (550 5.1.1 otherwise), and becomes bounce records on that row (fields read
//! from the DSN, best effort) instead of a message: it runs no script and is never answered
//! with a DSN.

use crate::sink::{DeliverError, Envelope, MailSink, RcptVerdict};
use std::sync::Arc;
use thwonk_core::status::ThwonkStatus;
use thwonk_core::{Address, Config};
use thwonk_mail::dsn::{ReportedRecipient, parse_dsn};
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

    /// Record the bounce `raw` for each of `rows`; the bounce records' ids.
    async fn record_bounces(
        &self,
        envelope: &Envelope,
        rows: &[OutboxRow],
        raw: &[u8],
    ) -> Result<Vec<String>, DeliverError> {
        let reported = parse_dsn(raw);
        let bounces: Vec<NewBounce> = rows
            .iter()
            .flat_map(|row| {
                bounce_records(row, &reported, &envelope.mail_from, envelope.received_at_ms)
            })
            .collect();
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

/// The bounce records for one bounced outbox row: one per recipient block of the DSN that
/// names a recipient of the row; if none does (not a DSN, or one we cannot read), one record
/// without a recipient, so that the bounce is still seen on the run.
fn bounce_records(
    row: &OutboxRow,
    reported: &[ReportedRecipient],
    reported_by: &str,
    received_at_ms: i64,
) -> Vec<NewBounce> {
    let record = |r: &ReportedRecipient, rcpt: Option<String>| NewBounce {
        outbox_id: row.id.clone(),
        source: "remote".into(),
        rcpt,
        action: r.action.clone(),
        status: r.status.clone(),
        remote_mta: r.remote_mta.clone(),
        diagnostic: r.diagnostic.clone(),
        reported_by: Some(reported_by.to_string()),
        received_at_ms,
    };
    let ours: Vec<NewBounce> = reported
        .iter()
        .filter_map(|r| {
            let named = r.rcpt.as_deref()?;
            let rcpt = row.rcpt_to.iter().find(|x| x.eq_ignore_ascii_case(named))?;
            Some(record(r, Some(rcpt.clone())))
        })
        .collect();
    if ours.is_empty() {
        vec![record(&reported.first().cloned().unwrap_or_default(), None)]
    } else {
        ours
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
    fn bounces_name_only_recipients_of_the_row() {
        let reported = vec![
            ReportedRecipient {
                rcpt: Some("Bob@Example.net".into()),
                status: Some("5.1.1".into()),
                ..Default::default()
            },
            ReportedRecipient {
                rcpt: Some("mallory@example.com".into()),
                ..Default::default()
            },
        ];
        let got = bounce_records(&row(), &reported, "", 7);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rcpt.as_deref(), Some("bob@example.net"));
        assert_eq!(got[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(got[0].source, "remote");

        // Nothing readable: still one record, with no recipient.
        let got = bounce_records(&row(), &[], "mailer@x", 7);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rcpt, None);
        assert_eq!(got[0].reported_by.as_deref(), Some("mailer@x"));
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
