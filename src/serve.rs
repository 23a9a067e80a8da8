//! Wiring the roles together: one process runs any subset of ingress, runner, egress and the
//! HTTP API (with the admin socket).
//!
//! Start-up order follows the data flow's needs: Redis (the private server when none is
//! configured), the database with its migrations, then the roles. Shutdown (SIGTERM or
//! Ctrl-C) cancels one token that every role watches; each finishes what it has in hand,
//! then the private Redis is stopped last. The roles get `shutdown.grace_ms` for that; past
//! it their work is abandoned (it returns to the queues, see docs/durability.md) and the
//! process exits with status 1.

use crate::lock::DataDirLock;
use crate::notify::Ready;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use thwonk_core::Config;
use thwonk_store::Store;
use thwonk_thoonk::{INBOUND, JobQueue, OUTBOUND, PrivateRedis, Redis, SupervisePolicy};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub ingress: bool,
    pub runner: bool,
    pub egress: bool,
    /// The HTTP API on `http.listen` and the admin socket `{data_dir}/admin.sock`.
    pub api: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        ingress: true,
        runner: true,
        egress: true,
        api: true,
    };
    pub const INGRESS: Roles = Roles {
        ingress: true,
        runner: false,
        egress: false,
        api: false,
    };
    pub const RUNNER: Roles = Roles {
        ingress: false,
        runner: true,
        egress: false,
        api: false,
    };
    pub const EGRESS: Roles = Roles {
        ingress: false,
        runner: false,
        egress: true,
        api: false,
    };
    pub const API: Roles = Roles {
        ingress: false,
        runner: false,
        egress: false,
        api: true,
    };
}

/// Options of `serve` and of each single role.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Once every role serves, write the addresses actually bound to FILE as JSON: {"pid",
    /// "smtp", "http", "metrics", "admin_socket", "outgoing"}, null for what this process
    /// does not run ("outgoing" says where outgoing mail goes). Written whole (renamed into
    /// place), removed on exit. For supervisors, tests and the load tool that let the kernel
    /// choose the ports (127.0.0.1:0).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
}

