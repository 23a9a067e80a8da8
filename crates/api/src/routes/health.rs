//! `/healthz` (the process answers), `/readyz` (its database and Redis answer too) and
//! `/metrics` (Prometheus text: process counters and the queue depths). The first two need no
//! token: they say nothing about any thwonk. `/metrics` tells how busy the server is and what
//! it refuses, which is the operator's business: on the API listener it needs an admin token
//! (`401` without, `403` with an owner's); scrapers use the open `[metrics] listen` listener,
//! which should not face the internet (`src/metrics_http.rs`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Value>) {
    let database = state.store.thwonk("").await.is_ok();
    let mut conn = state.redis.shared();
    let redis = redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok();
    let ready = database && redis;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "database": database,
            "redis": redis,
        })),
    )
}

pub async fn metrics(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    if caller != Caller::Admin {
        return Err(ApiError::forbidden(
            "metrics need an admin token here; scrapers use the [metrics] listen listener",
        ));
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        thwonk_control::metrics::render_all(&state.redis).await,
    ))
}
