//! `.../runs`: a thwonk's runs, newest first, with their logs, errors and cost.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use thwonk_store::RunRecord;

use super::visible_thwonk;
use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};

/// Most runs one listing returns.
pub const MAX_RUNS_PER_PAGE: i64 = 200;

pub fn view(r: &RunRecord) -> Value {
    json!({
        "id": r.id,
        "message_id": r.message_id,
        "trigger": r.trigger,
        "script_version": r.script_version,
        "status": r.status,
        "error": r.error_kind.as_ref().map(|kind| json!({
            "kind": kind, "message": r.error_message, "stack": r.error_stack,
        })),
        "logs": r.logs,
        "logs_truncated": r.logs_truncated,
        "cost": {"instructions": r.instructions, "wall_ms": r.wall_ms},
        "started_at_ms": r.started_at_ms,
        "finished_at_ms": r.finished_at_ms,
    })
}

#[derive(Deserialize)]
pub struct ListRuns {
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListRuns>,
) -> Result<Json<Value>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let limit = q.limit.unwrap_or(20).clamp(1, MAX_RUNS_PER_PAGE);
    let runs = state.store.list_runs(&t.id, limit).await?;
    Ok(Json(
        json!({"runs": runs.iter().map(view).collect::<Vec<_>>()}),
    ))
}

pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((addr, run_id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let run = state
        .store
        .run(&run_id)
        .await?
        .filter(|r| r.thwonk_id == t.id)
        .ok_or_else(|| ApiError::not_found(format!("no run {run_id} of {addr}")))?;
    Ok(Json(view(&run)))
}
