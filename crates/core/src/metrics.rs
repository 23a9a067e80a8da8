//! Process metrics in the Prometheus text exposition format, on the official
//! `prometheus-client` crate.
//!
//! Every metric of Thwonk is a `static` here, so this file is the list of them (docs/
//! operations.md repeats it for operators). Roles count with one line at their decision
//! points (`metrics::RUNS.inc(&["message", "ok", ""])`); [`render`] writes them all, and
//! `thwonk_control::metrics::render_all` adds the queue depths it reads from Redis at scrape
//! time ([`render_gauge`]).
//!
//! - [`Counter`]: a monotonic count per label values (label sets are small and known: an
//!   outcome, a reason, a mode); a `prometheus-client` counter family.
//! - [`Histogram`]: fixed buckets, `_bucket{le=..}` cumulative counts, `_sum`, `_count`.
//!
//! The statics keep their names, label names and help texts in one place; the crate keeps
//! the values and writes the format (version 0.0.4, `text/plain`). Counts live in the
//! process: each process (`thwonk serve`, or one role each) exposes its own, and Prometheus
//! sums across processes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter as CounterValue;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram as HistogramValue;
use prometheus_client::registry::Registry;

use crate::config::EgressMode;

/// Label names with their values, in the order of the names.
type LabelSet = Vec<(&'static str, String)>;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A counter with a fixed set of label names.
pub struct Counter {
    /// The sample name, `_total` included (the crate adds that suffix itself).
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    family: OnceLock<Family<LabelSet, CounterValue>>,
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
            family: OnceLock::new(),
        }
    }

    fn family(&self) -> &Family<LabelSet, CounterValue> {
        self.family.get_or_init(|| {
            let family = Family::default();
            // A counter without labels shows 0 before its first increment.
            if self.labels.is_empty() {
                drop(family.get_or_create(&Vec::new()));
            }
            family
        })
    }

    fn label_set(&self, values: &[&str]) -> LabelSet {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        self.labels
            .iter()
            .zip(values)
            .map(|(n, v)| (*n, v.to_string()))
            .collect()
    }

    /// Add one for these label values (in the order of the label names).
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    pub fn add(&self, values: &[&str], n: u64) {
        self.family()
            .get_or_create(&self.label_set(values))
            .inc_by(n);
    }

    /// The current count for these label values.
    pub fn get(&self, values: &[&str]) -> u64 {
        self.family()
            .get(&self.label_set(values))
            .map_or(0, |c| c.get())
    }

    pub fn render(&self, out: &mut String) {
        let name = self.name.strip_suffix("_total").unwrap_or(self.name);
        encode_one(out, name, self.help, self.family().clone());
    }
}

/// A histogram with fixed upper bounds (ascending; `+Inf` is implied).
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    value: OnceLock<HistogramValue>,
    /// Observations so far, readable (the crate reads its own only in tests).
    count: AtomicU64,
}

impl Histogram {
    pub const fn new(name: &'static str, help: &'static str, bounds: &'static [f64]) -> Histogram {
        Histogram {
            name,
            help,
            bounds,
            value: OnceLock::new(),
            count: AtomicU64::new(0),
        }
    }

    fn value(&self) -> &HistogramValue {
        self.value
            .get_or_init(|| HistogramValue::new(self.bounds.iter().copied()))
    }

