//! A run's sends → outbox rows: the step where the live commit can still refuse a run, shared
//! with the dry run so that `thwonk test` and `POST .../test` report exactly what the commit
//! would.

use thwonk_core::ids::{new_id, new_token};
use thwonk_core::run::{ErrorKind, RunError, RunOutcome, RunStatus, SendKind};
use thwonk_core::time::now_ms;
use thwonk_mail::ComposeContext;
use thwonk_store::NewOutbox;

/// Compose every send of a successful run as the thwonk `address`; `original` is the raw
/// message a forward re-sends. A send that cannot be composed fails the whole run (its
/// effects are dropped), as if the script had thrown: a run's effects happen all together or
/// not at all.
pub fn compose_sends(
    mut outcome: RunOutcome,
    address: &str,
    original: Option<&[u8]>,
) -> (RunOutcome, Vec<NewOutbox>) {
    if !outcome.is_ok() {
        return (outcome, Vec::new());
    }
    let date_ms = now_ms();
    // The trigger's loop marks go on with every send: the hop count between thwonks.
    let loop_marks = original
        .map(thwonk_mail::loop_mark::inherited)
        .unwrap_or_default();
    let mut outbox = Vec::with_capacity(outcome.effects.sends.len());
    for (i, send) in outcome.effects.sends.iter().enumerate() {
        let original = match send.kind {
            SendKind::Forward { .. } => original,
            _ => None,
        };
        // The row's own bounce token: its envelope sender is bounces+TOKEN@{thwonk domain}.
        let bounce_token = new_token();
        let ctx = ComposeContext {
            thwonk_address: address,
            date_ms,
            original,
            bounce_token: &bounce_token,
            loop_marks: &loop_marks,
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
