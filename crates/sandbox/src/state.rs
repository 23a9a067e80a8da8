//! The run's Rust-side state: buffered effects, logs, per-run counters and the file overlay.
//!
//! Native functions reach it through [`crate::host::Host`]. It holds no JS values, so the
//! garbage collector never needs to look inside it, and every limit of a run is enforced here
//! in plain Rust, unit-testable without an engine.

use std::time::Instant;

use thwonk_core::run::{
    Effects, ErrorKind, FeedOp, LogLine, MessageView, RunError, SandboxLimits, SendRequest,
    StoredFeedItem, VfsOp, VfsReader,
};

use crate::overlay::Overlay;

/// Why an API call failed; turned into a JS exception (or a run abort) at the JS boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A refused operation (bad path, bad address): a JS `Error`.
    #[error("{0}")]
    Refused(String),
    /// A per-run limit: a JS error named `LimitError`.
    #[error("{0}")]
    Limit(String),
    /// The run cannot go on (store failure, wall clock): uncatchable, the run fails with this.
    #[error("{1}")]
    Abort(ErrorKind, String),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Everything about one run that is not a JS value.
pub struct RunState {
    pub run_id: String,
    pub address: String,
    pub domain: String,
    pub limits: SandboxLimits,
    pub now_ms: i64,
    pub started: Instant,
    /// The incoming message, for `msg.headers`, `attachments.content(i)` and the legacy API.
    pub message: Option<MessageView>,
    /// Replies ([`thwonk_core::run::reply_key`]) already sent: lately (from the runner) or by
    /// this run; `thwonk.reply` sends none of them again.
    pub auto_replied: Vec<String>,
    /// The HTTP request's body text, for `req.text()` and `req.json()`.
    pub request_text: Option<String>,
    /// `thwonk.url`'s base (`{public.base_url}/pub/{address}`), if configured.
    pub public_url: Option<String>,
    pub effects: Effects,
    pub logs: Vec<LogLine>,
    pub logs_truncated: bool,
    log_bytes: u64,
    pub files: Overlay,
    reader: Box<dyn VfsReader>,
    vfs_bytes_written: u64,
    /// Every file's size (stored, with this run's changes), once the run first writes:
    /// what the VFS quota (`vfs_total_bytes`) is checked against, and their sum.
    vfs_sizes: Option<(std::collections::BTreeMap<String, u64>, u64)>,
    /// Bytes of this run's sends so far (`outbox_bytes_per_run`).
    outbox_bytes: u64,
    recipients: u64,
    sends: u64,
    feed_items: u64,
    /// Set when an API call aborted the run; wins over whatever error the engine reports.
    pub abort: Option<RunError>,
}

impl RunState {
    pub fn new(
        req: &thwonk_core::run::RunRequest,
        reader: Box<dyn VfsReader>,
        started: Instant,
    ) -> Self {
        let message = match &req.trigger {
            // Without the texts: the run's `msg` has them, the state needs the rest (and
            // `raw`, for the classic API), and a big message is not held twice more.
            thwonk_core::run::Trigger::Message(m) => Some(MessageView {
                id: m.id.clone(),
                from: m.from.clone(),
                to: m.to.clone(),
                recipients: m.recipients.clone(),
                sender: m.sender.clone(),
                subject: m.subject.clone(),
                date: m.date.clone(),
                message_id: m.message_id.clone(),
                headers: m.headers.clone(),
                text: String::new(),
                html: None,
                attachments: m.attachments.clone(),
                raw: m.raw.clone(),
                size: m.size,
                received_at: m.received_at.clone(),
            }),
            _ => None,
        };
        let request_text = match &req.trigger {
            thwonk_core::run::Trigger::Request { body, http } => Some(
                http.as_ref()
                    .and_then(|h| h.text.clone())
                    .unwrap_or_else(|| body.to_string()),
            ),
            _ => None,
        };
        RunState {
            request_text,
            public_url: req.thwonk.public_url.clone(),
            run_id: req.run_id.clone(),
            address: req.thwonk.address.clone(),
            domain: req.thwonk.domain.clone(),
            limits: req.limits.clone(),
            now_ms: req.now_ms,
            started,
            message,
            auto_replied: req.auto_replied.clone(),
            effects: Effects::default(),
            logs: Vec::new(),
            logs_truncated: false,
            log_bytes: 0,
            files: Overlay::default(),
            reader,
            vfs_bytes_written: 0,
            vfs_sizes: None,
            outbox_bytes: 0,
            recipients: 0,
            sends: 0,
            feed_items: 0,
            abort: None,
        }
    }

