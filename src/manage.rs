//! Management commands: through a running daemon's admin socket when one answers
//! ([`crate::remote`]), else to the database directly, so they work with or without a running
//! daemon (SQLite in WAL mode and PostgreSQL both allow it).

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use thwonk_core::status::ThwonkStatus;
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
    println!("database is up to date ({})", config.database_url());
    Ok(())
}

pub async fn deploy(config: &Config, address: &str, script: &Path) -> Result<ExitCode> {
    if let Some(c) = crate::remote::client(config).await {
        return crate::remote::deploy(&c, address, script).await;
    }
    let address = Address::parse(address)?;
    let source = std::fs::read_to_string(script)
        .with_context(|| format!("cannot read {}", script.display()))?;
    // Parsing a hostile script can crash Boa: it happens in a sandbox worker, as runs do.
    // The same checks as the HTTP API's deploy (thwonk_api::deploy).
    let pool = thwonk_sandbox::WorkerPool::new(1, config.limits.memory_mib);
    let info = match thwonk_api::deploy::check_script(&pool, &source, &config.limits) {
        Ok(info) => info,
        Err(e @ thwonk_api::deploy::DeployError::Refused { .. }) => {
            eprintln!("{}:{e}", script.display());
            eprintln!("deploy refused: the script was not changed");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    if !config.accepts_domain(address.domain()) {
        eprintln!(
            "warning: {} is not in smtp.domains; the ingress refuses mail for it",
            address.domain()
        );
    }
    let store = open(config).await?;
    let deployed = store
        .deploy_script(&address, &source, info.schedule.as_deref())
        .await?;
    println!(
        "deployed {} version {}{}",
        deployed.thwonk.address,
        deployed.version,
        if deployed.created {
            " (new thwonk)"
        } else {
            ""
        }
    );
    register_schedule(config, &deployed.thwonk).await;
    Ok(ExitCode::SUCCESS)
}

/// Register (or drop) the thwonk's schedule on Redis now, if Redis is reachable; otherwise
/// runners pick it up from SQL within `schedules.sync_interval_ms`.
async fn register_schedule(config: &Config, thwonk: &Thwonk) {
    let schedule = thwonk
        .schedule
        .as_deref()
        .filter(|_| thwonk.status == ThwonkStatus::Active);
    let registered = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        let redis = thwonk_thoonk::Redis::connect(&config.redis_url()).await?;
        thwonk_runner::schedule::register(&redis, &thwonk.id, schedule)
            .await
            .map_err(anyhow::Error::from)
    })
    .await;
    match (registered, schedule) {
        (Ok(Ok(())), Some(s)) => println!("schedule {s:?} registered"),
        (Ok(Ok(())), None) => {}
        (Ok(Err(e)), _) => eprintln!(
            "note: Redis not reachable ({e:#}); runners register the schedule within schedules.sync_interval_ms"
        ),
        (Err(_), _) => eprintln!(
            "note: Redis did not answer; runners register the schedule within schedules.sync_interval_ms"
        ),
    }
}

pub async fn list(config: &Config) -> Result<()> {
    if let Some(c) = crate::remote::client(config).await {
        return crate::remote::list(&c).await;
    }
    let store = open(config).await?;
    let thwonks = store.list_thwonks().await?;
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
                .map(|s| format!("\tschedule {s}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn runs(config: &Config, address: &str, limit: i64, json: bool) -> Result<()> {
    if let Some(c) = crate::remote::client(config).await {
        return crate::remote::runs(&c, address, limit, json).await;
    }
    let store = open(config).await?;
    let t = thwonk(&store, address).await?;
    let runs = store.list_runs(&t.id, limit).await?;
    if json {
        let out: Vec<_> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "message_id": r.message_id, "trigger": r.trigger,
                    "script_version": r.script_version, "status": r.status,
                    "error_kind": r.error_kind, "error": r.error_message, "stack": r.error_stack,
                    "logs": r.logs, "logs_truncated": r.logs_truncated,
                    "instructions": r.instructions, "wall_ms": r.wall_ms,
                    "started_at_ms": r.started_at_ms, "finished_at_ms": r.finished_at_ms,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs yet");
    }
    for r in runs {
        println!(
            "{}  {}  {}  v{}  {} instructions  {} ms",
            iso(r.started_at_ms),
            r.id,
            r.status,
            r.script_version,
            r.instructions,
            r.wall_ms
        );
        if let (Some(kind), Some(msg)) = (&r.error_kind, &r.error_message) {
            println!("    {kind}: {msg}");
        }
        for l in &r.logs {
            println!("    [{}] {}", l.level, l.message);
        }
        if r.logs_truncated {
            println!("    (logs truncated)");
        }
    }
    Ok(())
}

pub async fn files(config: &Config, address: &str, action: FilesAction) -> Result<ExitCode> {
    use thwonk_core::vfs::{normalize_path, normalize_prefix};
    if let Some(c) = crate::remote::client(config).await {
        return crate::remote::files(&c, address, action).await;
    }
    let store = open(config).await?;
    let t = thwonk(&store, address).await?;
    match action {
        FilesAction::Ls { prefix } => {
            let prefix = normalize_prefix(prefix.as_deref().unwrap_or(""))?;
            for f in store.list_files(&t.id, &prefix).await? {
                println!("{:>9}  {}  {}", f.size, iso(f.updated_at_ms), f.path);
            }
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
            println!("wrote {path} ({} bytes)", bytes.len());
        }
        FilesAction::Rm { path } => {
            let path = normalize_path(&path)?;
            if !store.delete_file(&t.id, &path).await? {
                bail!("no file {path} in {}", t.address);
            }
            println!("deleted {path}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn test(
    config: &Config,
    script: &Path,
    message: &Path,
    files: Option<PathBuf>,
    address: Option<&str>,
) -> Result<ExitCode> {
    let source = std::fs::read_to_string(script)
        .with_context(|| format!("cannot read {}", script.display()))?;
    let raw =
        std::fs::read(message).with_context(|| format!("cannot read {}", message.display()))?;
    if let Some(dir) = &files
        && !dir.is_dir()
    {
        bail!("--files {}: not a directory", dir.display());
    }
    // Check first, exactly as deploy does, so a dry run never feeds Boa what deploy refuses;
    // both in a sandbox worker, as in the daemon.
    let pool = thwonk_sandbox::WorkerPool::new(1, config.limits.memory_mib);
    if let Err(e) = pool.check(&source, &config.limits)? {
        let out = serde_json::json!({
            "status": "error",
            "error": {"kind": "CompileError", "message": e.to_string(), "line": e.line, "column": e.column},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::FAILURE);
    }
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
    let address = match address {
        Some(a) => Address::parse(a)?,
        None => first_to(&header_view.headers)
            .context("the message has no To: address; pass --address")?,
    };
    let outcome = thwonk_runner::dry_run::dry_run(&thwonk_runner::dry_run::DryRun {
        script: &source,
        raw_message: &raw,
        address: &address,
        mail_from: &header_view.sender.address,
        files,
        limits: &config.limits,
        pool: &pool,
    });
    let out = serde_json::json!({
        "status": outcome.status,
        "error": outcome.error,
        "sends": outcome.effects.sends,
        "writes": outcome.effects.writes,
        "feed_ops": outcome.effects.feed_ops,
        "logs": outcome.logs,
        "logs_truncated": outcome.logs_truncated,
        "cost": outcome.cost,
        "response": outcome.response,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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

pub(crate) fn iso(ms: i64) -> String {
    thwonk_core::time::rfc3339_seconds(ms)
}
