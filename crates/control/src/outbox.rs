//! A run's sends → outbox rows: the step where the live commit can still refuse a run, shared
//! with the dry run so that `thwonk test` and `POST .../test` report exactly what the commit
//! would.

use thwonk_core::ids::{new_id, new_token};
use thwonk_core::run::{
    ErrorKind, RunError, RunOutcome, RunStatus, SandboxLimits, SendKind, VfsOp,
};
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

/// Check again, in the runner, what a sandbox worker returned instead of trusting it: the
/// recipients over all sends against `limits.recipients_per_run`, every `from` against the
/// thwonk's own `address`, every file written against `limits.file_max_bytes` and the bytes
/// written against `limits.vfs_bytes_per_run`. The sandbox enforces the same limits as the
/// script runs; a worker that returns more was subverted or is broken, and its run fails
/// with `LimitError`, its effects dropped.
pub fn recheck_worker_result(
    mut outcome: RunOutcome,
    address: &str,
    limits: &SandboxLimits,
) -> RunOutcome {
    if !outcome.is_ok() {
        return outcome;
    }
    if let Some(why) = worker_result_fault(&outcome, address, limits) {
        tracing::warn!(thwonk = %address, "worker result refused: {why}");
        outcome.status = RunStatus::Error;
        outcome.error = Some(RunError {
            kind: ErrorKind::LimitError,
            message: format!("the run's result was refused: {why}"),
            stack: None,
        });
        outcome.effects = Default::default();
        outcome.response = None;
    }
    outcome
}

fn worker_result_fault(
    outcome: &RunOutcome,
    address: &str,
    limits: &SandboxLimits,
) -> Option<String> {
    let sends = &outcome.effects.sends;
    let recipients: u64 = sends
        .iter()
        .map(|s| (s.to.len() + s.cc.len() + s.bcc.len()) as u64)
        .sum();
    if recipients > limits.recipients_per_run {
        return Some(format!(
            "{recipients} recipients, more than limits.recipients_per_run ({})",
            limits.recipients_per_run
        ));
    }
    if let Some(from) = sends
        .iter()
        .filter_map(|s| s.from.as_deref())
        .find(|f| !f.trim().eq_ignore_ascii_case(address))
    {
        return Some(format!(
            "from {from:?} is not this thwonk's address ({address})"
        ));
    }
    let mut written: u64 = 0;
    for op in &outcome.effects.writes {
        if let VfsOp::Write { path, content } = op {
            let len = content.len() as u64;
            if len > limits.file_max_bytes {
                return Some(format!(
                    "file {path:?} of {len} bytes, more than limits.file_max_bytes ({})",
                    limits.file_max_bytes
                ));
            }
            written += len;
        }
    }
    if written > limits.vfs_bytes_per_run {
        return Some(format!(
            "{written} bytes written, more than limits.vfs_bytes_per_run ({})",
            limits.vfs_bytes_per_run
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use thwonk_core::run::{Cost, Effects, SendRequest};

    /// What a subverted worker might return: a successful run whose effects the sandbox
    /// would never have let through.
    fn forged(sends: Vec<SendRequest>, writes: Vec<VfsOp>) -> RunOutcome {
        RunOutcome {
            status: RunStatus::Ok,
            error: None,
            effects: Effects {
                sends,
                writes,
                ..Default::default()
            },
            logs: Vec::new(),
            logs_truncated: false,
            cost: Cost::default(),
            response: Some(serde_json::json!("forged")),
        }
    }

    fn send(to: usize, from: Option<&str>) -> SendRequest {
        SendRequest {
            id: "r.1".into(),
            to: (0..to).map(|i| format!("v{i}@foreign.test")).collect(),
            from: from.map(str::to_string),
            subject: "x".into(),
            text: Some("x".into()),
            ..Default::default()
        }
    }

    fn refused(outcome: RunOutcome, says: &str) {
        assert_eq!(outcome.status, RunStatus::Error);
        let e = outcome.error.unwrap();
        assert_eq!(e.kind, ErrorKind::LimitError);
        assert!(e.message.contains(says), "{}", e.message);
        assert!(outcome.effects.sends.is_empty() && outcome.effects.writes.is_empty());
        assert_eq!(outcome.response, None);
    }

    #[test]
    fn a_forged_worker_result_is_refused() {
        let limits = SandboxLimits::default();
        let me = "list@example.org";
        // Thousands of recipients, in sends the sandbox would have refused one by one.
        let many = forged(vec![send(600, None), send(600, None)], vec![]);
        refused(
            recheck_worker_result(many, me, &limits),
            "1200 recipients, more than limits.recipients_per_run (1000)",
        );
        // Another sender's From:.
        let foreign = forged(vec![send(1, Some("ceo@bank.example"))], vec![]);
        refused(
            recheck_worker_result(foreign, me, &limits),
            "is not this thwonk's address",
        );
        // A file past the size limit, and more bytes than a run may write.
        let big = "x".repeat(limits.file_max_bytes as usize + 1);
        let file = forged(
            vec![],
            vec![VfsOp::Write {
                path: "a".into(),
                content: big,
            }],
        );
        refused(
            recheck_worker_result(file, me, &limits),
            "limits.file_max_bytes",
        );
        let chunk = "x".repeat(limits.file_max_bytes as usize);
        let writes = (0..11)
            .map(|i| VfsOp::Write {
                path: format!("f{i}"),
                content: chunk.clone(),
            })
            .collect();
        refused(
            recheck_worker_result(forged(vec![], writes), me, &limits),
            "limits.vfs_bytes_per_run",
        );
        // What the sandbox allows passes untouched (its own address in any case).
        let fine = forged(vec![send(1000, Some("List@Example.org"))], vec![]);
        let out = recheck_worker_result(fine, me, &limits);
        assert!(out.is_ok(), "{:?}", out.error);
        assert_eq!(out.effects.sends.len(), 1);
    }
}
