//! `thwonk-bench`: the end-to-end load tool, a binary of its own (like `redis-benchmark`) so
//! that the production `thwonk` binary does not carry it. See BENCHMARKS.md.
//!
//! In one run it measures a baseline and the daemon under the same SMTP load:
//!
//! 1. **Baseline**: N sessions × M messages against a bare SMTP sink — Thwonk's own ingress
//!    protocol code over a sink that does no work — in this process, always as fast as it
//!    answers (also with `--rate`: it is the capacity the figures are divided by).
//! 2. **Daemon**: `thwonk serve` (the `thwonk` binary next to this one, or `--thwonk`) as a
//!    child (temp data directory, its private Redis, SQLite unless `--database-url`), egress
//!    in relay mode to a recording SMTP sink in this process. The script is deployed,
//!    `--members` addresses subscribe (twitter-list.js's "subscribe"), then the same N × M
//!    load is sent from one more member. Each message's subject carries a unique token that
//!    the script copies into the mail it sends, so each arrival at the sink is matched to the
//!    `250` of the message that caused it.
//!
//! Figures: ingress acceptance rate (250s per second), end-to-end delivered messages per
//! second (recipients arrived at the sink ÷ time from the first send to the last arrival),
//! runs per second, latency from `250` to arrival (p50, p99, max), peak RSS (`VmHWM`) of the
//! daemon alone and of its whole process tree (private Redis, sandbox workers). Ratios are
//! to the bare sink's acceptance rate and its transaction latency (MAIL written → 250).
//!
//! The SMTP client, both sinks and the daemon as a child process are the test kit's
//! (`thwonk-testkit`), the same the end-to-end tests use.
//!
//! - `load`: one run — options, the baseline, the daemon, the N × M load.
//! - `arrivals`: the bare and the recording sink, and matching arrivals to tokens.
//! - `rss`: peak RSS of the daemon's process tree, from `/proc`.
//! - `report`: the figures, as text or JSON.
//!
//! Not for: correctness (the tests own that; this measures), or a daemon already running
//! (it always starts its own, with a fresh data directory).

mod arrivals;
mod load;
mod report;
mod rss;

use clap::Parser;

/// Load test: N SMTP sessions × M messages through a daemon started for the run, against a
/// bare SMTP sink as the baseline; prints rates, latency and peak memory.
#[derive(Parser)]
#[command(name = "thwonk-bench", version)]
struct Cli {
    #[command(flatten)]
    args: load::BenchArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The bench's own SMTP sinks would log every message they take, on the cores the daemon
    // under test needs: warnings only unless THWONK_LOG says otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_env("THWONK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(load::bench(cli.args)));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("thwonk-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
