//! `POST .../invoke`: a JSON body runs the script's `onRequest` through the runner and
//! answers its JSON value.
//!
//! The request becomes a job on the runner's queue (`thwonk_control::invoke`), serialised
//! with the thwonk's mail, and its reply comes back over Redis: no runner answering in time
//! is `504`, Redis or the database unreachable `503`, a disabled thwonk `409`, a body over
//! `invoke.max_body_bytes` `413`. Auth and the thwonk's visibility are checked first (`401`,
//! `404`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use std::time::Duration;
use thwonk_control::invoke::{InvokeError, invoke_with};
use thwonk_control::views::InvokeView;

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

fn api_error(e: InvokeError) -> ApiError {
    let (status, code) = match &e {
        InvokeError::NoSuchThwonk(_) => (StatusCode::NOT_FOUND, "not_found"),
        InvokeError::Disabled(_) => (StatusCode::CONFLICT, "disabled"),
        InvokeError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        InvokeError::TooDeep { .. } => (StatusCode::BAD_REQUEST, "too_deep"),
        InvokeError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        InvokeError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    ApiError::new(status, code, e.to_string())
}

pub async fn invoke(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<InvokeView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let out = invoke_with(
        &state.store,
        &state.redis,
        &t.id,
        body,
        timeout(&state),
        &state.config.invoke,
    )
    .await
    .map_err(api_error)?;
    Ok(Json(out))
}
