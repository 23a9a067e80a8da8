//! The contract between the runner and the sandbox.
//!
//! The runner builds a [`RunRequest`] (script, trigger, limits), the sandbox executes it and
//! returns a [`RunOutcome`]. While it runs, the script's file reads go through a
//! [`VfsReader`] that the runner provides (feed reads too); everything the script *does* (sends, writes, feed
//! items) is buffered in [`Effects`] and takes effect only when the runner commits the outcome
//! in one SQL transaction. A failed run's effects are empty by construction: the sandbox drops
//! them, and the runner commits only the run record.
//!
//! Every type is serde, so the same contract travels over the frames between a runner and a
//! sandbox worker process.

use serde::{Deserialize, Serialize};

/// Everything one run of a rule script is given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    /// The run's id; outgoing message ids are derived from it so that a run is deterministic.
    pub run_id: String,
    pub thwonk: ThwonkContext,
    /// The script source (the thwonk's active version).
    pub script: String,
    pub trigger: Trigger,
    /// The trigger's time in ms since the epoch: `thwonk.now()` and `Date.now()` return it.
    pub now_ms: i64,
    pub limits: SandboxLimits,
    /// The replies ([`reply_key`]) this thwonk already sent the message's envelope sender
    /// within `runner.auto_reply_interval_secs`: `thwonk.reply` does not send one of them
    /// again (RFC 3834 section 2).
    #[serde(default)]
    pub auto_replied: Vec<String>,
}

/// What identifies one automatic reply for the once-per-interval rule (RFC 3834 section 2:
/// not the same response to the same sender more than once in a period): the correspondent,
/// lower case, then `/` and a fingerprint of the reply's text and HTML (not its subject, which
/// repeats the message's: a vacation notice is the same reply whatever it answers). A
/// different answer (a confirmation, then a refusal) is a different reply. The fingerprint is
/// FNV-1a (64 bits, stable across builds); it guards against repetition, not an adversary.
pub fn reply_key(correspondent: &str, text: Option<&str>, html: Option<&str>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [text, html] {
        for b in part.unwrap_or("").bytes().chain([0xff]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{}/{hash:016x}", correspondent.trim().to_lowercase())
}

/// Who the script runs as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThwonkContext {
    /// The rules address, lower case (`list@example.org`).
    pub address: String,
    /// Its domain (`example.org`).
    pub domain: String,
    /// Its public URL (`{public.base_url}/pub/{address}`) for `thwonk.url(path)`; `None`
    /// when no `public.base_url` is configured.
    #[serde(default)]
    pub public_url: Option<String>,
}

/// What started the run.
// A request is built once per run and moved, never stored in bulk: boxing the message would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// Mail arrived: `onMessage(msg, thwonk)` (or a classic script runs top to bottom).
    Message(MessageView),
    /// A schedule fired: `onSchedule({at, schedule}, thwonk)`.
    Schedule { at: String, schedule: String },
    /// HTTP invoke: `onRequest(req, thwonk)` (or `methods[name]`); its return value is the
    /// response.
    Request {
        body: serde_json::Value,
        /// The HTTP request around the body (`req.method`, `path`, `query`, `headers`,
        /// `caller`), and the method it names; `None` for a bare JSON invoke.
        #[serde(default)]
        http: Option<HttpRequestView>,
    },
    /// A worker finished (or gave up on) a job the script published:
    /// `onJobResult(result, thwonk)`, `result` being `{id, queue, status, ok, value, error}`.
    JobResult { result: serde_json::Value },
}

/// An HTTP request as `onRequest(req, thwonk)` sees it (besides its body).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HttpRequestView {
    /// `GET`, `POST`, ... (upper case).
    pub method: String,
    /// The path below the thwonk (`/archive/2026`), always starting with `/`; `/invoke` or
    /// `/invoke/{name}` for an invoke.
    pub path: String,
    /// The query string's parameters (the last of a repeated name wins), decoded.
    pub query: Vec<(String, String)>,
    /// Header names in lower case and their values (repeated names keep every value).
    pub headers: Vec<(String, String)>,
    /// `owner` (a bearer token) or `public` (no token).
    pub caller_kind: String,
    /// The client's IP address, where known.
    pub caller_ip: Option<String>,
    /// `Some(name)`: call `methods[name]` instead of `onRequest` (`.../invoke/{name}`).
    pub handler: Option<String>,
    /// The body as the client sent it, for `req.text()` and `req.json()` (UTF-8); `None` for
    /// a JSON invoke, whose `body` is already the parsed value.
    pub text: Option<String>,
}

