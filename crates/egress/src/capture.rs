//! Mode `capture`: nothing leaves the host. Each message is written to
//! `{data_dir}/captured/{outbox_id}.eml` with its envelope beside it in `{outbox_id}.json`
//! (`{"mail_from", "rcpt_to"}`), for development, tests and dry runs.
//!
//! Both files are written to a temporary name, synced and renamed, so a reader that sees an
//! `.eml` never sees half of it, and the `.json` is written first so it is there by then.

use crate::failure::Failure;
use crate::transport::{DeliveryReport, Outgoing, Transport};
use std::io::Write;
use std::path::{Path, PathBuf};
use thwonk_mail::normalize_crlf;

/// Writes messages as files.
#[derive(Debug, Clone)]
pub struct CaptureTransport {
    dir: PathBuf,
}

impl CaptureTransport {
    /// `dir` is created on first delivery if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CaptureTransport { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Transport for CaptureTransport {
    async fn deliver(&self, message: &Outgoing<'_>) -> DeliveryReport {
        let name = self.dir.display().to_string();
        if !is_safe_file_stem(message.id) {
            // Outbox ids are UUIDs; anything else must not become a path.
            return DeliveryReport::single(
                name,
                message.rcpt_to,
                Err(Failure::Refused(format!(
                    "outbox id {:?} cannot name a file",
                    message.id
                ))),
            );
        }
        let dir = self.dir.clone();
        let id = message.id.to_string();
        let raw = normalize_crlf(message.raw).into_owned();
        let sidecar = serde_json::json!({
            "mail_from": message.mail_from,
            "rcpt_to": message.rcpt_to,
        })
        .to_string();
        let written = tokio::task::spawn_blocking(move || write_capture(&dir, &id, &raw, &sidecar))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
        let result = match written {
            Ok(path) => Ok(format!("captured as {}", path.display())),
            Err(e) => Err(Failure::Local(e.to_string())),
        };
        DeliveryReport::single(name, message.rcpt_to, result)
    }
}

fn write_capture(dir: &Path, id: &str, raw: &[u8], sidecar: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    write_atomic(dir, &format!("{id}.json"), sidecar.as_bytes())?;
    let eml = write_atomic(dir, &format!("{id}.eml"), raw)?;
    // Make the renames themselves durable; not every file system supports syncing a folder,
    // and the files are already complete either way.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(eml)
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn is_safe_file_stem(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
