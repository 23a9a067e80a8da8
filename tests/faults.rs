//! Fault tests: the roles as separate processes (`thwonk ingress`, `thwonk runner`, `thwonk
//! egress`) on a real Redis started per test, a real database (SQLite; PostgreSQL too when
//! `THWONK_TEST_POSTGRES_URL` is set) and a real SMTP listener as the relay, while something
//! breaks: the runner SIGKILLed again and again, Redis restarted with nothing kept, the
//! database gone at the ingress, the relay down, SIGTERM. Every test ends with exact counts:
//! each message ran once, each member got each message once.
//!
//! See docs/durability.md for the guarantees these tests pin down.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Daemon, Env, Received, Relay, SmtpClient, code, eventually, postgres_url};
use thwonk_core::Address;
use thwonk_store::Store;
use thwonk_thoonk::{INBOUND, JobQueue, OUTBOUND};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Members each message is sent on to (kept small: 500 × 3 deliveries already).
const MEMBERS: [&str; 3] = ["m1@members.test", "m2@members.test", "m3@members.test"];

/// Counts each message in the VFS and sends it on to every member, keeping its `X-Seq`.
const LIST_SCRIPT: &str = r#"
const MEMBERS = ["m1@members.test", "m2@members.test", "m3@members.test"];
export function onMessage(msg, thwonk) {
  const seq = msg.headers.get("X-Seq");
  const n = Number(thwonk.files.read("count") ?? "0") + 1;
  thwonk.files.write("count", String(n));
  for (const to of MEMBERS) {
    thwonk.send({ to, subject: "seq " + seq, text: "member copy", headers: { "X-Seq": seq } });
  }
}
"#;

// ---------------------------------------------------------------------------------------
// Redis without persistence, killable and restartable on the same socket.

struct TestRedis {
    child: Option<std::process::Child>,
    dir: PathBuf,
    socket: PathBuf,
}

impl TestRedis {
    async fn start(dir: &Path) -> TestRedis {
        std::fs::create_dir_all(dir).unwrap();
        let mut r = TestRedis {
            child: None,
            dir: dir.to_path_buf(),
            socket: dir.join("redis.sock"),
        };
        r.spawn().await;
        r
    }

    fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    async fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let child = std::process::Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&self.socket)
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(&self.dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.child = Some(child);
        let url = self.url();
        eventually("redis-server to answer", Duration::from_secs(10), || {
            let url = url.clone();
            async move {
                let client = redis::Client::open(url).ok()?;
                let mut c = client.get_multiplexed_async_connection().await.ok()?;
                redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .ok()
                    .map(|_| ())
            }
        })
        .await;
    }

    /// SIGKILL: everything in memory is gone, and nothing was saved.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------
// The database: SQLite in the test's directory, or a scratch PostgreSQL database.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Db {
    Sqlite,
    Postgres,
}

struct Database {
    url: String,
    scratch: Option<thwonk_store::scratch::ScratchDb>,
}

impl Database {
    /// None when the PostgreSQL variant is asked for and no server is configured.
    async fn open(db: Db, dir: &Path) -> Option<Database> {
        match db {
            Db::Sqlite => Some(Database {
                url: format!("sqlite://{}", dir.join("thwonk.db").display()),
                scratch: None,
            }),
            Db::Postgres => {
                let Some(base) = postgres_url() else {
                    eprintln!("THWONK_TEST_POSTGRES_URL not set: PostgreSQL variant skipped");
                    return None;
                };
                let scratch = thwonk_store::scratch::scratch_postgres_url(&base)
                    .await
                    .expect("scratch database");
                Some(Database {
                    url: scratch.url().to_string(),
                    scratch: Some(scratch),
                })
            }
        }
    }

