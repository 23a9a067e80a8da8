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
    // Its work (≈ 1 s in a debug build) is charged: a budget big enough lets it finish.
    let out = run_with(
        SandboxLimits {
            wall_clock_ms: 30_000,
            instructions: 1_000_000_000,
            ..Default::default()
        },
        r#"let a = []; for (let i = 0; i < 10000; i++) a = [a];
        thwonk.log(JSON.stringify(a).length);"#,
    );
    assert_ok(&out);
    assert_eq!(logged(&out), ["20002"]);
    assert!(
        out.cost.instructions > 50_000_000,
        "the copying is charged: {}",
        out.cost.instructions
    );
}

/// Scripts whose work is inside built-ins, each wrapped in `try`: every one ends with
/// BudgetExceeded (uncatchably), with the same count every run, and costs no more time per
/// instruction than plain bytecode does: the budget bounds CPU whatever the script does.
#[test]
fn work_inside_built_ins_is_charged_to_the_budget_deterministically() {
    let limits = SandboxLimits {
        instructions: 5_000_000,
        wall_clock_ms: 120_000,
        ..Default::default()
    };
    let timed = |body: &str| {
        let out = run_with(limits.clone(), body);
        assert_eq!(
            kind(&out),
            ErrorKind::BudgetExceeded,
            "{body}: {:?}",
            out.error
        );
        out
    };
    // The yardstick: the same budget spent on bytecode alone.
    let bytecode_ms = timed("let i = 0; while (true) i++;").cost.wall_ms;
    let hostile = [
        (
            "deep stringify",
            "let a = []; for (let i = 0; i < 10000; i++) a = [a]; JSON.stringify(a);",
        ),
        ("huge repeat", r#""abcd".repeat(100000000);"#),
        ("huge padStart", r#""x".padStart(400000000, "ab");"#),
        ("big sort", "new Array(3000000).sort();"),
        ("big fill", "new Array(30000000).fill(1);"),
        ("big join", r#"new Array(60000000).join("x");"#),
        (
            "join of long strings",
            r#"const s = "y".repeat(100000); const a = new Array(100).fill(s); for (;;) a.join("");"#,
        ),
        (
            "regex scans",
            r#"const s = "a".repeat(1000000); for (;;) /b/.test(s);"#,
        ),
        (
            "parse",
            r#"const t = JSON.stringify("z".repeat(1000000)); for (;;) JSON.parse(t);"#,
        ),
    ];
    for (what, code) in hostile {
        let body = format!(
            "try {{ {code} }} catch (e) {{ thwonk.log('caught ' + e); }}\nthwonk.log('after');"
        );
        let first = timed(&body);
        eprintln!(
            "{what}: {} ms, {} instructions (bytecode alone: {bytecode_ms} ms)",
            first.cost.wall_ms, first.cost.instructions
        );
        assert!(
            first.logs.is_empty(),
            "{what}: no catch, nothing after: {:?}",
            first.logs
        );
        assert_eq!(first.cost.instructions, limits.instructions, "{what}");
        let second = timed(&body);
        assert_eq!(second.cost.instructions, first.cost.instructions, "{what}");
        assert_eq!(second.error, first.error, "{what}");
        assert!(
            first.cost.wall_ms <= 2 * bytecode_ms + 100,
            "{what}: {} ms for a budget that bytecode alone spends in {bytecode_ms} ms",
            first.cost.wall_ms
        );
    }
}

#[test]
fn charged_built_ins_behave_as_before() {
    let out = run_with(
        SandboxLimits::default(),
        r##"const v = { b: [1, "two", { c: null }], a: true, n: 1.5 };
        thwonk.log(JSON.stringify(v));
        thwonk.log(JSON.stringify(v, null, 2).split("\n").length);
        thwonk.log(JSON.stringify(v, ["a", "n"]));
        thwonk.log(JSON.stringify(v, (k, x) => (typeof x === "number" ? x * 2 : x)));
        thwonk.log(JSON.stringify({ toJSON() { return "tj"; } }), JSON.stringify(undefined));
        try { const o = {}; o.o = o; JSON.stringify(o); } catch (e) { thwonk.log(e.name); }
        thwonk.log(JSON.parse("[1,2]").length, [3, 1, 2].sort().join("-"), [3, 1, 2].sort((x, y) => y - x).join());
        thwonk.log("ab".repeat(3), "7".padStart(3, "0"), "a,b".split(","), "aXbX".replaceAll("X", "."));
        thwonk.log(/b(c)/.exec("abcd").index, "a1b2".replace(/\d/g, "#"), JSON.stringify.name, JSON.stringify.length, [].sort.name);
        thwonk.log(thwonk.budget().instructionsLeft < 50000000);"##,
    );
    assert_ok(&out);
    assert_eq!(
        logged(&out),
        [
            r#"{"b":[1,"two",{"c":null}],"a":true,"n":1.5}"#,
            "11",
            r#"{"a":true,"n":1.5}"#,
            r#"{"b":[2,"two",{"c":null}],"a":true,"n":3}"#,
            r#""tj" undefined"#,
            "TypeError",
            "2 1-2-3 3,2,1",
            r#"ababab 007 ["a","b"] a.b."#,
            "1 a#b# stringify 3 sort",
            "true",
        ]
    );
}

#[test]
fn a_big_message_costs_the_script_nothing_until_it_works_on_it() {
    let body = "line of text\n".repeat(200_000);
    let script =
        "export function onMessage(msg, thwonk) { thwonk.log(thwonk.budget().instructionsLeft); }";
    let small = run(&on_message(script), &mut MemFs::default());
    let mut req = request(
        script,
        thwonk_core::run::Trigger::Message(message("alice@example.net", "big", &body)),
    );
    req.limits = SandboxLimits::default();
    let big = run(&req, &mut MemFs::default());
    assert_ok(&small);
    assert_ok(&big);
    assert_eq!(
        big.cost.instructions, small.cost.instructions,
        "turning 2.6 MB of mail into msg is Thwonk's work, not the script's"
    );
}