    /// Milliseconds of wall clock left.
    pub fn ms_left(&self) -> u64 {
        let spent = self.started.elapsed().as_millis() as u64;
        self.limits.wall_clock_ms.saturating_sub(spent)
    }

    /// Called on every API call: the engine cannot be interrupted in-process, so the wall
    /// clock is enforced where the script comes back to us.
    pub fn check_clock(&self) -> ApiResult<()> {
        if self.ms_left() == 0 {
            return Err(ApiError::Abort(
                ErrorKind::Timeout,
                format!(
                    "wall-clock limit of {} ms exceeded",
                    self.limits.wall_clock_ms
                ),
            ));
        }
        Ok(())
    }

    /// Records the abort so that it is reported even if the engine's error says otherwise.
    pub fn record_abort(&mut self, kind: ErrorKind, message: &str) {
        if self.abort.is_none() {
            self.abort = Some(RunError {
                kind,
                message: message.to_string(),
                stack: None,
            });
        }
    }

    /// Appends a log line, or drops it (marking the run truncated) past the log budget.
    pub fn log(&mut self, level: &str, message: String) {
        let bytes = message.len() as u64;
        if self.logs_truncated || self.log_bytes + bytes > self.limits.log_bytes_per_run {
            self.logs_truncated = true;
            return;
        }
        self.log_bytes += bytes;
        self.logs.push(LogLine {
            level: level.to_string(),
            message,
        });
    }

    /// Buffers an outgoing message: counts its recipients and gives it its id.
    pub fn send(&mut self, mut send: SendRequest) -> ApiResult<String> {
        let count = (send.to.len() + send.cc.len() + send.bcc.len()) as u64;
        if count == 0 {
            return Err(ApiError::Refused(
                "a message needs at least one recipient".into(),
            ));
        }
        if self.recipients + count > self.limits.recipients_per_run {
            return Err(ApiError::Limit(format!(
                "recipient limit of {} per run exceeded",
                self.limits.recipients_per_run
            )));
        }
        let bytes = self.send_bytes(&send);
        if self.outbox_bytes.saturating_add(bytes) > self.limits.outbox_bytes_per_run {
            return Err(ApiError::Limit(format!(
                "outgoing mail limit of {} bytes per run exceeded ({} bytes sent, this one {bytes})",
                self.limits.outbox_bytes_per_run, self.outbox_bytes
            )));
        }
        self.outbox_bytes += bytes;
        self.recipients += count;
        self.sends += 1;
        send.id = format!("{}.{}", self.run_id, self.sends);
        let id = send.id.clone();
        self.effects.sends.push(send);
        Ok(id)
    }

    /// What a send adds to the outbox, near enough: its texts, headers, attachments as sent
    /// (base64) and, for a forward, the original message.
    fn send_bytes(&self, send: &SendRequest) -> u64 {
        let texts = send.subject.len()
            + send.text.as_ref().map_or(0, String::len)
            + send.html.as_ref().map_or(0, String::len)
            + send
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
            + send
                .attachments
                .iter()
                .map(|a| a.content_base64.len() + a.filename.len())
                .sum::<usize>();
        let forwarded = match send.kind {
            thwonk_core::run::SendKind::Forward { .. } => {
                self.message.as_ref().map_or(0, |m| m.size)
            }
            _ => 0,
        };
        (texts as u64).saturating_add(forwarded)
    }

