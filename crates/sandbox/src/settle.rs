//! Awaiting a promise synchronously: run the job queue, then look at the promise.
//!
//! There are no timers and no I/O in the sandbox, so once the queue is empty a promise that
//! is still pending can never settle.

use boa_engine::builtins::promise::PromiseState;
use boa_engine::object::builtins::JsPromise;
use boa_engine::{Context, JsError, JsValue};

pub enum Settled {
    Fulfilled(JsValue),
    /// Rejected, or the job queue itself failed (an uncatchable engine error such as the
    /// instruction budget running out inside a job).
    Failed(JsError),
    Pending,
}

pub fn settle(promise: &JsPromise, context: &mut Context) -> Settled {
    if let Err(error) = context.run_jobs() {
        return Settled::Failed(error);
    }
    match promise.state() {
        PromiseState::Fulfilled(value) => Settled::Fulfilled(value),
        PromiseState::Rejected(reason) => Settled::Failed(JsError::from_opaque(reason)),
        PromiseState::Pending => Settled::Pending,
    }
}

/// Runs the jobs a call left behind and, if it returned a promise, waits for it.
pub fn settle_value(value: JsValue, context: &mut Context) -> Settled {
    match value.as_promise() {
        Some(promise) => settle(&promise, context),
        None => match context.run_jobs() {
            Ok(()) => Settled::Fulfilled(value),
            Err(error) => Settled::Failed(error),
        },
    }
}
