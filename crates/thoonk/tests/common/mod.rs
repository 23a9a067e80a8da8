//! A private redis-server per test, and helpers to look at raw keys and events.
#![allow(dead_code)]

use std::time::Duration;
use thwonk_thoonk::{Event, PrivateRedis, Redis, Subscription};

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub server: PrivateRedis,
    pub redis: Redis,
}

pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let server = PrivateRedis::start("redis-server", dir.path(), &dir.path().join("r.sock"))
        .await
        .expect("redis-server must be installed for these tests");
    let redis = Redis::connect(&server.url()).await.unwrap();
    Fixture {
        _dir: dir,
        server,
        redis,
    }
}

/// Run a raw command (what a client in another language would do).
pub async fn raw<T: redis::FromRedisValue>(redis: &Redis, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut redis.shared()).await.unwrap()
}

/// The next event, or panic after a second.
pub async fn next_event(sub: &mut Subscription) -> Event {
    tokio::time::timeout(Duration::from_secs(1), sub.next())
        .await
        .expect("an event within a second")
        .expect("subscription open")
}

/// No event within 100 ms.
pub async fn no_event(sub: &mut Subscription) {
    if let Ok(e) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
        panic!("unexpected event {e:?}");
    }
}

pub fn ev(e: &Event) -> (String, String, Option<String>) {
    (e.kind.clone(), e.id.clone(), e.data.clone())
}

pub fn kind_id(kind: &str, id: &str, data: Option<&str>) -> (String, String, Option<String>) {
    (kind.to_string(), id.to_string(), data.map(str::to_string))
}
