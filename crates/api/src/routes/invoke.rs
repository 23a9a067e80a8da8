//! `POST .../invoke` and `POST .../invoke/{method}` (owner's token): a JSON body runs the
//! script's `onRequest` (or `methods[method]`) through the runner and answers its JSON value.
//!
//! The request becomes a job on the runner's queue (`thwonk_control::invoke`), serialised
//! with the thwonk's mail, and its reply comes back over Redis. Honest statuses: the run
//! succeeded `200` (an `InvokeView`); no such handler `404 no_handler`; the script threw (or
//! did not compile, or broke a per-run limit) `500 script_error` with the run's id; the run
//! ran out of its instruction, time or memory budget, or was refused by a sending or run-rate
//! budget over time (`[budgets]`), `503 over_budget` with the run's id;
//! a disabled thwonk `409`; no runner answering in time `504`; Redis or the database
//! unreachable `503`; a body over `invoke.max_body_bytes` `413`. Auth and the thwonk's
//! visibility are checked first (`401`, `404`).

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use serde_json::Value;
use std::time::Duration;
use thwonk_control::invoke::{InvokeError, InvokeOutcome, invoke_request};
use thwonk_control::views::InvokeView;
use thwonk_core::run::{ErrorKind, HttpRequestView, RunStatus};

use super::visible_thwonk;
use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};

/// How long an invoke may take end to end: the run's own wall-clock limit plus time to be
/// scheduled behind the thwonk's earlier work.
pub(crate) fn timeout(state: &ApiState) -> Duration {
    Duration::from_millis(state.config.limits.wall_clock_ms.saturating_mul(2) + 1_000)
}

pub(crate) fn api_error(e: InvokeError) -> ApiError {
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

/// A failed run as an honest status: `404` no handler, `503` over budget, `500` otherwise,
/// each naming the run. `detail`: whether the script's error message may be shown (the
/// owner's invoke) or only the kind (a public caller).
pub(crate) fn run_failed(outcome: &InvokeOutcome, detail: bool) -> ApiError {
    let run = &outcome.run_id;
    let (kind, message) = match &outcome.error {
        Some(e) => (e.kind, e.message.as_str()),
        None => (ErrorKind::Internal, "the run failed"),
    };
    let shown = if detail {
        format!("{kind}: {message} (run {run})")
    } else {
        format!("the script failed ({kind}); its owner can read run {run}")
    };
    let (status, code) = match kind {
        ErrorKind::NoHandler if message.contains("disabled") => (StatusCode::CONFLICT, "disabled"),
        ErrorKind::NoHandler => (StatusCode::NOT_FOUND, "no_handler"),
        ErrorKind::BudgetExceeded | ErrorKind::Timeout | ErrorKind::OutOfMemory => {
            (StatusCode::SERVICE_UNAVAILABLE, "over_budget")
        }
        // A sending or run-rate budget over time (`[budgets]`): the run was refused, and the
        // same call works again once the window resets (the message says when).
        ErrorKind::LimitError if message.contains("budgets.") => {
            (StatusCode::SERVICE_UNAVAILABLE, "over_budget")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "script_error"),
    };
    let shown = if status == StatusCode::NOT_FOUND && !detail {
        format!("no handler for this request (run {run})")
    } else {
        shown
    };
    ApiError::new(status, code, shown).with_run_id(run.clone())
}

/// The client's IP address, when the listener knows it (TCP; not the admin socket).
pub(crate) fn client_ip(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

async fn run(
    state: &ApiState,
    caller: &Caller,
    addr: &str,
    method: Option<String>,
    ip: Option<std::net::IpAddr>,
    body: Value,
) -> Result<Json<InvokeView>, ApiError> {
    let t = visible_thwonk(state, caller, addr).await?;
    if let Some(m) = &method
        && !thwonk_core::public_routes::is_method_name(m)
    {
        return Err(ApiError::not_found(format!("no method {m:?}")));
    }
    let http = HttpRequestView {
        method: "POST".into(),
        path: match &method {
            Some(m) => format!("/invoke/{m}"),
            None => "/invoke".into(),
        },
        caller_kind: "owner".into(),
        caller_ip: ip.map(|ip| ip.to_string()),
        handler: method,
        ..Default::default()
    };
    let out = invoke_request(
        &state.store,
        &state.redis,
        &t.id,
        body,
        Some(http),
        timeout(state),
        &state.config.invoke,
    )
    .await
    .map_err(api_error)?;
    if out.status != RunStatus::Ok {
        return Err(run_failed(&out, true));
    }
    Ok(Json(out))
}

pub async fn invoke(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    request: Request,
) -> Result<Json<InvokeView>, ApiError> {
    let ip = client_ip(&request);
    let JsonBody(body) = JsonBody::<Value>::from_request(request, &state).await?;
    run(&state, &caller, &addr, None, ip, body).await
}

/// `POST .../invoke/{method}`: `methods[method](req, thwonk)`.
pub async fn invoke_method(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((addr, method)): ApiPath<(String, String)>,
    request: Request,
) -> Result<Json<InvokeView>, ApiError> {
    let ip = client_ip(&request);
    let JsonBody(body) = JsonBody::<Value>::from_request(request, &state).await?;
    run(&state, &caller, &addr, Some(method), ip, body).await
}
