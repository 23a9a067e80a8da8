//! `/v1/thwonks[/{address}]`: list, create, show, disable/enable, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use thwonk_core::status::ThwonkStatus;
use thwonk_store::Thwonk;

use super::{address, visible_thwonk};
use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};

/// A thwonk as the API shows it.
pub fn view(t: &Thwonk) -> Value {
    json!({
        "id": t.id,
        "address": t.address.as_str(),
        "status": t.status,
        "active_version": t.active_version,
        "schedule": t.schedule,
        "created_at_ms": t.created_at_ms,
    })
}

pub async fn list(State(state): State<ApiState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let thwonks = match &caller {
        Caller::Admin => state.store.list_thwonks().await?,
        Caller::Owner { user_id } => state.store.list_thwonks_owned_by(user_id).await?,
    };
    Ok(Json(json!({
        "thwonks": thwonks.iter().map(view).collect::<Vec<_>>()
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewThwonk {
    address: String,
    /// Admins only: the user (by name) who will own it.
    owner: Option<String>,
}

/// Create an empty thwonk (deploy a script to give it one). `409` when the address is taken.
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewThwonk>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let address = address(&body.address)?;
    let owner_id = match (&caller, &body.owner) {
        (Caller::Admin, Some(name)) => Some(
            state
                .store
                .user_by_name(name)
                .await?
                .ok_or_else(|| ApiError::bad_request("bad_owner", format!("no user {name:?}")))?
                .id,
        ),
        (Caller::Admin, None) => None,
        (Caller::Owner { .. }, Some(_)) => {
            return Err(ApiError::forbidden(
                "only an admin can choose a thwonk's owner",
            ));
        }
        (Caller::Owner { user_id }, None) => Some(user_id.clone()),
    };
    if !state
        .store
        .create_thwonk(&address, owner_id.as_deref())
        .await?
    {
        return Err(ApiError::conflict(format!("{address} is taken")));
    }
    let t = state
        .store
        .thwonk_by_address(&address)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no thwonk at {address}")))?;
    Ok((StatusCode::CREATED, Json(view(&t))))
}

pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let mut v = view(&t);
    v["owner_id"] = state.store.thwonk_owner(&t.id).await?.into();
    Ok(Json(v))
}

pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    // Its schedule goes first, so no tick fires for a thwonk that is gone.
    if let Err(e) = thwonk_runner::schedule::register(&state.redis, &t.id, None).await {
        tracing::warn!(error = %e, thwonk = %t.address, "cannot drop the schedule; runners drop it at their next sync");
    }
    state.store.delete_thwonk(&t.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn disable(
    state: State<ApiState>,
    caller: Caller,
    path: ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    set_status(state, caller, path, ThwonkStatus::Disabled).await
}

pub async fn enable(
    state: State<ApiState>,
    caller: Caller,
    path: ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    set_status(state, caller, path, ThwonkStatus::Active).await
}

async fn set_status(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    status: ThwonkStatus,
) -> Result<Json<Value>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    state.store.set_thwonk_status(&t.id, status).await?;
    let t = state
        .store
        .thwonk(&t.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no thwonk at {addr}")))?;
    if let Err(e) = crate::deploy::register_schedule(&state.redis, &t).await {
        tracing::warn!(error = %e, thwonk = %t.address, "cannot update the schedule; runners do at their next sync");
    }
    Ok(Json(view(&t)))
}
