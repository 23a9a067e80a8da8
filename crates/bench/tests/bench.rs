//! `thwonk-bench` end to end with a tiny load: the report is complete and its counts match
//! what was sent (no timing is asserted: performance belongs in BENCHMARKS.md).
//!
//! The daemon is the workspace's `thwonk` binary, found where the tool looks by default:
//! next to `thwonk-bench` in the target directory. `cargo test --workspace` builds it; alone,
//! `cargo test -p thwonk-bench -p thwonk` does.

use std::path::{Path, PathBuf};
use std::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_thwonk-bench");

/// The repository root (for `sandbox-scripts/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn bench_reports_every_message_accepted_and_every_delivery_matched() {
    let thwonk = Path::new(BENCH).with_file_name("thwonk");
    assert!(
        thwonk.is_file(),
        "{} is missing: build the thwonk binary too (cargo test -p thwonk-bench -p thwonk)",
        thwonk.display()
    );
    let mut cmd = Command::new(BENCH);
    for (k, _) in std::env::vars() {
        if k.starts_with("THWONK_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args([
            "--sessions",
            "2",
            "--messages",
            "20",
            "--members",
            "3",
            "--timeout",
            "60",
            "--json",
        ])
        .current_dir(repo())
        .output()
        .expect("run thwonk-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "thwonk-bench failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));

    let load = &report["load"];
    assert_eq!(load["sessions"], 2);
    assert_eq!(load["messages_per_session"], 20);
    assert_eq!(load["deliveries_per_message"], 3);

    let base = &report["baseline"];
    assert_eq!(base["sent"], 40);
    assert_eq!(base["accepted"], 40, "{report:#}");
    assert_eq!(base["refused"], 0);

    let d = &report["daemon"];
    assert_eq!(d["ingress"]["sent"], 40);
    assert_eq!(d["ingress"]["accepted"], 40, "{report:#}");
    assert_eq!(d["ingress"]["refused"], 0);
    assert_eq!(
        d["deliveries_expected"], 120,
        "3 members get each of 40 posts"
    );
    assert_eq!(d["deliveries_arrived"], 120, "{report:#}");
    assert_eq!(d["runs_completed"], 40);
    assert_eq!(d["complete"], true);

    // Every figure is there and is a real measurement (positive), whatever its value.
    for figure in [
        &base["accepted_per_sec"],
        &d["ingress"]["accepted_per_sec"],
        &d["ingress_ratio"],
        &d["delivered_per_sec"],
        &d["delivered_ratio"],
        &d["runs_per_sec"],
        &d["latency_ms"]["max"],
        &d["peak_rss_daemon_mib"],
    ] {
        assert!(figure.as_f64().is_some_and(|v| v > 0.0), "{report:#}");
    }
    let lat = &d["latency_ms"];
    assert!(
        lat["p50"].as_f64() <= lat["p99"].as_f64() && lat["p99"].as_f64() <= lat["max"].as_f64()
    );
    assert!(d["peak_rss_total_mib"].as_f64() > d["peak_rss_daemon_mib"].as_f64());
    let names: Vec<&str> = d["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("redis-server")),
        "the private redis-server is counted: {names:?}"
    );
}
