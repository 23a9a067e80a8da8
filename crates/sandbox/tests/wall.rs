//! The sandbox wall does not fail open (issue 13 item 15): a worker whose kernel refuses
//! landlock is refused while `runner.require_wall` is on, and a worker holds no descriptor
//! it inherited by accident.
//!
//! The missing-landlock case is real, not a switch in the worker: `thwonk-sandbox-no-landlock`
//! puts the worker behind a seccomp filter that answers the landlock system calls with
//! `ENOSYS`, as container runtimes' profiles did; the worker tries landlock as always and the
//! kernel refuses it.

mod common;

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;

use common::*;
use thwonk_core::run::SandboxLimits;
use thwonk_sandbox::wall::{Layer, WallReport, missing_layers};
use thwonk_sandbox::{PoolError, WorkerPool};

const WORKER: &str = env!("CARGO_BIN_EXE_thwonk-sandbox-worker");
const NO_LANDLOCK: &str = env!("CARGO_BIN_EXE_thwonk-sandbox-no-landlock");

fn pool_of(program: &str) -> WorkerPool {
    WorkerPool::with_program(program, 1, SandboxLimits::default().memory_mib)
}

const SCRIPT: &str = r#"export function onMessage(msg, thwonk) { thwonk.log("ran"); }"#;

#[test]
fn the_decision_takes_the_real_wall_as_complete_and_names_what_is_missing() {
    // The wall a worker on this kernel really raised: complete, so scripts run.
    let (wall, _) = pool_of(WORKER).probe().unwrap();
    assert_eq!(wall.seccomp, Layer::Enforced, "{wall:?}");
    assert_ne!(
        std::mem::discriminant(&wall.landlock),
        std::mem::discriminant(&Layer::Missing(String::new())),
        "{wall:?}"
    );
    assert_eq!(missing_layers(&wall), None);
    // The same wall without one layer, then without both.
    let no_seccomp = WallReport {
        seccomp: Layer::Missing("Operation not permitted".into()),
        ..wall.clone()
    };
    assert_eq!(
        missing_layers(&no_seccomp).as_deref(),
        Some("seccomp (Operation not permitted)")
    );
    let neither = WallReport {
        landlock: Layer::Missing("kernel landlock NotImplemented".into()),
        ..no_seccomp
    };
    let missing = missing_layers(&neither).unwrap();
    assert!(
        missing.contains("seccomp") && missing.contains("landlock"),
        "{missing}"
    );
    // A ruleset the kernel enforces in part is up.
    let partial = WallReport {
        landlock: Layer::Partial("kernel landlock V3".into()),
        ..wall
    };
    assert_eq!(missing_layers(&partial), None);
}

#[test]
fn without_landlock_a_worker_is_refused_with_an_error_naming_it_and_the_setting() {
    let pool = pool_of(NO_LANDLOCK);
    let err = pool
        .run(&on_message(SCRIPT), &mut MemFs::default())
        .expect_err("a worker without landlock must not run scripts");
    assert!(matches!(err, PoolError::WallMissing { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("landlock"), "{text}");
    assert!(text.contains("runner.require_wall"), "{text}");
    // No worker was kept, and a deploy check is refused the same way.
    assert!(pool.idle_worker_pids().is_empty());
    let checked = pool.check(SCRIPT, &SandboxLimits::default());
    assert!(
        matches!(checked, Err(PoolError::WallMissing { .. })),
        "{checked:?}"
    );
}

#[test]
fn with_require_wall_off_the_same_worker_runs_scripts_behind_what_is_left() {
    let pool = pool_of(NO_LANDLOCK).require_wall(false);
    // The kernel really refused landlock to this worker; seccomp is still up.
    let (wall, probe) = pool.probe().unwrap();
    assert!(matches!(wall.landlock, Layer::Missing(_)), "{wall:?}");
    assert_eq!(wall.seccomp, Layer::Enforced);
    assert!(
        probe.open_file.is_err(),
        "seccomp still denies open: {probe:?}"
    );
    let out = pool
        .run(&on_message(SCRIPT), &mut MemFs::default())
        .unwrap();
    assert_ok(&out);
    assert_eq!(logged(&out), ["ran"]);
}

/// The descriptors a process holds, from `/proc/PID/fd`.
fn descriptors_of(pid: u32) -> BTreeSet<i32> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect()
}

#[test]
fn a_descriptor_the_parent_leaks_is_closed_in_the_worker() {
    // A file opened without O_CLOEXEC: every child the parent starts inherits it.
    let dir = tempfile::tempdir().unwrap();
    let secret = std::fs::File::create(dir.path().join("secret.db")).unwrap();
    let fd = secret.as_raw_fd();
    // SAFETY: clears FD_CLOEXEC on a descriptor this test owns.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }, 0);

    // The leak is real: an ordinary child holds it.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let inherited = descriptors_of(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(inherited.contains(&fd), "{inherited:?} lacks {fd}");

    // A worker does not: it holds stdin, stdout and stderr, nothing else.
    let pool = pool_of(WORKER);
    pool.warm_up().unwrap();
    let pids = pool.idle_worker_pids();
    assert_eq!(pids.len(), 1);
    let held = descriptors_of(pids[0]);
    assert_eq!(held, BTreeSet::from([0, 1, 2]), "the worker holds {held:?}");
    // And it still runs scripts.
    let out = pool
        .run(&on_message(SCRIPT), &mut MemFs::default())
        .unwrap();
    assert_ok(&out);
    drop(secret);
}
