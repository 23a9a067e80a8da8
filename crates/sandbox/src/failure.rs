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
    source: &str,
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
    script_error(error, source, context)
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
fn script_error(error: JsError, source: &str, context: &mut Context) -> RunError {
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
    // Boa says "not a callable function" without saying what was called: the callee's text
    // is read from the source, at the position of the call the stack gives.
    let message = match (message, stack.as_deref().and_then(top_position)) {
        (Some(m), Some((line, column))) if m == NOT_CALLABLE => {
            match callee_at(source, line, column) {
                Some(callee) => Some(format!("{callee} is not a function")),
                None => Some(m),
            }
        }
        (m, _) => m,
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

/// Boa's message for calling what is not a function.
const NOT_CALLABLE: &str = "not a callable function";

/// The line and column of the innermost frame of a Boa stack
/// (`    at onMessage (list@example.org:4:17)`).
fn top_position(stack: &str) -> Option<(usize, usize)> {
    let first = stack.lines().next()?.trim_end().strip_suffix(')')?;
    let mut parts = first.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((line, column))
}

/// The callee of the call whose argument list opens at `line:column` (1-based, the position
/// Boa gives a call): the member chain before the `(`, such as `helpers.format` or
/// `list[0].send`. `None` when there is nothing recognisable there.
fn callee_at(source: &str, line: usize, column: usize) -> Option<String> {
    let text = source.lines().nth(line.checked_sub(1)?)?;
    let chars: Vec<char> = text.chars().collect();
    let open = column.checked_sub(1)?;
    if chars.get(open) != Some(&'(') {
        return None;
    }
    let mut start = open;
    let mut depth = 0usize;
    while start > 0 {
        let c = chars[start - 1];
        match c {
            ']' => depth += 1,
            '[' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            c if c.is_alphanumeric() || matches!(c, '_' | '$' | '.' | '?') => {}
            _ => break,
        }
        start -= 1;
    }
    let callee: String = chars[start..open].iter().collect();
    let callee = callee
        .trim_start_matches(['.', '?'])
        .trim_end_matches(['.', '?'])
        .to_string();
    (!callee.is_empty() && depth == 0 && callee.len() <= 200).then_some(callee)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_frame_position_is_read_from_a_boa_stack() {
        assert_eq!(
            top_position("    at onMessage (list@example.org:4:17)\n    at <main> (x:1:1)\n"),
            Some((4, 17))
        );
        assert_eq!(top_position("    at f (native)\n"), None);
        assert_eq!(top_position(""), None);
    }

    #[test]
    fn the_callee_is_the_member_chain_before_the_paren() {
        let src = "a;\n  helpers.format(msg.subject);\n x = list[i + 1].send?.(1); y = f(g(2));";
        assert_eq!(callee_at(src, 2, 17).as_deref(), Some("helpers.format"));
        assert_eq!(callee_at(src, 3, 24).as_deref(), Some("list[i + 1].send"));
        assert_eq!(callee_at(src, 3, 34).as_deref(), Some("f"));
        assert_eq!(callee_at(src, 3, 36).as_deref(), Some("g"));
        assert_eq!(callee_at(src, 2, 3), None, "not at a paren");
        assert_eq!(callee_at(src, 9, 1), None, "no such line");
    }
}
