//! The figures of one bench run, with each one's ratio to the bare-sink baseline, as text or
//! JSON.

use crate::arrivals::Arrival;
use crate::load::{BenchArgs, Loaded};
use crate::rss::PeakRss;
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub load: LoadShape,
    /// The bare SMTP sink (no work) under the same load.
    pub baseline: LoadFigures,
    pub daemon: DaemonFigures,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
}

#[derive(Debug, Serialize)]
pub struct LoadShape {
    pub script: String,
    pub members: usize,
    pub deliveries_per_message: usize,
    pub sessions: usize,
    pub messages_per_session: usize,
    /// Open-loop send rate (messages per second), if one was set.
    pub rate: Option<f64>,
}

/// One N × M load: what was offered, accepted, and how fast.
#[derive(Debug, Serialize)]
pub struct LoadFigures {
    pub sent: usize,
    pub accepted: usize,
    pub refused: usize,
    /// First send → last 250.
    pub seconds: f64,
    pub accepted_per_sec: f64,
    /// MAIL written → 250, per message.
    pub txn_latency_ms: Latency,
}

#[derive(Debug, Serialize, Clone, Copy)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct DaemonFigures {
    pub ingress: LoadFigures,
    /// Daemon acceptance rate ÷ bare sink acceptance rate.
    pub ingress_ratio: f64,
    pub deliveries_expected: usize,
    pub deliveries_arrived: usize,
    /// Every expected delivery arrived within --timeout.
    pub complete: bool,
    /// Runs whose every delivery arrived.
    pub runs_completed: usize,
    /// First send → last arrival.
    pub end_to_end_seconds: f64,
    pub delivered_per_sec: f64,
    /// delivered_per_sec ÷ the bare sink's acceptance rate.
    pub delivered_ratio: f64,
    pub runs_per_sec: f64,
    /// runs_per_sec ÷ the bare sink's acceptance rate.
    pub runs_ratio: f64,
    /// 250 → arrival at the sink, per delivery.
    pub latency_ms: Latency,
    /// latency p50 and p99 ÷ the bare sink's transaction latency p50 and p99.
    pub latency_ratio_p50: f64,
    pub latency_ratio_p99: f64,
    pub peak_rss_daemon_mib: f64,
    /// The daemon plus every process below it (private redis-server, sandbox workers),
    /// each at its own peak.
    pub peak_rss_total_mib: f64,
    pub processes: Vec<ProcessRss>,
    /// WARN and ERROR lines the daemon logged during the run.
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ProcessRss {
    pub pid: u32,
    pub name: String,
    pub peak_rss_mib: f64,
}

