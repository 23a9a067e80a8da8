//! Management commands: through a running daemon's admin socket when one answers
//! ([`crate::remote`]), else to the database directly, so they work with or without a running
//! daemon (SQLite in WAL mode and PostgreSQL both allow it). Either way a command gets the
//! same view (`thwonk_control::views`) and prints it with one `print_*` function.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use thwonk_control::deploy;
use thwonk_control::dry_run::{OtherTrigger, dry_run, dry_run_other};
use thwonk_control::views::{
    DeployView, DryRunView, FileWrittenView, RunView, ThwonkView, VersionListView, VersionView,
};
use thwonk_core::run::FileInfo;
use thwonk_core::{Address, Config};
use thwonk_store::{Store, Thwonk};

#[derive(Subcommand)]
pub enum FilesAction {
    /// List files (optionally under a prefix).
    Ls { prefix: Option<String> },
    /// Print a file to standard output.
    Get { path: String },
    /// Store FILE's contents at PATH.
    Put { path: String, file: PathBuf },
    /// Delete a file.
    Rm { path: String },
}

pub(crate) async fn open(config: &Config) -> Result<Store> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let store = Store::connect_with(
        &config.database_url(),
        config.database.max_connections,
        config.database.acquire_timeout,
    )
    .await?;
    store.migrate().await?;
    Ok(store)
}

async fn thwonk(store: &Store, address: &str) -> Result<Thwonk> {
    let address = Address::parse(address)?;
    store
        .thwonk_by_address(&address)
        .await?
        .with_context(|| format!("no thwonk at {address}"))
}

pub async fn migrate(config: &Config) -> Result<()> {
    open(config).await?;
    println!(
        "database is up to date ({})",
        thwonk_core::report::redact_url(&config.database_url())
    );
    Ok(())
}

