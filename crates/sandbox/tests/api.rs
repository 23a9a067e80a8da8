//! Every member of the ES-module API (docs/rule-scripts.md), driven through `thwonk_sandbox::run`.

mod common;

use common::*;
use thwonk_core::run::{
    AttachmentView, ErrorKind, FeedOp, OutgoingAttachment, SendKind, StoredFeedItem, Trigger, VfsOp,
};
use thwonk_sandbox::run;

#[test]
fn msg_exposes_every_documented_member() {
    let mut view = message("alice@example.net", "hello", "hi there");
    view.html = Some("<p>hi</p>".into());
    view.attachments = vec![AttachmentView {
        filename: "a.txt".into(),
        content_type: "text/plain".into(),
        size: 3,
        content_base64: "YWJj".into(),
    }];
    let script = r#"export function onMessage(msg, thwonk) {
        thwonk.log(JSON.stringify({
            id: msg.id, from: msg.from, to: msg.to, recipients: msg.recipients,
            sender: msg.sender, subject: msg.subject, date: msg.date, messageId: msg.messageId,
            text: msg.text, html: msg.html, attachments: msg.attachments, size: msg.size,
            receivedAt: msg.receivedAt, raw: msg.raw.slice(0, 24),
        }));
        thwonk.log(msg.attachments.content(0));
    }"#;
    let out = run(
        &request(script, Trigger::Message(view)),
        &mut MemFs::default(),
    );
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&logged(&out)[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "id": "m-1", "from": "alice@example.net", "to": ADDRESS, "recipients": [ADDRESS],
            "sender": {"name": "Someone", "address": "alice@example.net"},
            "subject": "hello", "date": "2026-11-21T10:00:00Z",
            "messageId": "abc@mail.example.net", "text": "hi there", "html": "<p>hi</p>",
            "attachments": [{"filename": "a.txt", "contentType": "text/plain", "size": 3}],
            "size": 100, "receivedAt": "2026-11-21T10:00:01Z",
            "raw": "From: alice@example.net\r",
        })
    );
    assert_eq!(logged(&out)[1], "YWJj");
}

#[test]
fn attachment_content_out_of_range_throws_a_range_error() {
    let out = run_body("try { msg.attachments.content(3) } catch (e) { thwonk.log(e.name) }");
    assert_ok(&out);
    assert_eq!(logged(&out), ["RangeError"]);
}

#[test]
fn headers_are_case_insensitive_and_ordered() {
    let out = run_body(
        r#"const h = msg.headers;
        thwonk.log(h.get("subject"), h.get("RECEIVED"), h.get("x-missing"));
        thwonk.log(JSON.stringify(h.getAll("received")), h.has("From"), h.has("nope"));
        thwonk.log(JSON.stringify(h.entries()[0]), h.entries().length);"#,
    );
    assert_ok(&out);
    assert_eq!(
        logged(&out),
        [
            "hello by a null",
            r#"["by a","by b"] true false"#,
            r#"["From","Someone <alice@example.net>"] 4"#,
        ]
    );
}

#[test]
fn msg_is_read_only() {
    let out = run_body(
        r#""use strict";
        for (const f of [() => { msg.subject = "x" }, () => { msg.sender.address = "x" },
                         () => { msg.headers.get = null }, () => { msg.attachments.push(1) }]) {
            try { f(); thwonk.log("mutated") } catch (e) { thwonk.log(e.name) }
        }"#,
    );
    assert_ok(&out);
    assert_eq!(logged(&out), ["TypeError"; 4]);
}

#[test]
fn thwonk_knows_its_address_and_domain() {
    let out = run_body("thwonk.log(thwonk.address, thwonk.domain)");
    assert_eq!(logged(&out), ["list@example.org example.org"]);
}