/// The incoming message as the script sees it (`msg` in docs/rule-scripts.md). Built by
/// `thwonk-mail`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MessageView {
    /// The message's id in this system, stable across retries.
    pub id: String,
    /// Envelope sender (MAIL FROM); empty for bounces.
    pub from: String,
    /// The rules address that received it.
    pub to: String,
    /// Every envelope recipient of this delivery that belongs to this thwonk.
    pub recipients: Vec<String>,
    /// The parsed `From:` header.
    pub sender: Mailbox,
    /// Decoded subject, empty if none.
    pub subject: String,
    /// `Date:` as ISO 8601, if present and parseable.
    pub date: Option<String>,
    /// `Message-ID:` without angle brackets.
    pub message_id: Option<String>,
    /// Every header in order, names as written, values decoded (RFC 2047).
    pub headers: Vec<(String, String)>,
    /// Plain-text body (from the HTML part when there is no text part).
    #[serde(with = "b64_text")]
    pub text: String,
    #[serde(with = "b64_text::opt")]
    pub html: Option<String>,
    pub attachments: Vec<AttachmentView>,
    /// The whole message as received (invalid UTF-8 replaced).
    #[serde(with = "b64_text")]
    pub raw: String,
    /// Size in bytes of the message as received.
    pub size: u64,
    /// ISO 8601 time the ingress accepted it.
    pub received_at: String,
}

/// The message's big text fields travel base64-encoded on the frame to a sandbox worker.
/// As JSON strings, control characters would be escaped to six bytes each (`\u0001`): a
/// 25 MiB message of them grew to 300 MiB of frame and could not run. Base64 is 4/3 of the
/// text whatever it holds.
mod b64_text {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(text.as_bytes()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let encoded = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode(&encoded).map_err(D::Error::custom)
    }

    fn decode(encoded: &str) -> Result<String, String> {
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|e| format!("not base64: {e}"))?;
        String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
    }

    pub mod opt {
        use super::*;

        pub fn serialize<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
            match text {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
            let encoded = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
            encoded
                .map(|e| decode(&e).map_err(D::Error::custom))
                .transpose()
        }
    }
}

/// A display name and an address (`{name, address}` in JS).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mailbox {
    pub name: String,
    pub address: String,
}

/// An attachment of the incoming message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttachmentView {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    /// The decoded content, base64-encoded (what `msg.attachments.content(i)` returns).
    pub content_base64: String,
}

/// The limits one run obeys (docs/rule-scripts.md, "Limits"). Set from `[limits]` in the config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxLimits {
    /// Instruction budget per run.
    pub instructions: u64,
    /// Wall-clock budget per run, ms.
    pub wall_clock_ms: u64,
    /// Memory per worker, MiB.
    pub memory_mib: u64,
    /// Largest script source, bytes.
    pub script_max_bytes: u64,
    /// Deepest bracket nesting in a script's source.
    pub script_max_depth: u32,
    /// Recursion limit (call depth).
    pub recursion_depth: u32,
    /// Recipients (to + cc + bcc, over all sends) per run.
    pub recipients_per_run: u64,
    /// VFS bytes written per run.
    pub vfs_bytes_per_run: u64,
    /// Largest single VFS file, bytes.
    pub file_max_bytes: u64,
    /// Log bytes per run; further logs are dropped and the run is marked truncated.
    pub log_bytes_per_run: u64,
    /// Total bytes of one thwonk's files (its VFS quota): a write that would pass it throws
    /// `LimitError`.
    pub vfs_total_bytes: u64,
    /// Bytes of outgoing mail one run may send (texts, headers, attachments, forwarded
    /// messages); a send that would pass it throws `LimitError`.
    pub outbox_bytes_per_run: u64,
    /// A failed run's error message and stack are stored up to this many bytes each, cut at
    /// a character boundary and marked `[truncated]`.
    pub error_max_bytes: u64,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            instructions: 50_000_000,
            wall_clock_ms: 2_000,
            memory_mib: 256,
            script_max_bytes: 256 * 1024,
            script_max_depth: 64,
            recursion_depth: 256,
            recipients_per_run: 1_000,
            vfs_bytes_per_run: 10 * 1024 * 1024,
            file_max_bytes: 1024 * 1024,
            log_bytes_per_run: 64 * 1024,
            vfs_total_bytes: 64 * 1024 * 1024,
            outbox_bytes_per_run: 25 * 1024 * 1024,
            error_max_bytes: 64 * 1024,
        }
    }
}

