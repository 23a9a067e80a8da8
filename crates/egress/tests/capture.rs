//! Mode capture: each message and its envelope land as files, atomically.

mod support;

use support::plan::planned;
use thwonk_egress::capture::CaptureTransport;
use thwonk_egress::{Class, Outgoing, Transport, classify};
use thwonk_store::RowOutcome;

#[tokio::test]
async fn capture_writes_the_message_and_its_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let captured = dir.path().join("captured");
    let t = CaptureTransport::new(&captured);
    let rcpt = vec!["a@example.com".to_string(), "b@example.net".to_string()];
    let report = t
        .deliver(&Outgoing {
            id: "0190-abc",
            mail_from: "list@example.org",
            rcpt_to: &rcpt,
            raw: b"Subject: hi\n\nbody\n",
        })
        .await;
    assert_eq!(
        planned(&rcpt, &report).outcome,
        RowOutcome::Sent,
        "{report:?}"
    );

    let eml = std::fs::read(captured.join("0190-abc.eml")).unwrap();
    assert_eq!(eml, b"Subject: hi\r\n\r\nbody\r\n");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(captured.join("0190-abc.json")).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"mail_from": "list@example.org", "rcpt_to": ["a@example.com", "b@example.net"]})
    );
    // No temporary files are left behind.
    let mut names: Vec<String> = std::fs::read_dir(&captured)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["0190-abc.eml", "0190-abc.json"]);
}

#[tokio::test]
async fn an_id_that_is_not_a_file_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = CaptureTransport::new(dir.path());
    let rcpt = vec!["a@example.com".to_string()];
    for id in ["../escape", ".hidden", "a/b", ""] {
        let report = t
            .deliver(&Outgoing {
                id,
                mail_from: "list@example.org",
                rcpt_to: &rcpt,
                raw: b"x",
            })
            .await;
        let f = report.destinations[0].result.as_ref().unwrap_err();
        assert_eq!(classify(f), Class::Permanent, "{id}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn an_unwritable_folder_is_a_transient_failure() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the folder should be.
    let blocker = dir.path().join("captured");
    std::fs::write(&blocker, b"").unwrap();
    let t = CaptureTransport::new(&blocker);
    let rcpt = vec!["a@example.com".to_string()];
    let report = t
        .deliver(&Outgoing {
            id: "o1",
            mail_from: "list@example.org",
            rcpt_to: &rcpt,
            raw: b"x",
        })
        .await;
    assert!(
        matches!(planned(&rcpt, &report).outcome, RowOutcome::Retry { .. }),
        "{report:?}"
    );
}
