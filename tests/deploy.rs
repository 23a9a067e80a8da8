//! The two packaged deployments, on real engines (issue 18): the docker compose deployment on
//! a Docker engine (`scripts/test-deploy-docker.sh`) and the systemd units under a systemd
//! booted in a container (`scripts/test-deploy-systemd.sh`), both with this build's `thwonk`
//! binary. What each proves is in the scripts' headers and in docs/operations.md.
//!
//! They need root and a running `dockerd` (`.ci/run` installs and starts one); without them
//! each test prints a loud SKIPPED and passes. `THWONK_TEST_DEPLOY=off` skips them on purpose
//! (they take minutes). The two run one after the other: they share the cached base images.

use std::process::Command;
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Why the deployment tests cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    if std::env::var("THWONK_TEST_DEPLOY").is_ok_and(|v| v == "off") {
        return Some("THWONK_TEST_DEPLOY=off".into());
    }
    let uid = Command::new("id").arg("-u").output().map(|o| o.stdout);
    if !uid.is_ok_and(|id| id.trim_ascii() == b"0") {
        return Some("not root (the tests run dockerd's containers and debootstrap)".into());
    }
    match Command::new("docker").arg("info").output() {
        Ok(out) if out.status.success() => None,
        Ok(_) => Some("no Docker engine answers (`docker info` failed; start dockerd)".into()),
        Err(e) => Some(format!("no docker command ({e})")),
    }
}

fn run_script(script: &str) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(why) = unavailable() {
        eprintln!("\n*** SKIPPED {script}: {why} ***\n");
        return;
    }
    // A hard limit over the script's own timeouts: SIGTERM lets it remove what it made.
    let status = Command::new("timeout")
        .args([
            "--kill-after=60",
            "1500",
            "bash",
            script,
            env!("CARGO_BIN_EXE_thwonk"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run bash");
    assert!(status.success(), "{script} failed: {status}");
}

#[test]
fn docker_compose_deployment_carries_mail() {
    run_script("scripts/test-deploy-docker.sh");
}

#[test]
fn systemd_units_run_under_systemd() {
    run_script("scripts/test-deploy-systemd.sh");
}
