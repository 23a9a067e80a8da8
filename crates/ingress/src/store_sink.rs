//! The daemon's [`MailSink`]: a message row per thwonk in SQL, then a job per row on the
//! `inbound` queue.
//!
//! Order matters for "nothing lost, nothing twice": rows first (the system of record), jobs
//! second. If a job cannot be queued the rows are deleted again and the client is told 451,
//! so its retry is the only copy that will ever run.

use crate::sink::{DeliverError, Envelope, MailSink, RcptVerdict};
use std::sync::Arc;
use thwonk_core::{Address, Config};
use thwonk_store::{NewMessage, Store, Thwonk};
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

    /// The thwonk that takes mail for `rcpt`, if any.
    async fn active_thwonk(&self, rcpt: &Address) -> Result<Option<Thwonk>, DeliverError> {
        Ok(self.store.thwonk_by_address(rcpt).await?.filter(takes_mail))
    }
}

/// Only an active thwonk with a deployed script takes mail: without a script there is
/// nothing to run, and queued mail would pile up.
fn takes_mail(thwonk: &Thwonk) -> bool {
    thwonk.status == "active" && thwonk.active_version.is_some()
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
        match self.active_thwonk(rcpt).await {
            Ok(Some(_)) => RcptVerdict::Accept,
            Ok(None) => RcptVerdict::Unknown,
            Err(e) => {
                tracing::warn!(%rcpt, error = %e, "recipient lookup failed");
                RcptVerdict::TempFail("Cannot look the address up".into())
            }
        }
    }

    async fn deliver(
        &self,
        envelope: &Envelope,
        mut raw: Vec<u8>,
    ) -> Result<Vec<String>, DeliverError> {
        // One message per thwonk, holding that thwonk's recipients. Looked up again: the
        // thwonk may have changed since RCPT.
        let mut owners = Vec::with_capacity(envelope.rcpt_to.len());
        for rcpt in &envelope.rcpt_to {
            let thwonk = self
                .active_thwonk(rcpt)
                .await?
                .ok_or_else(|| DeliverError::RecipientGone(rcpt.clone()))?;
            owners.push((thwonk.id, rcpt));
        }
        let groups = group_by_thwonk(owners);
        let last = groups.len().saturating_sub(1);
        let messages: Vec<NewMessage> = groups
            .into_iter()
            .enumerate()
            .map(|(i, (thwonk_id, rcpt_to))| NewMessage {
                thwonk_id,
                mail_from: envelope.mail_from.clone(),
                rcpt_to,
                // Every thwonk gets its own copy; the last one takes the original.
                raw: if i == last {
                    std::mem::take(&mut raw)
                } else {
                    raw.clone()
                },
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
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            status: "active".into(),
            active_version: Some(1),
            schedule: None,
            created_at_ms: 0,
        };
        assert!(takes_mail(&t));
        t.active_version = None;
        assert!(!takes_mail(&t));
        t.active_version = Some(1);
        t.status = "disabled".into();
        assert!(!takes_mail(&t));
    }
}
