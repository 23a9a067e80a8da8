//! `.../runs`: a thwonk's runs, newest first, with their logs, errors and cost, and the
//! message each handled (sender, subject, `Message-ID:`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use thwonk_control::views::{RunListView, RunView};

use super::visible_thwonk;
use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};

/// Most runs one listing returns.
pub const MAX_RUNS_PER_PAGE: i64 = 200;

#[derive(Deserialize)]
pub struct ListRuns {
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListRuns>,
) -> Result<Json<RunListView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let limit = q.limit.unwrap_or(20).clamp(1, MAX_RUNS_PER_PAGE);
    let runs = state.store.list_runs(&t.id, limit).await?;
    Ok(Json(RunListView {
        runs: RunView::with_messages(&state.store, &runs).await?,
    }))
}

pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((addr, run_id)): ApiPath<(String, String)>,
) -> Result<Json<RunView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let run = state
        .store
        .run(&run_id)
        .await?
        .filter(|r| r.thwonk_id == t.id)
        .ok_or_else(|| ApiError::not_found(format!("no run {run_id} of {}", t.address)))?;
    let mut views = RunView::with_messages(&state.store, std::slice::from_ref(&run)).await?;
    Ok(Json(views.remove(0)))
}