#[test]
fn send_buffers_a_message_and_returns_its_id() {
    let out = run_body(
        r#"const a = thwonk.send({ to: "bob@example.net", cc: ["c@x.org", "d@x.org"],
            bcc: "e@x.org", subject: "Hi", text: "body", html: "<b>body</b>",
            replyTo: "list@example.org", headers: { "X-One": "1", "X-Two": "2" },
            from: "LIST@example.org",
            attachments: [{ filename: "f.txt", contentType: "text/plain", content: "Zg==" }] });
        const b = thwonk.send({ to: ["f@x.org"], subject: "Two" });
        thwonk.log(a, b);"#,
    );
    assert_ok(&out);
    assert_eq!(logged(&out), ["run-1.1 run-1.2"]);
    let sends = &out.effects.sends;
    assert_eq!(sends.len(), 2);
    let s = &sends[0];
    assert_eq!(s.id, "run-1.1");
    assert_eq!(s.kind, SendKind::New);
    assert_eq!(s.to, ["bob@example.net"]);
    assert_eq!(s.cc, ["c@x.org", "d@x.org"]);
    assert_eq!(s.bcc, ["e@x.org"]);
    assert_eq!(s.subject, "Hi");
    assert_eq!(s.text.as_deref(), Some("body"));
    assert_eq!(s.html.as_deref(), Some("<b>body</b>"));
    assert_eq!(s.reply_to.as_deref(), Some("list@example.org"));
    assert_eq!(
        s.headers,
        [("X-One".into(), "1".into()), ("X-Two".into(), "2".into())]
    );
    assert_eq!(s.from.as_deref(), Some("list@example.org"));
    assert_eq!(
        s.attachments,
        [OutgoingAttachment {
            filename: "f.txt".into(),
            content_type: "text/plain".into(),
            content_base64: "Zg==".into()
        }]
    );
    assert_eq!(sends[1].to, ["f@x.org"]);
    assert_eq!(sends[1].from, None);
}

#[test]
fn send_refuses_bad_input_with_catchable_errors() {
    let out = run_body(
        r#"for (const o of [
            { to: "not-an-address" },
            { to: "a@b.c\r\nBcc: evil@x.org" },
            { to: "a@b.c", from: "someone-else@example.org" },
            { to: "a@b.c", subject: "two\nlines" },
            { to: "a@b.c", headers: { "Bad Name": "x" } },
            { to: [] },
        ]) {
            try { thwonk.send(o); thwonk.log("sent") } catch (e) { thwonk.log(e.name) }
        }
        try { thwonk.send() } catch (e) { thwonk.log(e.name) }"#,
    );
    assert_ok(&out);
    assert_eq!(
        logged(&out),
        [
            "Error",
            "Error",
            "Error",
            "Error",
            "Error",
            "Error",
            "TypeError"
        ]
    );
    assert!(out.effects.sends.is_empty());
}

#[test]
fn reply_threads_and_prefixes_the_subject_once() {
    let mut view = message("alice@example.net", "Re: plans", "text");
    view.headers
        .push(("References".into(), "<root@x> <mid@x>".into()));
    let script = r#"export function onMessage(msg, thwonk) {
        thwonk.reply(msg, { text: "ok" });
        // The same reply again is sent only when the script insists; another one is sent.
        thwonk.log("again: " + thwonk.reply(msg, { text: "ok" }));
        thwonk.reply(msg, { subject: "custom", html: "<i>ok</i>", force: true });
    }"#;
    let out = run(
        &request(script, Trigger::Message(view)),
        &mut MemFs::default(),
    );
    assert_ok(&out);
    let r = &out.effects.sends[0];
    assert_eq!(r.to, ["alice@example.net"]);
    assert_eq!(r.subject, "Re: plans");
    assert_eq!(r.text.as_deref(), Some("ok"));
    assert_eq!(
        r.kind,
        SendKind::Reply {
            in_reply_to: Some("abc@mail.example.net".into()),
            references: vec![
                "root@x".into(),
                "mid@x".into(),
                "abc@mail.example.net".into()
            ],
        }
    );
    assert_eq!(out.effects.sends.len(), 2);
    assert_eq!(out.effects.sends[1].subject, "custom");
    assert_eq!(out.effects.sends[1].html.as_deref(), Some("<i>ok</i>"));
    let logs: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        logs.iter()
            .any(|l| l.starts_with("reply not sent: alice@example.net was already sent this reply")),
        "{logs:?}"
    );
    assert!(logs.contains(&"again: false"), "{logs:?}");
}

#[test]
fn reply_answers_the_envelope_sender_not_a_forged_from() {
    let mut view = message("mallory@example.net", "plans", "text");
    view.sender.address = "victim@example.com".into();
    view.headers[0].1 = "Victim <victim@example.com>".into();
    let script = "export function onMessage(msg, thwonk) { thwonk.reply(msg, { text: 'x' }) }";
    let out = run(
        &request(script, Trigger::Message(view)),
        &mut MemFs::default(),
    );
    assert_ok(&out);
    assert_eq!(out.effects.sends[0].to, ["mallory@example.net"]);
}

