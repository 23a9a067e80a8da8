//! What the HTTP API answers, one type per resource: the routes serialise these, the OpenAPI
//! document names them, and the CLI's remote path reads them back, so the three cannot drift.
//! The CLI's direct path (no daemon) builds the same views from the store, and each command
//! prints one view type with one function.
//!
//! Field names are the API's JSON: changing one is an API change.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thwonk_core::run::{
    Cost, ErrorKind, FeedOp, FileInfo, LogLine, RunError, RunOutcome, RunStatus,
};
use thwonk_core::run::{JobPublish, SendRequest, VfsOp};
use thwonk_core::status::{ThwonkStatus, TriggerKind};
use thwonk_sandbox::ScriptKind;
use thwonk_store::{RunRecord, ScriptVersion, Thwonk};

pub use crate::invoke::InvokeOutcome as InvokeView;

/// A thwonk (`GET /v1/thwonks` lists these; enable, disable and rollback answer one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ThwonkView {
    pub id: String,
    pub address: String,
    /// `active` or `disabled`.
    #[schemars(with = "String")]
    pub status: ThwonkStatus,
    pub active_version: Option<i64>,
    /// The active version's cron schedule, if it has one.
    pub schedule: Option<String>,
    pub created_at_ms: i64,
}

impl From<&Thwonk> for ThwonkView {
    fn from(t: &Thwonk) -> Self {
        ThwonkView {
            id: t.id.clone(),
            address: t.address.to_string(),
            status: t.status,
            active_version: t.active_version,
            schedule: t.schedule.clone(),
            created_at_ms: t.created_at_ms,
        }
    }
}

/// `GET /v1/thwonks/{address}`: a thwonk with its owner (`null`: admin-owned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ThwonkDetailView {
    #[serde(flatten)]
    pub thwonk: ThwonkView,
    pub owner_id: Option<String>,
}

/// `GET /v1/thwonks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ThwonkListView {
    pub thwonks: Vec<ThwonkView>,
}

/// A script version; `source` only where one version is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VersionView {
    pub version: i64,
    pub schedule: Option<String>,
    pub created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl VersionView {
    pub fn of(v: &ScriptVersion, with_source: bool) -> Self {
        VersionView {
            version: v.version,
            schedule: v.schedule.clone(),
            created_at_ms: v.created_at_ms,
            source: with_source.then(|| v.source.clone()),
        }
    }
}

/// `GET .../versions`: every version, newest first, without sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VersionListView {
    pub active_version: Option<i64>,
    pub versions: Vec<VersionView>,
}

/// How a deploy's warning that the schedule is not registered yet begins.
pub const SCHEDULE_NOT_REGISTERED: &str = "schedule not registered now";

/// `PUT .../script`: what a deploy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeployView {
    pub thwonk: ThwonkView,
    pub version: i64,
    /// True when the deploy created the thwonk.
    pub created: bool,
    /// `Module` or `Classic`.
    #[schemars(with = "String")]
    pub kind: ScriptKind,
    pub handlers: Vec<String>,
    pub schedule: Option<String>,
    /// Things the deployer should know: the domain is not accepted, the schedule is not
    /// registered yet (that warning begins with [`SCHEDULE_NOT_REGISTERED`]).
    pub warnings: Vec<String>,
}

impl DeployView {
    /// The schedule is registered on Redis now: the thwonk is active with a schedule and no
    /// warning says its registration failed.
    pub fn schedule_registered(&self) -> Option<&str> {
        let failed = self
            .warnings
            .iter()
            .any(|w| w.starts_with(SCHEDULE_NOT_REGISTERED));
        self.thwonk
            .schedule
            .as_deref()
            .filter(|_| self.thwonk.status == ThwonkStatus::Active && !failed)
    }
}

/// A run's error as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunErrorView {
    #[schemars(with = "String")]
    pub kind: ErrorKind,
    pub message: Option<String>,
    pub stack: Option<String>,
}

/// What a run cost, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunCostView {
    pub instructions: i64,
    pub wall_ms: i64,
}

/// How much of a message a run listing reads for its sender and subject (its header block;
/// a header block longer than this loses the fields beyond it).
pub const MESSAGE_HEAD_BYTES: u32 = 64 * 1024;

/// The message a run handled, as its headers name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunMessageView {
    /// The `From:` address (the envelope sender when there is none).
    pub from: String,
    /// The decoded `Subject:` (`""` when there is none).
    pub subject: String,
    /// The `Message-ID:` header, without angle brackets.
    pub message_id: Option<String>,
}

impl RunMessageView {
    /// Read from the message's header block (the body is not parsed).
    pub fn of(raw: &[u8], mail_from: &str) -> Self {
        let head = &raw[..thwonk_mail::headers::header_block_end(raw).min(raw.len())];
        let view = thwonk_mail::parse_message(
            head,
            &thwonk_mail::InboundEnvelope {
                id: "",
                mail_from,
                to: "",
                recipients: &[],
                received_at_ms: 0,
            },
        );
        let from = if view.sender.address.is_empty() {
            mail_from.to_string()
        } else {
            view.sender.address
        };
        RunMessageView {
            from,
            subject: view.subject,
            message_id: view.message_id,
        }
    }
}

/// One run: `GET .../runs/{run_id}`, and each of `GET .../runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunView {
    pub id: String,
    /// The message's id in this system (`msg.id`); `null` for schedule and request runs.
    pub message_id: Option<String>,
    /// The message's sender, subject and `Message-ID:` (`null` when the run had no message,
    /// or it is gone).
    #[serde(default)]
    pub message: Option<RunMessageView>,
    /// `message`, `schedule` or `request`.
    #[schemars(with = "String")]
    pub trigger: TriggerKind,
    pub script_version: i64,
    /// `ok` or `error`.
    #[schemars(with = "String")]
    pub status: RunStatus,
    pub error: Option<RunErrorView>,
    /// `{level, message}` each.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub logs: Vec<LogLine>,
    pub logs_truncated: bool,
    pub cost: RunCostView,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
}

