//! One run of a rule script: pick the handler for the trigger, call it, await it, and turn
//! what happened into a [`RunOutcome`].
//!
//! The engine runs on its own thread (see [`crate::engine`]); the caller's thread serves file
//! reads meanwhile ([`crate::remote`]). A panic inside the engine is contained on that thread
//! and reported as `Internal`. Process-level aborts (a native stack overflow, a failed huge
//! allocation) are not: that is why only sandbox workers ([`crate::worker`]) call this.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Instant;

use boa_engine::module::Module;
use boa_engine::object::ObjectInitializer;
use boa_engine::property::Attribute;
use boa_engine::{Context, JsError, JsValue, Source, js_string};
use thwonk_core::run::{
    Cost, ErrorKind, RunError, RunOutcome, RunRequest, RunStatus, Trigger, VfsReader,
};

use crate::api::msg::message_object;
use crate::api::thwonk::{console_object, thwonk_object};
use crate::check::{ScriptKind, script_kind};
use crate::engine::{ENGINE_STACK_BYTES, new_context};
use crate::failure::{budget_exceeded, run_error};
use crate::host::Host;
use crate::remote::{RemoteReader, ToCaller, serve};
use crate::scan::scan;
use crate::settle::{Settled, settle, settle_value};
use crate::state::RunState;

/// Run one script synchronously on the calling thread (a sandbox worker calls it for each
/// job). Never panics on hostile input; every failure is a RunOutcome with status Error.
pub fn run(req: &RunRequest, vfs: &mut dyn VfsReader) -> RunOutcome {
    let started = Instant::now();
    let (requests_tx, requests_rx) = mpsc::channel();
    let (answers_tx, answers_rx) = mpsc::channel();
    let finished = requests_tx.clone();
    let reader = RemoteReader {
        requests: requests_tx,
        answers: answers_rx,
    };
    let mut outcome = std::thread::scope(|s| {
        let engine = std::thread::Builder::new()
            .name("thwonk-sandbox".into())
            .stack_size(ENGINE_STACK_BYTES)
            .spawn_scoped(s, move || {
                let outcome = catch_unwind(AssertUnwindSafe(|| execute(req, reader, started)))
                    .unwrap_or_else(|_| {
                        RunOutcome::failed(ErrorKind::Internal, "the script engine panicked")
                    });
                // The caller stops serving reads when this arrives.
                let _ = finished.send(ToCaller::Finished(Box::new(outcome)));
            });
        match engine {
            Ok(handle) => {
                let outcome = serve(vfs, requests_rx, answers_tx);
                let _ = handle.join();
                outcome.unwrap_or_else(|| {
                    RunOutcome::failed(ErrorKind::Internal, "the script engine stopped")
                })
            }
            Err(e) => RunOutcome::failed(
                ErrorKind::Internal,
                format!("could not start the script engine thread: {e}"),
            ),
        }
    });
    outcome.cost.wall_ms = started.elapsed().as_millis() as u64;
    outcome.cap_error(req.limits.error_max_bytes);
    outcome
}

/// The run, on the engine thread.
fn execute(req: &RunRequest, reader: RemoteReader, started: Instant) -> RunOutcome {
    let limits = &req.limits;
    // Deploy checked this already, but limits may have changed since: never hand Boa a
    // source that could overflow its parser.
    let kind = match scan(
        &req.script,
        limits.script_max_bytes,
        limits.script_max_depth,
    )
    .and_then(|()| script_kind(&req.script))
    {
        Ok(kind) => kind,
        Err(e) => return RunOutcome::failed(ErrorKind::CompileError, e.to_string()),
    };
    let (mut context, meter) = match new_context(limits, req.now_ms, &req.run_id) {
        Ok(c) => c,
        Err(e) => return RunOutcome::failed(ErrorKind::Internal, format!("engine setup: {e}")),
    };
    let state = RunState::new(req, Box::new(reader), started);
    let host = match Host::new(state, meter.clone(), &mut context) {
        Ok(h) => h,
        Err(e) => return RunOutcome::failed(ErrorKind::Internal, format!("engine setup: {e}")),
    };

    let result = match kind {
        ScriptKind::Module => run_module(req, &host, &mut context),
        ScriptKind::Classic => run_classic(req, &host, &mut context),
    };
    // Bytecode and the built-ins' charged work together (crate::meter).
    let instructions = meter.used(&context).min(limits.instructions);
    let over_budget =
        context.instructions_remaining() == 0 || meter.exhausted() || meter.left(&context) == 0;

    let mut state = host.state.borrow_mut();
    let result = match (result, state.abort.clone()) {
        // An abort explains any other error, and one the script outlived still fails the run.
        (_, Some(abort)) => Err(abort),
        // Whatever surfaced after the budget ran out (a job queue that stopped early, a
        // promise left pending), the cause is the budget.
        _ if over_budget => Err(budget_exceeded(limits)),
        (result, None) => result,
    };
    let result = result.and_then(|response| {
        if state.ms_left() == 0 {
            // In-process the engine cannot be stopped mid-run; the verdict is the same.
            Err(RunError {
                kind: ErrorKind::Timeout,
                message: format!("wall-clock limit of {} ms exceeded", limits.wall_clock_ms),
                stack: None,
            })
        } else {
            Ok(response)
        }
    });
    let (status, error, effects, response) = match result {
        Ok(response) => (
            RunStatus::Ok,
            None,
            std::mem::take(&mut state.effects),
            response,
        ),
        // A failed run is a rolled-back transaction: its effects are dropped here.
        Err(error) => (RunStatus::Error, Some(error), Default::default(), None),
    };
    RunOutcome {
        status,
        error,
        effects,
        logs: std::mem::take(&mut state.logs),
        logs_truncated: state.logs_truncated,
        cost: Cost {
            instructions,
            wall_ms: 0,
        },
        response,
    }
}