#[test]
fn reply_skips_a_reply_the_runner_says_was_sent_lately() {
    let script = r#"export function onMessage(msg, thwonk) {
        thwonk.log("plain: " + thwonk.reply(msg, { text: "x" }));
        thwonk.log("forced: " + (typeof thwonk.reply(msg, { text: "x", force: true })));
        thwonk.log("other: " + (typeof thwonk.reply(msg, { text: "y" })));
    }"#;
    let mut req = request(
        script,
        Trigger::Message(message("Ann@Example.net", "hi", "t")),
    );
    req.auto_replied = vec![thwonk_core::run::reply_key(
        "ann@example.net",
        Some("x"),
        None,
    )];
    let out = run(&req, &mut MemFs::default());
    assert_ok(&out);
    assert_eq!(out.effects.sends.len(), 2);
    let logs: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(logs.contains(&"plain: false"), "{logs:?}");
    assert!(logs.contains(&"forced: string"), "{logs:?}");
    assert!(logs.contains(&"other: string"), "{logs:?}");
}

#[test]
fn reply_adds_re_and_falls_back_to_the_envelope_sender() {
    let mut view = message("bounce@example.net", "plans", "text");
    view.sender.address = String::new();
    let script = "export function onMessage(msg, thwonk) { thwonk.reply(msg, { text: 'x' }) }";
    let out = run(
        &request(script, Trigger::Message(view)),
        &mut MemFs::default(),
    );
    assert_ok(&out);
    assert_eq!(out.effects.sends[0].to, ["bounce@example.net"]);
    assert_eq!(out.effects.sends[0].subject, "Re: plans");
}

#[test]
fn forward_refers_to_the_original_message() {
    let out = run_body(
        r#"thwonk.log(thwonk.forward(msg, ["x@y.org", "z@y.org"],
            { subjectPrefix: "[list] ", headers: [["X-Fwd", "yes"]] }));"#,
    );
    assert_ok(&out);
    let f = &out.effects.sends[0];
    assert_eq!(logged(&out), ["run-1.1"]);
    assert_eq!(
        f.kind,
        SendKind::Forward {
            original_message_id: "m-1".into(),
            subject_prefix: Some("[list] ".into()),
        }
    );
    assert_eq!(f.to, ["x@y.org", "z@y.org"]);
    assert_eq!(f.subject, "[list] hello");
    assert_eq!(f.headers, [("X-Fwd".into(), "yes".into())]);
}

#[test]
fn files_read_write_delete_exists_and_list() {
    let mut fs = MemFs::with(&[("a/1.txt", "one"), ("a/2.txt", "two"), ("b.txt", "bee")]);
    let script = r#"export function onMessage(msg, thwonk) {
        const f = thwonk.files;
        thwonk.log(f.read("a/1.txt"), f.read("/b.txt"), f.read("missing"));
        f.write("a/3.txt", "three");
        f.delete("a/1.txt");
        thwonk.log(f.read("a/3.txt"), f.read("a/1.txt"), f.exists("a/1.txt"), f.exists("a/2.txt"));
        thwonk.log(JSON.stringify(f.list("a/")));
        thwonk.log(f.list().length);
    }"#;
    let out = run(&on_message(script), &mut fs);
    assert_ok(&out);
    assert_eq!(
        logged(&out),
        [
            "one bee null",
            "three null false true",
            r#"[{"path":"a/2.txt","size":3,"updatedAt":"1970-01-01T00:00:00.000Z"},{"path":"a/3.txt","size":5,"updatedAt":"2026-11-27T15:04:30.123Z"}]"#,
            "3",
        ]
    );
    assert_eq!(
        out.effects.writes,
        [
            VfsOp::Write {
                path: "a/3.txt".into(),
                content: "three".into()
            },
            VfsOp::Delete {
                path: "a/1.txt".into()
            },
        ]
    );
}

