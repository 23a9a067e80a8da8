//! `thwonk test`: one run of a script on a message file (or of its `onSchedule` or
//! `onRequest`), with no daemon, no Redis and no database. Files come from a directory
//! (`--files DIR`) and nothing is written back: the result shows what the run *would* commit,
//! after the checks the commit makes (its sends are composed, as by the runner, and a send the
//! commit would refuse fails the dry run too). The script runs in a sandbox worker, as in the
//! daemon, so a hostile script cannot crash the command either.

use std::path::{Path, PathBuf};
use thwonk_core::run::{
    ErrorKind, FileInfo, RunOutcome, RunRequest, SandboxLimits, ThwonkContext, Trigger, VfsReader,
};
use thwonk_core::time::now_ms;
use thwonk_mail::InboundEnvelope;

/// Serves reads from a local directory (or from nothing).
pub struct DirVfs {
    root: Option<PathBuf>,
}

impl DirVfs {
    pub fn new(root: Option<PathBuf>) -> Self {
        DirVfs { root }
    }
}

impl VfsReader for DirVfs {
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(root) = &self.root else {
            return Ok(None);
        };
        match std::fs::read(root.join(path)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{path}: {e}")),
        }
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<FileInfo>, String> {
        let Some(root) = &self.root else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        walk(root, root, &mut out).map_err(|e| e.to_string())?;
        out.retain(|f| f.path.starts_with(prefix));
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<FileInfo>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(root, &entry.path(), out)?;
        } else if meta.is_file() {
            let rel = entry.path();
            let rel = rel.strip_prefix(root).unwrap_or(&rel);
            let updated_at_ms = meta.modified().map(thwonk_core::time::ms_of).unwrap_or(0);
            out.push(FileInfo {
                path: rel.to_string_lossy().replace('\\', "/"),
                size: meta.len(),
                updated_at_ms,
            });
        }
    }
    Ok(())
}

/// What a dry run needs.
pub struct DryRun<'a> {
    pub script: &'a str,
    pub raw_message: &'a [u8],
    /// The rules address the script runs as.
    pub address: &'a thwonk_core::Address,
    /// Envelope sender; the `From:` address is a good stand-in.
    pub mail_from: &'a str,
    pub files: Option<PathBuf>,
    pub limits: &'a SandboxLimits,
    /// Where the script runs (a one-worker pool will do).
    pub pool: &'a thwonk_sandbox::WorkerPool,
}

/// Run `script` once on the message (blocking; call from a plain thread).
pub fn dry_run(d: &DryRun<'_>) -> RunOutcome {
    dry_run_with_vfs(d, &mut DirVfs::new(d.files.clone()))
}

/// [`dry_run`] with the script's file reads served by `vfs` instead of `d.files` (the HTTP
/// API's dry run reads the thwonk's own files, read-only, through
/// [`crate::vfs::StoreVfs`]). Blocking: call from a blocking thread.
pub fn dry_run_with_vfs(d: &DryRun<'_>, vfs: &mut dyn thwonk_core::run::VfsReader) -> RunOutcome {
    let now = now_ms();
    let recipients = vec![d.address.to_string()];
    let view = thwonk_mail::parse_message(
        d.raw_message,
        &InboundEnvelope {
            id: "dry-run",
            mail_from: d.mail_from,
            to: d.address.as_str(),
            recipients: &recipients,
            received_at_ms: now,
        },
    );
    run_trigger(d, Trigger::Message(view), now, vfs)
}

/// What a dry run other than of a message runs.
#[derive(Debug, Clone, PartialEq)]
pub enum OtherTrigger {
    /// `onSchedule({at: now, schedule}, thwonk)`, as a tick of `schedule` would run it.
    Schedule(String),
    /// `onRequest({body}, thwonk)`, as `POST .../invoke` with this JSON body would.
    Request(serde_json::Value),
}

/// [`dry_run`] of `onSchedule` or `onRequest` (`thwonk test --schedule` / `--request`):
/// `d.raw_message` and `d.mail_from` are not used. Blocking.
pub fn dry_run_other(d: &DryRun<'_>, other: OtherTrigger) -> RunOutcome {
    let now = now_ms();
    let trigger = match other {
        OtherTrigger::Schedule(schedule) => Trigger::Schedule {
            at: thwonk_core::time::rfc3339_millis(now),
            schedule,
        },
        OtherTrigger::Request(body) => Trigger::Request { body, http: None },
    };
    run_trigger(d, trigger, now, &mut DirVfs::new(d.files.clone()))
}

fn run_trigger(
    d: &DryRun<'_>,
    trigger: Trigger,
    now: i64,
    vfs: &mut dyn thwonk_core::run::VfsReader,
) -> RunOutcome {
    let req = RunRequest {
        run_id: "dry-run".into(),
        thwonk: ThwonkContext {
            address: d.address.to_string(),
            domain: d.address.domain().to_string(),
            public_url: None,
        },
        script: d.script.to_string(),
        trigger,
        now_ms: now,
        limits: d.limits.clone(),
        // A dry run answers as if no reply had been sent before (it records none either).
        auto_replied: Vec::new(),
    };
    let outcome = d
        .pool
        .run(&req, vfs)
        .unwrap_or_else(|e| RunOutcome::failed(ErrorKind::Internal, e.to_string()));
    // What the live commit would refuse, refused here by the same function; the composed rows
    // are dropped.
    let (outcome, _rows) =
        crate::outbox::compose_sends(outcome, d.address.as_str(), Some(d.raw_message));
    outcome
}
