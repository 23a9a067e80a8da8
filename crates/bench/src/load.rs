//! One bench run: the baseline load against the bare sink, then the daemon (started from
//! the `thwonk` binary) relaying to the recording sink under the same load.

use crate::arrivals::{self, TOKEN_PREFIX};
use crate::report::Report;
use crate::rss::PeakRss;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use thwonk_testkit::daemon::{Daemon, DaemonOptions, Env, Inherit, daemon_vars};
use thwonk_testkit::relay::Relay;
use thwonk_testkit::smtp::SmtpClient;

/// The rules domain and address the bench deploys to.
const DOMAIN: &str = "bench.test";
const LIST: &str = "list@bench.test";
const POSTER: &str = "poster@senders.test";

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// The `thwonk` binary that runs the daemon (default: `thwonk` next to this executable,
    /// e.g. target/release/thwonk).
    #[arg(long, value_name = "PATH")]
    pub thwonk: Option<PathBuf>,
    /// The rule script to deploy.
    #[arg(long, default_value = "sandbox-scripts/twitter-list.js")]
    pub script: PathBuf,
    /// Addresses subscribed (subject "subscribe") before the load; each post then goes to
    /// every one of them. 0: subscribe nobody.
    #[arg(long, default_value_t = 10)]
    pub members: usize,
    /// Deliveries each message causes (default: --members, or 1 when that is 0).
    #[arg(long)]
    pub deliveries_per_message: Option<usize>,
    /// Concurrent SMTP sessions.
    #[arg(long, default_value_t = 4)]
    pub sessions: usize,
    /// Messages each session sends.
    #[arg(long, default_value_t = 250)]
    pub messages: usize,
    /// Open loop: send at this many messages per second in total (each session keeps its
    /// share of a fixed schedule) instead of as fast as the server answers.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds to wait, after the last 250, for every delivery; then the report says
    /// incomplete.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// The daemon's log filter (THWONK_LOG); `info` is what the daemon ships with.
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Run the daemon on this database (e.g. a scratch PostgreSQL) instead of SQLite in its
    /// temporary data directory. It must hold no thwonk at list@bench.test.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn bench(args: BenchArgs) -> Result<std::process::ExitCode> {
    if args.sessions == 0 || args.messages == 0 {
        bail!("--sessions and --messages must be at least 1");
    }
    if args.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a positive number of messages per second");
    }
    let script = std::fs::canonicalize(&args.script)
        .with_context(|| format!("cannot read the script {}", args.script.display()))?;
    let per_message =
        args.deliveries_per_message
            .unwrap_or(if args.members == 0 { 1 } else { args.members });
    let thwonk = thwonk_binary(&args)?;

    // 1. The baseline: the same load against an SMTP server that does no work.
    let bare = arrivals::bare().await?;
    // Always as fast as the sink answers, also with --rate: the baseline is the capacity the
    // daemon's figures are divided by.
    let baseline = load(bare.addr, &args, None, "b").await?;
    drop(bare);
    eprintln!(
        "bench: baseline accepted {} in {:.2} s",
        baseline.accepted.len(),
        baseline.seconds()
    );

    // 2. The daemon, relaying to a recording sink.
    let (relay, token_recipients) = arrivals::recording().await?;
    let data = tempfile_dir()?;
    let env = daemon_env(
        thwonk,
        data.path(),
        relay.addr,
        &args.log,
        args.database_url.as_deref(),
    );
    env.try_ok(&["deploy", LIST, &script.display().to_string()])
        .map_err(|e| anyhow!(e))?;
    let options = DaemonOptions {
        ready_timeout: Duration::from_secs(60),
        echo_log: false,
    };
    let daemon = Daemon::spawn(&env, "serve", &options)
        .await
        .map_err(|e| anyhow!(e))?;
    let pid = daemon.pid();
    let mut rss = PeakRss::default();
    rss.sample(pid);

    subscribe(daemon.smtp, &args, &relay).await?;
    eprintln!(
        "bench: daemon pid {pid}; {} members subscribed; loading",
        args.members
    );

    let sampler = {
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut rss = PeakRss::default();
            loop {
                rss.sample(pid);
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            rss.sample(pid);
            rss
        });
        (stop, task)
    };

    let loaded = load(daemon.smtp, &args, args.rate, "d").await?;
    let expected = loaded.accepted.len() * per_message;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    while token_recipients.load(Ordering::Acquire) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sampler.0.cancel();
    let sampled = sampler.1.await.context("the RSS sampler failed")?;
    rss.root_kib = rss.root_kib.max(sampled.root_kib);
    rss.descendants = sampled.descendants;
    // Log lines at WARN or ERROR.
    let problems: Vec<String> = daemon
        .log()
        .into_iter()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    let stopped = daemon
        .try_stop(Duration::from_secs(30))
        .await
        .map_err(|e| anyhow!(e));

    let report = Report::new(
        &args,
        &script,
        per_message,
        &baseline,
        &loaded,
        &arrivals::arrivals(&relay),
        &rss,
        problems,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    stopped?;
    Ok(if report.daemon.complete {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!("bench: incomplete: not every delivery arrived within --timeout");
        std::process::ExitCode::from(2)
    })
}

