//! Thwonks on the web (issue 14), over real HTTP against a real daemon: published files
//! (content types, ETag/304, HEAD, safe headers, every spelling of a climb, nothing outside
//! `public/`), public request handlers (opt-in, the request they see, `methods`), honest
//! statuses for the token invoke and the public side, and the public limits (rate, body
//! size). SQLite, and PostgreSQL where a server answers.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::{Daemon, Relay, req, send_mail};
use thwonk_api::client::{self, Response};

const SITE: &str = "site@example.org";

/// A request without a token, with extra headers; the path is sent exactly as given.
async fn public(
    http: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let stream = tokio::net::TcpStream::connect(http).await.unwrap();
    client::send(stream, method, path, headers, body)
        .await
        .unwrap()
}

/// The site's script: handlers that show what they saw, that throw, that spin, and opt-in
/// routes for some of them only.
const SITE_SCRIPT: &str = r#"
export const publicRoutes = ["GET /api/*", "POST /api/*", "POST /invoke/hello", "POST /invoke/boom", "GET /missing/*"];

export function onMessage(msg, thwonk) {}

export function onRequest(req, thwonk) {
  if (req.path === "/api/teapot") {
    return { status: 418, headers: { "X-Brew": "tea" }, body: "short and stout" };
  }
  if (req.path === "/api/throw") throw new Error("the handler fell over");
  if (req.path === "/api/spin") { while (true) {} }
  if (req.path === "/api/write") {
    thwonk.files.write("public/written.txt", req.text());
    return { wrote: req.text().length };
  }
  return {
    method: req.method, path: req.path, query: req.query, headers: req.headers,
    caller: req.caller, text: req.text(),
    json: req.method === "POST" ? req.json() : null,
  };
}

export const methods = {
  hello(req, thwonk) { return { hello: req.caller.kind, path: req.path, body: req.body }; },
  boom() { throw new Error("boom"); },
  spin() { while (true) {} },
};
"#;

struct Site {
    daemon: Daemon,
    token: String,
    _dir: tempfile::TempDir,
    _relay: Relay,
}

impl Site {
    async fn start(database_url: Option<&str>, vars: &[(&str, &str)]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::start().await;
        let mut env = support::env(dir.path(), relay.addr, database_url);
        env.vars
            .push(("THWONK_LIMITS_INSTRUCTIONS".into(), "2000000".into()));
        for (k, v) in vars {
            env.vars.push((k.to_string(), v.to_string()));
        }
        env.ok(&["user", "add", "dora"]);
        let token = env
            .ok(&["token", "create", "--user", "dora"])
            .trim()
            .to_string();
        let daemon = Daemon::start(&env).await;
        let site = Site {
            daemon,
            token,
            _dir: dir,
            _relay: relay,
        };
        let r = site
            .owner(
                "PUT",
                &format!("/v1/thwonks/{SITE}/script"),
                SITE_SCRIPT.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.error_message());
        site
    }

    fn http(&self) -> SocketAddr {
        self.daemon.http_addr()
    }

    async fn owner(&self, method: &str, path: &str, body: &[u8]) -> Response {
        req(self.http(), method, path, &self.token, body).await
    }

    async fn put_file(&self, path: &str, body: &[u8]) {
        let r = self
            .owner("PUT", &format!("/v1/thwonks/{SITE}/files/{path}"), body)
            .await;
        assert_eq!(r.status, 200, "{}", r.error_message());
    }

    async fn get(&self, path: &str) -> Response {
        public(self.http(), "GET", path, &[], b"").await
    }
}

