//! Process metrics in the Prometheus text exposition format, with no dependencies.
//!
//! Every metric of Thwonk is a `static` here, so this file is the list of them (docs/
//! operations.md repeats it for operators). Roles count with one line at their decision
//! points (`metrics::RUNS.inc(&["message", "ok", ""])`); [`render`] writes them all, and
//! `thwonk_runner::metrics::render_all` adds the queue depths it reads from Redis at scrape
//! time.
//!
//! - [`Counter`]: a monotonic count per label values (label sets are small and known: an
//!   outcome, a reason, a mode), kept in a map behind a mutex that is held for one increment.
//! - [`Histogram`]: fixed buckets, `_bucket{le=..}` cumulative counts, `_sum`, `_count`.
//!
//! Counts live in the process: each process (`thwonk serve`, or one role each) exposes its
//! own, and Prometheus sums across processes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::config::EgressMode;

/// A counter with a fixed set of label names.
pub struct Counter {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl Counter {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Counter {
        Counter {
            name,
            help,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Add one for these label values (in the order of the label names).
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    pub fn add(&self, values: &[&str], n: u64) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let mut map = self.values.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(key).or_insert(0) += n;
    }

    /// The current count for these label values.
    pub fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let map = self.values.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key).copied().unwrap_or(0)
    }

    pub fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "counter");
        let map = self.values.lock().unwrap_or_else(|p| p.into_inner());
        if map.is_empty() && self.labels.is_empty() {
            let _ = writeln!(out, "{} 0", self.name);
        }
        for (values, n) in map.iter() {
            let _ = writeln!(out, "{}{} {n}", self.name, label_set(self.labels, values));
        }
    }
}

/// A histogram with fixed upper bounds (ascending; `+Inf` is implied).
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    state: Mutex<HistogramState>,
}

struct HistogramState {
    /// Per bucket (not cumulative), then the `+Inf` overflow.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub const fn new(name: &'static str, help: &'static str, bounds: &'static [f64]) -> Histogram {
        Histogram {
            name,
            help,
            bounds,
            state: Mutex::new(HistogramState {
                counts: Vec::new(),
                sum: 0.0,
                count: 0,
            }),
        }
    }

    pub fn observe(&self, v: f64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.counts.is_empty() {
            s.counts = vec![0; self.bounds.len() + 1];
        }
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        s.counts[i] += 1;
        s.sum += v;
        s.count += 1;
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).count
    }

    pub fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += s.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{}_bucket{{le=\"{}\"}} {cumulative}",
                self.name,
                number(*bound)
            );
        }
        let _ = writeln!(out, "{}_bucket{{le=\"+Inf\"}} {}", self.name, s.count);
        let _ = writeln!(out, "{}_sum {}", self.name, number(s.sum));
        let _ = writeln!(out, "{}_count {}", self.name, s.count);
    }
}

/// Write one gauge family: `samples` are label values (in the order of `labels`) and values.
pub fn render_gauge(
    out: &mut String,
    name: &str,
    help: &str,
    labels: &[&str],
    samples: &[(Vec<String>, f64)],
) {
    header(out, name, help, "gauge");
    for (values, v) in samples {
        let _ = writeln!(out, "{name}{} {}", label_set(labels, values), number(*v));
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `{a="x",b="y"}` (empty when there are no labels), values escaped as the format requires.
fn label_set(names: &[&str], values: &[String]) -> String {
    let pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape_label(v)))
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A sample value: integers without a fraction, `+Inf`/`-Inf`/`NaN` spelled as Prometheus does.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The label value of an egress mode.
pub fn egress_mode(mode: EgressMode) -> &'static str {
    match mode {
        EgressMode::Capture => "capture",
        EgressMode::Relay => "relay",
        EgressMode::Mx => "mx",
    }
}

// ---- Every metric of Thwonk ------------------------------------------------------------

/// Messages the ingress accepted (answered 250), one per SMTP transaction.
pub static INGRESS_ACCEPTED: Counter = Counter::new(
    "thwonk_ingress_messages_accepted_total",
    "Messages the SMTP ingress accepted (250 after storing and queueing).",
    &[],
);

/// Refusals by the ingress, by reason.
pub static INGRESS_REFUSED: Counter = Counter::new(
    "thwonk_ingress_refused_total",
    "Recipients or messages the SMTP ingress refused, by reason (unknown_recipient, \
     foreign_domain, too_large, too_many_recipients, temporary_failure).",
    &["reason"],
);

/// Runs committed, by trigger, status and error kind (empty when ok).
pub static RUNS: Counter = Counter::new(
    "thwonk_runs_total",
    "Runs committed, by trigger (message, schedule, request), status (ok, error) and error kind.",
    &["trigger", "status", "error_kind"],
);