impl LoadFigures {
    pub fn new(offered: usize, l: &Loaded) -> LoadFigures {
        let seconds = l.seconds();
        LoadFigures {
            sent: offered,
            accepted: l.accepted.len(),
            refused: l.refused.len(),
            seconds,
            accepted_per_sec: per_sec(l.accepted.len(), seconds),
            txn_latency_ms: latency(l.txn_latency.clone()),
        }
    }
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        args: &BenchArgs,
        script: &Path,
        per_message: usize,
        baseline: &Loaded,
        loaded: &Loaded,
        arrivals: &[Arrival],
        rss: &PeakRss,
        problems: Vec<String>,
    ) -> Report {
        let offered = args.sessions * args.messages;
        let base = LoadFigures::new(offered, baseline);
        let ingress = LoadFigures::new(offered, loaded);

        let mut delays = Vec::new();
        let mut arrived_per_token: std::collections::HashMap<&str, usize> = Default::default();
        let mut last = None;
        for a in arrivals {
            let Some(token) = a.token.as_deref() else {
                continue;
            };
            let Some(accepted_at) = loaded.accepted.get(token) else {
                continue;
            };
            for _ in &a.recipients {
                delays.push(a.at.saturating_duration_since(*accepted_at));
            }
            *arrived_per_token.entry(token).or_default() += a.recipients.len();
            last = last.max(Some(a.at));
        }
        let arrived = delays.len();
        let expected = loaded.accepted.len() * per_message;
        let runs_completed = arrived_per_token
            .values()
            .filter(|n| **n >= per_message)
            .count();
        let e2e = last.map_or(0.0, |t| t.duration_since(loaded.started).as_secs_f64());
        let delivered_per_sec = per_sec(arrived, e2e);
        let runs_per_sec = per_sec(runs_completed, e2e);
        let latency_ms = latency(delays);
        let mut processes: Vec<ProcessRss> = rss
            .descendants
            .iter()
            .map(|(pid, (name, kib))| ProcessRss {
                pid: *pid,
                name: name.clone(),
                peak_rss_mib: mib(*kib),
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        let daemon = DaemonFigures {
            ingress_ratio: ratio(ingress.accepted_per_sec, base.accepted_per_sec),
            ingress,
            deliveries_expected: expected,
            deliveries_arrived: arrived,
            complete: arrived >= expected && loaded.refused.is_empty(),
            runs_completed,
            end_to_end_seconds: e2e,
            delivered_per_sec,
            delivered_ratio: ratio(delivered_per_sec, base.accepted_per_sec),
            runs_per_sec,
            runs_ratio: ratio(runs_per_sec, base.accepted_per_sec),
            latency_ratio_p50: ratio(latency_ms.p50, base.txn_latency_ms.p50),
            latency_ratio_p99: ratio(latency_ms.p99, base.txn_latency_ms.p99),
            latency_ms,
            peak_rss_daemon_mib: mib(rss.root_kib),
            peak_rss_total_mib: mib(rss.total_kib()),
            processes,
            problems,
        };
        Report {
            machine: Machine::here(),
            load: LoadShape {
                script: script.display().to_string(),
                members: args.members,
                deliveries_per_message: per_message,
                sessions: args.sessions,
                messages_per_session: args.messages,
                rate: args.rate,
            },
            baseline: base,
            daemon,
        }
    }

    pub fn text(&self) -> String {
        let (b, d) = (&self.baseline, &self.daemon);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "machine: {} cores, {}, Linux {}",
            self.machine.nproc, self.machine.cpu, self.machine.kernel
        );
        let _ = writeln!(
            s,
            "load: {} sessions x {} messages{} to {} ({} members, {} deliveries each)",
            self.load.sessions,
            self.load.messages_per_session,
            self.load
                .rate
                .map(|r| format!(" at {r} msg/s"))
                .unwrap_or_default(),
            self.load.script,
            self.load.members,
            self.load.deliveries_per_message
        );
        let _ = writeln!(
            s,
            "baseline (bare SMTP sink): {} accepted in {:.2} s = {:.0} msg/s; transaction p50 {:.2} ms, p99 {:.2} ms",
            b.accepted, b.seconds, b.accepted_per_sec, b.txn_latency_ms.p50, b.txn_latency_ms.p99
        );
        let _ = writeln!(
            s,
            "ingress acceptance: {} of {} accepted ({} refused) in {:.2} s = {:.0} msg/s   ratio {:.3}",
            d.ingress.accepted,
            d.ingress.sent,
            d.ingress.refused,
            d.ingress.seconds,
            d.ingress.accepted_per_sec,
            d.ingress_ratio
        );
        let _ = writeln!(
            s,
            "end to end: {} of {} deliveries{} in {:.2} s = {:.0} delivered msg/s   ratio {:.3}",
            d.deliveries_arrived,
            d.deliveries_expected,
            if d.complete { "" } else { " (INCOMPLETE)" },
            d.end_to_end_seconds,
            d.delivered_per_sec,
            d.delivered_ratio
        );
        let _ = writeln!(
            s,
            "runs: {} completed = {:.0} runs/s   ratio {:.3}",
            d.runs_completed, d.runs_per_sec, d.runs_ratio
        );
        let _ = writeln!(
            s,
            "latency 250 -> delivery: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms   ratio to bare transaction p50 {:.1}, p99 {:.1}",
            d.latency_ms.p50,
            d.latency_ms.p99,
            d.latency_ms.max,
            d.latency_ratio_p50,
            d.latency_ratio_p99
        );
        let _ = writeln!(
            s,
            "peak RSS: daemon {:.1} MiB, with its children {:.1} MiB",
            d.peak_rss_daemon_mib, d.peak_rss_total_mib
        );
        for p in &d.processes {
            let _ = writeln!(s, "  {:>7} {:<16} {:.1} MiB", p.pid, p.name, p.peak_rss_mib);
        }
        if !d.problems.is_empty() {
            let _ = writeln!(s, "daemon warnings/errors: {}", d.problems.len());
            for p in d.problems.iter().take(5) {
                let _ = writeln!(s, "  {p}");
            }
        }
        s
    }
}

impl Machine {
    fn here() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            kernel,
        }
    }
}

fn per_sec(n: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// p50, p99 and max in milliseconds (nearest-rank percentiles); zeros for no samples.
pub fn latency(mut v: Vec<Duration>) -> Latency {
    if v.is_empty() {
        return Latency {
            p50: 0.0,
            p99: 0.0,
            max: 0.0,
        };
    }
    v.sort();
    let rank = |p: f64| {
        let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e3
    };
    Latency {
        p50: rank(0.50),
        p99: rank(0.99),
        max: rank(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = latency(v);
        assert_eq!((l.p50, l.p99, l.max), (50.0, 99.0, 100.0));
        let l = latency(vec![Duration::from_millis(7)]);
        assert_eq!((l.p50, l.p99, l.max), (7.0, 7.0, 7.0));
    }
}