/// `--thwonk`, or `thwonk` next to this executable.
fn thwonk_binary(args: &BenchArgs) -> Result<PathBuf> {
    let path = match &args.thwonk {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("cannot find this executable")?
            .with_file_name("thwonk"),
    };
    if !path.is_file() {
        bail!(
            "no thwonk binary at {} (build it with `cargo build --release`, or say where it is \
             with --thwonk)",
            path.display()
        );
    }
    Ok(path)
}

/// Settings the bench sets itself; the caller's other `THWONK_*` variables pass through, so
/// `THWONK_RUNNER_CONCURRENCY=8 thwonk-bench` benchmarks that setting.
fn daemon_env(
    thwonk: PathBuf,
    data_dir: &std::path::Path,
    relay: SocketAddr,
    log: &str,
    database_url: Option<&str>,
) -> Env {
    let vars = daemon_vars(data_dir, relay, DOMAIN, log, database_url);
    Env {
        program: thwonk,
        vars,
        cwd: std::env::current_dir().unwrap_or_else(|_| ".".into()),
        inherit: Inherit::Unset,
    }
}

fn tempfile_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("thwonk-bench-")
        .tempdir()
        .context("cannot create a temporary data directory")
}

/// Subscribe `--members` addresses and the poster; wait for their confirmations.
async fn subscribe(smtp: SocketAddr, args: &BenchArgs, relay: &Relay) -> Result<()> {
    if args.members == 0 {
        return Ok(());
    }
    let mut session = open(smtp).await?;
    let mut subscribers: Vec<String> = (0..args.members).map(member).collect();
    subscribers.push(POSTER.to_string());
    for s in &subscribers {
        let body = message(s, "subscribe", "please add me");
        match send(&mut session, s, LIST, &body).await? {
            Outcome::Accepted(_) => {}
            Outcome::Refused(code) => bail!("subscribing {s} was refused with {code}"),
        }
    }
    session.quit().await;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    while relay.count() < subscribers.len() {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} subscription confirmations arrived",
                relay.count(),
                subscribers.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn member(i: usize) -> String {
    format!("member-{i}@members.test")
}

/// A plain-text message with a body long enough for twitter-list.js to trim.
fn message(from: &str, subject: &str, text: &str) -> Vec<u8> {
    let date = thwonk_core::time::rfc5322(thwonk_core::time::now_ms());
    let id = thwonk_core::ids::new_id();
    format!(
        "Message-ID: <{id}@load.bench.test>\r\nDate: {date}\r\nFrom: {from}\r\nTo: {LIST}\r\n\
         Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         \r\n{text}\r\n"
    )
    .into_bytes()
}

/// A 300-character post body (twitter-list.js cuts it to 140).
fn post_text() -> String {
    let line = "The quick brown fox jumps over the lazy dog, again and again, for the load. ";
    line.repeat(4).chars().take(300).collect()
}

/// The result of one N × M load.
pub struct Loaded {
    pub started: Instant,
    /// token → instant of its 250.
    pub accepted: HashMap<String, Instant>,
    /// Transaction latency per accepted message (MAIL written → 250).
    pub txn_latency: Vec<Duration>,
    pub refused: Vec<u16>,
}

impl Loaded {
    /// From the first send to the last 250.
    pub fn seconds(&self) -> f64 {
        self.accepted
            .values()
            .max()
            .map_or(0.0, |last| last.duration_since(self.started).as_secs_f64())
    }
}

/// N sessions × M messages from the poster to the list; `tag` keeps tokens of two loads apart.
async fn load(addr: SocketAddr, args: &BenchArgs, rate: Option<f64>, tag: &str) -> Result<Loaded> {
    let started = Instant::now();
    let text = Arc::new(post_text());
    let mut sessions = tokio::task::JoinSet::new();
    for s in 0..args.sessions {
        let (n, m, rate, tag, text) = (
            args.sessions,
            args.messages,
            rate,
            tag.to_string(),
            text.clone(),
        );
        sessions.spawn(async move {
            let mut out = Vec::with_capacity(m);
            let mut session = open(addr).await?;
            for i in 0..m {
                if let Some(rate) = rate {
                    // Message number i·N+s of the whole load is due at (i·N+s)/rate.
                    let due = started + Duration::from_secs_f64((i * n + s) as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let token = format!("{tag}{s}-{i}");
                let body = message(POSTER, &format!("{TOKEN_PREFIX}{token}"), &text);
                let sent = Instant::now();
                let outcome = send(&mut session, POSTER, LIST, &body).await?;
                out.push((token, sent, outcome));
            }
            session.quit().await;
            anyhow::Ok(out)
        });
    }
    let mut loaded = Loaded {
        started,
        accepted: HashMap::new(),
        txn_latency: Vec::new(),
        refused: Vec::new(),
    };
    while let Some(done) = sessions.join_next().await {
        for (token, sent, outcome) in done.context("a load session panicked")?? {
            match outcome {
                Outcome::Accepted(at) => {
                    loaded.txn_latency.push(at.duration_since(sent));
                    loaded.accepted.insert(token, at);
                }
                Outcome::Refused(code) => loaded.refused.push(code),
            }
        }
    }
    Ok(loaded)
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `250` after the body, at this instant.
    Accepted(Instant),
    /// Refused (any other reply at MAIL, RCPT, DATA or after the body); the code.
    Refused(u16),
}

/// One load session: connected, greeted, EHLO said.
async fn open(addr: SocketAddr) -> Result<SmtpClient> {
    let session = async {
        let mut c = SmtpClient::try_connect(addr).await?.nodelay()?;
        c.greet("load.bench.test").await?;
        std::io::Result::Ok(c)
    };
    session
        .await
        .with_context(|| format!("SMTP session to {addr}"))
}

/// Send one message as MAIL, RCPT and DATA in one write (PIPELINING), then the body; `body`
/// is the whole message (headers and body, CRLF line ends), sent followed by an empty line.
async fn send(session: &mut SmtpClient, from: &str, to: &str, body: &[u8]) -> Result<Outcome> {
    let [mail, rcpt, data] = session.pipelined(from, to).await?;
    if data != 354 {
        // The server refused the transaction somewhere; it is reset by the failed DATA.
        let code = [mail, rcpt, data]
            .into_iter()
            .find(|c| *c != 250 && *c != 354)
            .unwrap_or(data);
        return Ok(Outcome::Refused(code));
    }
    let mut payload = Vec::with_capacity(body.len() + 2);
    payload.extend_from_slice(body);
    payload.extend_from_slice(b"\r\n");
    let reply = session.data(&payload).await?;
    Ok(match thwonk_testkit::smtp::code(&reply) {
        250 => Outcome::Accepted(Instant::now()),
        code => Outcome::Refused(code),
    })
}