#[test]
fn json_files_round_trip_exactly() {
    let out = run_body(
        r#"const v = { n: 100, f: 0.1, big: 1e21, s: "é\u2028", a: [null, true], o: {} };
        thwonk.files.writeJSON("v.json", v);
        thwonk.log(thwonk.files.read("v.json"));
        thwonk.log(JSON.stringify(thwonk.files.readJSON("v.json")) === JSON.stringify(v));
        thwonk.log(thwonk.files.readJSON("missing.json"));"#,
    );
    assert_ok(&out);
    assert_eq!(
        logged(&out),
        [
            "{\"n\":100,\"f\":0.1,\"big\":1e+21,\"s\":\"é\u{2028}\",\"a\":[null,true],\"o\":{}}",
            "true",
            "null"
        ]
    );
}

#[test]
fn read_json_of_invalid_json_throws() {
    let mut fs = MemFs::with(&[("bad.json", "{nope")]);
    let script = r#"export function onMessage(msg, thwonk) {
        try { thwonk.files.readJSON("bad.json") } catch (e) { thwonk.log(e.name) }
    }"#;
    let out = run(&on_message(script), &mut fs);
    assert_ok(&out);
    assert_eq!(logged(&out), ["SyntaxError"]);
}

#[test]
fn hostile_paths_throw_catchable_errors() {
    let out = run_body(
        r#"for (const p of ["../other/x", "a/../../b", "a//b", "a\\b", "", "a\u0000b", "x".repeat(600)]) {
            try { thwonk.files.read(p); thwonk.log("read " + p) } catch (e) { thwonk.log(e.name) }
        }
        try { thwonk.files.write("../other/members.json", "[]") } catch (e) { thwonk.log(e.message) }
        try { thwonk.files.list("../") } catch (e) { thwonk.log(e.name) }"#,
    );
    assert_ok(&out);
    let logs = logged(&out);
    assert_eq!(logs[..7], ["Error"; 7]);
    assert!(logs[7].contains("'..'"), "{}", logs[7]);
    assert_eq!(logs[8], "Error");
    assert!(out.effects.writes.is_empty());
}

#[test]
fn files_write_needs_a_string() {
    let out = run_body(r#"try { thwonk.files.write("a", {}) } catch (e) { thwonk.log(e.name) }"#);
    assert_eq!(logged(&out), ["TypeError"]);
}

#[test]
fn a_store_failure_fails_the_run_as_internal_and_cannot_be_caught() {
    let script = r#"export function onMessage(msg, thwonk) {
        try { thwonk.files.read("a") } catch (e) { thwonk.log("caught") }
    }"#;
    let out = run(&on_message(script), &mut BrokenFs);
    assert_eq!(out.error.unwrap().kind, ErrorKind::Internal);
    assert!(out.logs.is_empty());
}

