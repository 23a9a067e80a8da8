//! The HTTP API over real sockets: every route's auth (no token, a wrong token, another
//! owner's token, the owner's, an admin's), hostile input (oversized bodies, path traversal in
//! VFS paths, malformed JSON), deploys with the CLI's checks, and a feed followed live as
//! Server-Sent Events. Real SQLite (PostgreSQL too when THWONK_TEST_POSTGRES_URL is set),
//! real redis-server, real sandbox workers.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Server, publish_by_run};
use thwonk_api::openapi::{Input, OPERATIONS};

const SCRIPT: &str = r#"
export function onMessage(msg, thwonk) {
  thwonk.files.write("seen.txt", msg.subject);
  thwonk.feed("news").publish(msg.subject);
  console.log("saw " + msg.subject);
}
"#;

const MESSAGE: &str =
    "From: carol@example.net\r\nTo: alice@example.org\r\nSubject: hello\r\n\r\nhi\r\n";

/// Everything a route needs to answer with success for its owner: a deployed script, a run,
/// a file and a feed item; plus a second thwonk for the owner to delete.
struct Fixture {
    run_id: String,
}

async fn fixture(s: &Server) -> Fixture {
    for addr in ["alice@example.org", "alice2@example.org"] {
        let r = s
            .req(
                "PUT",
                &format!("/v1/thwonks/{addr}/script"),
                Some(&s.alice),
                SCRIPT.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.error_message());
    }
    let t = s
        .store
        .thwonk_by_address(&thwonk_core::Address::parse("alice@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    let run_id = publish_by_run(
        &s.store,
        &s.redis,
        &t.id,
        &format!("{}/news", t.id),
        &[("n1", "first")],
    )
    .await;
    let r = s
        .req(
            "PUT",
            "/v1/thwonks/alice@example.org/files/a.txt",
            Some(&s.alice),
            b"A",
        )
        .await;
    assert_eq!(r.status, 200);
    Fixture { run_id }
}

/// The concrete request for an operation on `address`.
fn request(path: &str, address: &str, f: &Fixture) -> String {
    path.replace("{address}", address)
        .replace("{version}", "1")
        .replace("{run_id}", &f.run_id)
        .replace("{path}", "a.txt")
        .replace("{name}", "news")
        .replace("{method}", "hello")
}

fn body(method: &str, path: &str, input: Input) -> Vec<u8> {
    match (input, path) {
        (Input::None, _) => Vec::new(),
        (Input::Raw, p) if p.ends_with("/script") => SCRIPT.as_bytes().to_vec(),
        (Input::Raw, _) => b"file body".to_vec(),
        (Input::Json, "/v1/thwonks") => {
            json!({"address": format!("new-{}-{}@example.org", method, &thwonk_core::ids::new_id()[24..])}).to_string().into_bytes()
        }
        (Input::Json, p) if p.ends_with("/rollback") => br#"{"version": 1}"#.to_vec(),
        (Input::Json, p) if p.ends_with("/test") => json!({"message": MESSAGE}).to_string().into_bytes(),
        (Input::Json, _) => b"{}".to_vec(),
    }
}

/// Status of one request; an event stream is opened and its status read.
async fn status(
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    if path.ends_with("/events") {
        let e = s.events(path, token, None).await;
        let v = serde_json::from_slice(&e.body).unwrap_or(Value::Null);
        if e.status == 200 {
            assert_eq!(e.header("content-type"), Some("text/event-stream"));
        }
        return (e.status, v);
    }
    let r = s.req(&method.to_uppercase(), path, token, body).await;
    (r.status, r.json())
}

#[tokio::test]
async fn every_route_refuses_strangers_hides_other_owners_thwonks_and_serves_owner_and_admin() {
    let s = Server::start().await;
    let f = fixture(&s).await;
    let wrong = format!("thw_{}", "0".repeat(64));
    let mut checked = 0;
    for o in OPERATIONS {
        let path = request(o.path, "alice@example.org", &f);
        let b = body(o.method, o.path, o.input);
        if !o.auth {
            let (st, _) = status(&s, o.method, &path, None, &b).await;
            assert_eq!(st, o.ok, "{} {path} without a token", o.method);
            continue;
        }
        for token in [None, Some(wrong.as_str()), Some("Basic abc"), Some("thw_")] {
            let (st, v) = status(&s, o.method, &path, token, &b).await;
            assert_eq!(st, 401, "{} {path} with {token:?}", o.method);
            assert_eq!(v["error"]["code"], "unauthorized", "{} {path}", o.method);
        }
        if o.path.contains("{address}") {
            let (st, v) = status(&s, o.method, &path, Some(&s.bob), &b).await;
            if o.method == "put" && o.path.ends_with("/script") {
                // Deploying to another owner's address answers as creating it does (a
                // deploy to a free address creates it, so that one is not a probe).
                assert_eq!(
                    st, 409,
                    "{} {path} with another owner's token: {v}",
                    o.method
                );
                assert_eq!(v["error"]["code"], "address_taken");
            } else {
                assert_eq!(
                    st, 404,
                    "{} {path} with another owner's token: {v}",
                    o.method
                );
                assert_eq!(v["error"]["code"], "not_found");
                // Exactly what a thwonk that does not exist answers.
                let missing = request(o.path, "nobody@example.org", &f);
                let (st_missing, _) = status(&s, o.method, &missing, Some(&s.bob), &b).await;
                assert_eq!(st_missing, 404, "{} {missing}", o.method);
            }
        }
        if o.method == "delete" {
            continue; // below, once the rest has been tried
        }
        // No runner runs in this harness: the request is withdrawn after the timeout.
        let expected = if o.path.ends_with("/invoke") || o.path.ends_with("/invoke/{method}") {
            504
        } else {
            o.ok
        };
        for (who, token) in [("owner", &s.alice), ("admin", &s.admin)] {
            // A fresh body each time: a created address cannot be created twice.
            let b = body(o.method, o.path, o.input);
            let (st, v) = status(&s, o.method, &path, Some(token), &b).await;
            assert_eq!(st, expected, "{} {path} as {who}: {v}", o.method);
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} routes were tried");

    // Deletes: the owner's and an admin's.
    let r = s
        .req(
            "DELETE",
            "/v1/thwonks/alice@example.org/files/a.txt",
            Some(&s.alice),
            b"",
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s
        .req(
            "PUT",
            "/v1/thwonks/alice@example.org/files/a.txt",
            Some(&s.alice),
            b"A",
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .req(
            "DELETE",
            "/v1/thwonks/alice@example.org/files/a.txt",
            Some(&s.admin),
            b"",
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s
        .req(
            "DELETE",
            "/v1/thwonks/alice2@example.org",
            Some(&s.alice),
            b"",
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s
        .req(
            "DELETE",
            "/v1/thwonks/alice@example.org",
            Some(&s.admin),
            b"",
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s
        .req("GET", "/v1/thwonks/alice@example.org", Some(&s.admin), b"")
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn owners_list_only_their_thwonks_and_cannot_take_anothers_address() {
    let s = Server::start().await;
    fixture(&s).await;
    let r = s
        .req(
            "PUT",
            "/v1/thwonks/bob@example.org/script",
            Some(&s.bob),
            SCRIPT.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.error_message());
    let names = |v: Value| -> Vec<String> {
        v["thwonks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["address"].as_str().unwrap().to_string())
            .collect()
    };
    let alice = names(
        s.req("GET", "/v1/thwonks", Some(&s.alice), b"")
            .await
            .json(),
    );
    assert_eq!(alice, vec!["alice2@example.org", "alice@example.org"]);
    let bob = names(s.req("GET", "/v1/thwonks", Some(&s.bob), b"").await.json());
    assert_eq!(bob, vec!["bob@example.org"]);
    let all = names(
        s.req("GET", "/v1/thwonks", Some(&s.admin), b"")
            .await
            .json(),
    );
    assert_eq!(all.len(), 3);
    // Bob deploying to Alice's address and Bob creating it get one answer: 409, taken by
    // another owner; her script is untouched.
    let r = s
        .req(
            "PUT",
            "/v1/thwonks/alice@example.org/script",
            Some(&s.bob),
            b"export function onMessage() {}",
        )
        .await;
    assert_eq!(r.status, 409);
    let put_answer = r.json();
    assert_eq!(
        put_answer["error"],
        json!({"code": "address_taken", "message": "alice@example.org is taken by another owner"})
    );
    let v = s
        .req(
            "GET",
            "/v1/thwonks/alice@example.org/versions",
            Some(&s.alice),
            b"",
        )
        .await
        .json();
    assert_eq!(v["versions"].as_array().unwrap().len(), 1);
    // Creating a taken address: 409, whoever holds it.
    let r = s
        .req(
            "POST",
            "/v1/thwonks",
            Some(&s.bob),
            br#"{"address": "alice@example.org"}"#,
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json(), put_answer, "PUT and POST answer alike");
    let r = s
        .req(
            "POST",
            "/v1/thwonks",
            Some(&s.alice),
            br#"{"address": "alice@example.org"}"#,
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json()["error"]["message"],
        "alice@example.org already exists"
    );
    // An owner cannot hand a thwonk to someone else.
    let r = s
        .req(
            "POST",
            "/v1/thwonks",
            Some(&s.bob),
            br#"{"address": "x@example.org", "owner": "alice"}"#,
        )
        .await;
    assert_eq!(r.status, 403);
    // A revoked token stops working at once.
    let tokens = s.store.list_tokens().await.unwrap();
    let bobs = tokens.iter().find(|t| t.user_name == "bob").unwrap();
    assert!(s.store.revoke_token(&bobs.id).await.unwrap());
    let r = s.req("GET", "/v1/thwonks", Some(&s.bob), b"").await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn deploy_refuses_what_the_cli_refuses_and_rollback_restores_a_version() {
    let s = Server::start().await;
    let t = "/v1/thwonks/alice@example.org";
    let r = s
        .req(
            "PUT",
            &format!("{t}/script"),
            Some(&s.alice),
            b"export function onMessage( {",
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.error_message());
    let v = r.json();
    assert_eq!(v["error"]["code"], "script_refused");
    assert_eq!(v["error"]["line"], 1);
    assert!(v["error"]["column"].as_u64().unwrap() >= 1);
    // Refused before anything was written: the address is still free.
    let r = s.req("GET", t, Some(&s.admin), b"").await;
    assert_eq!(r.status, 404);
    // Nesting deeper than limits.script_max_depth is refused before Boa parses it.
    let deep = format!(
        "export function onMessage() {{ return {}1{}; }}",
        "(".repeat(200),
        ")".repeat(200)
    );
    let r = s
        .req(
            "PUT",
            &format!("{t}/script"),
            Some(&s.alice),
            deep.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 422);
    // A bad cron schedule too.
    let r = s
        .req("PUT", &format!("{t}/script"), Some(&s.alice), b"export const schedule = \"not cron\";\nexport function onMessage() {}\nexport function onSchedule() {}")
        .await;
    assert_eq!(r.status, 422, "{}", r.error_message());
    // Two good versions, then back to the first.
    let r = s
        .req(
            "PUT",
            &format!("{t}/script"),
            Some(&s.alice),
            SCRIPT.as_bytes(),
        )
        .await;
    assert_eq!((r.status, r.json()["version"].as_i64()), (201, Some(1)));
    let r = s
        .req(
            "PUT",
            &format!("{t}/script"),
            Some(&s.alice),
            b"export function onMessage() {}",
        )
        .await;
    assert_eq!((r.status, r.json()["version"].as_i64()), (200, Some(2)));
    let r = s
        .req(
            "POST",
            &format!("{t}/rollback"),
            Some(&s.alice),
            br#"{"version": 1}"#,
        )
        .await;
    assert_eq!(r.json()["active_version"], 1);
    let r = s
        .req_with(
            "GET",
            &format!("{t}/script"),
            Some(&s.alice),
            &[("Accept", "application/json")],
            b"",
        )
        .await;
    assert_eq!(r.json()["source"], SCRIPT);
    assert_eq!(r.json()["version"], 1);
    let r = s
        .req(
            "POST",
            &format!("{t}/rollback"),
            Some(&s.alice),
            br#"{"version": 9}"#,
        )
        .await;
    assert_eq!(r.status, 404);
    // Named by the address, not the thwonk's internal id.
    assert_eq!(
        r.error_message(),
        "alice@example.org has no version 9",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // The dry run shows the effects and commits none of them.
    let r = s
        .req(
            "POST",
            &format!("{t}/test"),
            Some(&s.alice),
            json!({"message": MESSAGE}).to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["writes"].as_array().unwrap().len(), 1);
    assert_eq!(v["feed_ops"].as_array().unwrap().len(), 1);
    assert_eq!(v["logs"][0]["message"], "saw hello");
    let files = s
        .req("GET", &format!("{t}/files"), Some(&s.alice), b"")
        .await
        .json();
    assert_eq!(files["files"], json!([]));
    let runs = s
        .req("GET", &format!("{t}/runs"), Some(&s.alice), b"")
        .await
        .json();
    assert_eq!(runs["runs"], json!([]));
}

#[tokio::test]
async fn hostile_input_is_refused_with_json_errors() {
    let s = Server::start().await;
    fixture(&s).await;
    let t = "/v1/thwonks/alice@example.org";
    // Bodies over http.max_body_bytes: 413, and nothing written.
    let huge = vec![b'x'; s.config.http.max_body_bytes as usize + 1];
    for (method, path) in [
        ("PUT", format!("{t}/files/big.bin")),
        ("PUT", format!("{t}/script")),
        ("POST", "/v1/thwonks".to_string()),
        ("POST", format!("{t}/test")),
    ] {
        let r = s.req(method, &path, Some(&s.alice), &huge).await;
        assert_eq!(r.status, 413, "{method} {path}");
        assert_eq!(r.json()["error"]["code"], "too_large", "{method} {path}");
    }
    // Under the body limit but over limits.file_max_bytes: 413 too.
    let big = vec![b'x'; s.config.limits.file_max_bytes as usize + 1];
    let r = s
        .req("PUT", &format!("{t}/files/big.bin"), Some(&s.alice), &big)
        .await;
    assert_eq!(r.status, 413);
    let r = s
        .req("GET", &format!("{t}/files/big.bin"), Some(&s.alice), b"")
        .await;
    assert_eq!(r.status, 404);
    // Path traversal, plain, percent-encoded, NUL, backslash, and a doubled leading `/` (one
    // leading `/` is dropped, as scripts do: `leading_slash_names_the_same_file_everywhere`).
    for bad in [
        "../x",
        "a/../../x",
        "%2e%2e/x",
        "%2E%2E%2Fx",
        "a/%2e%2e/%2e%2e/b",
        "..%2fsecret",
        "//etc/passwd",
        "%2F%2Fetc%2Fpasswd",
        "a%00b",
        "a%5C..%5Cb",
        "./a",
        "a//b",
    ] {
        for method in ["GET", "PUT", "DELETE"] {
            let r = s
                .req(method, &format!("{t}/files/{bad}"), Some(&s.alice), b"x")
                .await;
            assert_eq!(
                r.status,
                400,
                "{method} files/{bad}: {}",
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(
                r.json()["error"]["code"],
                "bad_path",
                "{method} files/{bad}"
            );
        }
    }
    let r = s
        .req("GET", &format!("{t}/files?prefix=../"), Some(&s.alice), b"")
        .await;
    assert_eq!(r.status, 400);
    // Nothing escaped: the only file is the fixture's.
    let files = s
        .req("GET", &format!("{t}/files"), Some(&s.admin), b"")
        .await
        .json();
    assert_eq!(files["files"].as_array().unwrap().len(), 1);
    // Malformed JSON and wrong shapes: 400 bad_json, in JSON.
    for (path, body) in [
        ("/v1/thwonks".to_string(), &b"{\"address\":"[..]),
        ("/v1/thwonks".to_string(), b"[1,2]"),
        ("/v1/thwonks".to_string(), b"{\"address\": 5}"),
        (
            "/v1/thwonks".to_string(),
            b"{\"address\": \"a@example.org\", \"extra\": 1}",
        ),
        (format!("{t}/rollback"), b"{\"version\": \"one\"}"),
        (format!("{t}/test"), b"not json"),
        (format!("{t}/invoke"), b"{"),
    ] {
        let r = s.req("POST", &path, Some(&s.alice), body).await;
        assert_eq!(
            r.status,
            400,
            "POST {path} {}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(r.json()["error"]["code"], "bad_json", "POST {path}");
    }
    // Not an address; a script that is not UTF-8; a feed name that is not one.
    let r = s
        .req("GET", "/v1/thwonks/not-an-address", Some(&s.admin), b"")
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .req(
            "PUT",
            &format!("{t}/script"),
            Some(&s.alice),
            &[0xff, 0xfe, 0x00],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .req("GET", &format!("{t}/feeds/a%20b"), Some(&s.alice), b"")
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .req(
            "GET",
            &format!("{t}/runs/{}", "x".repeat(40)),
            Some(&s.alice),
            b"",
        )
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .req("GET", &format!("{t}/runs?limit=abc"), Some(&s.alice), b"")
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (400, Some("bad_query"))
    );
    // Unknown routes answer in JSON too.
    let r = s.req("GET", "/v1/nothing", Some(&s.admin), b"").await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn a_feed_is_followed_live_as_server_sent_events_across_a_redis_restart() {
    let mut s = Server::start().await;
    fixture(&s).await;
    let t = s
        .store
        .thwonk_by_address(&thwonk_core::Address::parse("alice@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    let feed = &format!("{}/news", t.id);
    let path = "/v1/thwonks/alice@example.org/feeds/news/events";
    let mut events = s.events(path, Some(&s.alice), None).await;
    assert_eq!(events.status, 200);
    assert_eq!(events.header("content-type"), Some("text/event-stream"));

    publish_by_run(
        &s.store,
        &s.redis,
        &t.id,
        feed,
        &[("n2", "second"), ("n3", "third")],
    )
    .await;
    for (id, item) in [("n2", "second"), ("n3", "third")] {
        let e = events
            .next_within(Duration::from_secs(10))
            .await
            .expect("an event");
        assert_eq!(e.event, "publish");
        assert_eq!(e.id.as_deref(), Some(id));
        let data: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(
            (data["id"].as_str(), data["item"].as_str()),
            (Some(id), Some(item))
        );
    }
    // Idle: keep-alive comments (http.sse_keep_alive_secs = 1) and no events.
    assert!(
        events
            .next_within(Duration::from_millis(2500))
            .await
            .is_none()
    );
    assert!(events.comments >= 1, "no keep-alive comment in 2.5 s");

    // A browser's EventSource cannot send headers: event streams take ?access_token=, with
    // the same rules; no other route does.
    let q = |t: &str| format!("{path}?access_token={t}");
    assert_eq!(s.events(&q(&s.alice), None, None).await.status, 200);
    assert_eq!(s.events(&q(&s.bob), None, None).await.status, 404);
    assert_eq!(
        s.events(&q(&format!("thw_{}", "1".repeat(64))), None, None)
            .await
            .status,
        401
    );
    let r = s
        .req(
            "GET",
            &format!(
                "/v1/thwonks/alice@example.org/feeds/news?access_token={}",
                s.alice
            ),
            None,
            b"",
        )
        .await;
    assert_eq!(r.status, 401);

    // A client that reconnects with Last-Event-ID gets what it missed.
    let mut again = s.events(path, Some(&s.alice), Some("n1")).await;
    for id in ["n2", "n3"] {
        let e = again
            .next_within(Duration::from_secs(10))
            .await
            .expect("a caught-up event");
        assert_eq!(e.id.as_deref(), Some(id));
    }

    // Redis restarts (empty): the stream stays open and carries events again.
    s.redis_server.take().unwrap().stop().await;
    let server = thwonk_thoonk::PrivateRedis::start("redis-server", s.dir.path(), &s.redis_socket)
        .await
        .unwrap();
    let mut got = None;
    for n in 0..60 {
        let id = format!("after-{n}");
        let published = thwonk_thoonk::Feed::new(&s.redis, feed)
            .publish(Some(&id), "back", thwonk_core::time::now_ms())
            .await;
        if published.is_ok()
            && let Some(e) = events.next_within(Duration::from_millis(500)).await
        {
            got = Some(e);
            break;
        }
    }
    let e = got.expect("no event within 30 s of Redis coming back");
    assert!(e.id.unwrap().starts_with("after-"));
    s.redis_server = Some(server);

    // Items: the feed as it is now.
    let r = s
        .req(
            "GET",
            "/v1/thwonks/alice@example.org/feeds/news",
            Some(&s.alice),
            b"",
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(!r.json()["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_with_its_auth() {
    let s = Server::start().await;
    let r = s.req("GET", "/v1/openapi.json", None, b"").await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for o in OPERATIONS {
        let op = &doc["paths"][o.path][o.method];
        assert!(op.is_object(), "{} {} missing", o.method, o.path);
        assert_eq!(
            op["security"] == json!([]),
            !o.auth,
            "{} {}",
            o.method,
            o.path
        );
    }
    let r = s.req("GET", "/healthz", None, b"").await;
    assert_eq!(r.status, 200);
    let r = s.req("GET", "/readyz", None, b"").await;
    assert_eq!((r.status, r.json()["redis"].as_bool()), (200, Some(true)));
}

#[tokio::test]
async fn a_full_flow_on_postgres() {
    let Some(base) = std::env::var("THWONK_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("THWONK_TEST_POSTGRES_URL is not set: skipping the PostgreSQL flow");
        return;
    };
    let db = thwonk_store::scratch::scratch_postgres_url(&base)
        .await
        .unwrap();
    {
        let s = Server::start_on(Some(db.url())).await;
        let f = fixture(&s).await;
        let t = "/v1/thwonks/alice@example.org";
        let r = s
            .req(
                "GET",
                &format!("{t}/runs/{}", f.run_id),
                Some(&s.alice),
                b"",
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["logs"][0]["message"], "published");
        let r = s
            .req("GET", &format!("{t}/runs/{}", f.run_id), Some(&s.bob), b"")
            .await;
        assert_eq!(r.status, 404);
        let r = s
            .req("GET", &format!("{t}/files/a.txt"), Some(&s.alice), b"")
            .await;
        assert_eq!((r.status, r.body.as_slice()), (200, &b"A"[..]));
        let r = s
            .req(
                "PUT",
                &format!("{t}/script"),
                Some(&s.alice),
                b"export function onMessage() {}",
            )
            .await;
        assert_eq!(r.json()["version"], 2);
        let r = s
            .req(
                "POST",
                &format!("{t}/rollback"),
                Some(&s.alice),
                br#"{"version": 1}"#,
            )
            .await;
        assert_eq!(r.json()["active_version"], 1);
        let r = s.req("DELETE", t, Some(&s.alice), b"").await;
        assert_eq!(r.status, 204);
        let r = s.req("GET", "/v1/thwonks", Some(&s.alice), b"").await;
        assert_eq!(r.json()["thwonks"].as_array().unwrap().len(), 1);
    }
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn the_script_comes_back_as_raw_text_and_round_trips_through_put() {
    let s = Server::start().await;
    let t = "/v1/thwonks/alice@example.org";
    // CRLF, a trailing blank line and non-ASCII: the bytes must survive as they are.
    let source = "// Grüße\r\nexport function onMessage(msg, thwonk) {\r\n  console.log(\"é\");\r\n}\r\n\r\n";
    let r = s
        .req(
            "PUT",
            &format!("{t}/script"),
            Some(&s.alice),
            source.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.error_message());
    // What curl sends by default (`*/*`), no Accept at all, and the two text types: raw.
    for accept in [
        Some("*/*"),
        None,
        Some("text/plain"),
        Some("application/javascript"),
    ] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
        let r = s
            .req_with("GET", &format!("{t}/script"), Some(&s.alice), &headers, b"")
            .await;
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(r.body, source.as_bytes(), "Accept {accept:?}");
        assert_eq!(
            r.header("content-type"),
            Some("application/javascript; charset=utf-8")
        );
        assert_eq!(r.header("x-thwonk-version"), Some("1"));
    }
    // Round trip: what GET gave, PUT again, is the next version with the same bytes.
    let got = s
        .req("GET", &format!("{t}/script"), Some(&s.alice), b"")
        .await
        .body;
    let r = s
        .req("PUT", &format!("{t}/script"), Some(&s.alice), &got)
        .await;
    assert_eq!((r.status, r.json()["version"].as_i64()), (200, Some(2)));
    let v2 = s
        .req("GET", &format!("{t}/versions/2"), Some(&s.alice), b"")
        .await;
    assert_eq!(v2.body, source.as_bytes());
    // JSON when asked for.
    let r = s
        .req_with(
            "GET",
            &format!("{t}/script"),
            Some(&s.alice),
            &[("Accept", "application/json")],
            b"",
        )
        .await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["source"], source);
    assert_eq!(r.json()["version"], 2);
}

#[tokio::test]
async fn leading_slash_names_the_same_file_everywhere() {
    let s = Server::start().await;
    let t = "/v1/thwonks/alice@example.org";
    // The script writes "/members.json" and reads it back without the slash.
    let script = r#"export function onMessage(msg, thwonk) {
  thwonk.files.write("/state/seen.txt", msg.subject);
}
export function onRequest(req, thwonk) { return null; }"#;
    let r = s
        .req(
            "PUT",
            &format!("{t}/script"),
            Some(&s.alice),
            script.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.error_message());
    // PUT with a leading `/` (`files//members.json`, or `%2F`), GET and DELETE without it.
    let r = s
        .req(
            "PUT",
            &format!("{t}/files//members.json"),
            Some(&s.alice),
            b"[1]",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.error_message());
    assert_eq!(r.json()["path"], "members.json");
    let r = s
        .req(
            "GET",
            &format!("{t}/files/members.json"),
            Some(&s.alice),
            b"",
        )
        .await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"[1]"[..]));
    let r = s
        .req(
            "GET",
            &format!("{t}/files/%2Fmembers.json"),
            Some(&s.alice),
            b"",
        )
        .await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"[1]"[..]));
    let r = s
        .req(
            "GET",
            &format!("{t}/files?prefix=/mem"),
            Some(&s.alice),
            b"",
        )
        .await;
    assert_eq!(r.json()["files"][0]["path"], "members.json");
    // The dry run's write is reported without the slash, as the API stores it.
    let r = s
        .req(
            "POST",
            &format!("{t}/test"),
            Some(&s.alice),
            json!({"message": MESSAGE}).to_string().as_bytes(),
        )
        .await;
    let v = r.json();
    assert_eq!(v["status"], "ok", "{v}");
    assert!(
        v["writes"].to_string().contains("\"state/seen.txt\""),
        "{v}"
    );
    let r = s
        .req(
            "DELETE",
            &format!("{t}/files//members.json"),
            Some(&s.alice),
            b"",
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s
        .req(
            "GET",
            &format!("{t}/files/members.json"),
            Some(&s.alice),
            b"",
        )
        .await;
    assert_eq!(r.status, 404);
    // Still one leading slash only: `//x` is an empty segment.
    let r = s
        .req("GET", &format!("{t}/files///x"), Some(&s.alice), b"")
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_bad_access_token_is_called_invalid_not_missing() {
    let s = Server::start().await;
    fixture(&s).await;
    let events = "/v1/thwonks/alice@example.org/feeds/news/events";
    for bad in ["nonsense", "Bearer%20thw_x", ""] {
        let e = s
            .events(&format!("{events}?access_token={bad}"), None, None)
            .await;
        assert_eq!(e.status, 401, "{bad:?}");
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("invalid token"), "{bad:?}: {msg}");
    }
    // Well-formed but unknown: invalid too.
    let e = s
        .events(
            &format!("{events}?access_token=thw_{}", "1".repeat(64)),
            None,
            None,
        )
        .await;
    let v: Value = serde_json::from_slice(&e.body).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid token"),
        "{v}"
    );
    // On a route that does not take it: said so, not "no token".
    let r = s
        .req(
            "GET",
            &format!("/v1/thwonks/alice@example.org?access_token={}", s.alice),
            None,
            b"",
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.error_message().contains("event streams"),
        "{}",
        r.error_message()
    );
    // No token at all still says so.
    let r = s.req("GET", "/v1/thwonks", None, b"").await;
    assert!(
        r.error_message().starts_with("no token"),
        "{}",
        r.error_message()
    );
}

/// Issue 13 item 12: `?access_token=` is taken by the event streams' `GET` only. A path that
/// merely ends in `/events` (a file named so) cannot be written or removed with a token in
/// the URL, where it ends up in logs and browser history.
#[tokio::test]
async fn a_token_in_the_url_cannot_write_or_delete_a_file_named_events() {
    let s = Server::start().await;
    fixture(&s).await;
    let file = "/v1/thwonks/alice@example.org/files/events";
    let nested = "/v1/thwonks/alice@example.org/files/x/events";
    for path in [file, nested] {
        let r = s.req("PUT", path, Some(&s.alice), b"kept").await;
        assert_eq!(r.status, 200, "{}", r.error_message());
    }
    let in_url = |path: &str| format!("{path}?access_token={}", s.alice);
    for path in [file, nested] {
        for (method, body) in [("PUT", &b"overwritten"[..]), ("DELETE", &b""[..])] {
            let r = s.req(method, &in_url(path), None, body).await;
            assert_eq!(r.status, 401, "{method} {path}");
            assert!(
                r.error_message().contains("event streams"),
                "{method} {path}: {}",
                r.error_message()
            );
        }
        // Not even a read of it.
        assert_eq!(s.req("GET", &in_url(path), None, b"").await.status, 401);
        // Nothing changed.
        let r = s.req("GET", path, Some(&s.alice), b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"kept");
    }
    // The event stream itself still takes it.
    let stream = "/v1/thwonks/alice@example.org/feeds/news/events";
    assert_eq!(s.events(&in_url(stream), None, None).await.status, 200);
}

/// Issue 13 item 14: feeds are keyed by the thwonk's id and deleted with the thwonk. Alice
/// publishes, deletes her thwonk; Bob creates the same address and finds none of her items,
/// neither listed nor replayed on an event stream, nor sees what is published to her old
/// feed afterwards.
#[tokio::test]
async fn a_new_owner_of_a_deleted_address_sees_nothing_of_the_old_feeds() {
    let s = Server::start().await;
    fixture(&s).await;
    let address = thwonk_core::Address::parse("alice@example.org").unwrap();
    let alices = s.store.thwonk_by_address(&address).await.unwrap().unwrap();
    publish_by_run(
        &s.store,
        &s.redis,
        &alices.id,
        &format!("{}/news", alices.id),
        &[("a1", "alice's first"), ("a2", "alice's secret")],
    )
    .await;
    let prefix = format!("{}/", alices.id);
    let before = thwonk_thoonk::feed::feed_names_with_prefix(&s.redis, &prefix)
        .await
        .unwrap();
    assert_eq!(before, [format!("{}/news", alices.id)]);

    let r = s
        .req(
            "DELETE",
            "/v1/thwonks/alice@example.org",
            Some(&s.alice),
            b"",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.error_message());
    let after = thwonk_thoonk::feed::feed_names_with_prefix(&s.redis, &prefix)
        .await
        .unwrap();
    assert!(after.is_empty(), "left on Redis: {after:?}");
    assert_eq!(
        thwonk_thoonk::Feed::new(&s.redis, &format!("{}/news", alices.id))
            .length()
            .await
            .unwrap(),
        0
    );

    // Bob claims the address.
    let r = s
        .req(
            "PUT",
            "/v1/thwonks/alice@example.org/script",
            Some(&s.bob),
            SCRIPT.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.error_message());
    let bobs = s.store.thwonk_by_address(&address).await.unwrap().unwrap();
    assert_ne!(bobs.id, alices.id);
    let r = s
        .req(
            "GET",
            "/v1/thwonks/alice@example.org/feeds/news",
            Some(&s.bob),
            b"",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["items"], json!([]), "Bob reads Alice's items");

    // An event stream resumed after Alice's first item replays nothing of hers...
    let path = "/v1/thwonks/alice@example.org/feeds/news/events";
    let mut events = s.events(path, Some(&s.bob), Some("a1")).await;
    assert_eq!(events.status, 200);
    // ...and what reaches her old feed now (a late writer) does not reach Bob.
    thwonk_thoonk::Feed::new(&s.redis, &format!("{}/news", alices.id))
        .publish(Some("a3"), "alice's late item", thwonk_core::time::now_ms())
        .await
        .unwrap();
    if let Some(e) = events.next_within(Duration::from_secs(2)).await {
        panic!("Bob's stream got {e:?}");
    }
    // Bob's own items do arrive: the stream is live.
    publish_by_run(
        &s.store,
        &s.redis,
        &bobs.id,
        &format!("{}/news", bobs.id),
        &[("b1", "bob's")],
    )
    .await;
    let e = events
        .next_within(Duration::from_secs(10))
        .await
        .expect("Bob's own event");
    assert_eq!(e.id.as_deref(), Some("b1"));
}