pub async fn serve(config: Arc<Config>, roles: Roles, args: ServeArgs) -> Result<()> {
    raise_descriptor_limit();
    if let Some(path) = &args.ready_file {
        // A file left by an earlier run must not pass for this one's.
        Ready::remove(path)
            .with_context(|| format!("--ready-file: cannot remove {}", path.display()))?;
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    // Only `serve` owns a private Redis; a single role joins the one `serve` started.
    let owns_redis = config.redis.url.is_none() && roles == Roles::ALL;
    // The data directory's lock comes before anything in it is touched (the private Redis,
    // the admin socket): a second daemon on the same directory changes nothing and exits.
    let _lock = if owns_redis || roles.api {
        Some(DataDirLock::take(&config.data_dir)?)
    } else {
        None
    };
    let private = if owns_redis {
        let server = PrivateRedis::start(
            &config.redis.server_binary,
            &config.data_dir,
            &config.private_redis_socket(),
        )
        .await?;
        info!(socket = %server.socket().display(), "private redis-server started");
        Some(server.supervise(
            config.redis.server_binary.clone(),
            config.data_dir.clone(),
            SupervisePolicy::default(),
        ))
    } else {
        None
    };
    let redis_lost = private.as_ref().map(|s| s.failed());
    let result = run_roles(config, roles, &args, redis_lost).await;
    if let Some(path) = &args.ready_file
        && let Err(e) = Ready::remove(path)
    {
        error!(file = %path.display(), error = %e, "cannot remove the ready file");
    }
    if let Some(server) = private {
        server.stop().await;
        info!("private redis-server stopped");
    }
    result
}

async fn run_roles(
    config: Arc<Config>,
    roles: Roles,
    args: &ServeArgs,
    redis_lost: Option<impl Future<Output = String> + Send + 'static>,
) -> Result<()> {
    let mut ready = Ready::new();
    let redis = Redis::connect(&config.redis_url()).await?;
    let store = Store::connect_with(
        &config.database_url(),
        config.database.max_connections,
        config.database.acquire_timeout,
    )
    .await?;
    store.migrate().await?;
    if roles.runner {
        // Feeds an older Thwonk keyed by address take their thwonk's id, before any runner
        // applies a feed operation under the new name.
        match thwonk_control::feeds::rename_address_keyed_feeds(&store, &redis).await {
            Ok(0) => {}
            Ok(n) => info!(
                feeds = n,
                "feeds keyed by address renamed to their thwonk's id"
            ),
            Err(e) => {
                warn!(error = %e, "cannot rename feeds keyed by address now; retried at the next start")
            }
        }
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    let mut roles_running = tokio::task::JoinSet::new();
    if let Some(lost) = redis_lost {
        // A private Redis that cannot be brought back stops the daemon with an error: the
        // service manager restarts the whole unit.
        let token = shutdown.clone();
        roles_running.spawn(async move {
            tokio::select! {
                reason = lost => Err(anyhow::anyhow!(reason)),
                _ = token.cancelled() => Ok(()),
            }
        });
    }

    if roles.ingress {
        let listener = tokio::net::TcpListener::bind(config.smtp.listen)
            .await
            .with_context(|| format!("smtp.listen: cannot listen on {}", config.smtp.listen))?;
        let addr = listener.local_addr()?;
        ready.smtp = Some(addr);
        info!(%addr, "SMTP ingress listening");
        let sink = thwonk_ingress::StoreSink::new(
            store.clone(),
            JobQueue::new(&redis, INBOUND),
            config.clone(),
        );
        let smtp = Arc::new(config.smtp.clone());
        let token = shutdown.clone();
        let grace = config.shutdown.grace;
        roles_running.spawn(async move {
            thwonk_ingress::serve_with_grace(listener, smtp, Arc::new(sink), token, grace)
                .await
                .context("ingress")
        });
    }
    if roles.runner {
        // The job loop, and the reconciler that re-queues from SQL the work whose Redis job
        // was lost: the binary's one use of the runner crate.
        let runner = thwonk_runner::Runner::new(store.clone(), redis.clone(), config.clone());
        let token = shutdown.clone();
        roles_running.spawn(async move {
            runner.run_role(token).await;
            Ok(())
        });
    }
    if roles.runner || roles.egress {
        // Any process that takes jobs also returns the jobs of consumers that died.
        let settings = thwonk_thoonk::ReaperSettings {
            visibility_ms: config.queues.visibility.as_millis() as u64,
            max_attempts: config.queues.max_attempts,
            interval_ms: config.queues.reaper_interval.as_millis() as u64,
        };
        let (redis, token) = (redis.clone(), shutdown.clone());
        roles_running.spawn(async move {
            thwonk_thoonk::reaper::run(redis, settings, token).await;
            Ok(())
        });
    }
    if roles.egress {
        let egress = thwonk_egress::Egress::new(
            store.clone(),
            JobQueue::new(&redis, OUTBOUND),
            config.clone(),
        );
        let token = shutdown.clone();
        roles_running.spawn(async move { egress.run(token).await.context("egress") });
    }
    if let Some(addr) = config.metrics.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("metrics.listen: cannot listen on {addr}"))?;
        let addr = listener.local_addr()?;
        ready.metrics = Some(addr);
        info!(%addr, "metrics listening");
        let (redis, token) = (redis.clone(), shutdown.clone());
        tokio::spawn(crate::metrics_http::serve(listener, redis, token));
    }
    if roles.api {
        spawn_api(
            &config,
            &store,
            &redis,
            &shutdown,
            &mut roles_running,
            &mut ready,
        )
        .await?;
    }
    if roles.egress {
        ready.outgoing = Some(outgoing(&config));
    }
    info!(
        ingress = roles.ingress,
        runner = roles.runner,
        egress = roles.egress,
        api = roles.api,
        data_dir = %config.data_dir.display(),
        outgoing = ready.outgoing.as_deref(),
        "thwonk ready"
    );
    if let Some(path) = &args.ready_file {
        ready
            .write(path)
            .with_context(|| format!("--ready-file: cannot write {}", path.display()))?;
    }
    crate::notify::notify("READY=1\nSTATUS=serving");
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            crate::notify::notify("STOPPING=1\nSTATUS=draining");
        });
    }

    let mut first_error = None;
    let grace = config.shutdown.grace;
    let mut deadline = None;
    loop {
        // Once shutdown starts, the roles have `shutdown.grace_ms` to finish what they hold.
        if deadline.is_none() && shutdown.is_cancelled() {
            deadline = Some(tokio::time::Instant::now() + grace);
        }
        let next = match deadline {
            None => tokio::select! {
                done = roles_running.join_next() => done,
                _ = shutdown.cancelled() => continue,
            },
            Some(at) => match tokio::time::timeout_at(at, roles_running.join_next()).await {
                Ok(done) => done,
                Err(_) => {
                    abandon(&mut roles_running, grace).await;
                    first_error.get_or_insert(anyhow::anyhow!(
                        "shutdown.grace_ms ({} ms) passed with work in hand; it was abandoned \
                         and returns to the queues",
                        grace.as_millis()
                    ));
                    break;
                }
            },
        };
        let Some(done) = next else { break };
        let outcome = done.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = outcome {
            error!(
                error = %thwonk_core::report::error_chain(e.chain()),
                "a role stopped; shutting down"
            );
            shutdown.cancel();
            first_error.get_or_insert(e);
        } else if !shutdown.is_cancelled() {
            // A role ended by itself: without it the process is not what was asked for.
            shutdown.cancel();
        }
    }
    info!("thwonk stopped");
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Where outgoing mail goes, in words: for the ready line and the ready file.
fn outgoing(config: &Config) -> String {
    use thwonk_core::config::EgressMode;
    match config.egress.mode {
        EgressMode::Capture => {
            let dir = config.captured_dir();
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            format!(
                "captured as .eml files in {} (nothing is sent)",
                dir.display()
            )
        }
        EgressMode::Relay => format!(
            "relayed to {}",
            config
                .egress
                .relay
                .as_deref()
                .unwrap_or("(no egress.relay)")
        ),
        EgressMode::Mx => "delivered to each recipient domain's MX hosts".to_string(),
    }
}

