//! Shared test fixtures: an in-memory file store and request builders.
#![allow(dead_code)]

use std::collections::HashMap;

use thwonk_core::run::{
    Effects, FileInfo, Mailbox, MessageView, RunOutcome, RunRequest, SandboxLimits, StoredFeedItem,
    ThwonkContext, Trigger, VfsOp, VfsReader,
};

pub const ADDRESS: &str = "list@example.org";
pub const NOW_MS: i64 = 1_795_791_870_123;

/// A thwonk's files in memory; `commit` applies a successful run's writes like the runner.
#[derive(Default, Clone)]
pub struct MemFs {
    pub files: HashMap<String, String>,
    pub reads: usize,
    /// Stored feed items by the script's feed name, oldest first.
    pub feeds: HashMap<String, Vec<StoredFeedItem>>,
}

impl MemFs {
    pub fn with(files: &[(&str, &str)]) -> Self {
        MemFs {
            files: files
                .iter()
                .map(|(p, c)| (p.to_string(), c.to_string()))
                .collect(),
            reads: 0,
            feeds: HashMap::new(),
        }
    }

    pub fn commit(&mut self, effects: &Effects) {
        for op in &effects.writes {
            match op {
                VfsOp::Write { path, content } => {
                    self.files.insert(path.clone(), content.clone());
                }
                VfsOp::Delete { path } => {
                    self.files.remove(path);
                }
            }
        }
    }
}

impl VfsReader for MemFs {
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.reads += 1;
        Ok(self.files.get(path).map(|c| c.as_bytes().to_vec()))
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<FileInfo>, String> {
        let mut files: Vec<FileInfo> = self
            .files
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(p, c)| FileInfo {
                path: p.clone(),
                size: c.len() as u64,
                updated_at_ms: 0,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    fn feed_items(&mut self, feed: &str, limit: usize) -> Result<Vec<StoredFeedItem>, String> {
        let items = self.feeds.get(feed).cloned().unwrap_or_default();
        let skip = items.len().saturating_sub(limit);
        Ok(items[skip..].to_vec())
    }
}

/// A reader whose store is down.
pub struct BrokenFs;

impl VfsReader for BrokenFs {
    fn read(&mut self, _: &str) -> Result<Option<Vec<u8>>, String> {
        Err("store unreachable".into())
    }
    fn list(&mut self, _: &str) -> Result<Vec<FileInfo>, String> {
        Err("store unreachable".into())
    }
}

pub fn message(from: &str, subject: &str, text: &str) -> MessageView {
    MessageView {
        id: "m-1".into(),
        from: from.into(),
        to: ADDRESS.into(),
        recipients: vec![ADDRESS.into()],
        sender: Mailbox {
            name: "Someone".into(),
            address: from.into(),
        },
        subject: subject.into(),
        date: Some("2026-11-21T10:00:00Z".into()),
        message_id: Some("abc@mail.example.net".into()),
        headers: vec![
            ("From".into(), format!("Someone <{from}>")),
            ("Subject".into(), subject.into()),
            ("Received".into(), "by a".into()),
            ("Received".into(), "by b".into()),
        ],
        text: text.into(),
        html: None,
        attachments: Vec::new(),
        raw: format!("From: {from}\r\nSubject: {subject}\r\n\r\n{text}"),
        size: 100,
        received_at: "2026-11-21T10:00:01Z".into(),
    }
}

pub fn request(script: &str, trigger: Trigger) -> RunRequest {
    RunRequest {
        run_id: "run-1".into(),
        thwonk: ThwonkContext {
            address: ADDRESS.into(),
            domain: "example.org".into(),
            public_url: None,
        },
        script: script.into(),
        trigger,
        now_ms: NOW_MS,
        limits: SandboxLimits::default(),
        auto_replied: Vec::new(),
    }
}

pub fn on_message(script: &str) -> RunRequest {
    request(
        script,
        Trigger::Message(message("alice@example.net", "hello", "hi there")),
    )
}

/// Runs a module whose onMessage body is `body`, against an empty store.
pub fn run_body(body: &str) -> RunOutcome {
    let script = format!("export function onMessage(msg, thwonk) {{\n{body}\n}}");
    thwonk_sandbox::run(&on_message(&script), &mut MemFs::default())
}

/// Panics with the error unless the run succeeded.
pub fn assert_ok(outcome: &RunOutcome) {
    assert!(outcome.is_ok(), "run failed: {:?}", outcome.error);
}

/// The messages of the run's log lines.
pub fn logged(outcome: &RunOutcome) -> Vec<String> {
    outcome.logs.iter().map(|l| l.message.clone()).collect()
}