async fn published_files(site: &Site) {
    let p = format!("/pub/{SITE}");
    site.put_file("public/index.html", b"<!doctype html><h1>home</h1>")
        .await;
    site.put_file("public/style.css", b"h1 { color: red }")
        .await;
    site.put_file("public/feed.xml", b"<feed/>").await;
    site.put_file("public/data.json", b"{}").await;
    site.put_file("public/logo.png", b"\x89PNG\r\n\x1a\n").await;
    site.put_file("public/docs/index.html", b"<p>docs</p>")
        .await;
    site.put_file("secret.txt", b"owner only").await;
    site.put_file("public/unknown.blob", b"?").await;

    // Content types from the extension; the folder's index.html for the folder.
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/data.json", "application/json; charset=utf-8"),
        ("/logo.png", "image/png"),
        ("/docs/", "text/html; charset=utf-8"),
        ("/unknown.blob", "application/octet-stream"),
    ] {
        let r = site.get(&format!("{p}{path}")).await;
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        // Safe headers on everything.
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("sandbox"),
            "{path}: {csp}"
        );
        assert_eq!(r.header("set-cookie"), None);
    }
    let feed = site.get(&format!("{p}/feed.xml")).await;
    assert!(
        feed.header("content-type").unwrap().contains("xml"),
        "{:?}",
        feed.header("content-type")
    );
    assert_eq!(
        site.get(&format!("{p}/")).await.body,
        b"<!doctype html><h1>home</h1>"
    );
    // The folder without its slash is sent to it, so its relative links work.
    let r = site.get(&format!("{p}/docs")).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some(format!("{p}/docs/").as_str()));

    // ETag, Last-Modified, Cache-Control; If-None-Match answers 304 with no body.
    let r = site.get(&format!("{p}/style.css")).await;
    let etag = r.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let modified = r.header("last-modified").unwrap();
    assert!(modified.ends_with(" GMT"), "{modified}");
    assert!(
        r.header("cache-control").unwrap().contains("max-age="),
        "{:?}",
        r.header("cache-control")
    );
    let r = public(
        site.http(),
        "GET",
        &format!("{p}/style.css"),
        &[("If-None-Match", &etag)],
        b"",
    )
    .await;
    assert_eq!((r.status, r.body.len()), (304, 0));
    let r = public(
        site.http(),
        "GET",
        &format!("{p}/style.css"),
        &[("If-None-Match", "\"something-else\"")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    // A changed file has a new ETag: the old one no longer matches.
    site.put_file("public/style.css", b"h1 { color: blue }")
        .await;
    let r = public(
        site.http(),
        "GET",
        &format!("{p}/style.css"),
        &[("If-None-Match", &etag)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_ne!(r.header("etag"), Some(etag.as_str()));

    // HEAD: the same headers, no body.
    let r = public(site.http(), "HEAD", &format!("{p}/style.css"), &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("18"));
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(r.body.is_empty());

    // Every spelling of a climb out of public/ is refused, before any file is looked at.
    for climb in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/%5c..%5csecret.txt",
        "/secret.txt%00.html",
        "/./index.html",
    ] {
        let r = site.get(&format!("{p}{climb}")).await;
        assert_eq!(
            r.status,
            400,
            "{climb}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["error"]["code"], "bad_path", "{climb}");
        assert!(!String::from_utf8_lossy(&r.body).contains("owner only"));
    }
    // Files outside public/ do not exist on the web.
    for outside in ["/secret.txt", "/public/index.html", "/nothing.html"] {
        let r = site.get(&format!("{p}{outside}")).await;
        assert_eq!(r.status, 404, "{outside}");
        assert!(!String::from_utf8_lossy(&r.body).contains("owner only"));
    }
    // Another address, and a bad one.
    assert_eq!(site.get("/pub/nobody@example.org/").await.status, 404);
    assert_eq!(site.get("/pub/not-an-address/").await.status, 400);
}

async fn handlers(site: &Site) {
    let p = format!("/pub/{SITE}");
    // The handler sees method, path, query, headers and caller; credentials are hidden.
    let r = public(
        site.http(),
        "POST",
        &format!("{p}/api/echo?a=1&b=x%20y&a=2"),
        &[
            ("X-Test", "yes"),
            ("Content-Type", "application/json"),
            ("Cookie", "session=stolen"),
        ],
        br#"{"n": 7}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let v = r.json();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/api/echo");
    assert_eq!(v["query"], serde_json::json!({"a": "2", "b": "x y"}));
    assert_eq!(v["headers"]["x-test"], "yes");
    assert_eq!(v["headers"]["cookie"], serde_json::Value::Null);
    assert_eq!(v["caller"]["kind"], "public");
    assert_eq!(v["caller"]["ip"], "127.0.0.1");
    assert_eq!(v["text"], r#"{"n": 7}"#);
    assert_eq!(v["json"]["n"], 7);
    // GET too (the same route entry admits HEAD).
    let r = site.get(&format!("{p}/api/echo")).await;
    assert_eq!((r.status, r.json()["method"].as_str()), (200, Some("GET")));

    // A {status, headers, body} response is that response.
    let r = site.get(&format!("{p}/api/teapot")).await;
    assert_eq!(r.status, 418);
    assert_eq!(r.header("x-brew"), Some("tea"));
    assert_eq!(r.body, b"short and stout");

    // Opt-in: a path or method publicRoutes does not admit never reaches the script.
    for (method, path) in [
        ("GET", "/other"),
        ("PUT", "/api/echo"),
        ("DELETE", "/api/echo"),
        ("POST", "/invoke/spin"),
    ] {
        let r = public(site.http(), method, &format!("{p}{path}"), &[], b"{}").await;
        assert_eq!(r.status, 404, "{method} {path}");
    }
    // Method routing on the public side: POST /invoke/{name} runs methods[name].
    let r = public(
        site.http(),
        "POST",
        &format!("{p}/invoke/hello"),
        &[],
        b"hi",
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json(),
        serde_json::json!({"hello": "public", "path": "/invoke/hello", "body": "hi"})
    );
    // ... and with the owner's token.
    let t = format!("/v1/thwonks/{SITE}");
    let r = site
        .owner("POST", &format!("{t}/invoke/hello"), b"{\"x\": 1}")
        .await;
    assert_eq!(r.status, 200, "{}", r.error_message());
    assert_eq!(
        r.json()["value"],
        serde_json::json!({"hello": "owner", "path": "/invoke/hello", "body": {"x": 1}})
    );

    // A public run commits its effects like any run: the file it wrote is then published.
    let r = public(
        site.http(),
        "POST",
        &format!("{p}/api/write"),
        &[],
        b"from the web",
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = site.get(&format!("{p}/written.txt")).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"from the web"[..]));
    // A published file wins over a handler for GET: no run for it.
    let runs_before = site
        .owner("GET", &format!("{t}/runs?limit=200"), b"")
        .await
        .json()["runs"]
        .as_array()
        .unwrap()
        .len();
    site.put_file("public/api/static.txt", b"static").await;
    let r = site.get(&format!("{p}/api/static.txt")).await;
    assert_eq!(r.body, b"static");
    let runs_after = site
        .owner("GET", &format!("{t}/runs?limit=200"), b"")
        .await
        .json()["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(runs_before, runs_after, "serving a file runs nothing");
}

async fn honest_statuses(site: &Site) {
    let p = format!("/pub/{SITE}");
    let t = format!("/v1/thwonks/{SITE}");
    // The script threw: 500 with the run's id, whose record has the error.
    for r in [
        site.owner("POST", &format!("{t}/invoke/boom"), b"{}").await,
        public(site.http(), "POST", &format!("{p}/invoke/boom"), &[], b"").await,
        site.get(&format!("{p}/api/throw")).await,
    ] {
        assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert_eq!(v["error"]["code"], "script_error", "{v}");
        let run = v["error"]["run_id"].as_str().unwrap().to_string();
        let record = site.owner("GET", &format!("{t}/runs/{run}"), b"").await;
        assert_eq!(record.status, 200);
        assert_eq!(record.json()["status"], "error");
    }
    // The public caller is not shown the script's message; the owner is.
    let r = site.get(&format!("{p}/api/throw")).await;
    assert!(!String::from_utf8_lossy(&r.body).contains("fell over"));
    let r = site.owner("POST", &format!("{t}/invoke/boom"), b"{}").await;
    assert!(r.error_message().contains("boom"), "{}", r.error_message());

    // Over budget: 503 with the run's id.
    for r in [
        site.owner("POST", &format!("{t}/invoke/spin"), b"{}").await,
        site.get(&format!("{p}/api/spin")).await,
    ] {
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["error"]["code"], "over_budget");
        assert!(r.json()["error"]["run_id"].is_string());
    }
    // No handler: 404 (a method that does not exist; a route admitted with no handler
    // behind it is onRequest's business, so a script without onRequest answers 404).
    let r = site
        .owner("POST", &format!("{t}/invoke/nothing"), b"{}")
        .await;
    assert_eq!(r.status, 404, "{}", r.error_message());
    assert_eq!(r.json()["error"]["code"], "no_handler");

    // A disabled thwonk: 409, token and public, files and handlers.
    let r = site.owner("POST", &format!("{t}/disable"), b"").await;
    assert_eq!(r.status, 200);
    for r in [
        site.owner("POST", &format!("{t}/invoke"), b"{}").await,
        site.owner("POST", &format!("{t}/invoke/hello"), b"{}")
            .await,
        site.get(&format!("{p}/api/echo")).await,
        site.get(&format!("{p}/")).await,
    ] {
        assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = site.owner("POST", &format!("{t}/enable"), b"").await;
    assert_eq!(r.status, 200);
}

/// `/v1` sends no CORS headers: a page elsewhere cannot read the owner API with the
/// visitor's browser (and the API takes no cookies, only bearer tokens).
async fn no_cors_on_the_owner_api(site: &Site) {
    let origin = [("Origin", "http://evil.example")];
    let r = public(site.http(), "GET", "/v1/thwonks", &origin, b"").await;
    assert_eq!(r.status, 401);
    let r = public(
        site.http(),
        "OPTIONS",
        "/v1/thwonks",
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
        b"",
    )
    .await;
    assert!(
        r.headers
            .iter()
            .all(|(k, _)| !k.starts_with("access-control-")),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("set-cookie"), None);
}

async fn the_web_end_to_end(database_url: Option<&str>) {
    // A burst big enough for every request below (the rate limit has its own test).
    let site = Site::start(database_url, &[("THWONK_PUBLIC_BURST", "1000")]).await;
    published_files(&site).await;
    handlers(&site).await;
    honest_statuses(&site).await;
    no_cors_on_the_owner_api(&site).await;
    site.daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_files_handlers_and_statuses_on_sqlite() {
    the_web_end_to_end(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_files_handlers_and_statuses_on_postgres() {
    let Some(base) = support::postgres_url() else {
        eprintln!("SKIPPED: THWONK_TEST_POSTGRES_URL is not set (CI sets it)");
        return;
    };
    let db = thwonk_store::scratch::scratch_postgres_url(&base)
        .await
        .unwrap();
    the_web_end_to_end(Some(db.url())).await;
    db.cleanup().await.unwrap();
}

/// The public limits: a client over its rate gets 429 with Retry-After (files as well as
/// handlers), and a body over public.max_body_bytes 413 without a run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_is_refused_with_429_and_a_big_body_with_413() {
    let site = Site::start(
        None,
        &[
            ("THWONK_PUBLIC_REQUESTS_PER_MINUTE", "2"),
            ("THWONK_PUBLIC_BURST", "5"),
            ("THWONK_PUBLIC_MAX_BODY_BYTES", "1000"),
        ],
    )
    .await;
    let p = format!("/pub/{SITE}");
    let big = vec![b'x'; 5000];
    let r = public(site.http(), "POST", &format!("{p}/api/echo"), &[], &big).await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..10 {
        let r = site.get(&format!("{p}/nothing.html")).await;
        statuses.push(r.status);
        if r.status == 429 {
            refused = Some(r);
        }
    }
    // Five in the burst (one was the big body), then refused.
    assert_eq!(
        statuses.iter().filter(|s| **s == 404).count(),
        4,
        "{statuses:?}"
    );
    let refused = refused.expect("a 429");
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(refused.json()["error"]["code"], "rate_limited");
    // The owner API is not the public side: it still answers.
    let r = site.owner("GET", "/v1/thwonks", b"").await;
    assert_eq!(r.status, 200);
    site.daemon.stop(Duration::from_secs(20)).await;
}

/// sandbox-scripts/archive.js: mail arrives, the archive is published, every sender's text
/// escaped; the feed and each post's page are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_example_publishes_escaped_pages_and_a_feed() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let mut env = support::env(dir.path(), relay.addr, None);
    env.vars.push((
        "THWONK_PUBLIC_BASE_URL".into(),
        "https://lists.example.org".into(),
    ));
    let out = env.deploy("archive@example.org", "sandbox-scripts/archive.js");
    assert!(out.contains("version 1"), "{out}");
    let daemon = Daemon::start(&env).await;
    let http = daemon.http_addr();
    let p = "/pub/archive@example.org";
    send_mail(
        daemon.smtp,
        "mallory@example.net",
        "archive@example.org",
        "<script>alert(\"x\")</script> & 'quotes'",
        "<img src=x onerror=alert(1)> hello \"world\"",
    )
    .await;
    send_mail(
        daemon.smtp,
        "alice@example.net",
        "archive@example.org",
        "second post",
        "just text",
    )
    .await;
    let index = support::eventually("the archive's index", Duration::from_secs(30), || async {
        let r = public(http, "GET", &format!("{p}/"), &[], b"").await;
        let text = String::from_utf8_lossy(&r.body).to_string();
        (r.status == 200 && text.contains("second post")).then_some(r)
    })
    .await;
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8_lossy(&index.body).to_string();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;"),
        "{html}"
    );
    assert!(html.contains("href=\"posts/1.html\""), "{html}");
    let post = public(http, "GET", &format!("{p}/posts/1.html"), &[], b"").await;
    assert_eq!(post.status, 200);
    let post = String::from_utf8_lossy(&post.body).to_string();
    assert!(!post.contains("<img"), "{post}");
    assert!(
        post.contains("&lt;img src=x onerror=alert(1)&gt; hello &quot;world&quot;"),
        "{post}"
    );
    let feed = public(http, "GET", &format!("{p}/feed.xml"), &[], b"").await;
    assert_eq!(feed.status, 200);
    let feed = String::from_utf8_lossy(&feed.body).to_string();
    // thwonk.url made the links absolute from public.base_url.
    assert!(
        feed.contains(
            "<link href=\"https://lists.example.org/pub/archive@example.org/posts/2.html\"/>"
        ),
        "{feed}"
    );
    // The posts are kept outside public/, and not served.
    let kept = public(http, "GET", &format!("{p}/posts/1.json"), &[], b"").await;
    assert_eq!(kept.status, 404);
    daemon.stop(Duration::from_secs(20)).await;
}

/// sandbox-scripts/webhook.js: a call signed with the shared secret is mailed on; a bad or
/// missing signature is refused (401) and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_example_mails_a_signed_call_and_refuses_a_bad_signature() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let env = support::env(dir.path(), relay.addr, None);
    env.ok(&["user", "add", "wes"]);
    let token = env
        .ok(&["token", "create", "--user", "wes"])
        .trim()
        .to_string();
    let daemon = Daemon::start(&env).await;
    let http = daemon.http_addr();
    let t = "/v1/thwonks/hook@example.org";
    let source = std::fs::read(support::repo().join("sandbox-scripts/webhook.js")).unwrap();
    let r = req(http, "PUT", &format!("{t}/script"), &token, &source).await;
    assert_eq!(r.status, 201, "{}", r.error_message());
    let secret = "s3cret-shared-with-the-service";
    let config = serde_json::json!({"secret": secret, "notify": "ops@elsewhere.test"});
    let r = req(
        http,
        "PUT",
        &format!("{t}/files/webhook.json"),
        &token,
        config.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);

    let body = br#"{"event": "deploy", "ok": true}"#;
    // HMAC-SHA-256 computed here independently (RFC 2104 over the sha2 crate's SHA-256).
    let good = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), body));
    let hook = "/pub/hook@example.org/hook";
    for bad in [None, Some("sha256=00"), Some(&good.replace('a', "b")[..])] {
        let headers: Vec<(&str, &str)> = bad.map(|s| ("X-Signature", s)).into_iter().collect();
        let r = public(http, "POST", hook, &headers, body).await;
        assert_eq!(
            r.status,
            401,
            "{bad:?}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.body, b"bad signature");
    }
    let r = public(http, "POST", hook, &[("X-Signature", &good)], body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json(), serde_json::json!({"ok": true, "event": "deploy"}));
    relay
        .wait_for("the webhook's mail", Duration::from_secs(30), |r| {
            !r.is_empty()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = relay.received();
    assert_eq!(mails.len(), 1, "only the good call sends");
    assert_eq!(mails[0].rcpt_to, vec!["ops@elsewhere.test".to_string()]);
    let view = mails[0].parsed();
    assert_eq!(view.subject, "webhook: deploy");
    assert!(view.text.contains("\"event\": \"deploy\""), "{}", view.text);
    daemon.stop(Duration::from_secs(20)).await;
}

/// HMAC-SHA-256 (RFC 2104), for checking the sandbox's against an independent one.
fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}