/// The grace period is over: stop the roles where they are. Nothing is lost: a message being
/// received was not answered 250 (its client retries), a run not committed leaves its message
/// queued (its job comes back through the reaper), a delivery not recorded leaves its outbox
/// row queued (delivered again later: at least once).
async fn abandon(roles: &mut tokio::task::JoinSet<Result<()>>, grace: std::time::Duration) {
    error!(
        roles = roles.len(),
        grace_ms = grace.as_millis() as u64,
        "shutdown grace period over: abandoning the work in hand"
    );
    roles.abort_all();
    while roles.join_next().await.is_some() {}
}

/// Raise the soft limit on open files to the hard limit: every SMTP session, HTTP connection
/// and event stream holds a descriptor, and the usual soft limit (1024) is what 1,100
/// half-sent requests once used up, taking SMTP, SQL and `/readyz` down with them. The
/// connection caps (`smtp.max_sessions`, `http.max_connections`) keep within it; this gives
/// them room. The systemd units set the hard limit (`LimitNOFILE=`).
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if got != 0 {
        warn!(error = %std::io::Error::last_os_error(), "cannot read the open files limit");
        return;
    }
    let before = limit.rlim_cur;
    if before >= limit.rlim_max {
        info!(open_files = before, "open files limit");
        return;
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
        info!(
            from = before,
            to = limit.rlim_cur,
            "open files limit raised to the hard limit"
        );
    } else {
        warn!(
            error = %std::io::Error::last_os_error(), open_files = before,
            "cannot raise the open files limit"
        );
    }
}

/// The HTTP API on `http.listen` and the same API on the admin socket.
async fn spawn_api(
    config: &Arc<Config>,
    store: &Store,
    redis: &Redis,
    shutdown: &CancellationToken,
    roles_running: &mut tokio::task::JoinSet<Result<()>>,
    ready: &mut Ready,
) -> Result<()> {
    let state = thwonk_api::ApiState::new(
        store.clone(),
        redis.clone(),
        config.clone(),
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("http.listen: cannot listen on {}", config.http.listen))?;
    let addr = listener.local_addr()?;
    ready.http = Some(addr);
    info!(%addr, "HTTP API listening");
    let socket = thwonk_api::admin_socket::socket_path(&config.data_dir);
    let admin = thwonk_api::admin_socket::bind(&socket).await?;
    ready.admin_socket = Some(socket.clone());
    info!(socket = %socket.display(), "admin socket listening");
    let tcp_state = state.clone();
    roles_running.spawn(async move {
        thwonk_api::serve_tcp(listener, tcp_state)
            .await
            .context("HTTP API")
    });
    roles_running.spawn(async move {
        thwonk_api::admin_socket::serve(admin, socket, state)
            .await
            .context("admin socket")
    });
    Ok(())
}

async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot watch SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => info!("interrupt: shutting down"),
        _ = shutdown.cancelled() => return,
    }
    shutdown.cancel();
}
