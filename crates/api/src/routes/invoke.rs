//! `POST .../invoke`: a JSON body runs the script's `onRequest` through the runner and
//! answers its JSON value.
//!
//! The runner side lands separately (`thwonk_runner::invoke`); [`run_invoke`] is the one
//! place that calls it, and answers `501` until it is wired. Auth and the thwonk's visibility
//! are checked before, so the route's `401`/`404` behaviour is already final.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use thwonk_core::run::RunError;

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
    /// `ok` or `error`.
    pub status: String,
    pub value: Option<Value>,
    pub error: Option<RunError>,
}

/// The adapter onto the runner's invoke.
async fn run_invoke(
    _state: &ApiState,
    _thwonk_id: &str,
    _body: Value,
    _timeout: Duration,
) -> Result<Invoked, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        "invoke is not available in this build yet",
    ))
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