    /// Buffers a feed item and returns its id (`{run_id}.f{n}` unless the script chose one).
    pub fn publish(&mut self, feed: &str, id: Option<String>, item: String) -> ApiResult<String> {
        self.feed_items += 1;
        let id = id.unwrap_or_else(|| format!("{}.f{}", self.run_id, self.feed_items));
        self.effects.feed_ops.push(FeedOp::Publish {
            feed: feed.to_string(),
            id: id.clone(),
            item,
        });
        Ok(id)
    }

    /// The newest `limit` items of this thwonk's feed `feed`, oldest first, with this run's
    /// own publishes and retractions applied (reads see the run's own writes; a publish of an
    /// existing id edits it in place, as Thoonk does).
    pub fn feed_items(&mut self, feed: &str, limit: usize) -> ApiResult<Vec<StoredFeedItem>> {
        let own: Vec<&FeedOp> = self
            .effects
            .feed_ops
            .iter()
            .filter(|op| match op {
                FeedOp::Publish { feed: f, .. } | FeedOp::Retract { feed: f, .. } => f == feed,
            })
            .collect();
        // Enough stored items that this run's retractions cannot leave fewer than `limit`.
        let retracts = own
            .iter()
            .filter(|op| matches!(op, FeedOp::Retract { .. }))
            .count();
        let mut items = self
            .reader
            .feed_items(feed, limit.saturating_add(retracts))
            .map_err(|e| ApiError::Abort(ErrorKind::Internal, format!("feed read failed: {e}")))?;
        for op in own {
            match op {
                FeedOp::Publish { id, item, .. } => match items.iter_mut().find(|i| &i.id == id) {
                    Some(existing) => existing.item = item.clone(),
                    None => items.push(StoredFeedItem {
                        id: id.clone(),
                        item: item.clone(),
                    }),
                },
                FeedOp::Retract { id, .. } => items.retain(|i| &i.id != id),
            }
        }
        let skip = items.len().saturating_sub(limit);
        items.drain(..skip);
        Ok(items)
    }

    pub fn retract(&mut self, feed: &str, id: String) {
        self.effects.feed_ops.push(FeedOp::Retract {
            feed: feed.to_string(),
            id,
        });
    }

    /// Reads a file, seeing this run's own writes first. `path` is normalised.
    pub fn read_file(&mut self, path: &str) -> ApiResult<Option<String>> {
        self.files
            .read(path, self.reader.as_mut())
            .map_err(|e| ApiError::Abort(ErrorKind::Internal, format!("file read failed: {e}")))
    }

    /// Lists files under a normalised prefix, merged with this run's writes.
    pub fn list_files(&mut self, prefix: &str) -> ApiResult<Vec<thwonk_core::run::FileInfo>> {
        let now = self.now_ms;
        self.files
            .list(prefix, self.reader.as_mut(), now)
            .map_err(|e| ApiError::Abort(ErrorKind::Internal, format!("file listing failed: {e}")))
    }

    /// Buffers a write, enforcing the file size and per-run byte limits.
    pub fn write_file(&mut self, path: String, content: String) -> ApiResult<()> {
        let bytes = content.len() as u64;
        if bytes > self.limits.file_max_bytes {
            return Err(ApiError::Limit(format!(
                "{path}: {bytes} bytes is over the file size limit of {} bytes",
                self.limits.file_max_bytes
            )));
        }
        if self.vfs_bytes_written + bytes > self.limits.vfs_bytes_per_run {
            return Err(ApiError::Limit(format!(
                "limit of {} bytes written per run exceeded",
                self.limits.vfs_bytes_per_run
            )));
        }
        self.check_vfs_quota(&path, bytes)?;
        self.vfs_bytes_written += bytes;
        self.files.write(path.clone(), content.clone());
        self.effects.writes.push(VfsOp::Write { path, content });
        Ok(())
    }

