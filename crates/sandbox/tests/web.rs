//! The web side of a script in the sandbox: `req` of a full HTTP request (`text()`,
//! `json()`, `caller`), `methods[name]`, `thwonk.url`, `thwonk.crypto`, the deploy check of
//! `publicRoutes` and `methods`, and the two web examples (archive.js, webhook.js).

mod common;

use common::*;
use thwonk_core::run::{ErrorKind, HttpRequestView, Trigger};
use thwonk_sandbox::{check, run};

fn example(name: &str) -> String {
    let path = format!(
        "{}/../../sandbox-scripts/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn http(method: &str, path: &str, text: &str) -> HttpRequestView {
    HttpRequestView {
        method: method.into(),
        path: path.into(),
        query: vec![("q".into(), "1".into())],
        headers: vec![
            ("x-a".into(), "1".into()),
            ("x-a".into(), "2".into()),
            ("content-type".into(), "application/json".into()),
        ],
        caller_kind: "public".into(),
        caller_ip: Some("192.0.2.7".into()),
        handler: None,
        text: Some(text.into()),
    }
}

fn web_request(script: &str, h: HttpRequestView) -> thwonk_core::run::RunRequest {
    let body = serde_json::Value::String(h.text.clone().unwrap_or_default());
    request(
        script,
        Trigger::Request {
            body,
            http: Some(h),
        },
    )
}

#[test]
fn on_request_sees_the_whole_request() {
    let script = r#"
        export function onMessage() {}
        export function onRequest(req, thwonk) {
            return { method: req.method, path: req.path, query: req.query, headers: req.headers,
                     caller: req.caller, body: req.body, text: req.text(), json: req.json() };
        }"#;
    let out = run(
        &web_request(script, http("POST", "/api/x", r#"{"n": 1}"#)),
        &mut MemFs::default(),
    );
    assert_ok(&out);
    assert_eq!(
        out.response.unwrap(),
        serde_json::json!({
            "method": "POST", "path": "/api/x", "query": {"q": "1"},
            "headers": {"x-a": "1, 2", "content-type": "application/json"},
            "caller": {"kind": "public", "ip": "192.0.2.7"},
            "body": "{\"n\": 1}", "text": "{\"n\": 1}", "json": {"n": 1}
        })
    );
    // json() of a body that is not JSON throws a SyntaxError the script may catch.
    let script = r#"
        export function onMessage() {}
        export function onRequest(req) { try { return req.json(); } catch (e) { return e.name; } }"#;
    let out = run(
        &web_request(script, http("POST", "/", "nope")),
        &mut MemFs::default(),
    );
    assert_eq!(out.response, Some(serde_json::json!("SyntaxError")));
}

#[test]
fn a_bare_invoke_is_an_owners_post() {
    let script = r#"
        export function onMessage() {}
        export function onRequest(req) { return [req.method, req.path, req.caller.kind, req.text(), req.json().n]; }"#;
    let trigger = Trigger::Request {
        body: serde_json::json!({"n": 5}),
        http: None,
    };
    let out = run(&request(script, trigger), &mut MemFs::default());
    assert_ok(&out);
    assert_eq!(
        out.response,
        Some(serde_json::json!([
            "POST",
            "/invoke",
            "owner",
            "{\"n\":5}",
            5
        ]))
    );
}

#[test]
fn methods_are_called_by_name_and_only_their_own() {
    let script = r#"
        export function onMessage() {}
        export const methods = { hello(req, thwonk) { return "hi " + req.body; } };"#;
    let call = |name: &str| {
        let mut h = http("POST", &format!("/invoke/{name}"), "bob");
        h.handler = Some(name.into());
        run(&web_request(script, h), &mut MemFs::default())
    };
    let out = call("hello");
    assert_ok(&out);
    assert_eq!(out.response, Some(serde_json::json!("hi bob")));
    // Inherited properties are not methods.
    for name in ["toString", "constructor", "missing", "__proto__"] {
        let out = call(name);
        let e = out.error.unwrap();
        assert_eq!(e.kind, ErrorKind::NoHandler, "{name}: {e:?}");
    }
}

#[test]
fn url_and_crypto() {
    let script = r#"
        export function onMessage() {}
        export function onRequest(req, thwonk) {
            const c = thwonk.crypto;
            return [thwonk.url("archive/a b.html"), thwonk.url(),
                    c.hmacSha256("key", "The quick brown fox jumps over the lazy dog"),
                    c.timingSafeEqual("abc", "abc"), c.timingSafeEqual("abc", "abd"),
                    c.timingSafeEqual("abc", "abcd")];
        }"#;
    let mut req = web_request(script, http("GET", "/", ""));
    req.thwonk.public_url = Some("https://x.example/pub/list@example.org".into());
    let out = run(&req, &mut MemFs::default());
    assert_ok(&out);
    assert_eq!(
        out.response,
        Some(serde_json::json!([
            "https://x.example/pub/list@example.org/archive/a%20b.html",
            "https://x.example/pub/list@example.org/",
            // The well-known HMAC-SHA-256 of this sentence under "key".
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
            true,
            false,
            false
        ]))
    );
    // No base URL configured: url() throws, saying why.
    let out = run(
        &web_request(script, http("GET", "/", "")),
        &mut MemFs::default(),
    );
    let e = out.error.unwrap();
    assert!(e.message.contains("public.base_url"), "{e:?}");
}

#[test]
fn the_deploy_check_reads_and_checks_public_routes_and_methods() {
    let info = check(
        r#"export function onMessage() {}
           export const publicRoutes = ["GET /archive/*", "POST /unsubscribe"];
           export const methods = { hello() {}, bye() {} };"#,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(info.public_routes, ["GET /archive/*", "POST /unsubscribe"]);
    assert_eq!(info.methods, ["hello", "bye"]);
    for (bad, says) in [
        (
            r#"export const publicRoutes = "GET /x";"#,
            "array of strings",
        ),
        (r#"export const publicRoutes = ["get /x"];"#, "upper case"),
        (
            r#"export const publicRoutes = ["GET /a*b"];"#,
            "only end the path",
        ),
        (r#"export const methods = { x: 1 };"#, "must be a function"),
        (r#"export const methods = { "a-b"() {} };"#, "method name"),
    ] {
        let src = format!("export function onMessage() {{}}\n{bad}");
        let e = check(&src, &Default::default()).unwrap_err();
        assert!(e.message.contains(says), "{bad}: {e}");
    }
}

#[test]
fn the_archive_example_escapes_what_senders_write() {
    let src = example("archive.js");
    check(&src, &Default::default()).unwrap();
    let mut fs = MemFs::default();
    for (subject, text) in [
        (
            "<script>alert(\"x\")</script> & 'q'",
            "<img src=x onerror=alert(1)>",
        ),
        ("second", "plain"),
    ] {
        let out = run(
            &request(
                &src,
                Trigger::Message(message("alice@example.net", subject, text)),
            ),
            &mut fs,
        );
        assert_ok(&out);
        fs.commit(&out.effects);
    }
    let index = &fs.files["public/index.html"];
    assert!(!index.contains("<script>"), "{index}");
    assert!(
        index.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"),
        "{index}"
    );
    assert!(
        index.contains("<a href=\"posts/2.html\">second</a>"),
        "{index}"
    );
    let post = &fs.files["public/posts/1.html"];
    assert!(
        post.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{post}"
    );
    let feed = &fs.files["public/feed.xml"];
    assert!(feed.starts_with("<?xml"), "{feed}");
    assert!(feed.contains("<title>second</title>"), "{feed}");
}

#[test]
fn the_webhook_example_checks_the_signature() {
    let src = example("webhook.js");
    let info = check(&src, &Default::default()).unwrap();
    assert_eq!(info.public_routes, ["POST /hook"]);
    let mut fs = MemFs::default();
    fs.files.insert(
        "webhook.json".into(),
        r#"{"secret": "key", "notify": "ops@example.net"}"#.into(),
    );
    let body = "The quick brown fox jumps over the lazy dog";
    let signed = |sig: &str| {
        let mut h = http("POST", "/hook", body);
        h.headers = vec![("x-signature".into(), sig.into())];
        h
    };
    let good = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
    let out = run(&web_request(&src, signed(&good.replace('f', "e"))), &mut fs);
    assert_ok(&out);
    assert_eq!(out.response.unwrap()["status"], 401);
    assert!(out.effects.sends.is_empty());
    // Signed right but not JSON: 400, nothing sent.
    let out = run(&web_request(&src, signed(good)), &mut fs);
    assert_eq!(out.response.unwrap()["status"], 400);
    assert!(out.effects.sends.is_empty());
}
