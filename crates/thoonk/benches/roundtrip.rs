//! Job round trips (publish → take → finish) per second against a private redis-server, next
//! to `redis-benchmark` LPUSH/RPOP on the same server in the same run, and the ratio.
//!
//! `cargo bench -p thwonk-thoonk`. Env: `THWONK_BENCH_JOBS` (default 20000),
//! `THWONK_BENCH_CLIENTS` (default 8). A job round trip is four Redis round trips (publish
//! script, BLMOVE, claim script, finish script) against one for LPUSH or RPOP, so the fair
//! yardstick is the LPUSH+RPOP pair: 1 / (1/lpush + 1/rpop).

use std::process::Command;
use std::time::{Duration, Instant};
use thwonk_thoonk::{JobQueue, PrivateRedis, Redis};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn job_round_trips(redis: &Redis, jobs: usize, clients: usize) -> f64 {
    let per = jobs / clients;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        // Each client publishes to and takes from its own queue: the measure is the cost of a
        // round trip, not contention for one list.
        let q = JobQueue::new(redis, &format!("bench{c}"));
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let id = format!("{c}-{i}");
                q.publish(&id, "{\"n\":1}").await.unwrap();
                let job = q.take(Duration::from_secs(1)).await.unwrap().unwrap();
                q.finish(&job.id, None).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per * clients) as f64 / start.elapsed().as_secs_f64()
}

/// requests/s of LPUSH and RPOP from `redis-benchmark --csv`.
fn redis_benchmark(socket: &std::path::Path, n: usize, clients: usize) -> Option<(f64, f64)> {
    let out = Command::new("redis-benchmark")
        .arg("-s")
        .arg(socket)
        .args(["-t", "lpush,rpop", "--csv", "-n"])
        .arg(n.to_string())
        .arg("-c")
        .arg(clients.to_string())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = |name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.trim_matches('"').starts_with(name))
            .and_then(|l| l.split(',').nth(1))
            .and_then(|v| v.trim_matches('"').parse().ok())
    };
    Some((rate("LPUSH")?, rate("RPOP")?))
}

fn main() {
    let jobs = env_num("THWONK_BENCH_JOBS", 20_000);
    let clients = env_num("THWONK_BENCH_CLIENTS", 8).max(1);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("bench.sock");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = PrivateRedis::start("redis-server", dir.path(), &sock)
            .await
            .expect("redis-server must be installed");
        let redis = Redis::connect(&server.url()).await.unwrap();
        // Warm up: load the scripts, open the connections.
        job_round_trips(&redis, clients * 10, clients).await;
        let jobs_per_s = job_round_trips(&redis, jobs, clients).await;
        println!("job round trips (publish+take+finish), {clients} clients: {jobs_per_s:.0}/s");
        match redis_benchmark(&sock, jobs.max(10_000) * 5, clients) {
            Some((lpush, rpop)) => {
                let pair = 1.0 / (1.0 / lpush + 1.0 / rpop);
                println!("redis-benchmark LPUSH, {clients} clients: {lpush:.0}/s");
                println!("redis-benchmark RPOP,  {clients} clients: {rpop:.0}/s");
                println!("LPUSH+RPOP pairs: {pair:.0}/s");
                println!(
                    "ratio: job round trips are {:.1}% of LPUSH+RPOP pairs ({:.2}x slower)",
                    100.0 * jobs_per_s / pair,
                    pair / jobs_per_s
                );
            }
            None => println!("redis-benchmark not available: no baseline"),
        }
        server.stop().await;
    });
}
