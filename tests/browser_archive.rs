//! A real browser reads the published archive: mail arrives at a thwonk running
//! sandbox-scripts/archive.js, headless Chromium (driven over the DevTools protocol by
//! playwright-core, tests/browser/page.js) loads the archive page, and a screenshot is kept
//! as a test artifact (`{target}/test-artifacts/archive.png`). Then the attack: a published
//! page whose script tries to call the owner API, and the same call made from inside the
//! page, both fail (the CSP lets a published page run no script and connect nowhere, in an
//! opaque origin; the API takes no cookies).
//!
//! Needs /usr/bin/chromium and tests/browser/node_modules (`scripts/install-test-deps.sh`
//! installs both); skipped, saying so, when either is missing.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{Daemon, Relay, req, send_mail};

const CHROMIUM: &str = "/usr/bin/chromium";

fn harness() -> PathBuf {
    support::repo().join("tests/browser")
}

/// Where test artifacts are kept: `{target}/test-artifacts/`.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run the browser harness on `plan`; its JSON report.
fn browse(plan: serde_json::Value) -> serde_json::Value {
    let mut command = std::process::Command::new("node");
    command
        .arg(harness().join("page.js"))
        .arg(plan.to_string())
        .current_dir(harness());
    let out = support::output_within(command, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the harness said no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        report["harnessError"].is_null(),
        "{}",
        report["harnessError"]
    );
    report
}

/// A published page that tries to act as the owner: its script would change the title and
/// call the owner API (with a cookie, were there one); neither may happen.
const EVIL_PAGE: &str = r#"<!doctype html><html><head><title>evil</title></head><body>
<h1>evil</h1>
<script>
  document.title = "script ran";
  fetch("/v1/thwonks", { credentials: "include" })
    .then(r => { document.title = "api answered " + r.status; })
    .catch(e => { document.title = "api refused"; });
</script>
</body></html>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_archive_and_a_published_page_cannot_call_the_owner_api() {
    if !Path::new(CHROMIUM).exists() || !harness().join("node_modules/playwright-core").exists() {
        eprintln!(
            "SKIPPED: {CHROMIUM} or tests/browser/node_modules is missing \
             (scripts/install-test-deps.sh installs both)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let env = support::env(dir.path(), relay.addr, None);
    env.ok(&["user", "add", "arch"]);
    let token = env
        .ok(&["token", "create", "--user", "arch"])
        .trim()
        .to_string();
    let daemon = Daemon::start(&env).await;
    let http = daemon.http_addr();
    let list = "archive@example.org";
    let source = std::fs::read(support::repo().join("sandbox-scripts/archive.js")).unwrap();
    let r = req(
        http,
        "PUT",
        &format!("/v1/thwonks/{list}/script"),
        &token,
        &source,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.error_message());

    send_mail(
        daemon.smtp,
        "alice@example.net",
        list,
        "Welcome to the list",
        "Hello everyone.\nThis archive is on the web.",
    )
    .await;
    send_mail(
        daemon.smtp,
        "mallory@example.net",
        list,
        "<script>alert(\"owned\")</script>",
        "<b>not bold</b>",
    )
    .await;
    let base = format!("http://{http}/pub/{list}");
    support::eventually(
        "both posts archived",
        Duration::from_secs(30),
        || async move {
            let stream = tokio::net::TcpStream::connect(http).await.ok()?;
            let path = format!("/pub/{list}/posts/2.html");
            let r = thwonk_api::client::send(stream, "GET", &path, &[], b"")
                .await
                .ok()?;
            (r.status == 200).then_some(())
        },
    )
    .await;

    // The archive in a real browser, kept as a screenshot.
    let shot = artifacts().join("archive.png");
    let _ = std::fs::remove_file(&shot);
    let report = browse(serde_json::json!({
        "url": format!("{base}/"),
        "waitFor": "h1",
        "screenshot": shot,
        "evaluate": ["document.querySelectorAll('li').length", "document.scripts.length"],
    }));
    assert_eq!(report["status"], 200, "{report:#}");
    assert_eq!(report["title"], format!("Archive of {list}"));
    let text = report["text"].as_str().unwrap();
    assert!(text.contains("Welcome to the list"), "{text}");
    // The hostile subject is shown as text, not run.
    assert!(text.contains("<script>alert(\"owned\")</script>"), "{text}");
    assert_eq!(report["evaluated"][0]["value"], 2, "{report:#}");
    assert_eq!(
        report["evaluated"][1]["value"], 0,
        "no script element on the page"
    );
    assert_eq!(report["pageErrors"], serde_json::json!([]), "{report:#}");
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 2000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());

    // A post's page, followed from the index.
    let report = browse(serde_json::json!({
        "url": format!("{base}/posts/2.html"),
        "waitFor": "pre",
    }));
    assert!(
        report["text"].as_str().unwrap().contains("<b>not bold</b>"),
        "{report:#}"
    );

    // The attack: a published page whose script calls the owner API.
    let r = req(
        http,
        "PUT",
        &format!("/v1/thwonks/{list}/files/public/evil.html"),
        &token,
        EVIL_PAGE.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);
    let report = browse(serde_json::json!({
        "url": format!("{base}/evil.html"),
        "waitFor": "h1",
        "evaluate": [
            // Even script injected into the page (the DevTools protocol is not bound by the
            // CSP's script rules) cannot connect: connect-src 'none', in an opaque origin.
            "fetch('/v1/thwonks', {credentials: 'include'}).then(r => 'answered ' + r.status)",
            format!("fetch('/v1/thwonks/{list}/files', {{headers: {{Authorization: 'Bearer ' + 'x'}}}}).then(r => 'answered ' + r.status)"),
            "document.cookie",
            "window.origin",
        ],
    }));
    assert_eq!(report["status"], 200);
    assert_eq!(
        report["title"], "evil",
        "the page's own script must not run: {report:#}"
    );
    for i in 0..2 {
        let e = &report["evaluated"][i];
        assert!(
            e["error"]
                .as_str()
                .is_some_and(|m| m.contains("Failed to fetch")),
            "call {i} from the page reached the API: {report:#}"
        );
    }
    // No cookies to steal: the sandboxed page may not even read document.cookie.
    assert!(
        report["evaluated"][2]["error"]
            .as_str()
            .is_some_and(|m| m.contains("sandboxed")),
        "document.cookie: {report:#}"
    );
    assert_eq!(
        report["evaluated"][3]["value"], "null",
        "an opaque origin: {report:#}"
    );
    assert!(
        report["console"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap_or("").contains("Content Security Policy")),
        "the browser reports the CSP refusals: {report:#}"
    );
    daemon.stop(Duration::from_secs(20)).await;
}