#[test]
fn log_and_console_write_the_run_log_with_levels() {
    let out = run_body(
        r#"thwonk.log("a", 1, { b: [2] }, null, undefined);
        console.log("c"); console.info("i"); console.warn("w"); console.error(new TypeError("bad"));
        thwonk.console.log("via thwonk");"#,
    );
    assert_ok(&out);
    let lines: Vec<_> = out
        .logs
        .iter()
        .map(|l| (l.level.as_str(), l.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("log", r#"a 1 {"b":[2]} null undefined"#),
            ("log", "c"),
            ("info", "i"),
            ("warn", "w"),
            ("error", "TypeError: bad"),
            ("log", "via thwonk"),
        ]
    );
}

#[test]
fn now_and_date_return_the_trigger_time() {
    let out = run_body(
        "thwonk.log(thwonk.now(), Date.now(), new Date().getTime(), new Date().toISOString(), new Date(0).getHours())",
    );
    assert_ok(&out);
    assert_eq!(
        logged(&out),
        [format!(
            "{NOW_MS} {NOW_MS} {NOW_MS} 2026-11-27T15:04:30.123Z 0"
        )]
    );
}

#[test]
fn budget_reports_instructions_and_ms_left() {
    let out = run_body(
        r#"const b = thwonk.budget();
        thwonk.log(b.instructionsLeft > 0 && b.instructionsLeft < 50000000, b.msLeft > 0 && b.msLeft <= 2000);"#,
    );
    assert_eq!(logged(&out), ["true true"]);
}

#[test]
fn math_random_is_seeded_by_the_run_id() {
    let script =
        "export function onMessage(msg, thwonk) { thwonk.log(Math.random(), Math.random()) }";
    let first = run(&on_message(script), &mut MemFs::default());
    let again = run(&on_message(script), &mut MemFs::default());
    let mut other_req = on_message(script);
    other_req.run_id = "run-2".into();
    let other = run(&other_req, &mut MemFs::default());
    assert_eq!(logged(&first), logged(&again));
    assert_ne!(logged(&first), logged(&other));
    let values: Vec<f64> = logged(&first)[0]
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
    assert_ne!(values[0], values[1]);
}

#[test]
fn feeds_buffer_publishes_and_retractions() {
    let out = run_body(
        r#"const f = thwonk.feed("news");
        thwonk.log(f.publish("plain"), f.publish({ a: 1 }, "chosen-id"), f.publish([1]));
        f.retract("chosen-id");
        thwonk.log(JSON.stringify(f.items()));
        try { thwonk.feed("bad name!") } catch (e) { thwonk.log(e.name) }"#,
    );
    assert_ok(&out);
    assert_eq!(
        logged(&out),
        [
            "run-1.f1 chosen-id run-1.f3",
            r#"[{"id":"run-1.f1","item":"plain"},{"id":"run-1.f3","item":[1]}]"#,
            "Error"
        ]
    );
    let publish = |id: &str, item: &str| FeedOp::Publish {
        feed: "news".into(),
        id: id.into(),
        item: item.into(),
    };
    assert_eq!(
        out.effects.feed_ops,
        [
            publish("run-1.f1", r#""plain""#),
            publish("chosen-id", r#"{"a":1}"#),
            publish("run-1.f3", "[1]"),
            FeedOp::Retract {
                feed: "news".into(),
                id: "chosen-id".into()
            },
        ]
    );
}

#[test]
fn async_handlers_are_awaited() {
    let out = run_body_async(
        r#"await null;
        thwonk.send({ to: "a@b.c", subject: "later" });
        await Promise.resolve(1);
        thwonk.log("done");"#,
    );
    assert_ok(&out);
    assert_eq!(out.effects.sends.len(), 1);
    assert_eq!(logged(&out), ["done"]);
}

#[test]
fn a_rejected_promise_is_a_script_error_with_no_effects() {
    let out = run_body_async(
        r#"thwonk.send({ to: "a@b.c" });
        await null;
        throw new RangeError("nope");"#,
    );
    let error = out.error.unwrap();
    assert_eq!(error.kind, ErrorKind::ScriptError);
    assert_eq!(error.message, "RangeError: nope");
    assert!(out.effects.sends.is_empty());
}

fn run_body_async(body: &str) -> thwonk_core::run::RunOutcome {
    let script = format!("export async function onMessage(msg, thwonk) {{\n{body}\n}}");
    run(&on_message(&script), &mut MemFs::default())
}

#[test]
fn a_thrown_error_keeps_logs_and_stack_but_drops_effects() {
    let out = run_body(
        r#"thwonk.log("before");
        thwonk.files.write("a", "b");
        thwonk.send({ to: "a@b.c" });
        thwonk.feed("f").publish("x");
        function deep() { throw new Error("boom") }
        deep();"#,
    );
    assert!(!out.is_ok());
    let error = out.error.clone().unwrap();
    assert_eq!(error.kind, ErrorKind::ScriptError);
    assert_eq!(error.message, "Error: boom");
    assert!(error.stack.is_some_and(|s| s.contains("deep")));
    assert_eq!(out.effects, Default::default());
    assert_eq!(logged(&out), ["before"]);
    assert!(out.cost.instructions > 0);
}

#[test]
fn throwing_a_non_error_is_reported() {
    let out = run_body("throw 42");
    let error = out.error.unwrap();
    assert_eq!(error.kind, ErrorKind::ScriptError);
    assert_eq!(error.message, "Uncaught 42");
}

#[test]
fn each_trigger_calls_its_handler() {
    let script = r#"
        export function onMessage() {}
        export const schedule = "0 0 * * *";
        export function onSchedule(event, thwonk) { thwonk.log(event.at, event.schedule) }
        export async function onRequest(req, thwonk) {
            return { got: req.body.n + 1, list: [1, "two"], nothing: undefined };
        }"#;
    let schedule = Trigger::Schedule {
        at: "2026-11-21T00:00:00Z".into(),
        schedule: "0 0 * * *".into(),
    };
    let out = run(&request(script, schedule), &mut MemFs::default());
    assert_ok(&out);
    assert_eq!(logged(&out), ["2026-11-21T00:00:00Z 0 0 * * *"]);
    assert_eq!(out.response, None);

    let invoke = Trigger::Request {
        body: serde_json::json!({"n": 41}),
        http: None,
    };
    let out = run(&request(script, invoke), &mut MemFs::default());
    assert_ok(&out);
    assert_eq!(
        out.response,
        Some(serde_json::json!({"got": 42, "list": [1, "two"]}))
    );
}

#[test]
fn a_missing_handler_is_no_handler() {
    let script = "export function onMessage() {}";
    let trigger = Trigger::Request {
        body: serde_json::Value::Null,
        http: None,
    };
    let out = run(&request(script, trigger), &mut MemFs::default());
    let error = out.error.unwrap();
    assert_eq!(error.kind, ErrorKind::NoHandler);
    assert!(error.message.contains("onRequest"), "{}", error.message);
}

#[test]
fn a_syntax_error_is_a_compile_error() {
    let out = run(
        &on_message("export function onMessage( {"),
        &mut MemFs::default(),
    );
    assert_eq!(out.error.unwrap().kind, ErrorKind::CompileError);
}

#[test]
fn imports_eval_and_function_constructors_are_unavailable() {
    let out = run(
        &on_message("import x from './other.js'; export function onMessage() {}"),
        &mut MemFs::default(),
    );
    assert_eq!(out.error.unwrap().kind, ErrorKind::CompileError);
    // Plain `eval(...)` and `new Function(...)` do not even compile (crate::check); the
    // spellings no parser sees still meet the engine's refusal.
    let out = run_body("return eval('1');");
    assert_eq!(out.error.unwrap().kind, ErrorKind::CompileError);
    let out = run_body(
        r#"const hidden = [() => globalThis["ev" + "al"]("1"), () => [].map.constructor("return 1"), () => import("x")];
        for (const f of hidden) {
            try { f(); thwonk.log("ran") } catch (e) { thwonk.log(e.name) }
        }"#,
    );
    assert_ok(&out);
    assert_eq!(logged(&out)[..2], ["EvalError", "EvalError"]);
}

#[test]
fn the_same_request_gives_the_same_outcome() {
    let script = r#"export function onMessage(msg, thwonk) {
        let x = 0;
        for (let i = 0; i < 1000; i++) x += Math.random();
        const data = thwonk.files.readJSON("d.json") ?? [];
        data.push(x, Date.now());
        thwonk.files.writeJSON("d.json", data);
        thwonk.send({ to: "a@b.c", subject: String(x) });
        thwonk.log(x);
    }"#;
    let req = on_message(script);
    let a = run(&req, &mut MemFs::with(&[("d.json", "[1]")]));
    let b = run(&req, &mut MemFs::with(&[("d.json", "[1]")]));
    assert_ok(&a);
    assert_eq!(a.effects, b.effects);
    assert_eq!(a.logs, b.logs);
    assert_eq!(a.cost.instructions, b.cost.instructions);
    assert!(a.cost.instructions > 1000);
}

#[test]
fn feed_items_are_the_newest_stored_items_with_this_runs_own_changes() {
    let stored = |id: &str, item: &str| StoredFeedItem {
        id: id.into(),
        item: item.into(),
    };
    let mut fs = MemFs::default();
    fs.feeds.insert(
        "news".into(),
        vec![
            stored("a", r#"{"n":1}"#),
            stored("b", r#""two""#),
            stored("c", "plain text from another publisher"),
            stored("d", "[4]"),
        ],
    );
    let script = r#"export function onMessage(msg, thwonk) {
        const f = thwonk.feed("news");
        const show = (items) => items.map((i) => i.id + "=" + JSON.stringify(i.item)).join(" ");
        thwonk.log(show(f.items({ limit: 3 })));
        f.publish({ n: 5 }, "e");
        f.publish("edited", "b");
        f.retract("d");
        thwonk.log(show(f.items()));
        thwonk.log(show(f.items(2)));
        thwonk.log(thwonk.feed("empty").items().length);
        for (const bad of [0, 101, 1.5, "x"]) {
          try { f.items({ limit: bad }); } catch (e) { thwonk.log(e.name); }
        }
    }"#;
    let out = thwonk_sandbox::run(&on_message(script), &mut fs);
    assert_ok(&out);
    assert_eq!(
        logged(&out),
        [
            r#"b="two" c="plain text from another publisher" d=[4]"#,
            r#"a={"n":1} b="edited" c="plain text from another publisher" e={"n":5}"#,
            r#"c="plain text from another publisher" e={"n":5}"#,
            "0",
            "RangeError",
            "RangeError",
            "RangeError",
            "RangeError",
        ]
    );
}

#[test]
fn a_send_the_commit_would_refuse_throws_a_catchable_error_at_the_call() {
    let out = run_body(
        r#"for (const headers of [{ Bcc: "x@example.net" }, { "X-Thwonk-Loop": "1" }, [["bcc", "y"]], { "X List": "a" },
                                 { Received: "from trusted.example.org" }, { "DKIM-Signature": "v=1; d=bank.example" },
                                 { "Errors-To": "attacker@example.net" }, { "Disposition-Notification-To": "attacker@example.net" }]) {
          try {
            thwonk.send({ to: "a@example.net", subject: "s", text: "t", headers });
            thwonk.log("sent");
          } catch (e) {
            thwonk.log(e.name + ": " + e.message);
          }
        }
        try { thwonk.forward(msg, "b@example.net", { headers: { From: "me@example.net" } }); }
        catch (e) { thwonk.log(e.message); }
        try { thwonk.send({ to: "a@example.net", attachments: [{ filename: "f", content: "%%%" }] }); }
        catch (e) { thwonk.log(e.message); }
        thwonk.send({ to: "a@example.net", subject: "fine", headers: { "X-Tag": "ok" } });"#,
    );
    assert_ok(&out);
    assert_eq!(
        logged(&out),
        [
            r#"Error: header "Bcc" is reserved (Thwonk or the mail servers on the way write it); a script cannot add it"#,
            r#"Error: header "X-Thwonk-Loop" is reserved (Thwonk or the mail servers on the way write it); a script cannot add it"#,
            r#"Error: header "bcc" is reserved (Thwonk or the mail servers on the way write it); a script cannot add it"#,
            r#"Error: header name "X List" is not an RFC 5322 field name (printable ASCII, no ':' or space)"#,
            r#"Error: header "Received" is reserved (Thwonk or the mail servers on the way write it); a script cannot add it"#,
            r#"Error: header "DKIM-Signature" is reserved (Thwonk or the mail servers on the way write it); a script cannot add it"#,
            r#"Error: header "Errors-To" is reserved (Thwonk or the mail servers on the way write it); a script cannot add it"#,
            r#"Error: header "Disposition-Notification-To" is reserved (Thwonk or the mail servers on the way write it); a script cannot add it"#,
            r#"header "From" is reserved (Thwonk or the mail servers on the way write it); a script cannot add it"#,
            r#"attachment "f": content is not valid base64: Invalid symbol 37, offset 0."#,
        ]
    );
    // Only the valid send is buffered.
    assert_eq!(out.effects.sends.len(), 1);
    assert_eq!(out.effects.sends[0].subject, "fine");
}

#[test]
fn a_failing_run_names_what_was_called_and_where_in_the_script() {
    let out = run(
        &on_message(
            "export function onMessage(msg, thwonk) {\n  const helpers = {};\n  helpers.format(msg.subject);\n}",
        ),
        &mut MemFs::default(),
    );
    let error = out.error.unwrap();
    assert_eq!(error.kind, ErrorKind::ScriptError);
    assert_eq!(error.message, "TypeError: helpers.format is not a function");
    assert_eq!(
        error.stack.as_deref(),
        Some("    at onMessage (list@example.org:3:17)\n"),
        "the script is named by its thwonk's address, with the real line and column"
    );

    let out = run(
        &on_message(
            "function check(x) {\n  if (!x) throw new Error(\"bad input\");\n}\nexport function onMessage(msg, thwonk) {\n  check(0);\n}",
        ),
        &mut MemFs::default(),
    );
    let error = out.error.unwrap();
    assert_eq!(error.message, "Error: bad input");
    assert_eq!(
        error.stack.as_deref(),
        Some("    at check (list@example.org:2:17)\n    at onMessage (list@example.org:5:8)\n")
    );
}
