//! Turning what went wrong in the engine into the [`RunError`] a user reads.

use boa_engine::error::{EngineError, RuntimeLimitError};
use boa_engine::{Context, JsError, JsValue, js_string};
use thwonk_core::run::{ErrorKind, RunError, SandboxLimits};

/// Classifies a failure. Order matters: an abort recorded by an API call (store failure, wall
/// clock) explains the engine error it caused; an exhausted budget explains whatever error
/// surfaced after it.
pub fn run_error(
    error: JsError,
    abort: Option<RunError>,
    limits: &SandboxLimits,
    context: &mut Context,
) -> RunError {
    if let Some(abort) = abort {
        return abort;
    }
    if context.instructions_remaining() == 0 {
        return budget_exceeded(limits);
    }
    if let Some(engine) = error.as_engine() {
        let (kind, message) = match engine {
            EngineError::NoInstructionsRemain => return budget_exceeded(limits),
            EngineError::RuntimeLimit(RuntimeLimitError::Recursion) => (
                ErrorKind::BudgetExceeded,
                format!(
                    "recursion limit of {} calls exceeded",
                    limits.recursion_depth
                ),
            ),
            EngineError::RuntimeLimit(limit) => (ErrorKind::BudgetExceeded, limit.to_string()),
            EngineError::Panic(p) => (ErrorKind::Internal, format!("engine fault: {p}")),
        };
        return RunError {
            kind,
            message,
            stack: None,
        };
    }
    script_error(error, context)
}

pub fn budget_exceeded(limits: &SandboxLimits) -> RunError {
    RunError {
        kind: ErrorKind::BudgetExceeded,
        message: format!("instruction budget of {} exhausted", limits.instructions),
        stack: None,
    }
}

/// What the script threw: `Name: message` and the stack for errors, the value otherwise. An
/// error named `LimitError` (thrown by the API, not caught) is reported as such.
fn script_error(error: JsError, context: &mut Context) -> RunError {
    let value = error
        .into_opaque(context)
        .unwrap_or_else(|_| JsValue::from(js_string!("an error that cannot be shown")));
    let Some(object) = value.as_object() else {
        return RunError {
            kind: ErrorKind::ScriptError,
            message: format!("Uncaught {}", value.display()),
            stack: None,
        };
    };
    let mut text = |key: &str| -> Option<String> {
        let v = object.get(js_string!(key), context).ok()?;
        v.as_string().map(|s| s.to_std_string_escaped())
    };
    let name = text("name");
    let message = text("message");
    let stack = text("stack").filter(|s| !s.is_empty());
    let kind = if name.as_deref() == Some("LimitError") {
        ErrorKind::LimitError
    } else {
        ErrorKind::ScriptError
    };
    let message = match (name, message) {
        (Some(n), Some(m)) if !m.is_empty() => format!("{n}: {m}"),
        (Some(n), _) => n,
        (None, Some(m)) => m,
        (None, None) => format!("Uncaught {}", value.display()),
    };
    RunError {
        kind,
        message,
        stack,
    }
}