/// Runs that could not be committed (the database failed); the job is retried.
pub static RUN_COMMIT_FAILURES: Counter = Counter::new(
    "thwonk_run_commit_failures_total",
    "Runs whose commit failed (the database was unreachable); their job is retried.",
    &[],
);

/// Instructions per run.
pub static RUN_INSTRUCTIONS: Histogram = Histogram::new(
    "thwonk_run_instructions",
    "Bytecode instructions executed per committed run.",
    &[1e3, 1e4, 1e5, 1e6, 1e7, 5e7, 1e8],
);

/// Wall-clock time per run (sandbox), seconds.
pub static RUN_DURATION: Histogram = Histogram::new(
    "thwonk_run_duration_seconds",
    "Wall-clock time of a committed run in its sandbox worker, seconds.",
    &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0],
);

/// Delivery attempts by egress mode and outcome.
pub static DELIVERIES: Counter = Counter::new(
    "thwonk_egress_deliveries_total",
    "Delivery attempts of outgoing mail, by egress mode and outcome (sent, retry, failed).",
    &["mode", "outcome"],
);

/// Every metric above, in the Prometheus text format.
pub fn render(out: &mut String) {
    INGRESS_ACCEPTED.render(out);
    INGRESS_REFUSED.render(out);
    RUNS.render(out);
    RUN_COMMIT_FAILURES.render(out);
    RUN_INSTRUCTIONS.render(out);
    RUN_DURATION.render(out);
    DELIVERIES.render(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_one_sample_per_label_values_escaped() {
        static C: Counter = Counter::new("t_total", "A test\ncounter.", &["reason", "mode"]);
        C.inc(&["b", "x"]);
        C.inc(&["a\"q\\\nz", "y"]);
        C.add(&["b", "x"], 2);
        let mut out = String::new();
        C.render(&mut out);
        assert_eq!(
            out,
            "# HELP t_total A test\\ncounter.\n\
             # TYPE t_total counter\n\
             t_total{reason=\"a\\\"q\\\\\\nz\",mode=\"y\"} 1\n\
             t_total{reason=\"b\",mode=\"x\"} 3\n"
        );
        assert_eq!(C.get(&["b", "x"]), 3);
        assert_eq!(C.get(&["c", "x"]), 0);
    }

    #[test]
    fn a_counter_without_labels_shows_zero_before_any_increment() {
        static C: Counter = Counter::new("u_total", "Help.", &[]);
        let mut out = String::new();
        C.render(&mut out);
        assert_eq!(
            out,
            "# HELP u_total Help.\n# TYPE u_total counter\nu_total 0\n"
        );
        C.inc(&[]);
        out.clear();
        C.render(&mut out);
        assert!(out.ends_with("\nu_total 1\n"), "{out}");
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        static H: Histogram = Histogram::new("h_seconds", "Durations.", &[0.5, 1.0, 10.0]);
        let mut out = String::new();
        H.render(&mut out);
        assert_eq!(
            out,
            "# HELP h_seconds Durations.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{le=\"0.5\"} 0\nh_seconds_bucket{le=\"1\"} 0\n\
             h_seconds_bucket{le=\"10\"} 0\nh_seconds_bucket{le=\"+Inf\"} 0\n\
             h_seconds_sum 0\nh_seconds_count 0\n"
        );
        for v in [0.25, 0.5, 2.0, 100.0] {
            H.observe(v);
        }
        out.clear();
        H.render(&mut out);
        assert_eq!(
            out,
            "# HELP h_seconds Durations.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{le=\"0.5\"} 2\nh_seconds_bucket{le=\"1\"} 2\n\
             h_seconds_bucket{le=\"10\"} 3\nh_seconds_bucket{le=\"+Inf\"} 4\n\
             h_seconds_sum 102.75\nh_seconds_count 4\n"
        );
        assert_eq!(H.count(), 4);
    }

    #[test]
    fn gauges_render_their_samples() {
        let mut out = String::new();
        render_gauge(
            &mut out,
            "g",
            "Depth.",
            &["queue", "state"],
            &[(vec!["inbound".into(), "queued".into()], 3.0)],
        );
        assert_eq!(
            out,
            "# HELP g Depth.\n# TYPE g gauge\ng{queue=\"inbound\",state=\"queued\"} 3\n"
        );
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(0.001), "0.001");
        assert_eq!(number(5e7), "50000000");
    }

    #[test]
    fn every_metric_renders_with_help_and_type() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "thwonk_ingress_messages_accepted_total",
            "thwonk_ingress_refused_total",
            "thwonk_runs_total",
            "thwonk_run_commit_failures_total",
            "thwonk_run_instructions",
            "thwonk_run_duration_seconds",
            "thwonk_egress_deliveries_total",
        ] {
            assert!(out.contains(&format!("# TYPE {name} ")), "{name} in {out}");
            assert!(out.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