/// File reads during a run. The runner implements it over the store (or, in a worker process,
/// over IPC to the runner). The sandbox overlays the run's own buffered writes on top, so
/// reads see the run's own writes without the reader knowing about them.
pub trait VfsReader {
    /// The file's bytes, or `None` if it does not exist. `path` is already normalised.
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, String>;
    /// Files whose path starts with `prefix` (already normalised), ordered by path.
    fn list(&mut self, prefix: &str) -> Result<Vec<FileInfo>, String>;
    /// The newest `limit` items of the thwonk's feed `feed` (the script's name for it),
    /// oldest first, as stored (`feed(name).items()`). A reader with no feeds (`thwonk test`)
    /// has none.
    fn feed_items(&mut self, feed: &str, limit: usize) -> Result<Vec<StoredFeedItem>, String> {
        let _ = (feed, limit);
        Ok(Vec::new())
    }
}

/// One feed item as stored: its id and its text (JSON for items scripts publish).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredFeedItem {
    pub id: String,
    pub item: String,
}

/// One entry of a VFS listing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    /// Last write, ms since the epoch.
    pub updated_at_ms: i64,
}

/// What a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    pub status: RunStatus,
    /// Set when `status` is `Error`.
    pub error: Option<RunError>,
    /// Empty unless `status` is `Ok`.
    pub effects: Effects,
    pub logs: Vec<LogLine>,
    /// True when logs past `log_bytes_per_run` were dropped.
    pub logs_truncated: bool,
    pub cost: Cost,
    /// `onRequest`'s return value (HTTP invoke); `None` for other triggers.
    pub response: Option<serde_json::Value>,
}

crate::status::word_enum! {
    /// How a run ended (`runs.status`).
    pub enum RunStatus ("run status") {
        Ok = "ok",
        Error = "error",
    }
}

/// Why a run failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunError {
    pub kind: ErrorKind,
    pub message: String,
    /// The JS stack, where there is one.
    pub stack: Option<String>,
}

/// What ends an error text cut by [`RunError::cap`].
pub const TRUNCATED_MARK: &str = " [truncated]";

impl RunError {
    /// Cut the message and the stack to at most `max_bytes` each (`limits.error_max_bytes`),
    /// at a character boundary, ending in [`TRUNCATED_MARK`]: a script that throws megabytes
    /// of text gets a run record, not megabytes of it.
    pub fn cap(&mut self, max_bytes: u64) {
        cap_text(&mut self.message, max_bytes);
        if let Some(stack) = self.stack.as_mut() {
            cap_text(stack, max_bytes);
        }
    }
}

fn cap_text(text: &mut String, max_bytes: u64) {
    let max = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    if text.len() <= max {
        return;
    }
    let mut keep = max.saturating_sub(TRUNCATED_MARK.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    text.truncate(keep);
    if max >= TRUNCATED_MARK.len() {
        text.push_str(TRUNCATED_MARK);
    }
}

crate::status::word_enum! {
    /// The kinds of run failure (the names users see in run records, `runs.error_kind`).
    /// [`ErrorKind::parse`] reads a stored name back.
    pub enum ErrorKind ("run error kind") {
        /// The script does not parse or link.
        CompileError = "CompileError",
        /// The script threw (or its promise rejected).
        ScriptError = "ScriptError",
        /// The script has no handler for this trigger (`onMessage`, `onSchedule`, `onRequest`).
        NoHandler = "NoHandler",
        /// Instruction budget, loop or recursion limit exhausted.
        BudgetExceeded = "BudgetExceeded",
        /// Wall-clock budget exhausted.
        Timeout = "Timeout",
        /// Memory limit exhausted.
        OutOfMemory = "OutOfMemory",
        /// A per-run limit (recipients, VFS bytes, file size) was exceeded and not caught.
        LimitError = "LimitError",
        /// The sandbox worker died.
        WorkerCrashed = "WorkerCrashed",
        /// A fault in Thwonk itself (the store was unreachable during a read, say).
        Internal = "Internal",
    }
}

/// The buffered effects of a successful run, in the order the script made them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Effects {
    pub sends: Vec<SendRequest>,
    pub writes: Vec<VfsOp>,
    pub feed_ops: Vec<FeedOp>,
    /// Jobs for workers (`thwonk.jobs(queue).publish`), queue names the script's own (the
    /// runner prefixes the thwonk's address).
    #[serde(default)]
    pub jobs: Vec<JobPublish>,
}

