//! A real API server for tests: the router on a TCP listener (a free port), a real SQLite (or
//! PostgreSQL) store, a private redis-server, real sandbox workers; three users (an admin and
//! two owners) with tokens; and clients that speak HTTP/1.1 over a socket
//! (`thwonk_api::client`, whose `EventStream` reads `text/event-stream` as EventSource does).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thwonk_api::client::{self, EventStream, Response};
use thwonk_core::Config;
use thwonk_sandbox::WorkerPool;
use thwonk_store::{Role, Store};
use thwonk_thoonk::{PrivateRedis, Redis};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub const WORKER: &str = env!("CARGO_BIN_EXE_thwonk-api-sandbox-worker");

pub struct Server {
    pub addr: SocketAddr,
    pub store: Store,
    pub redis: Redis,
    pub redis_server: Option<PrivateRedis>,
    pub redis_socket: std::path::PathBuf,
    pub config: Arc<Config>,
    pub admin: String,
    pub alice: String,
    pub alice_id: String,
    pub bob: String,
    pub shutdown: CancellationToken,
    pub dir: tempfile::TempDir,
}

/// Limits small enough to test around.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.limits.file_max_bytes = 64 * 1024;
    c.http.max_body_bytes = 128 * 1024;
    c.http.sse_keep_alive = std::time::Duration::from_secs(1);
    c
}

impl Server {
    pub async fn start() -> Server {
        Server::start_on(None).await
    }

    /// With `database_url` (PostgreSQL), or SQLite in a temporary directory.
    pub async fn start_on(database_url: Option<&str>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = database_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite://{}/t.db", dir.path().display()));
        let store = Store::connect(&url, 4).await.unwrap();
        store.migrate().await.unwrap();
        let redis_socket = dir.path().join("r.sock");
        let server = PrivateRedis::start("redis-server", dir.path(), &redis_socket)
            .await
            .unwrap();
        let redis = Redis::connect(&server.url()).await.unwrap();
        let config = Arc::new(test_config());
        let shutdown = CancellationToken::new();
        let state = thwonk_api::ApiState {
            store: store.clone(),
            redis: redis.clone(),
            config: config.clone(),
            pool: WorkerPool::with_program(WORKER, 2, config.limits.memory_mib),
            shutdown: shutdown.clone(),
            public: Arc::new(thwonk_api::routes::public::PublicState::new(&config)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(thwonk_api::serve_tcp(listener, state));
        let token = |name: &'static str, role| {
            let store = store.clone();
            async move {
                let u = store.add_user(name, role).await.unwrap();
                let (secret, hash) = thwonk_api::auth::new_token();
                store.add_token(&u.id, "test", &hash).await.unwrap();
                (secret, u.id)
            }
        };
        let (admin, _) = token("root", Role::Admin).await;
        let (alice, alice_id) = token("alice", Role::Owner).await;
        let (bob, _) = token("bob", Role::Owner).await;
        Server {
            addr,
            store,
            redis,
            redis_server: Some(server),
            redis_socket,
            config,
            admin,
            alice,
            alice_id,
            bob,
            shutdown,
            dir,
        }
    }

    /// One request; `token` as a bearer token.
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Response {
        self.req_with(method, path, token, &[], body).await
    }

    /// One request with `extra` headers (`Accept`, say).
    pub async fn req_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        headers.extend_from_slice(extra);
        tokio::time::timeout(
            Duration::from_secs(30),
            client::send(stream, method, path, &headers, body),
        )
        .await
        .expect("the server answers within 30 s")
        .unwrap()
    }

    /// Open an event stream the way a browser's EventSource does.
    pub async fn events(
        &self,
        path: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> EventStream {
        EventStream::open(self.addr, path, token, last_event_id)
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A committed run of `thwonk_id` that publishes `items` (id, item) to its feed `feed`
/// (`ADDRESS/NAME`), then applied to Redis as the runner does after a commit.
pub async fn publish_by_run(
    store: &Store,
    redis: &Redis,
    thwonk_id: &str,
    feed: &str,
    items: &[(&str, &str)],
) -> String {
    let run_id = thwonk_core::ids::new_id();
    let commit = thwonk_store::RunCommit {
        run: thwonk_store::RunRecord {
            id: run_id.clone(),
            thwonk_id: thwonk_id.into(),
            message_id: None,
            trigger: thwonk_core::status::TriggerKind::Request,
            script_version: 1,
            status: thwonk_core::run::RunStatus::Ok,
            error_kind: None,
            error_message: None,
            error_stack: None,
            logs: vec![thwonk_core::run::LogLine {
                level: "log".into(),
                message: "published".into(),
            }],
            logs_truncated: false,
            instructions: 42,
            wall_ms: 3,
            started_at_ms: thwonk_core::time::now_ms(),
            finished_at_ms: thwonk_core::time::now_ms(),
        },
        vfs: vec![],
        outbox: vec![],
        feed_ops: items
            .iter()
            .map(|(id, item)| thwonk_core::run::FeedOp::Publish {
                feed: feed.into(),
                id: id.to_string(),
                item: item.to_string(),
            })
            .collect(),
        schedule_tick_ms: None,
        jobs: Default::default(),
    };
    store.commit_run(&commit).await.unwrap();
    thwonk_control::feeds::apply_pending(store, redis, thwonk_id)
        .await
        .unwrap();
    run_id
}