/// The handler's response (for `onRequest`) or the reason the run failed.
type RunResult = Result<Option<serde_json::Value>, RunError>;

fn run_module(req: &RunRequest, host: &Host, context: &mut Context) -> RunResult {
    let fail = |e: JsError, context: &mut Context| fail(e, host, req, context);
    let name = script_name(req);
    let module = Module::parse(
        Source::from_bytes(&req.script).with_path(&name),
        None,
        context,
    )
    .map_err(|e| RunError {
        kind: ErrorKind::CompileError,
        message: e.to_string(),
        stack: None,
    })?;
    let console = console_object(host, context).map_err(|e| fail(e, context))?;
    context
        .register_global_property(js_string!("console"), console, Attribute::all())
        .map_err(|e| fail(e, context))?;

    // Loading and linking fail only on `import`s (there is no module loader): CompileError.
    let loaded = module.load(context);
    let linked = match settle(&loaded, context) {
        Settled::Fulfilled(_) => module.link(context).map_err(|e| fail(e, context)),
        Settled::Failed(e) => Err(fail(e, context)),
        Settled::Pending => Err(never_settled("loading the module")),
    };
    linked.map_err(|e| RunError {
        kind: ErrorKind::CompileError,
        ..e
    })?;
    let evaluated = module.evaluate(context).map_err(|e| fail(e, context))?;
    match settle(&evaluated, context) {
        Settled::Fulfilled(_) => {}
        Settled::Failed(e) => return Err(fail(e, context)),
        Settled::Pending => return Err(never_settled("the module's top-level code")),
    }

    let (name, event) = match &req.trigger {
        Trigger::Message(view) => (
            "onMessage",
            message_object(view, host, context)
                .map_err(|e| fail(e, context))?
                .into(),
        ),
        Trigger::Schedule { at, schedule } => (
            "onSchedule",
            ObjectInitializer::new(context)
                .property(js_string!("at"), js_string!(at.as_str()), Attribute::all())
                .property(
                    js_string!("schedule"),
                    js_string!(schedule.as_str()),
                    Attribute::all(),
                )
                .build()
                .into(),
        ),
        Trigger::Request { body, http } => {
            let request = crate::api::request::request_object(body, http.as_ref(), host, context)
                .map_err(|e| fail(e, context))?;
            ("onRequest", request.into())
        }
        Trigger::JobResult { result } => (
            "onJobResult",
            host.json_to_js(result, context)
                .map_err(|e| fail(e, context))?,
        ),
    };
    let namespace = module.namespace(context);
    let named = match &req.trigger {
        Trigger::Request {
            http:
                Some(thwonk_core::run::HttpRequestView {
                    handler: Some(method),
                    ..
                }),
            ..
        } => Some(method.as_str()),
        _ => None,
    };
    let handler = match named {
        Some(method) => crate::api::request::method_handler(&namespace, method, context)
            .map_err(|e| fail(e, context))?,
        None => namespace
            .get(js_string!(name), context)
            .map_err(|e| fail(e, context))?,
    };
    let Some(handler) = handler.as_callable() else {
        let message = match named {
            Some(method) => format!("the script exports no methods.{method} function"),
            None => format!("the script exports no {name} function"),
        };
        return Err(RunError {
            kind: ErrorKind::NoHandler,
            message,
            stack: None,
        });
    };
    let thwonk = thwonk_object(host, context).map_err(|e| fail(e, context))?;
    let returned = handler
        .call(&JsValue::undefined(), &[event, thwonk.into()], context)
        .map_err(|e| fail(e, context))?;
    match settle_value(returned, context) {
        Settled::Fulfilled(value) => match req.trigger {
            Trigger::Request { .. } => host
                .js_to_json(&value, context)
                .map(Some)
                .map_err(|e| fail(e, context)),
            _ => Ok(None),
        },
        Settled::Failed(e) => Err(fail(e, context)),
        Settled::Pending => Err(never_settled(&format!("{name}'s promise"))),
    }
}

fn run_classic(req: &RunRequest, host: &Host, context: &mut Context) -> RunResult {
    if !matches!(req.trigger, Trigger::Message(_)) {
        return Err(RunError {
            kind: ErrorKind::NoHandler,
            message: "a classic script (no exports) runs only for messages".into(),
            stack: None,
        });
    }
    crate::legacy::install(host, context).map_err(|e| fail(e, host, req, context))?;
    let name = script_name(req);
    let value = context
        .eval(Source::from_bytes(&req.script).with_path(&name))
        .map_err(|e| fail(e, host, req, context))?;
    match settle_value(value, context) {
        Settled::Fulfilled(_) => Ok(None),
        Settled::Failed(e) => Err(fail(e, host, req, context)),
        Settled::Pending => Err(never_settled("the script")),
    }
}

fn fail(error: JsError, host: &Host, req: &RunRequest, context: &mut Context) -> RunError {
    // Cloned first: classifying may run JS (getters on the thrown object), which may log.
    let abort = host.state.borrow().abort.clone();
    run_error(error, abort, &req.limits, &req.script, context)
}

/// The name stack traces give the script: the thwonk's address (`list@example.org:3:7`).
fn script_name(req: &RunRequest) -> std::path::PathBuf {
    std::path::PathBuf::from(&req.thwonk.address)
}

fn never_settled(what: &str) -> RunError {
    RunError {
        kind: ErrorKind::ScriptError,
        message: format!("{what} never settled (it awaits something that cannot happen)"),
        stack: None,
    }
}