pub async fn deploy(config: &Config, address: &str, script: &Path) -> Result<ExitCode> {
    let deployed = match crate::remote::client(config).await {
        Some(c) => {
            let source = std::fs::read(script)
                .with_context(|| format!("cannot read {}", script.display()))?;
            crate::remote::deploy(&c, address, &source).await?
        }
        None => deploy_direct(config, address, script).await?,
    };
    match deployed {
        Ok(view) => {
            print_deploy(&view);
            Ok(ExitCode::SUCCESS)
        }
        Err(refused) => {
            eprintln!("{}:{refused}", script.display());
            eprintln!("deploy refused: the script was not changed");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Deploy to the database directly (`thwonk_control::deploy`, as the API does): the deploy,
/// or (`Err` inside) why the script was refused.
async fn deploy_direct(
    config: &Config,
    address: &str,
    script: &Path,
) -> Result<std::result::Result<DeployView, String>> {
    let address = Address::parse(address)?;
    let source = std::fs::read_to_string(script)
        .with_context(|| format!("cannot read {}", script.display()))?;
    // Parsing a hostile script can crash Boa: it happens in a sandbox worker, as runs do.
    let pool = thwonk_sandbox::WorkerPool::new(1, config.limits.memory_mib)
        .require_wall(config.runner.require_wall);
    let info = match deploy::check_script(&pool, &source, &config.limits) {
        Ok(info) => info,
        Err(e @ deploy::DeployError::Refused { .. }) => return Ok(Err(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let store = open(config).await?;
    let mut deployment = deploy::write_version(&store, config, &address, &source, info).await?;
    // Registered on Redis now if Redis answers; otherwise runners pick it up from SQL.
    let registered = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        let redis = thwonk_thoonk::Redis::connect(&config.redis_url()).await?;
        deploy::register_schedule(&redis, &deployment.deployed.thwonk)
            .await
            .map_err(anyhow::Error::from)
    })
    .await;
    match registered {
        Ok(Ok(())) => {}
        Ok(Err(e)) => deployment
            .warnings
            .push(deploy::schedule_not_registered(format!("{e:#}"))),
        Err(_) => deployment
            .warnings
            .push(deploy::schedule_not_registered("Redis did not answer")),
    }
    Ok(Ok(deployment.view()))
}

/// `thwonk deploy`'s output.
fn print_deploy(d: &DeployView) {
    for w in &d.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "deployed {} version {}{}",
        d.thwonk.address,
        d.version,
        if d.created { " (new thwonk)" } else { "" }
    );
    if let Some(s) = d.schedule_registered() {
        println!("schedule {s:?} registered");
    }
}

pub async fn list(config: &Config) -> Result<()> {
    let thwonks = match crate::remote::client(config).await {
        Some(c) => crate::remote::list(&c).await?.thwonks,
        None => {
            let store = open(config).await?;
            let thwonks = store.list_thwonks().await?;
            thwonks.iter().map(ThwonkView::from).collect()
        }
    };
    print_thwonks(&thwonks);
    Ok(())
}

/// `thwonk list`'s output.
fn print_thwonks(thwonks: &[ThwonkView]) {
    if thwonks.is_empty() {
        println!("no thwonks yet: thwonk deploy ADDRESS SCRIPT.js");
    }
    for t in thwonks {
        println!(
            "{}\t{}\tversion {}{}",
            t.address,
            t.status,
            t.active_version
                .map(|v| v.to_string())
                .unwrap_or("-".into()),
            t.schedule
                .as_ref()
                .map(|s| format!("\tschedule {s}"))
                .unwrap_or_default()
        );
    }
}

/// Where a management command reads and changes thwonks: the running daemon's admin socket,
/// or the database directly.
enum Via {
    Daemon(thwonk_api::client::AdminClient),
    Database(Store),
}

async fn via(config: &Config) -> Result<Via> {
    Ok(match crate::remote::client(config).await {
        Some(c) => Via::Daemon(c),
        None => Via::Database(open(config).await?),
    })
}

/// The running daemon's admin socket, for what only the daemon can do (invoke, feeds).
async fn daemon(config: &Config, what: &str) -> Result<thwonk_api::client::AdminClient> {
    crate::remote::client(config).await.with_context(|| {
        format!(
            "{what} needs the running daemon (thwonk serve, or thwonk api): none answers on {}",
            thwonk_api::admin_socket::socket_path(&config.data_dir).display()
        )
    })
}

async fn fetch_runs(via: &Via, address: &str, limit: i64) -> Result<Vec<RunView>> {
    Ok(match via {
        Via::Daemon(c) => crate::remote::runs(c, address, limit).await?.runs,
        Via::Database(store) => {
            let t = thwonk(store, address).await?;
            let runs = store.list_runs(&t.id, limit).await?;
            RunView::with_messages(store, &runs).await?
        }
    })
}

/// How often `thwonk runs --follow` looks for new runs, and how many it looks at (the API's
/// page limit): more runs than that in one interval would be missed.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const FOLLOW_PAGE: i64 = 200;

pub async fn runs(
    config: &Config,
    address: &str,
    limit: i64,
    json: bool,
    follow: bool,
) -> Result<()> {
    let via = via(config).await?;
    let runs = fetch_runs(&via, address, limit).await?;
    if !follow {
        return print_runs(&runs, json);
    }
    // Oldest first, then each new run as it is recorded (one JSON object a line with --json).
    let mut seen: std::collections::HashSet<String> = runs.iter().map(|r| r.id.clone()).collect();
    for r in runs.iter().rev() {
        print_followed_run(r, json)?;
    }
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let latest = fetch_runs(&via, address, FOLLOW_PAGE).await?;
        for r in latest.iter().rev() {
            if seen.insert(r.id.clone()) {
                print_followed_run(r, json)?;
            }
        }
    }
}

fn print_followed_run(r: &RunView, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(&flat_run(r))?);
    } else {
        print_run(r);
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// `thwonk runs --json`'s object for one run.
fn flat_run(r: &RunView) -> serde_json::Value {
    let error = r.error.as_ref();
    let message = r.message.as_ref();
    serde_json::json!({
        "id": r.id, "message_id": r.message_id, "trigger": r.trigger,
        "from": message.map(|m| &m.from),
        "subject": message.map(|m| &m.subject),
        "message_id_header": message.and_then(|m| m.message_id.as_ref()),
        "script_version": r.script_version, "status": r.status,
        "error_kind": error.map(|e| &e.kind),
        "error": error.and_then(|e| e.message.as_ref()),
        "error_at": r.error_at(),
        "stack": error.and_then(|e| e.stack.as_ref()),
        "logs": r.logs, "logs_truncated": r.logs_truncated,
        "instructions": r.cost.instructions, "wall_ms": r.cost.wall_ms,
        "started_at_ms": r.started_at_ms, "finished_at_ms": r.finished_at_ms,
    })
}

/// `thwonk runs`'s output: text, or with `--json` one flat object per run.
fn print_runs(runs: &[RunView], json: bool) -> Result<()> {
    if json {
        let flat: Vec<_> = runs.iter().map(flat_run).collect();
        println!("{}", serde_json::to_string_pretty(&flat)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs yet");
    }
    for r in runs {
        print_run(r);
    }
    Ok(())
}

/// One run as text: when, id, status, trigger, version, cost; then the message it handled,
/// the error and where it happened, and the logs.
fn print_run(r: &RunView) {
    println!(
        "{}  {}  {}  {}  v{}  {} instructions  {} ms",
        iso(r.started_at_ms),
        r.id,
        r.status,
        r.trigger,
        r.script_version,
        r.cost.instructions,
        r.cost.wall_ms
    );
    match (&r.message_id, &r.message) {
        (Some(id), Some(m)) => println!(
            "    message {id}: from {}, subject {:?}{}",
            m.from,
            m.subject,
            m.message_id
                .as_ref()
                .map(|mid| format!(", Message-ID <{mid}>"))
                .unwrap_or_default()
        ),
        (Some(id), None) => println!("    message {id}"),
        _ => {}
    }
    if let Some(e) = &r.error {
        println!(
            "    {}: {}",
            e.kind,
            e.message.as_deref().unwrap_or("(no message)")
        );
        if let Some(at) = r.error_at() {
            let at = at.strip_prefix("at ").unwrap_or(at);
            println!("    at {at}");
        }
    }
    for l in &r.logs {
        println!("    [{}] {}", l.level, l.message);
    }
    if r.logs_truncated {
        println!("    (logs truncated)");
    }
}

pub async fn versions(config: &Config, address: &str) -> Result<()> {
    let list = match via(config).await? {
        Via::Daemon(c) => crate::remote::versions(&c, address).await?,
        Via::Database(store) => {
            let t = thwonk(&store, address).await?;
            let versions = store.list_script_versions(&t.id).await?;
            VersionListView {
                active_version: t.active_version,
                versions: versions.iter().map(|v| VersionView::of(v, false)).collect(),
            }
        }
    };
    print_versions(address, &list);
    Ok(())
}

/// `thwonk versions`'s output: newest first, the active one marked.
fn print_versions(address: &str, list: &VersionListView) {
    if list.versions.is_empty() {
        println!("{address} has no script yet: thwonk deploy {address} SCRIPT.js");
    }
    for v in &list.versions {
        let active = list.active_version == Some(v.version);
        println!(
            "{} v{}  {}{}",
            if active { "*" } else { " " },
            v.version,
            iso(v.created_at_ms),
            v.schedule
                .as_ref()
                .map(|s| format!("  schedule {s}"))
                .unwrap_or_default()
        );
    }
}

/// Register (or drop, when the thwonk no longer has a live one) the thwonk's schedule on
/// Redis, if Redis answers within 3 s; otherwise runners pick it up from SQL at their next
/// sync. A warning when it could not be done now.
async fn sync_schedule(config: &Config, t: &Thwonk) -> Option<String> {
    let done = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        let redis = thwonk_thoonk::Redis::connect(&config.redis_url()).await?;
        deploy::register_schedule(&redis, t)
            .await
            .map_err(anyhow::Error::from)
    })
    .await;
    match done {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(_) => Some("Redis did not answer".into()),
    }
}

/// Warn when a thwonk with a schedule could not have it updated on Redis now.
fn schedule_warning(t: &Thwonk, warning: Option<String>) {
    if t.schedule.is_none() {
        return;
    }
    if let Some(w) = warning {
        eprintln!(
            "warning: the schedule is not updated on Redis now ({w}); runners update it at their next sync"
        );
    }
}

pub async fn rollback(config: &Config, address: &str, version: i64) -> Result<()> {
    let t = match via(config).await? {
        Via::Daemon(c) => crate::remote::rollback(&c, address, version).await?,
        Via::Database(store) => {
            let t = thwonk(&store, address).await?;
            let t = store.activate_version(&t.id, version).await?;
            schedule_warning(&t, sync_schedule(config, &t).await);
            ThwonkView::from(&t)
        }
    };
    println!(
        "{}: version {} is active{}",
        t.address,
        t.active_version
            .map(|v| v.to_string())
            .unwrap_or("-".into()),
        t.schedule
            .as_ref()
            .map(|s| format!(" (schedule {s})"))
            .unwrap_or_default()
    );
    Ok(())
}

pub async fn set_status(config: &Config, address: &str, enable: bool) -> Result<()> {
    use thwonk_core::status::ThwonkStatus;
    let t = match via(config).await? {
        Via::Daemon(c) => {
            let action = if enable { "enable" } else { "disable" };
            crate::remote::set_status(&c, address, action).await?
        }
        Via::Database(store) => {
            let t = thwonk(&store, address).await?;
            let status = if enable {
                ThwonkStatus::Active
            } else {
                ThwonkStatus::Disabled
            };
            store.set_thwonk_status(&t.id, status).await?;
            let t = store
                .thwonk(&t.id)
                .await?
                .with_context(|| format!("no thwonk at {address}"))?;
            schedule_warning(&t, sync_schedule(config, &t).await);
            ThwonkView::from(&t)
        }
    };
    println!("{} is {}", t.address, t.status);
    Ok(())
}

pub async fn delete(config: &Config, address: &str, yes: bool) -> Result<()> {
    let canonical = Address::parse(address)?;
    if !yes {
        bail!(
            "thwonk delete removes {canonical} with its versions, messages, runs and files for good: add --yes to do it"
        );
    }
    match via(config).await? {
        Via::Daemon(c) => crate::remote::delete(&c, address).await?,
        Via::Database(store) => {
            let t = thwonk(&store, address).await?;
            // Its schedule first, so no tick fires for a thwonk that is gone.
            let redis = tokio::time::timeout(
                std::time::Duration::from_secs(3),
                thwonk_thoonk::Redis::connect(&config.redis_url()),
            )
            .await
            .ok()
            .and_then(Result::ok);
            let dropped = match &redis {
                Some(redis) => tokio::time::timeout(
                    std::time::Duration::from_secs(3),
                    deploy::drop_schedule(redis, &t),
                )
                .await
                .is_ok_and(|r| r.is_ok()),
                None => false,
            };
            if !dropped && t.schedule.is_some() {
                eprintln!(
                    "warning: the schedule is not dropped on Redis now; runners drop it at their next sync"
                );
            }
            store.delete_thwonk(&t.id).await?;
            // Then its feeds (keyed by its id, which no thwonk will have again).
            let feeds = match &redis {
                Some(redis) => tokio::time::timeout(
                    std::time::Duration::from_secs(3),
                    thwonk_control::feeds::delete_feeds(redis, &t.id),
                )
                .await
                .is_ok_and(|r| r.is_ok()),
                None => false,
            };
            if !feeds {
                eprintln!(
                    "warning: its feeds are not deleted from Redis now: remove the feeds named {}/* by hand",
                    t.id
                );
            }
        }
    }
    println!("deleted {canonical}");
    Ok(())
}

/// A JSON body from the command line: the text itself, `-` for standard input, nothing
/// for `{}`.
fn json_arg(arg: Option<&str>, what: &str) -> Result<serde_json::Value> {
    let text = match arg {
        None => "{}".to_string(),
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("cannot read standard input")?;
            s
        }
        Some(t) => t.to_string(),
    };
    serde_json::from_str(&text).with_context(|| format!("{what} is not JSON"))
}

