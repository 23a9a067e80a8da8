//! `/v1/thwonks[/{address}]`: list, create, show, disable/enable, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use thwonk_control::deploy::{drop_schedule, register_schedule};
use thwonk_control::views::{ThwonkDetailView, ThwonkListView, ThwonkView};
use thwonk_core::status::ThwonkStatus;

use super::{address, visible_thwonk};
use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};

pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<ThwonkListView>, ApiError> {
    let thwonks = match &caller {
        Caller::Admin => state.store.list_thwonks().await?,
        Caller::Owner { user_id } => state.store.list_thwonks_owned_by(user_id).await?,
    };
    Ok(Json(ThwonkListView {
        thwonks: thwonks.iter().map(ThwonkView::from).collect(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewThwonk {
    address: String,
    /// Admins only: the user (by name) who will own it.
    owner: Option<String>,
}

/// Create an empty thwonk (deploy a script to give it one). `409 address_taken` when the
/// address is taken ("taken by another owner" when the caller may not see it).
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewThwonk>,
) -> Result<(StatusCode, Json<ThwonkView>), ApiError> {
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
    if state.store.thwonk_by_address(&address).await?.is_none() {
        // A taken address answers 409 below, as before; a free one is checked first.
        super::may_claim(&state, &caller, &address).await?;
    }
    if !state
        .store
        .create_thwonk(&address, owner_id.as_deref())
        .await?
    {
        // The same answer as `PUT .../script` to another owner's address.
        let visible = match state.store.thwonk_by_address(&address).await? {
            Some(t) => super::may_see(&state, &caller, &t).await?,
            None => true,
        };
        return Err(if visible {
            ApiError::new(
                StatusCode::CONFLICT,
                "address_taken",
                format!("{address} already exists"),
            )
        } else {
            super::taken_by_another(&address)
        });
    }
    let t = state
        .store
        .thwonk_by_address(&address)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no thwonk at {address}")))?;
    Ok((StatusCode::CREATED, Json(ThwonkView::from(&t))))
}

pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
) -> Result<Json<ThwonkDetailView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    Ok(Json(ThwonkDetailView {
        thwonk: ThwonkView::from(&t),
        owner_id: state.store.thwonk_owner(&t.id).await?,
    }))
}

pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    // Its schedule goes first, so no tick fires for a thwonk that is gone.
    if let Err(e) = drop_schedule(&state.redis, &t).await {
        tracing::warn!(error = %e, thwonk = %t.address, "cannot drop the schedule; runners drop it at their next sync");
    }
    state.store.delete_thwonk(&t.id).await?;
    // Then its feeds: keyed by its id, which no thwonk will have again.
    thwonk_control::feeds::delete_feeds_of_deleted(&state.redis, &t.id).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn disable(
    state: State<ApiState>,
    caller: Caller,
    path: ApiPath<String>,
) -> Result<Json<ThwonkView>, ApiError> {
    set_status(state, caller, path, ThwonkStatus::Disabled).await
}

pub async fn enable(
    state: State<ApiState>,
    caller: Caller,
    path: ApiPath<String>,
) -> Result<Json<ThwonkView>, ApiError> {
    set_status(state, caller, path, ThwonkStatus::Active).await
}

async fn set_status(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    status: ThwonkStatus,
) -> Result<Json<ThwonkView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    state.store.set_thwonk_status(&t.id, status).await?;
    let t = state
        .store
        .thwonk(&t.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no thwonk at {addr}")))?;
    if let Err(e) = register_schedule(&state.redis, &t).await {
        tracing::warn!(error = %e, thwonk = %t.address, "cannot update the schedule; runners do at their next sync");
    }
    Ok(Json(ThwonkView::from(&t)))
}