    /// Refuses a write of `bytes` to `path` that would take the thwonk's files past
    /// `vfs_total_bytes`; otherwise counts it.
    fn check_vfs_quota(&mut self, path: &str, bytes: u64) -> ApiResult<()> {
        if self.vfs_sizes.is_none() {
            let files = self
                .files
                .list("", self.reader.as_mut(), self.now_ms)
                .map_err(|e| {
                    ApiError::Abort(ErrorKind::Internal, format!("file listing failed: {e}"))
                })?;
            let total = files.iter().map(|f| f.size).sum();
            let sizes = files.into_iter().map(|f| (f.path, f.size)).collect();
            self.vfs_sizes = Some((sizes, total));
        }
        let Some((sizes, total)) = self.vfs_sizes.as_mut() else {
            return Ok(());
        };
        let old = sizes.get(path).copied().unwrap_or(0);
        let after = total.saturating_sub(old).saturating_add(bytes);
        if after > self.limits.vfs_total_bytes {
            return Err(ApiError::Limit(format!(
                "{path}: the thwonk's files would take {after} bytes, over its quota of {} bytes",
                self.limits.vfs_total_bytes
            )));
        }
        sizes.insert(path.to_string(), bytes);
        *total = after;
        Ok(())
    }

    pub fn delete_file(&mut self, path: String) {
        if let Some((sizes, total)) = self.vfs_sizes.as_mut()
            && let Some(old) = sizes.remove(&path)
        {
            *total = total.saturating_sub(old);
        }
        self.files.delete(path.clone());
        self.effects.writes.push(VfsOp::Delete { path });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thwonk_core::run::{FileInfo, RunRequest, ThwonkContext, Trigger};

    struct NoFiles;
    impl VfsReader for NoFiles {
        fn read(&mut self, _: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(None)
        }
        fn list(&mut self, _: &str) -> Result<Vec<FileInfo>, String> {
            Ok(Vec::new())
        }
    }

    fn state(limits: SandboxLimits) -> RunState {
        let req = RunRequest {
            run_id: "r1".into(),
            thwonk: ThwonkContext {
                address: "list@example.org".into(),
                domain: "example.org".into(),
                public_url: None,
            },
            script: String::new(),
            trigger: Trigger::Request {
                body: serde_json::Value::Null,
                http: None,
            },
            now_ms: 0,
            limits,
            auto_replied: Vec::new(),
        };
        RunState::new(&req, Box::new(NoFiles), Instant::now())
    }

    fn to(n: usize) -> SendRequest {
        SendRequest {
            to: (0..n).map(|i| format!("u{i}@example.net")).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn send_ids_count_from_one_within_the_run() {
        let mut s = state(SandboxLimits::default());
        assert_eq!(s.send(to(1)).unwrap(), "r1.1");
        assert_eq!(s.send(to(1)).unwrap(), "r1.2");
    }

    #[test]
    fn recipients_are_counted_over_all_sends() {
        let mut s = state(SandboxLimits {
            recipients_per_run: 3,
            ..Default::default()
        });
        s.send(to(2)).unwrap();
        assert!(matches!(s.send(to(2)), Err(ApiError::Limit(_))));
        s.send(to(1)).unwrap();
    }

    #[test]
    fn logs_past_the_budget_are_dropped_and_marked() {
        let mut s = state(SandboxLimits {
            log_bytes_per_run: 10,
            ..Default::default()
        });
        s.log("log", "12345".into());
        s.log("log", "1234567".into());
        s.log("log", "1".into());
        assert_eq!(s.logs.len(), 1);
        assert!(s.logs_truncated);
    }

    #[test]
    fn writes_obey_file_and_run_byte_limits() {
        let mut s = state(SandboxLimits {
            file_max_bytes: 4,
            vfs_bytes_per_run: 6,
            ..Default::default()
        });
        assert!(matches!(
            s.write_file("a".into(), "12345".into()),
            Err(ApiError::Limit(_))
        ));
        s.write_file("a".into(), "1234".into()).unwrap();
        assert!(matches!(
            s.write_file("b".into(), "123".into()),
            Err(ApiError::Limit(_))
        ));
        assert_eq!(s.read_file("a").unwrap().as_deref(), Some("1234"));
    }
}
