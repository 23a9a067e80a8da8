//! Cost per run of `sandbox-scripts/twitter-list.js` through a warm pool of worker processes,
//! against the same run in-process and against a bare Boa context evaluating the script.
//!
//! `cargo bench -p thwonk-sandbox`. Plain `Instant` timing (no harness): the numbers are
//! means over many runs, measured in the same process one after the other.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use boa_engine::Source;
use boa_engine::context::ContextBuilder;
use boa_engine::module::Module;
use common::{MemFs, assert_ok, on_message};
use thwonk_sandbox::WorkerPool;

const RUNS: u32 = 300;

fn mean(runs: u32, mut f: impl FnMut()) -> Duration {
    // One untimed round first: caches, lazy statics, the pool's first worker.
    f();
    let started = Instant::now();
    for _ in 0..runs {
        f();
    }
    started.elapsed() / runs
}

fn main() {
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../sandbox-scripts/twitter-list.js"
    ))
    .expect("sandbox-scripts/twitter-list.js");
    let request = on_message(&script);
    let members = r#"["alice@example.net", "bob@example.net", "carol@example.net"]"#;
    let files = MemFs::with(&[("members.json", members)]);

    let bare = mean(RUNS, || {
        // Built with a budget: the `fuzz` feature this crate needs starts contexts at zero.
        let mut context = ContextBuilder::default()
            .instructions_remaining(usize::MAX)
            .build()
            .expect("a context");
        let module = Module::parse(Source::from_bytes(&script), None, &mut context)
            .expect("the script parses");
        let _ = module.load_link_evaluate(&mut context);
        context.run_jobs().expect("jobs run");
    });

    let in_process = mean(RUNS, || {
        let out = thwonk_sandbox::run(&request, &mut files.clone());
        assert_ok(&out);
        assert_eq!(out.effects.sends.len(), 2);
    });

    let pool = WorkerPool::with_program(env!("CARGO_BIN_EXE_thwonk-sandbox-worker"), 1, 256);
    pool.warm_up().expect("the worker starts");
    let warm_pool = mean(RUNS, || {
        let out = pool
            .run(&request, &mut files.clone())
            .expect("the pool runs");
        assert_ok(&out);
        assert_eq!(out.effects.sends.len(), 2);
    });

    let cold_worker = mean(20, || {
        WorkerPool::with_program(env!("CARGO_BIN_EXE_thwonk-sandbox-worker"), 1, 256)
            .warm_up()
            .expect("the worker starts");
    });

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("twitter-list.js, mean of {RUNS} runs:");
    println!(
        "  bare Boa context + module evaluation : {:>9.1} µs",
        us(bare)
    );
    println!(
        "  thwonk_sandbox::run, in-process      : {:>9.1} µs",
        us(in_process)
    );
    println!(
        "  WorkerPool::run, warm worker         : {:>9.1} µs",
        us(warm_pool)
    );
    println!(
        "  starting one worker (spawn + wall)   : {:>9.1} µs",
        us(cold_worker)
    );
    println!(
        "  warm pool / bare Boa = {:.2}×, warm pool / in-process = {:.2}×",
        us(warm_pool) / us(bare),
        us(warm_pool) / us(in_process)
    );
}