    async fn cleanup(self) {
        if let Some(s) = self.scratch {
            let _ = s.cleanup().await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// One test's world: Redis, relay, database, environment, and a store handle to count with.

struct World {
    dir: tempfile::TempDir,
    redis: TestRedis,
    relay: Relay,
    db: Database,
    env: Env,
    store: Store,
}

impl World {
    async fn new(db: Db, extra: &[(&str, &str)]) -> Option<World> {
        Self::with_relay(db, extra, None).await
    }

    /// `relay`: start the relay on this address with this delay before each 250.
    async fn with_relay(
        db: Db,
        extra: &[(&str, &str)],
        relay: Option<(SocketAddr, Duration)>,
    ) -> Option<World> {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(db, dir.path()).await?;
        let redis = TestRedis::start(&dir.path().join("redis")).await;
        let relay = match relay {
            Some((addr, delay)) => Relay::start_on(addr, delay).await,
            None => Relay::start().await,
        };
        let mut env = support::env(&dir.path().join("data"), relay.addr, Some(&db.url));
        for (k, v) in [
            ("THWONK_REDIS_URL", redis.url().as_str()),
            ("THWONK_RUNNER_LEASE_MS", "1000"),
            ("THWONK_QUEUES_VISIBILITY_MS", "5000"),
            ("THWONK_QUEUES_REAPER_INTERVAL_MS", "200"),
            ("THWONK_QUEUES_RECONCILE_INTERVAL_MS", "500"),
            ("THWONK_LOG", "info,thwonk_egress=warn"),
        ] {
            env.vars.push((k.into(), v.into()));
        }
        for (k, v) in extra {
            env.vars.retain(|(name, _)| name != k);
            env.vars.push((k.to_string(), v.to_string()));
        }
        env.ok(&["migrate"]);
        let store = Store::connect(&db.url, 2).await.unwrap();
        Some(World {
            dir,
            redis,
            relay,
            db,
            env,
            store,
        })
    }

    fn deploy(&self, address: &str, source: &str) {
        self.env
            .deploy_source(address, self.dir.path(), &format!("{address}.js"), source);
    }

    async fn thwonk_id(&self, address: &str) -> String {
        self.store
            .thwonk_by_address(&Address::parse(address).unwrap())
            .await
            .unwrap()
            .expect("deployed")
            .id
    }

    async fn file(&self, address: &str, path: &str) -> Option<String> {
        let id = self.thwonk_id(address).await;
        self.store
            .read_file(&id, path)
            .await
            .unwrap()
            .map(|b| String::from_utf8(b).unwrap())
    }

    async fn counter(&self, address: &str) -> u64 {
        self.file(address, "count")
            .await
            .map(|s| s.parse().unwrap())
            .unwrap_or(0)
    }

    /// (ok runs, other runs, distinct messages run) of a thwonk.
    async fn runs(&self, address: &str) -> (usize, usize, usize) {
        let id = self.thwonk_id(address).await;
        let runs = self.store.list_runs(&id, 1_000_000).await.unwrap();
        let ok = runs
            .iter()
            .filter(|r| r.status == thwonk_core::run::RunStatus::Ok)
            .count();
        let mut messages: Vec<_> = runs.iter().filter_map(|r| r.message_id.clone()).collect();
        messages.sort();
        messages.dedup();
        (ok, runs.len() - ok, messages.len())
    }

    async fn start(&self, role: &str) -> Daemon {
        Daemon::start_role(&self.env, role).await
    }

    async fn finish(self) {
        self.store.close().await;
        self.db.cleanup().await;
    }
}

/// The `X-Seq` of a delivered message.
fn seq_of(m: &Received) -> u32 {
    let text = String::from_utf8_lossy(&m.raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-seq")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no X-Seq in a delivered message:\n{head}"))
}

/// How many times each (seq, member) was delivered.
fn deliveries(received: &[Received]) -> HashMap<(u32, String), usize> {
    let mut seen = HashMap::new();
    for m in received {
        for rcpt in &m.rcpt_to {
            *seen.entry((seq_of(m), rcpt.clone())).or_insert(0) += 1;
        }
    }
    seen
}

/// Every (seq, member) for seq in 1..=n was delivered exactly once, and nothing else.
fn assert_each_once(received: &[Received], n: u32) {
    let seen = deliveries(received);
    let total: usize = received.iter().map(|m| m.rcpt_to.len()).sum();
    assert_eq!(
        total,
        n as usize * MEMBERS.len(),
        "deliveries: exactly messages × members"
    );
    for seq in 1..=n {
        for member in MEMBERS {
            let got = seen.get(&(seq, member.to_string())).copied().unwrap_or(0);
            assert_eq!(got, 1, "message {seq} delivered to {member} {got} times");
        }
    }
    assert_eq!(seen.len(), n as usize * MEMBERS.len(), "nothing else");
}

/// Wait until the relay has `n × members` deliveries and the thwonk counted `n`, then a
/// while longer (several reconciler passes) so that a duplicate would have time to show.
async fn wait_exact(w: &World, address: &str, n: u32, timeout: Duration) {
    let want = n as usize * MEMBERS.len();
    let start = Instant::now();
    loop {
        let got = w.relay.received().len();
        let count = w.counter(address).await;
        if got >= want && count >= u64::from(n) {
            break;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out: relay has {got} of {want} deliveries, counter {count} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(w.counter(address).await, u64::from(n), "the VFS counter");
    assert_each_once(&w.relay.received(), n);
    let (ok, errors, messages) = w.runs(address).await;
    assert_eq!(
        (ok, errors, messages),
        (n as usize, 0, n as usize),
        "(ok runs, error runs, messages run)"
    );
}

// ---------------------------------------------------------------------------------------
// The kit's SMTP client, which shows every reply (lettre hides the codes we check).

/// Connect and read the greeting.
async fn connect(addr: SocketAddr) -> std::io::Result<(SmtpClient, String)> {
    let mut s = SmtpClient::try_connect(addr).await?;
    let greeting = s.read_reply().await?;
    Ok((s, greeting))
}

/// Greeting, EHLO, MAIL, RCPT and DATA accepted: ready for the body.
async fn open_data(addr: SocketAddr, to: &str) -> Result<SmtpClient, String> {
    let fail = |step: &str, e: String| format!("{step}: {e}");
    let (mut s, greeting) = connect(addr)
        .await
        .map_err(|e| fail("connect", e.to_string()))?;
    if code(&greeting) != 220 {
        return Err(fail("greeting", greeting));
    }
    for (line, want) in [
        ("EHLO client.test".to_string(), 250),
        ("MAIL FROM:<sender@example.net>".to_string(), 250),
        (format!("RCPT TO:<{to}>"), 250),
        ("DATA".to_string(), 354),
    ] {
        let reply = s
            .command(&line)
            .await
            .map_err(|e| fail(&line, e.to_string()))?;
        if code(&reply) != want {
            return Err(fail(&line, reply));
        }
    }
    Ok(s)
}

/// A message to `to` carrying `X-Seq: seq`, without the final dot.
fn message(to: &str, seq: u32) -> String {
    format!(
        "From: <sender@example.net>\r\nTo: <{to}>\r\nSubject: seq {seq}\r\nX-Seq: {seq}\r\n\
         Message-ID: <seq-{seq}-{}@client.test>\r\n\r\nmessage number {seq}\r\n",
        thwonk_core::ids::new_id()
    )
}

/// One whole transaction; the reply to the final dot (or why it did not get that far).
async fn try_send(addr: SocketAddr, to: &str, seq: u32) -> Result<String, String> {
    let mut s = open_data(addr, to).await?;
    s.write(message(to, seq).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let reply = s
        .command(".")
        .await
        .map_err(|e| format!("end of data: {e}"))?;
    let _ = s.command("QUIT").await;
    Ok(reply)
}

/// Send like an MTA: on anything but 250, wait and try again. Returns the tries it took.
async fn send_until_accepted(addr: SocketAddr, to: &str, seq: u32) -> u32 {
    let start = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        match try_send(addr, to, seq).await {
            Ok(reply) if code(&reply) == 250 => return tries,
            Ok(reply) => {
                assert_eq!(code(&reply) / 100, 4, "only temporary failures: {reply}");
            }
            Err(_) => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "message {seq} not accepted within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stream messages 1..=n to `to`, one after another (arrival order = seq).
fn stream(addr: SocketAddr, to: &'static str, n: u32) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut retried = 0;
        for seq in 1..=n {
            retried += send_until_accepted(addr, to, seq).await - 1;
        }
        retried
    })
}

/// A small deterministic generator (xorshift), so the kill schedule repeats run to run.
struct Rng(u64);

impl Rng {
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

// ---------------------------------------------------------------------------------------
// 1. The runner SIGKILLed again and again while 500 messages stream in.

async fn runner_killed_repeatedly(db: Db) {
    let started = Instant::now();
    let Some(w) = World::new(db, &[]).await else {
        return;
    };
    w.deploy("list@example.org", LIST_SCRIPT);
    let ingress = w.start("ingress").await;
    let egress = w.start("egress").await;
    let sender = stream(ingress.smtp, "list@example.org", 500);

    let mut rng = Rng(0x5eed_f00d);
    let mut kills = 0;
    let mut runner = w.start("runner").await;
    // Kill while the stream runs and while the first half of the backlog runs, at least 10
    // times.
    while kills < 10 || !sender.is_finished() || w.counter("list@example.org").await < 250 {
        tokio::time::sleep(Duration::from_millis(rng.between(300, 1000))).await;
        runner.kill_hard();
        kills += 1;
        runner = w.start("runner").await;
        assert!(kills < 200, "the runner never caught up");
    }
    let retried = sender.await.unwrap();
    wait_exact(&w, "list@example.org", 500, Duration::from_secs(120)).await;
    eprintln!(
        "runner_killed_repeatedly({db:?}): {kills} SIGKILLs, {retried} sends retried, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for d in [ingress, runner, egress] {
        d.stop(Duration::from_secs(20)).await;
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_sigkilled_repeatedly_sqlite() {
    runner_killed_repeatedly(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_sigkilled_repeatedly_postgres() {
    runner_killed_repeatedly(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 2. Redis killed (nothing kept) and restarted in the middle of the stream.

async fn redis_restarted_mid_stream(db: Db) {
    let started = Instant::now();
    let Some(mut w) = World::new(db, &[]).await else {
        return;
    };
    w.deploy("list@example.org", LIST_SCRIPT);
    let ingress = w.start("ingress").await;
    let runner = w.start("runner").await;
    let egress = w.start("egress").await;
    let sender = stream(ingress.smtp, "list@example.org", 500);

    // Twice: a short outage, then one longer than the connections' retries.
    for (at, away_ms) in [(120, 700), (300, 3000)] {
        eventually(
            "the stream to get going",
            Duration::from_secs(60),
            || async { (w.counter("list@example.org").await >= at).then_some(()) },
        )
        .await;
        w.redis.kill();
        tokio::time::sleep(Duration::from_millis(away_ms)).await;
        w.redis.restart().await;
    }
    let retried = sender.await.unwrap();
    assert!(
        retried > 0,
        "the ingress told senders 451 while Redis was away"
    );
    wait_exact(&w, "list@example.org", 500, Duration::from_secs(120)).await;
    eprintln!(
        "redis_restarted_mid_stream({db:?}): {retried} sends retried, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for d in [ingress, runner, egress] {
        d.stop(Duration::from_secs(20)).await;
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_without_persistence_sqlite() {
    redis_restarted_mid_stream(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_without_persistence_postgres() {
    redis_restarted_mid_stream(Db::Postgres).await;
}

/// Redis loses the jobs of deliveries in flight (the relay holds them): the reconciler
/// queues those rows again while the takers still hold them, and nothing is sent twice.
async fn redis_restarted_during_deliveries(db: Db) {
    let started = Instant::now();
    let Some(mut w) = World::with_relay(
        db,
        &[],
        Some(("127.0.0.1:0".parse().unwrap(), Duration::from_millis(2000))),
    )
    .await
    else {
        return;
    };
    w.deploy("list@example.org", LIST_SCRIPT);
    let ingress = w.start("ingress").await;
    let runner = w.start("runner").await;
    let egress = w.start("egress").await;
    send_until_accepted(ingress.smtp, "list@example.org", 1).await;
    eventually("deliveries in flight", Duration::from_secs(30), || async {
        (claimed(&w, OUTBOUND).await >= 1).then_some(())
    })
    .await;
    w.redis.restart().await;
    wait_exact(&w, "list@example.org", 1, Duration::from_secs(60)).await;
    eprintln!(
        "redis_restarted_during_deliveries({db:?}): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for d in [ingress, runner, egress] {
        d.stop(Duration::from_secs(20)).await;
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_during_deliveries_sends_nothing_twice_sqlite() {
    redis_restarted_during_deliveries(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_during_deliveries_sends_nothing_twice_postgres() {
    redis_restarted_during_deliveries(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 3. The database unreachable at the ingress: 451 4.3.0 at the end of DATA; the retry works.

/// A TCP proxy the test can cut: `down` drops every connection through it and stops
/// listening (new connections are refused) until `up`.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let (up2, conns2, stop2) = (up.clone(), conns.clone(), stop.clone());
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                if !up2.load(Ordering::SeqCst) {
                    // Closed: connections are refused, as by a stopped server.
                    listener = None;
                    tokio::select! {
                        _ = stop2.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
                    }
                }
                if listener.is_none() {
                    listener = tokio::net::TcpListener::bind(addr).await.ok();
                }
                let Some(l) = &listener else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let (mut client, _) = tokio::select! {
                    _ = stop2.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
                    a = l.accept() => match a { Ok(a) => a, Err(_) => continue },
                };
                let cut = conns2.lock().unwrap().clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            up,
            conns,
            stop,
        }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        let old = std::mem::take(&mut *self.conns.lock().unwrap());
        old.cancel();
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.conns.lock().unwrap().cancel();
    }
}

/// `postgres://user@host:port/db` with host:port replaced by `addr`.
fn via(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    format!("{scheme}://{}{addr}/{path}", user.unwrap_or_default())
}

/// What makes the database unreachable for the ingress, and undoes it.
enum Outage {
    /// SQLite: another connection holds the write lock (BEGIN EXCLUSIVE).
    Locked(String, Option<sqlx::SqliteConnection>),
    /// PostgreSQL: the ingress's connections go through a proxy that is cut.
    Proxied(Proxy),
}

impl Outage {
    async fn begin(&mut self) {
        match self {
            Outage::Locked(url, conn) => {
                use sqlx::Connection;
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                *conn = Some(c);
            }
            Outage::Proxied(p) => p.down(),
        }
    }

    async fn end(&mut self) {
        match self {
            Outage::Locked(_, conn) => {
                if let Some(mut c) = conn.take() {
                    sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
                }
            }
            Outage::Proxied(p) => p.up(),
        }
    }
}

async fn database_down_at_the_ingress(db: Db) {
    let started = Instant::now();
    let Some(mut w) = World::new(db, &[("THWONK_DATABASE_ACQUIRE_TIMEOUT_MS", "2000")]).await
    else {
        return;
    };
    w.deploy("list@example.org", LIST_SCRIPT);
    let mut outage = match db {
        Db::Sqlite => Outage::Locked(w.db.url.clone(), None),
        Db::Postgres => {
            let url = w.db.url.clone();
            let (_, rest) = url.split_once("://").unwrap();
            let authority = rest.split('/').next().unwrap();
            let host = authority.rsplit('@').next().unwrap().to_string();
            let proxy = Proxy::start(host).await;
            let proxied = via(&url, proxy.addr);
            Outage::Proxied(proxy).with_ingress_url(&mut w.env, proxied)
        }
    };
    let ingress = w.start("ingress").await;
    if let Outage::Proxied(_) = outage {
        // Every other role talks to the database directly.
        w.env.vars.retain(|(k, _)| k != "THWONK_DATABASE_URL");
        w.env
            .vars
            .push(("THWONK_DATABASE_URL".into(), w.db.url.clone()));
    }
    let runner = w.start("runner").await;
    let egress = w.start("egress").await;

    assert_eq!(
        code(&try_send(ingress.smtp, "list@example.org", 1).await.unwrap()),
        250
    );
    // The next message gets as far as its body; then the database goes away.
    let mut s = open_data(ingress.smtp, "list@example.org").await.unwrap();
    s.write(message("list@example.org", 2).as_bytes())
        .await
        .unwrap();
    outage.begin().await;
    let t = Instant::now();
    let reply = s.command(".").await.unwrap();
    let answered_in = t.elapsed();
    // Not a speed test: the configured acquire timeout (2 s; SQLite's busy timeout is 5 s) is
    // honoured, rather than sqlx's 30 s default, which held a client this long before.
    assert!(
        answered_in < Duration::from_secs(20),
        "451 only after {answered_in:?}"
    );
    assert!(
        reply.starts_with("451 4.3.0"),
        "the end of DATA is answered 451 4.3.0 while the database is away: {reply:?}"
    );
    let _ = s.command("QUIT").await;
    outage.end().await;
    // The client's retry, after the database is back.
    let tries = send_until_accepted(ingress.smtp, "list@example.org", 2).await;
    wait_exact(&w, "list@example.org", 2, Duration::from_secs(60)).await;
    eprintln!(
        "database_down_at_the_ingress({db:?}): 451 after {answered_in:?}, accepted after {tries} tries, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for d in [ingress, runner, egress] {
        d.stop(Duration::from_secs(20)).await;
    }
    drop(outage);
    w.finish().await;
}

impl Outage {
    /// Point the ingress (started next) at `url`.
    fn with_ingress_url(self, env: &mut Env, url: String) -> Outage {
        env.vars.retain(|(k, _)| k != "THWONK_DATABASE_URL");
        env.vars.push(("THWONK_DATABASE_URL".into(), url));
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_unreachable_at_the_ingress_sqlite() {
    database_down_at_the_ingress(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_unreachable_at_the_ingress_postgres() {
    database_down_at_the_ingress(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 4. The relay down: retries on the configured schedule, delivered once when it is back.

async fn relay_down(db: Db) {
    let started = Instant::now();
    // A port with nothing listening (yet): the relay comes up on it later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let Some(db_handle) = Database::open(db, dir.path()).await else {
        return;
    };
    let redis = TestRedis::start(&dir.path().join("redis")).await;
    let mut env = support::env(&dir.path().join("data"), port, Some(&db_handle.url));
    for (k, v) in [
        ("THWONK_REDIS_URL", redis.url()),
        ("THWONK_EGRESS_RETRY_SCHEDULE_MS", "300,600".into()),
        ("THWONK_EGRESS_MAX_ATTEMPTS", "50".into()),
        ("THWONK_QUEUES_RECONCILE_INTERVAL_MS", "500".into()),
    ] {
        env.vars.push((k.into(), v));
    }
    env.deploy_source("list@example.org", dir.path(), "list.js", LIST_SCRIPT);
    let store = Store::connect(&db_handle.url, 2).await.unwrap();

    let ingress = Daemon::start_role(&env, "ingress").await;
    let runner = Daemon::start_role(&env, "runner").await;
    let egress = Daemon::start_role(&env, "egress").await;
    send_until_accepted(ingress.smtp, "list@example.org", 1).await;

    // Three outbox rows, each failing on the schedule: 300 ms, then 600 ms repeating.
    eventually(
        "four failed attempts per row",
        Duration::from_secs(30),
        || async {
            let rows = outbox_rows(&db_handle.url).await;
            (rows.len() == 3 && rows.iter().all(|r| r.1 >= 4)).then_some(())
        },
    )
    .await;
    let deferred: Vec<String> = egress
        .log()
        .into_iter()
        .filter(|l| l.contains("delivery deferred"))
        .collect();
    for row in outbox_rows(&db_handle.url).await {
        let delays: Vec<u64> = deferred
            .iter()
            .filter(|l| l.contains(&row.0))
            .map(|l| {
                let v = l.split("retry_in_ms=").nth(1).expect("retry_in_ms logged");
                v.split_whitespace().next().unwrap().parse().unwrap()
            })
            .collect();
        assert!(delays.len() >= 4, "{delays:?}");
        assert_eq!(delays[..4], [300, 600, 600, 600], "the configured schedule");
    }

    let relay = Relay::start_on(port, Duration::ZERO).await;
    relay
        .wait_for("the three member copies", Duration::from_secs(30), |r| {
            r.len() >= 3
        })
        .await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_each_once(&relay.received(), 1);
    for (id, attempts, status) in outbox_rows(&db_handle.url).await {
        assert_eq!(status, "sent", "{id}");
        assert!(
            attempts >= 4,
            "{id}: the failed attempts are recorded ({attempts})"
        );
    }
    eprintln!(
        "relay_down({db:?}): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for d in [ingress, runner, egress] {
        d.stop(Duration::from_secs(20)).await;
    }
    store.close().await;
    drop(redis);
    db_handle.cleanup().await;
}

/// Every outbox row: (id, attempts, status).
async fn outbox_rows(url: &str) -> Vec<(String, i64, String)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let rows = sqlx::query("SELECT id, attempts, status FROM outbox ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let out = rows
        .iter()
        .map(|r| (r.get("id"), r.get("attempts"), r.get("status")))
        .collect();
    pool.close().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_down_retries_on_schedule_sqlite() {
    relay_down(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_down_retries_on_schedule_postgres() {
    relay_down(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 5. SIGTERM: every role drains and exits 0 within the grace period.

/// About 1.5 s of busy work on this machine (3.5 M iterations, ~28 M instructions).
const SLOW_SCRIPT: &str = r#"
export function onMessage(msg, thwonk) {
  let x = 0;
  for (let i = 0; i < LOOPS; i++) { x += i; }
  const seq = msg.headers.get("X-Seq");
  thwonk.files.write("done-" + seq, String(x));
  thwonk.send({ to: "m1@members.test", subject: "slow " + seq, text: "x", headers: { "X-Seq": seq } });
}
"#;

fn slow_script(loops: u64) -> String {
    SLOW_SCRIPT.replace("LOOPS", &loops.to_string())
}

const SLOW_LIMITS: [(&str, &str); 2] = [
    ("THWONK_LIMITS_INSTRUCTIONS", "2000000000"),
    ("THWONK_LIMITS_WALL_CLOCK_MS", "60000"),
];

async fn claimed(w: &World, queue: &str) -> u64 {
    let redis = thwonk_thoonk::Redis::connect(&w.redis.url()).await.unwrap();
    JobQueue::new(&redis, queue).stats().await.unwrap().claimed as u64
}

async fn sigterm_drains(db: Db) {
    let started = Instant::now();
    let grace = Duration::from_secs(15);
    let mut extra = SLOW_LIMITS.to_vec();
    extra.push(("THWONK_SHUTDOWN_GRACE_MS", "15000"));
    // The relay holds each message 1.5 s before its 250: deliveries are in flight a while.
    let Some(w) = World::with_relay(
        db,
        &extra,
        Some(("127.0.0.1:0".parse().unwrap(), Duration::from_millis(1500))),
    )
    .await
    else {
        return;
    };
    w.deploy("slow@example.org", &slow_script(3_500_000));
    let ingress = w.start("ingress").await;
    let runner = w.start("runner").await;
    let egress = w.start("egress").await;

    // Ingress: a message in the middle of DATA when SIGTERM arrives.
    let mut s = open_data(ingress.smtp, "slow@example.org").await.unwrap();
    s.write(message("slow@example.org", 1).as_bytes())
        .await
        .unwrap();
    let smtp = ingress.smtp;
    ingress.sigterm();
    eventually(
        "the ingress to stop accepting",
        Duration::from_secs(5),
        || async {
            match connect(smtp).await {
                Err(_) => Some(()),
                Ok((_, greeting)) if code(&greeting) == 421 => Some(()),
                Ok(_) => None,
            }
        },
    )
    .await;
    let reply = s.command(".").await.unwrap();
    assert_eq!(code(&reply), 250, "the DATA in progress completes: {reply}");
    let status = ingress.wait_exit(grace).await.expect("ingress exited");
    assert!(status.success(), "ingress exit status {status}");

    // Runner: SIGTERM while the message's run is in progress.
    eventually("the run to start", Duration::from_secs(30), || async {
        (claimed(&w, INBOUND).await >= 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.runs("slow@example.org").await.0,
        0,
        "the run is still going when SIGTERM is sent"
    );
    let t = Instant::now();
    runner.sigterm();
    let status = runner.wait_exit(grace).await.expect("runner exited");
    assert!(status.success(), "runner exit status {status}");
    eprintln!("runner drained in {:?}", t.elapsed());
    let (ok, errors, _) = w.runs("slow@example.org").await;
    assert_eq!(
        (ok, errors),
        (1, 0),
        "the run in flight finished and committed"
    );
    assert!(w.file("slow@example.org", "done-1").await.is_some());

    // Egress: SIGTERM while the relay holds the delivery.
    eventually("the delivery to start", Duration::from_secs(30), || async {
        (claimed(&w, OUTBOUND).await >= 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        w.relay.received().is_empty(),
        "the delivery is still going when SIGTERM is sent"
    );
    egress.sigterm();
    let status = egress.wait_exit(grace).await.expect("egress exited");
    assert!(status.success(), "egress exit status {status}");
    let got = w.relay.received();
    assert_eq!(got.len(), 1, "the delivery in flight finished");
    let rows = outbox_rows(&w.db.url).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, "sent", "and was recorded");
    eprintln!(
        "sigterm_drains({db:?}): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_role_sqlite() {
    sigterm_drains(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_role_postgres() {
    sigterm_drains(Db::Postgres).await;
}

/// Past the grace period the run in hand is abandoned, the process exits anyway (status 1),
/// and the message runs exactly once later, in another runner.
async fn sigterm_grace_over(db: Db) {
    let started = Instant::now();
    let mut extra = SLOW_LIMITS.to_vec();
    extra.push(("THWONK_SHUTDOWN_GRACE_MS", "500"));
    // Longer than the run, so that only the abandonment returns the job.
    extra.push(("THWONK_QUEUES_VISIBILITY_MS", "10000"));
    let Some(w) = World::new(db, &extra).await else {
        return;
    };
    // Seconds of work, well past the 500 ms grace however fast the machine is today
    // (3.5 million loops took under 0.8 s on a quiet one and finished inside the grace).
    w.deploy("slow@example.org", &slow_script(15_000_000));
    let ingress = w.start("ingress").await;
    let runner = w.start("runner").await;
    let egress = w.start("egress").await;
    send_until_accepted(ingress.smtp, "slow@example.org", 1).await;
    eventually("the run to start", Duration::from_secs(30), || async {
        (claimed(&w, INBOUND).await >= 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.runs("slow@example.org").await.0,
        0,
        "the run is still going when SIGTERM is sent"
    );
    let t = Instant::now();
    runner.sigterm();
    let status = runner
        .wait_exit(Duration::from_secs(3))
        .await
        .expect("the runner exits soon after the grace period, run or no run");
    let took = t.elapsed();
    assert_eq!(status.code(), Some(1), "work was abandoned: exit status 1");
    assert_eq!(w.runs("slow@example.org").await.0, 0, "nothing committed");

    let runner = w.start("runner").await;
    w.relay
        .wait_for("the slow message's send", Duration::from_secs(60), |r| {
            !r.is_empty()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.relay.received().len(), 1);
    let (ok, errors, messages) = w.runs("slow@example.org").await;
    assert_eq!((ok, errors, messages), (1, 0, 1), "ran once, later");
    eprintln!(
        "sigterm_grace_over({db:?}): exited {took:?} after SIGTERM, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for d in [ingress, runner, egress] {
        d.stop(Duration::from_secs(20)).await;
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_grace_period_abandons_safely_sqlite() {
    sigterm_grace_over(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_grace_period_abandons_safely_postgres() {
    sigterm_grace_over(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 6. Two runners, several thwonks: per thwonk, arrival order; across thwonks, in parallel.

const ORDER_SCRIPT: &str = r#"
export function onMessage(msg, thwonk) {
  let x = 0;
  for (let i = 0; i < 100000; i++) { x += i; }
  const seq = msg.headers.get("X-Seq");
  thwonk.files.write("order", (thwonk.files.read("order") ?? "") + seq + "\n");
}
"#;

async fn ordering(db: Db) {
    let started = Instant::now();
    let Some(w) = World::new(db, &[("THWONK_RUNNER_CONCURRENCY", "2")]).await else {
        return;
    };
    let thwonks = ["a@example.org", "b@example.org", "c@example.org"];
    for t in thwonks {
        w.deploy(t, ORDER_SCRIPT);
    }
    let ingress = w.start("ingress").await;
    let runners = [w.start("runner").await, w.start("runner").await];
    let n = 30;
    // Interleaved, one after another, so arrival order is seq order per thwonk; a few
    // senders at once for different thwonks.
    let mut senders = Vec::new();
    for t in thwonks {
        senders.push(stream(ingress.smtp, t, n));
    }
    for s in senders {
        s.await.unwrap();
    }
    let want: String = (1..=n).map(|k| format!("{k}\n")).collect();
    for t in thwonks {
        eventually(
            "every message of the thwonk to run",
            Duration::from_secs(60),
            || async {
                let (ok, _, _) = w.runs(t).await;
                (ok >= n as usize).then_some(())
            },
        )
        .await;
        assert_eq!(
            w.file(t, "order").await.unwrap_or_default(),
            want,
            "{t}: runs in arrival order, each once"
        );
        assert_eq!(w.runs(t).await, (n as usize, 0, n as usize));
    }
    let worked: Vec<usize> = runners
        .iter()
        .map(|r| {
            r.log()
                .iter()
                .filter(|l| l.contains("run committed"))
                .count()
        })
        .collect();
    assert!(
        worked.iter().all(|&k| k > 0),
        "both runners ran work: {worked:?}"
    );
    // Runs of different thwonks overlapped in time.
    let mut spans = Vec::new();
    for t in thwonks {
        let id = w.thwonk_id(t).await;
        for r in w.store.list_runs(&id, 1000).await.unwrap() {
            spans.push((t, r.started_at_ms, r.finished_at_ms));
        }
    }
    let overlaps = spans
        .iter()
        .flat_map(|a| spans.iter().map(move |b| (a, b)))
        .filter(|(a, b)| a.0 < b.0 && a.1 < b.2 && b.1 < a.2)
        .count();
    eprintln!(
        "ordering({db:?}): runs per runner {worked:?}, {overlaps} overlapping pairs across thwonks, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(overlaps > 0, "different thwonks ran in parallel");
    ingress.stop(Duration::from_secs(20)).await;
    for r in runners {
        r.stop(Duration::from_secs(20)).await;
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_per_thwonk_in_arrival_order_across_two_runners_sqlite() {
    ordering(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_per_thwonk_in_arrival_order_across_two_runners_postgres() {
    ordering(Db::Postgres).await;
}