impl From<&RunRecord> for RunView {
    fn from(r: &RunRecord) -> Self {
        RunView {
            id: r.id.clone(),
            message_id: r.message_id.clone(),
            message: None,
            trigger: r.trigger,
            script_version: r.script_version,
            status: r.status,
            error: r.error_kind.as_ref().map(|kind| RunErrorView {
                kind: *kind,
                message: r.error_message.clone(),
                stack: r.error_stack.clone(),
            }),
            logs: r.logs.clone(),
            logs_truncated: r.logs_truncated,
            cost: RunCostView {
                instructions: r.instructions,
                wall_ms: r.wall_ms,
            },
            started_at_ms: r.started_at_ms,
            finished_at_ms: r.finished_at_ms,
        }
    }
}

impl RunView {
    /// The views of `runs`, each with the message it handled read from the store (the API's
    /// `GET .../runs` and the CLI's `thwonk runs` without a daemon).
    pub async fn with_messages(
        store: &thwonk_store::Store,
        runs: &[RunRecord],
    ) -> Result<Vec<RunView>, thwonk_store::StoreError> {
        let mut out = Vec::with_capacity(runs.len());
        for r in runs {
            let mut v = RunView::from(r);
            if let Some(id) = &r.message_id
                && let Some((mail_from, head)) = store.message_head(id, MESSAGE_HEAD_BYTES).await?
            {
                v.message = Some(RunMessageView::of(&head, &mail_from));
            }
            out.push(v);
        }
        Ok(out)
    }

    /// Where the error happened: the first frame of its stack (`onMessage at list.js:3:9`),
    /// when it has one.
    pub fn error_at(&self) -> Option<&str> {
        let stack = self.error.as_ref()?.stack.as_deref()?;
        stack
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("at ") || l.contains(" at "))
    }
}

/// `GET .../runs`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunListView {
    pub runs: Vec<RunView>,
}

/// `GET .../files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileListView {
    /// `{path, size, updated_at_ms}` each.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub files: Vec<FileInfo>,
}

/// `PUT .../files/{path}`: the file stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileWrittenView {
    pub path: String,
    pub size: u64,
}

/// `GET .../feeds/{name}`: the newest items, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeedItemsView {
    pub feed: String,
    pub items: Vec<FeedItemView>,
}

/// One feed item as HTTP shows it (`GET .../feeds/{name}` and each SSE `data:` line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeedItemView {
    pub id: String,
    /// The value the script published (`feed.publish(value)`), as JSON: an object stays an
    /// object, a string a string. An item some other publisher stored as text that is not
    /// JSON is shown as that string. `null` for a retraction.
    pub item: Option<serde_json::Value>,
}

impl FeedItemView {
    /// The view of a stored item (`None` for events without one).
    pub fn new(id: &str, stored: Option<&str>) -> FeedItemView {
        FeedItemView {
            id: id.to_string(),
            item: stored.map(crate::feeds::item_value),
        }
    }
}

/// A dry run's result (`POST .../test` and `thwonk test`): what the run would commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DryRunView {
    /// `ok` or `error`.
    #[schemars(with = "String")]
    pub status: RunStatus,
    /// `{kind, message, stack?}`.
    #[schemars(with = "Option<serde_json::Value>")]
    pub error: Option<RunError>,
    /// What the run would send (as the script asked).
    #[schemars(with = "Vec<serde_json::Value>")]
    pub sends: Vec<SendRequest>,
    /// The file writes it would commit.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub writes: Vec<VfsOp>,
    /// The feed operations it would apply.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub feed_ops: Vec<FeedOp>,
    /// The jobs it would publish for workers (`{queue, id, payload}`).
    #[serde(default)]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub jobs: Vec<JobPublish>,
    #[schemars(with = "Vec<serde_json::Value>")]
    pub logs: Vec<LogLine>,
    pub logs_truncated: bool,
    /// `{instructions, wall_ms}`.
    #[schemars(with = "serde_json::Value")]
    pub cost: Cost,
    /// `onRequest`'s value (dry runs of mail have none).
    pub response: Option<serde_json::Value>,
}

impl From<RunOutcome> for DryRunView {
    fn from(o: RunOutcome) -> Self {
        DryRunView {
            status: o.status,
            error: o.error,
            sends: o.effects.sends,
            writes: o.effects.writes,
            feed_ops: o.effects.feed_ops,
            jobs: o.effects.jobs,
            logs: o.logs,
            logs_truncated: o.logs_truncated,
            cost: o.cost,
            response: o.response,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thwonk_shows_with_its_owner_in_one_flat_object() {
        let v = ThwonkDetailView {
            thwonk: ThwonkView {
                id: "t1".into(),
                address: "list@example.org".into(),
                status: ThwonkStatus::Active,
                active_version: Some(2),
                schedule: None,
                created_at_ms: 5,
            },
            owner_id: None,
        };
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "t1", "address": "list@example.org", "status": "active",
                "active_version": 2, "schedule": null, "created_at_ms": 5, "owner_id": null,
            })
        );
        assert_eq!(serde_json::from_value::<ThwonkDetailView>(json).unwrap(), v);
    }

    #[test]
    fn a_listed_version_has_no_source_field() {
        let mut v = VersionView {
            version: 1,
            schedule: None,
            created_at_ms: 0,
            source: None,
        };
        assert!(serde_json::to_value(&v).unwrap().get("source").is_none());
        v.source = Some("x".into());
        assert_eq!(serde_json::to_value(&v).unwrap()["source"], "x");
    }
}
