//! Thwonk's own metrics on top of `thwonk_core::metrics`: a committed run counted and
//! measured (the runner calls [`record_run`]), and the scrape ([`render_all`], served by the
//! API's `/metrics` and by single roles) that adds the job queues' depths, read from Redis at
//! that moment, to every counter of the process.

use thwonk_core::metrics::{self, render_gauge};
use thwonk_store::RunRecord;
use thwonk_thoonk::{INBOUND, JobQueue, OUTBOUND, Redis};

/// Count a committed run: by trigger, status and error kind; its instructions and time.
pub fn record_run(run: &RunRecord) {
    metrics::RUNS.inc(&[
        run.trigger.as_str(),
        run.status.as_str(),
        run.error_kind.map(|k| k.as_str()).unwrap_or(""),
    ]);
    metrics::RUN_INSTRUCTIONS.observe(run.instructions as f64);
    metrics::RUN_DURATION.observe(run.wall_ms as f64 / 1000.0);
}

/// Every metric of this process, then the depths of the `inbound` and `outbound` queues by
/// state (queued, claimed, delayed, stalled). When Redis cannot be read the depths are left
/// out and `thwonk_queue_up` is 0, so the scrape itself still answers.
pub async fn render_all(redis: &Redis) -> String {
    let mut out = String::new();
    metrics::render(&mut out);
    let mut samples = Vec::new();
    let mut up = 1.0;
    for name in [INBOUND, OUTBOUND] {
        match JobQueue::new(redis, name).stats().await {
            Ok(s) => {
                for (state, n) in [
                    ("queued", s.queued),
                    ("claiming", s.claiming),
                    ("claimed", s.claimed),
                    ("delayed", s.delayed),
                    ("stalled", s.stalled),
                ] {
                    samples.push((vec![name.to_string(), state.to_string()], n as f64));
                }
            }
            Err(e) => {
                tracing::debug!(queue = name, error = %e, "cannot read queue depths for metrics");
                up = 0.0;
            }
        }
    }
    render_gauge(
        &mut out,
        "thwonk_queue_depth",
        "Jobs in a queue (inbound, outbound) by state, read from Redis at scrape time.",
        &["queue", "state"],
        &samples,
    );
    render_gauge(
        &mut out,
        "thwonk_queue_up",
        "1 when the queue depths could be read from Redis at this scrape, else 0.",
        &[],
        &[(Vec::new(), up)],
    );
    out
}
