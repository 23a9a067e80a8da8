//! Thwonk's HTTP API: thwonks, scripts, runs, files and feeds over JSON under `/v1` (axum),
//! with bearer-token auth, and the same API on the admin socket for the CLI.
//!
//! - [`routes`]: the router and one file per resource (`thwonks`, `scripts` (deploy,
//!   versions, rollback, dry run), `runs`, `files`, `feeds` (items and Server-Sent Events),
//!   `invoke`, `health`), and `public`: the thwonks on the web under `/pub/{address}/…`
//!   (published files and public request handlers, no token).
//! - [`auth`]: tokens (`thw_…`, stored as SHA-256), roles (admin, owner) and the [`Caller`]
//!   extractor; another owner's thwonk answers `404`.
//! - [`error`]: the one error type, rendered as `{"error": {"code", "message"}}`.
//! - [`extract`]: body, JSON, path and query extractors that fail in that shape (`400`,
//!   `413`).
//! - [`openapi`]: the OpenAPI document at `/v1/openapi.json`, naming the response types of
//!   `thwonk_control::views`.
//! - [`admin_socket`]: the API on `{data_dir}/admin.sock` (0600, trusted as admin).
//! - [`client`]: a small HTTP/1.1 client for that socket (the CLI) and tests.
//!
//! What a route does beyond HTTP (deploy, dry run, invoke, feed names, the metrics scrape) is
//! in `thwonk-control`, shared with the CLI; what it answers is a `thwonk_control::views` type.
//!
//! Not for: running scripts for mail (the runner) or storing anything itself (the store).
//!
//! Limits are configuration (`[http]`: `max_body_bytes`, `sandbox_workers`,
//! `sse_keep_alive_secs`, `max_feed_items`; `[limits]` for scripts and files).

pub mod admin_socket;
pub mod auth;
pub mod client;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod routes;
pub mod tcp;

pub use auth::Caller;
pub use error::ApiError;
pub use routes::router;

use std::sync::Arc;
use thwonk_core::Config;
use thwonk_sandbox::WorkerPool;
use thwonk_store::Store;
use thwonk_thoonk::{EventHub, Redis};
use tokio_util::sync::CancellationToken;

/// What every handler can reach (cheap to clone).
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub redis: Redis,
    pub config: Arc<Config>,
    /// Sandbox workers for deploy checks and dry runs (`http.sandbox_workers`).
    pub pool: WorkerPool,
    /// Cancelled at shutdown: open event streams end so the server can stop.
    pub shutdown: CancellationToken,
    /// The one Redis pub/sub connection every event stream of this process shares.
    pub events: EventHub,
    /// Event streams open per token (`http.max_event_streams_per_token`).
    pub streams: routes::feeds::StreamCounts,
    /// The public web side's rate limiter, run counters and route cache (`[public]`).
    pub public: Arc<routes::public::PublicState>,
}

impl ApiState {
    /// State whose sandbox workers are this executable (`thwonk __sandbox-worker`).
    pub fn new(
        store: Store,
        redis: Redis,
        config: Arc<Config>,
        shutdown: CancellationToken,
    ) -> Self {
        let pool = WorkerPool::new(
            config.http.sandbox_workers as usize,
            config.limits.memory_mib,
        )
        .require_wall(config.runner.require_wall);
        ApiState::with_pool(store, redis, config, pool, shutdown)
    }

    /// State with the given sandbox workers (tests run a worker binary of their own).
    pub fn with_pool(
        store: Store,
        redis: Redis,
        config: Arc<Config>,
        pool: WorkerPool,
        shutdown: CancellationToken,
    ) -> Self {
        let events = EventHub::feeds(redis.clone(), shutdown.clone());
        let public = Arc::new(routes::public::PublicState::new(&config));
        ApiState {
            store,
            redis,
            config,
            pool,
            shutdown,
            events,
            streams: Default::default(),
            public,
        }
    }
}

/// Serve the API on a TCP listener until `state.shutdown`, within the connection limits and
/// the header read timeout of `[http]` ([`tcp`]). Each request knows its peer's address
/// (`ConnectInfo`): the public side limits its rate per IP.
pub async fn serve_tcp(listener: tokio::net::TcpListener, state: ApiState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let config = state.config.clone();
    tcp::serve(listener, router(state), &config.http, shutdown).await
}