    pub fn observe(&self, v: f64) {
        self.value().observe(v);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn render(&self, out: &mut String) {
        encode_one(out, self.name, self.help, self.value().clone());
    }
}

/// Write one gauge family: `samples` are label values (in the order of `labels`) and values.
/// Whole numbers are written without a fraction (`3`, not `3.0`).
pub fn render_gauge(
    out: &mut String,
    name: &str,
    help: &str,
    labels: &[&str],
    samples: &[(Vec<String>, f64)],
) {
    let label_set = |values: &[String]| -> Vec<(String, String)> {
        labels
            .iter()
            .zip(values)
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    };
    let whole = samples
        .iter()
        .all(|(_, v)| v.fract() == 0.0 && v.abs() < 9.0e15);
    if whole {
        let family = Family::<Vec<(String, String)>, Gauge>::default();
        for (values, v) in samples {
            family.get_or_create(&label_set(values)).set(*v as i64);
        }
        encode_one(out, name, help, family);
    } else {
        let family = Family::<Vec<(String, String)>, Gauge<f64, AtomicU64>>::default();
        for (values, v) in samples {
            family.get_or_create(&label_set(values)).set(*v);
        }
        encode_one(out, name, help, family);
    }
}

/// Encode one metric family in the Prometheus text format.
fn encode_one<M>(out: &mut String, name: &str, help: &str, metric: M)
where
    M: EncodeMetric + std::fmt::Debug + Send + Sync + 'static,
{
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Described {
        name: name.to_string(),
        help: help.to_string(),
        metric,
    }));
    prometheus_text::encode(out, &registry).expect("writing to a String cannot fail");
}

/// A metric with its HELP and TYPE lines even before it has a sample (the registry's own
/// `register` leaves out a family with no label values yet, and adds a full stop to help).
#[derive(Debug)]
struct Described<M> {
    name: String,
    help: String,
    metric: M,
}

impl<M> Collector for Described<M>
where
    M: EncodeMetric + std::fmt::Debug + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metric =
            encoder.encode_descriptor(&self.name, &self.help, None, self.metric.metric_type())?;
        self.metric.encode(metric)
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
     not_taking_mail, foreign_domain, too_large, too_many_recipients, temporary_failure, \
     no_room, too_slow; not_a_bounce and bounces_capped for mail to a bounce address that is \
     dropped).",
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

    /// The sample lines of a rendering, sorted (the crate keeps label sets in a hash map).
    fn samples(out: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        lines.sort();
        lines
    }

    #[test]
    fn counters_render_one_sample_per_label_values_escaped() {
        static C: Counter = Counter::new("t_total", "A test\ncounter.", &["reason", "mode"]);
        C.inc(&["b", "x"]);
        C.inc(&["a\"q\\\nz", "y"]);
        C.add(&["b", "x"], 2);
        let mut out = String::new();
        C.render(&mut out);
        assert!(
            out.starts_with("# HELP t_total A test\\ncounter.\n# TYPE t_total counter\n"),
            "{out}"
        );
        assert_eq!(
            samples(&out),
            [
                "t_total{reason=\"a\\\"q\\\\\\nz\",mode=\"y\"} 1",
                "t_total{reason=\"b\",mode=\"x\"} 3",
            ]
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
             h_seconds_sum 0.0\nh_seconds_count 0\n"
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
        out.clear();
        render_gauge(&mut out, "up", "Up.", &[], &[(Vec::new(), 0.5)]);
        assert_eq!(out, "# HELP up Up.\n# TYPE up gauge\nup 0.5\n");
    }

    #[test]
    fn every_metric_renders_with_help_and_type() {
        let mut out = String::new();
        render(&mut out);
        for (name, kind) in [
            ("thwonk_ingress_messages_accepted_total", "counter"),
            ("thwonk_ingress_refused_total", "counter"),
            ("thwonk_runs_total", "counter"),
            ("thwonk_run_commit_failures_total", "counter"),
            ("thwonk_run_instructions", "histogram"),
            ("thwonk_run_duration_seconds", "histogram"),
            ("thwonk_egress_deliveries_total", "counter"),
        ] {
            assert!(
                out.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} in {out}"
            );
            assert!(out.contains(&format!("# HELP {name} ")), "{name}");
        }
        // The help texts users see, unchanged (one full stop, not two).
        assert!(out.contains(
            "# HELP thwonk_runs_total Runs committed, by trigger (message, schedule, request), \
             status (ok, error) and error kind.\n"
        ));
    }
}
