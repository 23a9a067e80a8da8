//! What a delivery report leads to, through the planning the job loop itself uses
//! ([`attempt::plan`]): every recipient `queued` before its first attempt, eight attempts
//! allowed, retries after 30 s, then 120 s.

use std::time::Duration;
use thwonk_core::status::DeliveryStatus;
use thwonk_egress::DeliveryReport;
use thwonk_egress::attempt::{self, Plan, Retry};
use thwonk_store::RecipientState;

pub const RETRY: Retry<'static> = Retry {
    max_attempts: 8,
    schedule: &[Duration::from_secs(30), Duration::from_secs(120)],
};

/// The plan for a first attempt to `rcpt` that got `report`.
pub fn planned(rcpt: &[String], report: &DeliveryReport) -> Plan {
    let states: Vec<RecipientState> = rcpt
        .iter()
        .map(|r| RecipientState {
            rcpt: r.clone(),
            status: DeliveryStatus::Queued,
            attempts: 0,
            last_reply: None,
            updated_at_ms: 0,
        })
        .collect();
    attempt::plan(&states, report, 0, RETRY, 0)
}

/// Each recipient's new status, in the order of `rcpt`.
pub fn statuses(plan: &Plan) -> Vec<(&str, &str)> {
    plan.updates
        .iter()
        .map(|u| (u.rcpt.as_str(), u.status.as_str()))
        .collect()
}
