//! `thwonk bench`: the end-to-end load tool.
//!
//! In one run it measures a baseline and the daemon under the same SMTP load:
//!
//! 1. **Baseline**: N sessions × M messages against a bare SMTP sink — Thwonk's own ingress
//!    protocol code over a sink that does no work — in this process, always as fast as it
//!    answers (also with `--rate`: it is the capacity the figures are divided by).
//! 2. **Daemon**: `thwonk serve` from this executable as a child (temp data directory, its
//!    private Redis, SQLite unless `--database-url`), egress in relay mode to a recording
//!    SMTP sink in this process. The script is deployed, `--members` addresses subscribe
//!    (twitter-list.js's "subscribe"), then the same N × M load is sent from one more member.
//!    Each message's subject carries a unique token that the script copies into the mail it
//!    sends, so each arrival at the sink is matched to the `250` of the message that caused it.
//!
//! Figures: ingress acceptance rate (250s per second), end-to-end delivered messages per
//! second (recipients arrived at the sink ÷ time from the first send to the last arrival),
//! runs per second, latency from `250` to arrival (p50, p99, max), peak RSS (`VmHWM`) of the
//! daemon alone and of its whole process tree (private Redis, sandbox workers). Ratios are
//! to the bare sink's acceptance rate and its transaction latency (MAIL written → 250).
//!
//! - `client`: the pipelined SMTP client the load uses.
//! - `sink`: the bare and the recording SMTP sinks.
//! - `daemon`: the daemon as a child process, and peak RSS from `/proc`.
//! - `report`: the figures, as text or JSON.

mod client;
mod daemon;
mod report;
mod sink;

use anyhow::{Context, Result, bail};
use client::{Outcome, Session};
use daemon::{Daemon, DaemonEnv, PeakRss};
use report::Report;
use sink::{RunningSink, SinkKind, TOKEN_PREFIX};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The rules domain and address the bench deploys to.
const DOMAIN: &str = "bench.test";
const LIST: &str = "list@bench.test";
const POSTER: &str = "poster@senders.test";

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
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

    // 1. The baseline: the same load against an SMTP server that does no work.
    let bare = RunningSink::start(SinkKind::Bare).await?;
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
    let relay = RunningSink::start(SinkKind::Recording).await?;
    let data = tempfile_dir()?;
    let env = DaemonEnv::new(
        data.path(),
        relay.addr,
        DOMAIN,
        &args.log,
        args.database_url.as_deref(),
    );
    env.run(&["deploy", LIST, &script.display().to_string()])
        .await?;
    let daemon = Daemon::start(&env).await?;
    let mut rss = PeakRss::default();
    rss.sample(daemon.pid);

    subscribe(daemon.smtp, &args, &relay).await?;
    eprintln!(
        "bench: daemon pid {}; {} members subscribed; loading",
        daemon.pid, args.members
    );

    let sampler = {
        let pid = daemon.pid;
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
    while relay.sink.token_recipients() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sampler.0.cancel();
    let sampled = sampler.1.await.context("the RSS sampler failed")?;
    rss.root_kib = rss.root_kib.max(sampled.root_kib);
    rss.descendants = sampled.descendants;
    let problems = daemon
        .problems
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let stopped = daemon.stop(Duration::from_secs(30)).await;

    let report = Report::new(
        &args,
        &script,
        per_message,
        &baseline,
        &loaded,
        &relay.sink.arrivals(),
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

fn tempfile_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("thwonk-bench-")
        .tempdir()
        .context("cannot create a temporary data directory")
}

/// Subscribe `--members` addresses and the poster; wait for their confirmations.
async fn subscribe(smtp: SocketAddr, args: &BenchArgs, relay: &RunningSink) -> Result<()> {
    if args.members == 0 {
        return Ok(());
    }
    let mut session = Session::open(smtp).await?;
    let mut subscribers: Vec<String> = (0..args.members).map(member).collect();
    subscribers.push(POSTER.to_string());
    for s in &subscribers {
        let body = message(s, "subscribe", "please add me");
        match session.send(s, LIST, &body).await? {
            Outcome::Accepted(_) => {}
            Outcome::Refused(code) => bail!("subscribing {s} was refused with {code}"),
        }
    }
    session.close().await;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    while relay.sink.arrivals().len() < subscribers.len() {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} subscription confirmations arrived",
                relay.sink.arrivals().len(),
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
            let mut session = Session::open(addr).await?;
            for i in 0..m {
                if let Some(rate) = rate {
                    // Message number i·N+s of the whole load is due at (i·N+s)/rate.
                    let due = started + Duration::from_secs_f64((i * n + s) as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let token = format!("{tag}{s}-{i}");
                let body = message(POSTER, &format!("{TOKEN_PREFIX}{token}"), &text);
                let sent = Instant::now();
                let outcome = session.send(POSTER, LIST, &body).await?;
                out.push((token, sent, outcome));
            }
            session.close().await;
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