/// One outgoing message as the script asked for it. `thwonk-mail` composes it into MIME.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SendRequest {
    /// The id returned to the script: `{run_id}.{n}`, n counting from 1 within the run. Also
    /// the local part of the outgoing `Message-ID`.
    pub id: String,
    pub kind: SendKind,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub reply_to: Option<String>,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// `From:` address; the sandbox has checked it belongs to this thwonk. `None`: the
    /// thwonk's address.
    pub from: Option<String>,
    pub attachments: Vec<OutgoingAttachment>,
}

/// What kind of outgoing message.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SendKind {
    /// `thwonk.send`: a new message.
    #[default]
    New,
    /// `thwonk.reply`: an answer; `In-Reply-To`/`References` are set from these.
    Reply {
        in_reply_to: Option<String>,
        references: Vec<String>,
    },
    /// `thwonk.forward`: the original message (by its id in this system), MIME intact, with an
    /// optional subject prefix and extra headers.
    Forward {
        original_message_id: String,
        subject_prefix: Option<String>,
    },
}

/// An attachment of an outgoing message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutgoingAttachment {
    pub filename: String,
    pub content_type: String,
    pub content_base64: String,
}

/// One buffered VFS change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum VfsOp {
    Write { path: String, content: String },
    Delete { path: String },
}

/// One buffered feed change (feed names are the script's own; the runner prefixes the
/// thwonk's address).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FeedOp {
    Publish {
        feed: String,
        id: String,
        item: String,
    },
    Retract {
        feed: String,
        id: String,
    },
}

/// One buffered job publish: `payload` for the workers of `queue`, as job `id`
/// (`{run_id}.j{n}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobPublish {
    pub queue: String,
    pub id: String,
    pub payload: String,
}

/// One log line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogLine {
    /// `log`, `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
}

/// What a run cost.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cost {
    pub instructions: u64,
    pub wall_ms: u64,
}

impl RunOutcome {
    /// [`RunError::cap`] on the outcome's error, if any.
    pub fn cap_error(&mut self, max_bytes: u64) {
        if let Some(e) = self.error.as_mut() {
            e.cap(max_bytes);
        }
    }

    /// A failed run with no effects.
    pub fn failed(kind: ErrorKind, message: impl Into<String>) -> Self {
        RunOutcome {
            status: RunStatus::Error,
            error: Some(RunError {
                kind,
                message: message.into(),
                stack: None,
            }),
            effects: Effects::default(),
            logs: Vec::new(),
            logs_truncated: false,
            cost: Cost::default(),
            response: None,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == RunStatus::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_round_trips_through_json() {
        let mut o = RunOutcome::failed(ErrorKind::Timeout, "too slow");
        o.logs.push(LogLine {
            level: "log".into(),
            message: "hi".into(),
        });
        let j = serde_json::to_string(&o).unwrap();
        let back: RunOutcome = serde_json::from_str(&j).unwrap();
        assert_eq!(back.error.as_ref().unwrap().kind, ErrorKind::Timeout);
        assert_eq!(back.logs.len(), 1);
        assert!(!back.is_ok());
    }

    #[test]
    fn error_kinds_are_parsed_from_their_names() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(k.as_str()), Ok(*k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(ErrorKind::parse("Timeout"), Ok(ErrorKind::Timeout));
        assert!(ErrorKind::parse("nonsense").is_err());
        assert!(ErrorKind::parse("timeout").is_err());
        assert_eq!(RunStatus::parse("error"), Ok(RunStatus::Error));
        assert_eq!(serde_json::to_value(RunStatus::Ok).unwrap(), "ok");
    }

    #[test]
    fn trigger_is_tagged() {
        let t = Trigger::Request {
            body: serde_json::json!({"a": 1}),
            http: None,
        };
        let j = serde_json::to_value(&t).unwrap();
        assert_eq!(j["type"], "request");
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn error_text_is_cut_at_a_char_boundary_and_marked() {
        let mut e = RunError {
            kind: ErrorKind::ScriptError,
            message: "é".repeat(100),
            stack: Some("short".into()),
        };
        e.cap(51);
        assert!(e.message.len() <= 51, "{}", e.message.len());
        assert!(e.message.ends_with(TRUNCATED_MARK));
        assert!(e.message.starts_with("éé"));
        assert_eq!(e.stack.as_deref(), Some("short"));
    }
}
