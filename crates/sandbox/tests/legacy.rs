//! The legacy API of classic scripts (docs/rule-scripts.md, "Legacy API").

mod common;

use common::*;
use thwonk_core::run::{ErrorKind, RunOutcome, Trigger, VfsOp};
use thwonk_sandbox::run;

fn run_classic(script: &str, fs: &mut MemFs) -> RunOutcome {
    run(
        &request(
            script,
            Trigger::Message(message("alice@example.net", "hello", "hi there")),
        ),
        fs,
    )
}

#[test]
fn print_version_and_get_current() {
    let out = run_classic(
        r#"thwonk.print("hi", 1);
        Thwonk.print(thwonk.version().startsWith("Thwonk "));
        thwonk.print(thwonk.message.getCurrent().split("\r\n")[1]);"#,
        &mut MemFs::default(),
    );
    assert_ok(&out);
    assert_eq!(logged(&out), ["hi 1", "true", "Subject: hello"]);
}

#[test]
fn file_read_and_write_return_codes() {
    let mut fs = MemFs::with(&[("notes.txt", "old")]);
    let out = run_classic(
        r#"thwonk.print(thwonk.file.read("notes.txt"), thwonk.file.read("missing"), thwonk.file.read("../x"));
        thwonk.print(thwonk.file.write("notes.txt", "new"), thwonk.file.write("../x", "y"));
        thwonk.print(thwonk.file.read("notes.txt"));"#,
        &mut fs,
    );
    assert_ok(&out);
    assert_eq!(logged(&out), ["old -1 -1", "0 -1", "new"]);
    assert_eq!(
        out.effects.writes,
        [VfsOp::Write {
            path: "notes.txt".into(),
            content: "new".into()
        }]
    );
}

#[test]
fn send_member_and_send_all() {
    let mut fs = MemFs::with(&[("members.json", r#"["a@x.org", "b@x.org"]"#)]);
    let out = run_classic(
        r#"thwonk.print(thwonk.message.sendMember("email", "c@x.org", "Subj", "Body"));
        thwonk.print(thwonk.message.sendMember("email", "nobody", "Subj", "Body"));
        thwonk.print(thwonk.message.sendAll("email", "All", "Everyone"));"#,
        &mut fs,
    );
    assert_ok(&out);
    let codes: Vec<_> = out
        .logs
        .iter()
        .filter(|l| l.level == "log")
        .map(|l| l.message.as_str())
        .collect();
    assert_eq!(codes, ["0", "-1", "0"]);
    let sends: Vec<_> = out
        .effects
        .sends
        .iter()
        .map(|s| (s.to[0].as_str(), s.subject.as_str(), s.text.as_deref()))
        .collect();
    assert_eq!(
        sends,
        [
            ("c@x.org", "Subj", Some("Body")),
            ("a@x.org", "All", Some("Everyone")),
            ("b@x.org", "All", Some("Everyone")),
        ]
    );
    assert!(
        logged(&out)
            .iter()
            .any(|l| l.contains("type=email (text/plain)"))
    );
}

#[test]
fn classic_scripts_run_only_for_messages() {
    let out = run(
        &request(
            "thwonk.print(1)",
            Trigger::Request {
                body: serde_json::Value::Null,
                http: None,
            },
        ),
        &mut MemFs::default(),
    );
    assert_eq!(out.error.unwrap().kind, ErrorKind::NoHandler);
}

#[test]
fn classic_script_errors_fail_the_run() {
    let out = run_classic(
        r#"thwonk.file.write("a", "b"); undefinedFunction();"#,
        &mut MemFs::default(),
    );
    assert_eq!(out.error.unwrap().kind, ErrorKind::ScriptError);
    assert!(out.effects.writes.is_empty());
}

#[test]
fn send_all_and_send_member_honour_the_body_type_and_refuse_unknown_ones() {
    let mut fs = MemFs::with(&[("members.json", r#"["a@x.org"]"#)]);
    let out = run_classic(
        r#"thwonk.message.sendAll("html", "H", "<p>hi</p>");
        thwonk.message.sendAll("text", "T", "plain");
        thwonk.message.sendMember("HTML", "c@x.org", "M", "<b>m</b>");
        try { thwonk.message.sendAll("sms", "S", "x"); } catch (e) { thwonk.print(e.name + ": " + e.message); }
        try { thwonk.message.sendMember("pdf", "c@x.org", "S", "x"); } catch (e) { thwonk.print(e.name); }"#,
        &mut fs,
    );
    assert_ok(&out);
    let bodies: Vec<_> = out
        .effects
        .sends
        .iter()
        .map(|s| (s.subject.as_str(), s.text.as_deref(), s.html.as_deref()))
        .collect();
    assert_eq!(
        bodies,
        [
            ("H", None, Some("<p>hi</p>")),
            ("T", Some("plain"), None),
            ("M", None, Some("<b>m</b>")),
        ],
        "no send for the unknown types"
    );
    let printed: Vec<_> = out
        .logs
        .iter()
        .filter(|l| l.level == "log")
        .map(|l| l.message.as_str())
        .collect();
    assert_eq!(
        printed,
        [
            r#"TypeError: sendAll: unknown type "sms"; the types are "text" (or "email") for text/plain, "html" for text/html"#,
            "TypeError",
        ]
    );
}
