//! Sandbox worker processes, for real: the wall, and scripts that would kill the daemon.
//!
//! Every test here runs scripts through a [`WorkerPool`] of `thwonk-sandbox-worker`
//! processes, the same entry point as `thwonk __sandbox-worker`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use thwonk_core::run::{ErrorKind, RunOutcome, SandboxLimits};
use thwonk_sandbox::WorkerPool;
use thwonk_sandbox::wall::Layer;

const WORKER: &str = env!("CARGO_BIN_EXE_thwonk-sandbox-worker");

fn pool(size: usize) -> WorkerPool {
    WorkerPool::with_program(WORKER, size, SandboxLimits::default().memory_mib)
}

fn run_in(pool: &WorkerPool, limits: SandboxLimits, body: &str) -> RunOutcome {
    let script = format!("export function onMessage(msg, thwonk) {{\n{body}\n}}");
    let mut req = on_message(&script);
    req.limits = limits;
    pool.run(&req, &mut MemFs::default())
        .expect("the pool starts workers")
}

fn kind(out: &RunOutcome) -> ErrorKind {
    out.error.as_ref().expect("the run should fail").kind
}

#[test]
fn a_run_in_a_worker_reads_files_and_returns_its_effects() {
    let pool = pool(1);
    let mut fs = MemFs::with(&[("members.json", r#"["a@example.net"]"#)]);
    let script = r#"export function onMessage(msg, thwonk) {
        const m = thwonk.files.readJSON("members.json");
        thwonk.log(String(m.length), String(thwonk.files.list("").length));
        thwonk.files.writeJSON("members.json", [...m, msg.from]);
    }"#;
    let out = pool.run(&on_message(script), &mut fs).unwrap();
    assert_ok(&out);
    assert_eq!(logged(&out), ["1 1"]);
    assert_eq!(out.effects.writes.len(), 1);
    assert_eq!(fs.reads, 1);
}

#[test]
fn the_wall_denies_files_network_and_processes_but_not_threads() {
    let (wall, probe) = pool(1).probe().unwrap();
    eprintln!("wall: {wall:?}\nprobe: {probe:?}");
    assert!(wall.address_space_mib > SandboxLimits::default().memory_mib);
    let denied = |r: &Result<(), String>| {
        r.as_ref().is_err_and(|e| {
            e.contains("Operation not permitted") || e.contains("Permission denied")
        })
    };
    assert_eq!(
        wall.seccomp,
        Layer::Enforced,
        "seccomp is up on this kernel"
    );
    assert!(denied(&probe.open_file), "{:?}", probe.open_file);
    assert!(denied(&probe.connect), "{:?}", probe.connect);
    assert!(probe.spawn_process.is_err(), "{:?}", probe.spawn_process);
    assert_eq!(probe.spawn_thread, Ok(()));
}

fn short_deadline() -> SandboxLimits {
    SandboxLimits {
        wall_clock_ms: 1_000,
        ..Default::default()
    }
}

/// Time enough for a memory bomb to reach the address-space limit in a debug build on a
/// busy machine.
/// A budget too big to stop the bomb first: `repeat`'s work is charged to the budget
/// (crate::meter), which would otherwise refuse a 2^28-character string before memory does.
fn memory_bomb_limits() -> SandboxLimits {
    SandboxLimits {
        wall_clock_ms: 10_000,
        instructions: 10_000_000_000,
        ..Default::default()
    }
}

/// The kinds a memory bomb may end in: the worker died at its address-space limit (the usual
/// end), Boa refused the size up front, or a very slow machine met the deadline first.
fn contained_memory_bomb(out: &RunOutcome) {
    let error = out.error.as_ref().expect("the run should fail");
    assert!(
        matches!(
            error.kind,
            ErrorKind::OutOfMemory
                | ErrorKind::ScriptError
                | ErrorKind::LimitError
                | ErrorKind::Timeout
        ),
        "{error:?}"
    );
}

#[test]
fn a_huge_string_repeat_runs_out_of_memory_in_the_worker() {
    let pool = pool(1);
    let out = run_in(&pool, memory_bomb_limits(), "'x'.repeat(2**28);");
    eprintln!("{:?}", out.error);
    contained_memory_bomb(&out);
    assert_ok(&run_in(&pool, short_deadline(), "thwonk.log('next')"));
}

#[test]
fn string_doubling_runs_out_of_memory_in_the_worker() {
    let out = run_in(
        &pool(1),
        memory_bomb_limits(),
        "let s = 'xx'; for (;;) { s = s + s; thwonk.log(String(s.length)); }",
    );
    eprintln!("{:?}", out.error);
    contained_memory_bomb(&out);
}

#[test]
fn json_stringify_of_a_10000_deep_array_is_contained() {
    // In-process this aborted the daemon on a small stack. In a worker it either succeeds on
    // the engine's big stack or, on a slow machine, meets the deadline; it never takes the
    // parent or the pool down. (Under the default budget its work, which is charged, ends
    // it with BudgetExceeded first: crates/sandbox/tests/limits.rs.)
    let pool = pool(1);
    let out = run_in(
        &pool,
        SandboxLimits {
            instructions: 10_000_000_000,
            ..Default::default()
        },
        "let a = []; for (let i = 0; i < 10000; i++) a = [a]; thwonk.log(String(JSON.stringify(a).length));",
    );
    match &out.error {
        None => assert_eq!(logged(&out), ["20002"]),
        Some(e) => assert!(
            matches!(e.kind, ErrorKind::Timeout | ErrorKind::WorkerCrashed),
            "{e:?}"
        ),
    }
    assert_ok(&run_in(&pool, short_deadline(), "thwonk.log('next')"));
}

#[test]
fn catastrophic_regex_backtracking_is_killed_at_the_deadline() {
    let limits = short_deadline();
    let started = Instant::now();
    let out = run_in(
        &pool(1),
        limits.clone(),
        "/(a+)+$/.test('a'.repeat(40) + 'b');",
    );
    let took = started.elapsed();
    assert_eq!(kind(&out), ErrorKind::Timeout, "{:?}", out.error);
    assert!(
        took < Duration::from_millis(limits.wall_clock_ms + 1_000),
        "the deadline is honoured: {took:?}"
    );
    assert!(out.cost.wall_ms >= limits.wall_clock_ms);
}

#[test]
fn a_50_million_element_fill_is_refused_by_the_budget_or_contained() {
    // Its work is charged before it starts (crate::meter): 16 instructions an element.
    let out = run_in(&pool(1), short_deadline(), "Array(5e7).fill(0);");
    assert_eq!(kind(&out), ErrorKind::BudgetExceeded, "{:?}", out.error);
    assert!(
        out.cost.wall_ms < 500,
        "refused up front: {} ms",
        out.cost.wall_ms
    );
    // With a budget that allows it, the worker contains it.
    let limits = SandboxLimits {
        instructions: 10_000_000_000,
        ..short_deadline()
    };
    let out = run_in(&pool(1), limits, "Array(5e7).fill(0);");
    eprintln!("{:?}", out.error);
    assert!(
        matches!(kind(&out), ErrorKind::Timeout | ErrorKind::OutOfMemory),
        "{:?}",
        out.error
    );
}

/// Room for the 100k-long chains below: the size limit would refuse them before Boa's parser
/// ever saw them, and the point is what the parser does.
fn big_scripts() -> SandboxLimits {
    SandboxLimits {
        script_max_bytes: 1024 * 1024,
        ..Default::default()
    }
}

#[test]
fn a_100k_ternary_chain_is_refused_at_check_time_without_crashing_the_parent() {
    let pool = pool(1);
    let source = format!("{}0", "a?b:".repeat(100_000));
    let refused = pool.check(&source, &big_scripts()).unwrap();
    let error = refused.expect_err("refused");
    eprintln!("{error}");
    // The worker that died on it was replaced: the next check works.
    let ok = pool
        .check("export function onMessage() {}", &SandboxLimits::default())
        .unwrap();
    assert_eq!(ok.unwrap().handlers, ["onMessage"]);
}

#[test]
fn a_100k_arrow_chain_is_refused_at_check_time_without_crashing_the_parent() {
    let source = format!("{}0", "x=>".repeat(100_000));
    let refused = pool(1).check(&source, &big_scripts()).unwrap();
    eprintln!("{}", refused.expect_err("refused"));
}

#[test]
fn a_killed_worker_is_replaced_and_the_next_run_succeeds() {
    let pool = pool(1);
    let out = run_in(
        &pool,
        short_deadline(),
        "for (;;) { /(a+)+$/.test('a'.repeat(40) + 'b'); }",
    );
    assert_eq!(kind(&out), ErrorKind::Timeout);
    let next = run_in(&pool, short_deadline(), "thwonk.log('still here')");
    assert_ok(&next);
    assert_eq!(logged(&next), ["still here"]);
}

#[test]
fn while_one_worker_is_being_killed_another_run_on_the_pool_completes() {
    let pool = pool(2);
    pool.warm_up().unwrap();
    std::thread::scope(|s| {
        let hostile = s.spawn(|| {
            let out = run_in(
                &pool,
                short_deadline(),
                "/(a+)+$/.test('a'.repeat(40) + 'b');",
            );
            (out, Instant::now())
        });
        // Give the hostile run its worker first.
        std::thread::sleep(Duration::from_millis(100));
        let mut fs = MemFs::with(&[("n.txt", "41")]);
        let script = r#"export function onMessage(msg, thwonk) {
            thwonk.log(String(Number(thwonk.files.read("n.txt")) + 1));
        }"#;
        let out = pool.run(&on_message(script), &mut fs).unwrap();
        let done = Instant::now();
        assert_ok(&out);
        assert_eq!(logged(&out), ["42"]);
        let (hostile_out, hostile_done) = hostile.join().unwrap();
        assert_eq!(kind(&hostile_out), ErrorKind::Timeout);
        assert!(
            done < hostile_done,
            "the good run did not wait for the hostile one"
        );
    });
}

#[test]
fn prototype_pollution_does_not_survive_into_the_next_run() {
    // One worker, so both runs share a process: only a fresh realm per run keeps them apart.
    let pool = pool(1);
    let polluter = run_in(
        &pool,
        SandboxLimits::default(),
        r#"Object.prototype.polluted = "yes";
           Array.prototype.includes = () => true;
           JSON.parse = () => ({ owned: true });
           globalThis.leak = 42;"#,
    );
    assert_ok(&polluter);
    let victim = run_in(
        &pool,
        SandboxLimits::default(),
        r#"thwonk.log(String(({}).polluted), String([1].includes(2)),
                      JSON.stringify(JSON.parse("[1]")), String(typeof leak));"#,
    );
    assert_ok(&victim);
    assert_eq!(logged(&victim), ["undefined false [1] undefined"]);
}

#[test]
fn nested_map_over_large_arrays_exhausts_the_budget() {
    // A budget small enough that it, not the wall clock, ends the run even in a debug build
    // on a busy machine: what is pinned here is that callbacks from `map` are counted.
    let limits = SandboxLimits {
        instructions: 2_000_000,
        wall_clock_ms: 30_000,
        ..Default::default()
    };
    let out = run_in(
        &pool(1),
        limits,
        r#"const a = Array.from({ length: 20000 }, (_, i) => i);
           a.map(() => a.map((x) => x * 2));"#,
    );
    assert_eq!(kind(&out), ErrorKind::BudgetExceeded, "{:?}", out.error);
    assert!(out.effects.sends.is_empty() && out.effects.writes.is_empty());
}

#[test]
fn a_million_recipients_are_refused_with_a_limit_error() {
    let limits = SandboxLimits {
        wall_clock_ms: 30_000,
        ..Default::default()
    };
    let out = run_in(
        &pool(1),
        limits,
        r#"const to = new Array(1000000).fill("someone@example.net");
           thwonk.send({ to, subject: "spam", text: "x" });"#,
    );
    assert_eq!(kind(&out), ErrorKind::LimitError, "{:?}", out.error);
    assert!(out.effects.sends.is_empty());
}
