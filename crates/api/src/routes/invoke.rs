//! `POST .../invoke`: a JSON body runs the script's `onRequest` through the runner and
//! answers its JSON value.
//!
//! [`run_invoke`] is the one place that calls the runner side (`thwonk_runner::invoke`): no
//! runner answering in time is `504`, Redis or the database unreachable `503`, a disabled
//! thwonk `409`, a body over `invoke.max_body_bytes` `413`. Auth and the thwonk's visibility
//! are checked first (`401`, `404`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use thwonk_core::run::{RunError, RunStatus};

use super::visible_thwonk;
use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};

/// How long an invoke may take end to end: the run's own wall-clock limit plus time to be
/// scheduled behind the thwonk's earlier work.
fn timeout(state: &ApiState) -> Duration {
    Duration::from_millis(state.config.limits.wall_clock_ms.saturating_mul(2) + 1_000)
}

/// What an invoke produced (mirrors `thwonk_runner::invoke::InvokeOutcome`).
pub struct Invoked {
    pub run_id: String,
    pub status: RunStatus,
    pub value: Option<Value>,
    pub error: Option<RunError>,
}

/// The adapter onto the runner's invoke: the request becomes a job on the runner's queue,
/// serialised with the thwonk's mail, and its reply comes back over Redis.
async fn run_invoke(
    state: &ApiState,
    thwonk_id: &str,
    body: Value,
    timeout: Duration,
) -> Result<Invoked, ApiError> {
    use thwonk_runner::invoke::{InvokeError, invoke_with};
    let out = invoke_with(
        &state.store,
        &state.redis,
        thwonk_id,
        body,
        timeout,
        &state.config.invoke,
    )
    .await
    .map_err(|e| {
        let (status, code) = match &e {
            InvokeError::NoSuchThwonk(_) => (StatusCode::NOT_FOUND, "not_found"),
            InvokeError::Disabled(_) => (StatusCode::CONFLICT, "disabled"),
            InvokeError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            InvokeError::TooDeep { .. } => (StatusCode::BAD_REQUEST, "too_deep"),
            InvokeError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            InvokeError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        ApiError::new(status, code, e.to_string())
    })?;
    Ok(Invoked {
        run_id: out.run_id,
        status: out.status,
        value: out.value,
        error: out.error,
    })
}

pub async fn invoke(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let out = run_invoke(&state, &t.id, body, timeout(&state)).await?;
    Ok(Json(json!({
        "run_id": out.run_id,
        "status": out.status,
        "value": out.value,
        "error": out.error,
    })))
}
