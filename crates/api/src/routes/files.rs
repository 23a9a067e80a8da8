//! `.../files[/{path}]`: a thwonk's VFS files. Paths are checked by `thwonk_core::vfs` (no
//! `..`, `.`, empty segments, NUL or backslash, whether spelled plainly or percent-encoded:
//! the router decodes before this sees them). One leading `/` is dropped (`/members.json` is
//! `members.json`), as scripts and the CLI do: one rule everywhere.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use thwonk_control::views::{FileListView, FileWrittenView};
use thwonk_core::vfs::{normalize_path, normalize_prefix};

use super::visible_thwonk;
use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, Body};

fn file_path(raw: &str) -> Result<String, ApiError> {
    normalize_path(raw).map_err(|e| ApiError::bad_request("bad_path", e.to_string()))
}

#[derive(Deserialize)]
pub struct ListFiles {
    prefix: Option<String>,
}

pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListFiles>,
) -> Result<Json<FileListView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let prefix = normalize_prefix(q.prefix.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("bad_path", e.to_string()))?;
    let files = state.store.list_files(&t.id, &prefix).await?;
    Ok(Json(FileListView { files }))
}

pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((addr, path)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let path = file_path(&path)?;
    let bytes = state
        .store
        .read_file(&t.id, &path)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no file {path} in {addr}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Store the body as the file (created or replaced).
pub async fn put(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((addr, path)): ApiPath<(String, String)>,
    Body(body): Body,
) -> Result<Json<FileWrittenView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let path = file_path(&path)?;
    let max = state.config.limits.file_max_bytes;
    if body.len() as u64 > max {
        return Err(ApiError::too_large(format!(
            "the file is {} bytes; files are at most {max} (limits.file_max_bytes)",
            body.len()
        )));
    }
    state
        .store
        .put_file(&t.id, &path, &body, thwonk_core::time::now_ms())
        .await?;
    Ok(Json(FileWrittenView {
        path,
        size: body.len() as u64,
    }))
}

pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((addr, path)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let path = file_path(&path)?;
    if state.store.delete_file(&t.id, &path).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no file {path} in {addr}")))
    }
}
