//! The routes, one file per resource; [`router`] puts them together under `/v1`.

pub mod feeds;
pub mod files;
pub mod health;
pub mod invoke;
pub mod public;
pub mod runs;
pub mod scripts;
pub mod thwonks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use thwonk_core::Address;
use thwonk_store::Thwonk;

use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Every route of the API (the OpenAPI document lists the same ones; a test checks).
pub fn router(state: ApiState) -> Router {
    let limit = usize::try_from(state.config.http.max_body_bytes).unwrap_or(usize::MAX);
    let t = "/v1/thwonks/{address}";
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/openapi.json", get(crate::openapi::serve))
        .route("/v1/thwonks", get(thwonks::list).post(thwonks::create))
        .route(t, get(thwonks::show).delete(thwonks::delete))
        .route(&format!("{t}/disable"), post(thwonks::disable))
        .route(&format!("{t}/enable"), post(thwonks::enable))
        .route(
            &format!("{t}/script"),
            get(scripts::active).put(scripts::deploy),
        )
        .route(&format!("{t}/versions"), get(scripts::versions))
        .route(&format!("{t}/versions/{{version}}"), get(scripts::version))
        .route(&format!("{t}/rollback"), post(scripts::rollback))
        .route(&format!("{t}/test"), post(scripts::dry_run))
        .route(&format!("{t}/runs"), get(runs::list))
        .route(&format!("{t}/runs/{{run_id}}"), get(runs::show))
        .route(&format!("{t}/files"), get(files::list))
        .route(
            &format!("{t}/files/{{*path}}"),
            get(files::get).put(files::put).delete(files::delete),
        )
        .route(&format!("{t}/feeds/{{name}}"), get(feeds::items))
        .route(&format!("{t}/feeds/{{name}}/events"), get(feeds::events))
        .route(&format!("{t}/invoke"), post(invoke::invoke))
        .route(
            &format!("{t}/invoke/{{method}}"),
            post(invoke::invoke_method),
        )
        // The public side (no token): one handler reads the raw path itself.
        .route("/pub/{address}", any(public::serve))
        .route("/pub/{address}/", any(public::serve))
        .route("/pub/{address}/{*path}", any(public::serve))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Parse a rules address from the URL.
pub(crate) fn address(raw: &str) -> Result<Address, ApiError> {
    Address::parse(raw).map_err(|e| ApiError::bad_request("bad_address", e.to_string()))
}

/// The thwonk at `address` if the caller may see it; `404` alike for a missing thwonk and
/// for another owner's (what another owner's thwonk holds is not told; creating its address
/// answers [`taken_by_another`]).
pub(crate) async fn visible_thwonk(
    state: &ApiState,
    caller: &Caller,
    address: &str,
) -> Result<Thwonk, ApiError> {
    let address = self::address(address)?;
    let not_found = || ApiError::not_found(format!("no thwonk at {address}"));
    let thwonk = state
        .store
        .thwonk_by_address(&address)
        .await?
        .ok_or_else(not_found)?;
    if may_see(state, caller, &thwonk).await? {
        Ok(thwonk)
    } else {
        Err(not_found())
    }
}

/// What creating (`POST /v1/thwonks`) or deploying to (`PUT .../script`) an address that
/// another owner holds answers: `409 address_taken`. Addresses are one namespace (mail to
/// one reaches one thwonk), so that an address is taken is no secret; what the thwonk holds
/// stays hidden (every other route answers `404` as for a missing thwonk).
pub(crate) fn taken_by_another(address: &Address) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "address_taken",
        format!("{address} is taken by another owner"),
    )
}

/// Refuse (`403`, `address_not_allowed` or `thwonk_limit`) an owner's new thwonk at
/// `address` that the address policy does not allow ([`thwonk_control::policy`]); admins may
/// claim any address.
pub(crate) async fn may_claim(
    state: &ApiState,
    caller: &Caller,
    address: &Address,
) -> Result<(), ApiError> {
    let Caller::Owner { user_id } = caller else {
        return Ok(());
    };
    match thwonk_control::policy::owner_may_claim(&state.store, &state.config, user_id, address)
        .await?
    {
        None => Ok(()),
        Some(refused) => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            refused.code,
            refused.message,
        )),
    }
}

pub(crate) async fn may_see(
    state: &ApiState,
    caller: &Caller,
    thwonk: &Thwonk,
) -> Result<bool, ApiError> {
    Ok(match caller {
        Caller::Admin => true,
        Caller::Owner { user_id } => {
            state.store.thwonk_owner(&thwonk.id).await?.as_deref() == Some(user_id.as_str())
        }
    })
}

/// Run blocking work (sandbox workers) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("a blocking task failed", e))
}
