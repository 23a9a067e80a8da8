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
use thwonk_control::views::{DeployView, DryRunView, FileWrittenView, RunView, ThwonkView};
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
    println!("database is up to date ({})", config.database_url());
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
    let pool = thwonk_sandbox::WorkerPool::new(1, config.limits.memory_mib);
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

pub async fn runs(config: &Config, address: &str, limit: i64, json: bool) -> Result<()> {
    let runs = match crate::remote::client(config).await {
        Some(c) => crate::remote::runs(&c, address, limit).await?.runs,
        None => {
            let store = open(config).await?;
            let t = thwonk(&store, address).await?;
            let runs = store.list_runs(&t.id, limit).await?;
            runs.iter().map(RunView::from).collect()
        }
    };
    print_runs(&runs, json)
}

/// `thwonk runs`'s output: text, or with `--json` one flat object per run.
fn print_runs(runs: &[RunView], json: bool) -> Result<()> {
    if json {
        let flat: Vec<_> = runs
            .iter()
            .map(|r| {
                let error = r.error.as_ref();
                serde_json::json!({
                    "id": r.id, "message_id": r.message_id, "trigger": r.trigger,
                    "script_version": r.script_version, "status": r.status,
                    "error_kind": error.map(|e| &e.kind),
                    "error": error.and_then(|e| e.message.as_ref()),
                    "stack": error.and_then(|e| e.stack.as_ref()),
                    "logs": r.logs, "logs_truncated": r.logs_truncated,
                    "instructions": r.cost.instructions, "wall_ms": r.cost.wall_ms,
                    "started_at_ms": r.started_at_ms, "finished_at_ms": r.finished_at_ms,
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
            iso(r.started_at_ms),
            r.id,
            r.status,
            r.script_version,
            r.cost.instructions,
            r.cost.wall_ms
        );
        if let Some(e) = &r.error
            && let Some(msg) = &e.message
        {
            println!("    {}: {msg}", e.kind);
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
    let outcome = thwonk_control::dry_run::dry_run(&thwonk_control::dry_run::DryRun {
        script: &source,
        raw_message: &raw,
        address: &address,
        mail_from: &header_view.sender.address,
        files,
        limits: &config.limits,
        pool: &pool,
    });
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
