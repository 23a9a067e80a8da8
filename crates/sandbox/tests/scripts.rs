//! The example scripts in `sandbox-scripts/`, run over several messages like the runner would:
//! each successful run's writes are committed before the next message.

mod common;

use common::*;
use thwonk_core::run::{RunOutcome, SendKind, Trigger};
use thwonk_sandbox::{ScriptKind, check, run};

fn script(name: &str) -> String {
    let path = format!(
        "{}/../../sandbox-scripts/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Delivers one message to the list and commits the outcome.
fn deliver(src: &str, fs: &mut MemFs, from: &str, subject: &str, text: &str) -> RunOutcome {
    let out = run(
        &request(src, Trigger::Message(message(from, subject, text))),
        fs,
    );
    assert_ok(&out);
    fs.commit(&out.effects);
    out
}

fn members(fs: &MemFs) -> Vec<String> {
    serde_json::from_str(fs.files.get("members.json").map_or("[]", String::as_str)).unwrap()
}

#[test]
fn example_scripts_pass_the_deploy_check() {
    for name in ["twitter-list.js", "echo.js"] {
        let info = check(&script(name), &Default::default()).unwrap();
        assert_eq!(info.kind, ScriptKind::Module, "{name}");
        assert_eq!(info.handlers, ["onMessage"], "{name}");
    }
}

#[test]
fn twitter_list_subscribe_post_refuse_unsubscribe() {
    let src = script("twitter-list.js");
    let mut fs = MemFs::default();

    // Three people subscribe (case and spacing of the subject do not matter); each is
    // confirmed by a reply.
    for (who, subject) in [
        ("Alice@Example.net", "subscribe"),
        ("bob@example.net", "  Subscribe "),
        ("carol@example.net", "SUBSCRIBE"),
    ] {
        let out = deliver(&src, &mut fs, who, subject, "");
        assert_eq!(out.effects.sends.len(), 1);
        assert_eq!(out.effects.sends[0].to, [who]);
        assert!(matches!(out.effects.sends[0].kind, SendKind::Reply { .. }));
    }
    assert_eq!(
        members(&fs),
        ["alice@example.net", "bob@example.net", "carol@example.net"]
    );

    // Subscribing twice does not duplicate.
    deliver(&src, &mut fs, "bob@example.net", "subscribe", "");
    assert_eq!(members(&fs).len(), 3);

    // Bob posts 300 characters: the two others get it, cut to 140.
    let body = "x".repeat(300);
    let out = deliver(&src, &mut fs, "bob@example.net", "News", &body);
    let sends = &out.effects.sends;
    assert_eq!(sends.len(), 2);
    let mut to: Vec<_> = sends.iter().map(|s| s.to.join(",")).collect();
    to.sort();
    assert_eq!(to, ["alice@example.net", "carol@example.net"]);
    for s in sends {
        assert_eq!(s.text.as_deref().map(|t| t.chars().count()), Some(140));
        assert_eq!(s.subject, "News");
    }

    // A stranger is politely refused and nothing is sent to the list.
    let out = deliver(&src, &mut fs, "mallory@example.com", "Buy now", "spam");
    assert_eq!(out.effects.sends.len(), 1);
    assert_eq!(out.effects.sends[0].to, ["mallory@example.com"]);
    assert!(
        out.effects.sends[0]
            .text
            .as_deref()
            .is_some_and(|t| t.contains("only members"))
    );

    // Carol leaves; her later posts are refused like a stranger's.
    let out = deliver(&src, &mut fs, "carol@example.net", "unsubscribe", "");
    assert_eq!(out.effects.sends[0].to, ["carol@example.net"]);
    assert_eq!(members(&fs), ["alice@example.net", "bob@example.net"]);
    let out = deliver(&src, &mut fs, "carol@example.net", "Hello?", "hi");
    assert_eq!(out.effects.sends.len(), 1);
    assert_eq!(out.effects.sends[0].to, ["carol@example.net"]);

    // Alice's post now reaches only Bob.
    let out = deliver(&src, &mut fs, "alice@example.net", "Hi", "short");
    assert_eq!(out.effects.sends.len(), 1);
    assert_eq!(out.effects.sends[0].to, ["bob@example.net"]);
    assert_eq!(out.effects.sends[0].text.as_deref(), Some("short"));
}

#[test]
fn echo_replies_with_the_body() {
    let src = script("echo.js");
    let mut fs = MemFs::default();
    let out = deliver(&src, &mut fs, "alice@example.net", "ping", "hello, echo");
    let sends = &out.effects.sends;
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].to, ["alice@example.net"]);
    assert_eq!(sends[0].subject, "Re: ping");
    assert_eq!(sends[0].text.as_deref(), Some("hello, echo"));
    assert!(matches!(
        &sends[0].kind,
        SendKind::Reply { in_reply_to: Some(id), .. } if id == "abc@mail.example.net"
    ));
}