pub async fn invoke(config: &Config, address: &str, body: Option<&str>) -> Result<ExitCode> {
    let body = json_arg(body, "the body")?;
    let c = daemon(config, "thwonk invoke").await?;
    let out = crate::remote::invoke(&c, address, body.to_string().as_bytes()).await?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if out.status == thwonk_core::run::RunStatus::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn feed(config: &Config, address: &str, name: &str, follow: bool) -> Result<()> {
    let c = daemon(config, "thwonk feed").await?;
    // Following: subscribed before the items are read, so nothing falls between the two.
    let events = if follow {
        Some(crate::remote::feed_events(&c, address, name).await?)
    } else {
        None
    };
    let view = crate::remote::feed(&c, address, name).await?;
    let mut seen = std::collections::HashSet::new();
    for item in &view.items {
        seen.insert(item.id.clone());
        println!("{}\t{}", item.id, feed_item_text(item.item.as_ref()));
    }
    let Some(mut events) = events else {
        return Ok(());
    };
    std::io::stdout().flush()?;
    while let Some(e) = events.next().await {
        let data: serde_json::Value = serde_json::from_str(&e.data).unwrap_or_default();
        let item = feed_item_text(data.get("item"));
        let id = e.id.clone().unwrap_or_default();
        // An item already printed above (published while the list was read) is not repeated.
        if e.event == "publish" && !seen.insert(id.clone()) {
            continue;
        }
        println!("{}\t{id}\t{item}", e.event);
        std::io::stdout().flush()?;
    }
    bail!("the daemon ended the stream (it is stopping?)")
}

/// A feed item as one line of text: a string as it is, any other value as compact JSON,
/// nothing for a retraction.
fn feed_item_text(item: Option<&serde_json::Value>) -> String {
    match item {
        Some(serde_json::Value::String(s)) => s.clone(),
        None | Some(serde_json::Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

pub async fn files(config: &Config, address: &str, action: FilesAction) -> Result<ExitCode> {
    use thwonk_core::vfs::{normalize_path, normalize_prefix};
    if let Some(c) = crate::remote::client(config).await {
        use crate::remote;
        match action {
            FilesAction::Ls { prefix } => print_files(
                &remote::list_files(&c, address, prefix.as_deref())
                    .await?
                    .files,
            ),
            FilesAction::Get { path } => {
                std::io::stdout().write_all(&remote::read_file(&c, address, &path).await?)?
            }
            FilesAction::Put { path, file } => {
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                print_written(&remote::put_file(&c, address, &path, &bytes).await?);
            }
            FilesAction::Rm { path } => {
                remote::delete_file(&c, address, &path).await?;
                print_deleted(&path);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = open(config).await?;
    let t = thwonk(&store, address).await?;
    match action {
        FilesAction::Ls { prefix } => {
            let prefix = normalize_prefix(prefix.as_deref().unwrap_or(""))?;
            print_files(&store.list_files(&t.id, &prefix).await?);
        }
        FilesAction::Get { path } => {
            let path = normalize_path(&path)?;
            match store.read_file(&t.id, &path).await? {
                Some(bytes) => std::io::stdout().write_all(&bytes)?,
                None => bail!("no file {path} in {}", t.address),
            }
        }
        FilesAction::Put { path, file } => {
            let path = normalize_path(&path)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if bytes.len() as u64 > config.limits.file_max_bytes {
                bail!(
                    "{} is {} bytes; files are at most {} (limits.file_max_bytes)",
                    file.display(),
                    bytes.len(),
                    config.limits.file_max_bytes
                );
            }
            store
                .put_file(&t.id, &path, &bytes, thwonk_core::time::now_ms())
                .await?;
            print_written(&FileWrittenView {
                path,
                size: bytes.len() as u64,
            });
        }
        FilesAction::Rm { path } => {
            let path = normalize_path(&path)?;
            if !store.delete_file(&t.id, &path).await? {
                bail!("no file {path} in {}", t.address);
            }
            print_deleted(&path);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `thwonk files ls`'s output.
fn print_files(files: &[FileInfo]) {
    for f in files {
        println!("{:>9}  {}  {}", f.size, iso(f.updated_at_ms), f.path);
    }
}

/// `thwonk files put`'s output.
fn print_written(w: &FileWrittenView) {
    println!("wrote {} ({} bytes)", w.path, w.size);
}

/// `thwonk files rm`'s output.
fn print_deleted(path: &str) {
    println!("deleted {path}");
}

/// What `thwonk test` runs the script on.
pub enum TestInput {
    /// `--message FILE.eml`: `onMessage`.
    Message(PathBuf),
    /// `--schedule [CRON]`: `onSchedule` (empty: the script's own `schedule`).
    Schedule(String),
    /// `--request JSON`: `onRequest` with this body (`-`: standard input).
    Request(String),
}

pub fn test(
    config: &Config,
    script: &Path,
    input: TestInput,
    files: Option<PathBuf>,
    address: Option<&str>,
) -> Result<ExitCode> {
    let source = std::fs::read_to_string(script)
        .with_context(|| format!("cannot read {}", script.display()))?;
    if let Some(dir) = &files
        && !dir.is_dir()
    {
        bail!("--files {}: not a directory", dir.display());
    }
    // Read and parse every input before the script runs: a bad one is said plainly.
    let (raw, other) = match input {
        TestInput::Message(message) => (
            std::fs::read(&message)
                .with_context(|| format!("cannot read {}", message.display()))?,
            None,
        ),
        TestInput::Schedule(cron) => (Vec::new(), Some(OtherTrigger::Schedule(cron))),
        TestInput::Request(body) => (
            Vec::new(),
            Some(OtherTrigger::Request(json_arg(Some(&body), "--request")?)),
        ),
    };
    // Check first, exactly as deploy does, so a dry run never feeds Boa what deploy refuses;
    // both in a sandbox worker, as in the daemon.
    let pool = thwonk_sandbox::WorkerPool::new(1, config.limits.memory_mib)
        .require_wall(config.runner.require_wall);
    let info = match pool.check(&source, &config.limits)? {
        Ok(info) => info,
        Err(e) => {
            let out = serde_json::json!({
                "status": "error",
                "error": {"kind": "CompileError", "message": e.to_string(), "line": e.line, "column": e.column},
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(ExitCode::FAILURE);
        }
    };
    let header_view = thwonk_mail::parse_message(
        &raw,
        &thwonk_mail::InboundEnvelope {
            id: "dry-run",
            mail_from: "",
            to: "",
            recipients: &[],
            received_at_ms: 0,
        },
    );
    let address = match (address, &other) {
        (Some(a), _) => Address::parse(a)?,
        (None, None) => first_to(&header_view.headers)
            .context("the message has no To: address; pass --address")?,
        // No message to take it from: the first rules domain's `test@`.
        (None, Some(_)) => {
            let domain = config
                .smtp
                .domains
                .first()
                .map(String::as_str)
                .unwrap_or("example.org");
            Address::parse(&format!("test@{domain}"))?
        }
    };
    let run = thwonk_control::dry_run::DryRun {
        script: &source,
        raw_message: &raw,
        address: &address,
        mail_from: &header_view.sender.address,
        files,
        limits: &config.limits,
        pool: &pool,
    };
    let outcome = match other {
        None => dry_run(&run),
        // `--schedule` alone: the script's own schedule.
        Some(OtherTrigger::Schedule(cron)) if cron.is_empty() => dry_run_other(
            &run,
            OtherTrigger::Schedule(info.schedule.unwrap_or_default()),
        ),
        Some(other) => dry_run_other(&run, other),
    };
    let ok = outcome.is_ok();
    print_dry_run(&DryRunView::from(outcome))?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `thwonk test`'s output: the dry run as the API answers it (`POST .../test`), as JSON
/// with its keys in order.
fn print_dry_run(view: &DryRunView) -> Result<()> {
    let out = serde_json::to_value(view)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The first address in the message's To: header.
fn first_to(headers: &[(String, String)]) -> Option<Address> {
    let (_, value) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("to"))?;
    value.split(',').find_map(|part| {
        let inner = match (part.find('<'), part.rfind('>')) {
            (Some(a), Some(b)) if a < b => &part[a + 1..b],
            _ => part,
        };
        Address::parse(inner).ok()
    })
}

fn iso(ms: i64) -> String {
    thwonk_core::time::rfc3339_seconds(ms)
}
