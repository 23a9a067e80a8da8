//! `thwonk.jobs(queue)`: jobs for workers in any language, buffered with the run and published
//! only when it commits. The runner names the Thoonk queue `{address}/{queue}`, so a script
//! reaches only its own thwonk's queues, never Thwonk's (`inbound`, `outbound`).

use boa_engine::object::{IntegrityLevel, ObjectInitializer};
use boa_engine::property::Attribute;
use boa_engine::{Context, JsNativeError, JsResult, JsString, JsValue, NativeFunction, js_string};
use thwonk_core::run::JobPublish;

use crate::host::{Host, arg, check_plain_name, to_text};
use crate::state::ApiError;

/// Longest queue name, bytes.
pub const MAX_QUEUE_BYTES: usize = 64;
/// Largest payload, bytes (as a file).
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Jobs one run may publish.
pub const MAX_JOBS_PER_RUN: usize = 100;

/// Queue names become part of Redis keys (after the thwonk's address): keep them plain.
pub fn check_queue(name: &str) -> Result<(), ApiError> {
    check_plain_name("job queue", name, MAX_QUEUE_BYTES, b"-_.")
}

/// `thwonk.jobs(queue)` → `{queue, publish}`.
pub fn jobs(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let name = to_text(&arg(args, 0), context)?;
    check_queue(&name).map_err(|e| host.throw(e, context))?;
    let captures = (host.clone(), JsString::from(name.as_str()));
    let publish = NativeFunction::from_copy_closure_with_captures(publish, captures);
    let queue = ObjectInitializer::new(context)
        .property(js_string!("queue"), js_string!(name), Attribute::ENUMERABLE)
        .function(publish, js_string!("publish"), 1)
        .build();
    queue.set_integrity_level(IntegrityLevel::Frozen, context)?;
    Ok(queue.into())
}

/// `publish(payload)` → the job's id (`{run_id}.j{n}`): a string payload goes as it is, any
/// other value as JSON.
fn publish(
    _: &JsValue,
    args: &[JsValue],
    (host, queue): &(Host, JsString),
    context: &mut Context,
) -> JsResult<JsValue> {
    let payload = arg(args, 0);
    if payload.is_undefined() {
        return Err(JsNativeError::typ()
            .with_message("jobs.publish: a payload is required")
            .into());
    }
    let payload = match payload.as_string() {
        Some(s) => s.to_std_string_escaped(),
        None => host.stringify(&payload, context)?.ok_or_else(|| {
            JsNativeError::typ().with_message("jobs.publish: the payload has no JSON form")
        })?,
    };
    let queue = queue.to_std_string_escaped();
    let id = host.with(context, |s| {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ApiError::Limit(format!(
                "job payload of {} bytes is over the limit of {MAX_PAYLOAD_BYTES}",
                payload.len()
            )));
        }
        if s.effects.jobs.len() >= MAX_JOBS_PER_RUN {
            return Err(ApiError::Limit(format!(
                "job limit of {MAX_JOBS_PER_RUN} per run exceeded"
            )));
        }
        let id = format!("{}.j{}", s.run_id, s.effects.jobs.len() + 1);
        s.effects.jobs.push(JobPublish {
            queue,
            id: id.clone(),
            payload,
        });
        Ok(id)
    })?;
    Ok(js_string!(id).into())
}
