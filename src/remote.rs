//! The management commands' way through a running daemon: its admin socket
//! (`{data_dir}/admin.sock`, the HTTP API trusted as admin). Used when a daemon answers
//! there; otherwise [`crate::manage`] goes to the database directly. Output is the same
//! either way.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use thwonk_api::client::{AdminClient, Response, encode};
use thwonk_core::Config;
use thwonk_core::status::ThwonkStatus;

/// A client when a daemon answers on the admin socket.
pub async fn client(config: &Config) -> Option<AdminClient> {
    AdminClient::connect(&config.data_dir).await
}

async fn call(c: &AdminClient, method: &str, path: &str, body: &[u8]) -> Result<Response> {
    c.request(method, path, body)
        .await
        .context("the daemon's admin socket did not answer")
}

fn ok_json(r: Response) -> Result<Value> {
    if !(200..300).contains(&r.status) {
        bail!("{}", r.error_message());
    }
    Ok(r.json())
}

fn thwonk_path(address: &str) -> String {
    format!("/v1/thwonks/{}", encode(address, false))
}

pub async fn deploy(c: &AdminClient, address: &str, script: &Path) -> Result<ExitCode> {
    let source =
        std::fs::read(script).with_context(|| format!("cannot read {}", script.display()))?;
    let r = call(
        c,
        "PUT",
        &format!("{}/script", thwonk_path(address)),
        &source,
    )
    .await?;
    if r.status == 422 {
        eprintln!("{}:{}", script.display(), r.error_message());
        eprintln!("deploy refused: the script was not changed");
        return Ok(ExitCode::FAILURE);
    }
    let out = ok_json(r)?;
    let warnings: Vec<&str> = out["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "deployed {} version {}{}",
        out["thwonk"]["address"].as_str().unwrap_or(address),
        out["version"],
        if out["created"].as_bool() == Some(true) {
            " (new thwonk)"
        } else {
            ""
        }
    );
    if let Some(s) = out["thwonk"]["schedule"].as_str()
        && out["thwonk"]["status"] == ThwonkStatus::Active.as_str()
        && warnings.is_empty()
    {
        println!("schedule {s:?} registered");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(c: &AdminClient) -> Result<()> {
    let out = ok_json(call(c, "GET", "/v1/thwonks", b"").await?)?;
    let thwonks = out["thwonks"].as_array().cloned().unwrap_or_default();
    if thwonks.is_empty() {
        println!("no thwonks yet: thwonk deploy ADDRESS SCRIPT.js");
    }
    for t in thwonks {
        println!(
            "{}\t{}\tversion {}{}",
            t["address"].as_str().unwrap_or_default(),
            t["status"].as_str().unwrap_or_default(),
            t["active_version"]
                .as_i64()
                .map(|v| v.to_string())
                .unwrap_or("-".into()),
            t["schedule"]
                .as_str()
                .map(|s| format!("\tschedule {s}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn runs(c: &AdminClient, address: &str, limit: i64, json: bool) -> Result<()> {
    let path = format!("{}/runs?limit={limit}", thwonk_path(address));
    let out = ok_json(call(c, "GET", &path, b"").await?)?;
    let runs = out["runs"].as_array().cloned().unwrap_or_default();
    if json {
        // The shape `thwonk runs --json` prints without a daemon.
        let flat: Vec<Value> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r["id"], "message_id": r["message_id"], "trigger": r["trigger"],
                    "script_version": r["script_version"], "status": r["status"],
                    "error_kind": r["error"]["kind"], "error": r["error"]["message"],
                    "stack": r["error"]["stack"], "logs": r["logs"],
                    "logs_truncated": r["logs_truncated"],
                    "instructions": r["cost"]["instructions"], "wall_ms": r["cost"]["wall_ms"],
                    "started_at_ms": r["started_at_ms"], "finished_at_ms": r["finished_at_ms"],
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&flat)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs yet");
    }
    for r in runs {
        println!(
            "{}  {}  {}  v{}  {} instructions  {} ms",
            crate::manage::iso(r["started_at_ms"].as_i64().unwrap_or(0)),
            r["id"].as_str().unwrap_or_default(),
            r["status"].as_str().unwrap_or_default(),
            r["script_version"],
            r["cost"]["instructions"],
            r["cost"]["wall_ms"]
        );
        if let (Some(kind), Some(msg)) =
            (r["error"]["kind"].as_str(), r["error"]["message"].as_str())
        {
            println!("    {kind}: {msg}");
        }
        for l in r["logs"].as_array().into_iter().flatten() {
            println!(
                "    [{}] {}",
                l["level"].as_str().unwrap_or_default(),
                l["message"].as_str().unwrap_or_default()
            );
        }
        if r["logs_truncated"].as_bool() == Some(true) {
            println!("    (logs truncated)");
        }
    }
    Ok(())
}

pub async fn files(
    c: &AdminClient,
    address: &str,
    action: crate::manage::FilesAction,
) -> Result<ExitCode> {
    use crate::manage::FilesAction;
    let base = format!("{}/files", thwonk_path(address));
    match action {
        FilesAction::Ls { prefix } => {
            let path = match prefix {
                Some(p) => format!("{base}?prefix={}", encode(&p, true)),
                None => base,
            };
            let out = ok_json(call(c, "GET", &path, b"").await?)?;
            for f in out["files"].as_array().into_iter().flatten() {
                println!(
                    "{:>9}  {}  {}",
                    f["size"],
                    crate::manage::iso(f["updated_at_ms"].as_i64().unwrap_or(0)),
                    f["path"].as_str().unwrap_or_default()
                );
            }
        }
        FilesAction::Get { path } => {
            let r = call(c, "GET", &format!("{base}/{}", encode(&path, true)), b"").await?;
            if r.status != 200 {
                bail!("{}", r.error_message());
            }
            std::io::stdout().write_all(&r.body)?;
        }
        FilesAction::Put { path, file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let out =
                ok_json(call(c, "PUT", &format!("{base}/{}", encode(&path, true)), &bytes).await?)?;
            println!(
                "wrote {} ({} bytes)",
                out["path"].as_str().unwrap_or(&path),
                bytes.len()
            );
        }
        FilesAction::Rm { path } => {
            let r = call(c, "DELETE", &format!("{base}/{}", encode(&path, true)), b"").await?;
            if r.status != 204 {
                bail!("{}", r.error_message());
            }
            println!("deleted {path}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
