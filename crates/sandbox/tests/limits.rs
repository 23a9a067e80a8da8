//! Every limit of a run (docs/rule-scripts.md, "Limits"), and that the budget cannot be caught.

mod common;

use common::*;
use thwonk_core::run::{ErrorKind, RunOutcome, SandboxLimits};
use thwonk_sandbox::run;

fn run_with(limits: SandboxLimits, body: &str) -> RunOutcome {
    let script = format!("export function onMessage(msg, thwonk) {{\n{body}\n}}");
    let mut req = on_message(&script);
    req.limits = limits;
    run(&req, &mut MemFs::default())
}

fn small_budget() -> SandboxLimits {
    SandboxLimits {
        instructions: 200_000,
        ..Default::default()
    }
}

fn kind(out: &RunOutcome) -> ErrorKind {
    out.error.as_ref().expect("the run should fail").kind
}

#[test]
fn an_endless_loop_exhausts_the_budget_even_inside_try_catch() {
    let out = run_with(
        small_budget(),
        r#"thwonk.send({ to: "a@b.c" });
        try { while (true) {} } catch (e) { thwonk.log("caught") }
        thwonk.log("after");"#,
    );
    assert_eq!(kind(&out), ErrorKind::BudgetExceeded);
    assert!(out.logs.is_empty());
    assert!(out.effects.sends.is_empty());
    assert_eq!(out.cost.instructions, 200_000);
}

#[test]
fn the_budget_covers_callbacks_from_builtins() {
    let out = run_with(small_budget(), "[1].forEach(() => { while (true) {} })");
    assert_eq!(kind(&out), ErrorKind::BudgetExceeded);
}

#[test]
fn the_budget_covers_loops_spread_over_many_calls() {
    // A per-frame loop limit would never fire here: each call gets a fresh counter.
    let out = run_with(
        small_budget(),
        "function f() { for (let i = 0; i < 100; i++) {} } for (;;) f();",
    );
    assert_eq!(kind(&out), ErrorKind::BudgetExceeded);
}

#[test]
fn the_budget_covers_promise_jobs() {
    let out = run_with(
        small_budget(),
        "const spin = () => Promise.resolve().then(spin); spin();",
    );
    assert_eq!(kind(&out), ErrorKind::BudgetExceeded);
}

#[test]
fn the_budget_cannot_be_caught_by_an_async_handler() {
    let script = r#"export async function onMessage(msg, thwonk) {
        try { await null; for (;;) {} } catch (e) { thwonk.log("caught") }
    }"#;
    let mut req = on_message(script);
    req.limits = small_budget();
    let out = run(&req, &mut MemFs::default());
    assert_eq!(kind(&out), ErrorKind::BudgetExceeded, "{out:?}");
    assert!(out.logs.is_empty());
}

#[test]
fn deep_recursion_hits_the_recursion_limit_uncatchably() {
    let out = run_with(
        SandboxLimits::default(),
        r#"function r(n) { return r(n + 1) + 1 }
        try { r(0) } catch (e) { thwonk.log("caught") }"#,
    );
    let error = out.error.unwrap();
    assert_eq!(error.kind, ErrorKind::BudgetExceeded);
    assert!(error.message.contains("recursion"), "{}", error.message);
    assert!(out.logs.is_empty());
}

#[test]
fn too_many_recipients_throw_a_catchable_limit_error() {
    let limits = SandboxLimits {
        recipients_per_run: 3,
        ..Default::default()
    };
    let out = run_with(
        limits.clone(),
        r#"thwonk.send({ to: ["a@x.org", "b@x.org"] });
        try { thwonk.send({ to: "c@x.org", cc: "d@x.org" }) }
        catch (e) { thwonk.log(e.name, e instanceof Error) }
        thwonk.send({ to: "e@x.org" });"#,
    );
    assert_ok(&out);
    assert_eq!(logged(&out), ["LimitError true"]);
    assert_eq!(out.effects.sends.len(), 2);

    let out = run_with(
        limits,
        r#"thwonk.send({ to: ["a@x.org", "b@x.org", "c@x.org", "d@x.org"] })"#,
    );
    let error = out.error.unwrap();
    assert_eq!(error.kind, ErrorKind::LimitError);
    assert!(
        error.message.contains("recipient limit"),
        "{}",
        error.message
    );
    assert!(out.effects.sends.is_empty());
}

#[test]
fn file_size_and_bytes_per_run_are_limited() {
    let limits = SandboxLimits {
        file_max_bytes: 10,
        vfs_bytes_per_run: 15,
        ..Default::default()
    };
    let out = run_with(
        limits.clone(),
        r#"try { thwonk.files.write("a", "x".repeat(11)) } catch (e) { thwonk.log(e.name) }
        thwonk.files.write("a", "x".repeat(10));
        try { thwonk.files.writeJSON("b", "yyyy") } catch (e) { thwonk.log(e.name) }
        thwonk.files.write("c", "zzzzz");"#,
    );
    assert_ok(&out);
    assert_eq!(logged(&out), ["LimitError", "LimitError"]);
    assert_eq!(out.effects.writes.len(), 2);

    let out = run_with(limits, r#"thwonk.files.write("a", "x".repeat(11))"#);
    assert_eq!(kind(&out), ErrorKind::LimitError);
    assert!(out.effects.writes.is_empty());
}

#[test]
fn logs_past_the_log_budget_are_dropped_and_marked() {
    let limits = SandboxLimits {
        log_bytes_per_run: 10,
        ..Default::default()
    };
    let out = run_with(
        limits,
        r#"thwonk.log("12345"); thwonk.log("123456"); thwonk.log("1");"#,
    );
    assert_ok(&out);
    assert_eq!(logged(&out), ["12345"]);
    assert!(out.logs_truncated);
}

#[test]
fn the_wall_clock_is_enforced_when_the_script_calls_the_api() {
    let limits = SandboxLimits {
        wall_clock_ms: 1,
        ..Default::default()
    };
    let out = run_with(
        limits,
        r#"for (let i = 0; i < 300000; i++) {}
        try { thwonk.log("late") } catch (e) {}
        thwonk.send({ to: "a@b.c" });"#,
    );
    assert_eq!(kind(&out), ErrorKind::Timeout);
    assert!(out.effects.sends.is_empty());
    assert!(out.cost.wall_ms >= 1);
}

#[test]
fn oversized_or_too_deep_source_is_a_compile_error_at_run_time() {
    let mut req = on_message(&format!(
        "export function onMessage() {{ return {}1{} }}",
        "(".repeat(300),
        ")".repeat(300)
    ));
    let out = run(&req, &mut MemFs::default());
    assert_eq!(kind(&out), ErrorKind::CompileError);
    req.script = "export function onMessage() {}".into();
    req.limits.script_max_bytes = 10;
    let out = run(&req, &mut MemFs::default());
    assert_eq!(kind(&out), ErrorKind::CompileError);
}

#[test]
fn deep_json_does_not_crash_the_process() {
    // JSON.stringify recurses on the native stack; the engine thread's big stack absorbs it.
    // It takes ≈ 1 s in a debug build: the wall clock is not what this test is about.
    let out = run_with(
        SandboxLimits {
            wall_clock_ms: 30_000,
            ..Default::default()
        },
        r#"let a = []; for (let i = 0; i < 10000; i++) a = [a];
        thwonk.log(JSON.stringify(a).length);"#,
    );
    assert_ok(&out);
    assert_eq!(logged(&out), ["20002"]);
}
