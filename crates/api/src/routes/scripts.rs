//! A thwonk's script: deploy (`PUT .../script`, the same use case as `thwonk deploy`:
//! `thwonk_control::deploy`), the active source, versions, rollback, and the dry run
//! (`POST .../test`, no side effects: `thwonk_control::dry_run`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use thwonk_control::deploy::{
    DeployError, check_script, register_schedule, schedule_not_registered, write_version,
};
use thwonk_control::dry_run::{DryRun, dry_run_with_vfs};
use thwonk_control::views::{DeployView, DryRunView, ThwonkView, VersionListView, VersionView};

use super::{address, blocking, may_see, taken_by_another, visible_thwonk};
use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiPath, Body, JsonBody};

fn refused(e: DeployError) -> ApiError {
    match e {
        DeployError::Refused {
            line,
            column,
            message,
        } => {
            let mut err = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "script_refused",
                format!("{line}:{column}: {message}"),
            );
            err.position = Some((line, column));
            err
        }
        DeployError::Sandbox(e) => {
            ApiError::unavailable("no sandbox worker could check the script", e)
        }
    }
}

async fn checked(
    state: &ApiState,
    source: String,
) -> Result<(String, thwonk_sandbox::ScriptInfo), ApiError> {
    let (pool, limits) = (state.pool.clone(), state.config.limits.clone());
    blocking(move || check_script(&pool, &source, &limits).map(|info| (source, info)))
        .await?
        .map_err(refused)
}

/// Deploy the body (the script's source, UTF-8) as the thwonk's next version, creating the
/// thwonk (owned by the caller) when the address is free. `201` when created, else `200`.
pub async fn deploy(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<DeployView>), ApiError> {
    let address = address(&addr)?;
    let source = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("bad_body", "the script is not UTF-8 text"))?;
    // Ownership first (cheap, and an owner must not learn whether another's script checks).
    // Another owner's address answers as `POST /v1/thwonks` does: 409, taken.
    let created = match state.store.thwonk_by_address(&address).await? {
        Some(t) if !may_see(&state, &caller, &t).await? => {
            return Err(taken_by_another(&address));
        }
        Some(_) => false,
        None => true,
    };
    if created {
        super::may_claim(&state, &caller, &address).await?;
    }
    let (source, info) = checked(&state, source).await?;
    if created {
        // Settle who owns the address before writing a version: a racing creator wins or
        // loses here, never after its script is in.
        state
            .store
            .create_thwonk(&address, caller.owner_id())
            .await?;
        let t = state
            .store
            .thwonk_by_address(&address)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no thwonk at {address}")))?;
        if !may_see(&state, &caller, &t).await? {
            return Err(taken_by_another(&address));
        }
    }
    let mut deployment =
        write_version(&state.store, &state.config, &address, &source, info).await?;
    if let Err(e) = register_schedule(&state.redis, &deployment.deployed.thwonk).await {
        deployment.warnings.push(schedule_not_registered(e));
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut view = deployment.view();
    // This request created the thwonk above, before its version: the store saw it existing.
    view.created = created;
    Ok((status, Json(view)))
}

/// Whether the client asked for JSON: its `Accept` names `application/json`. Anything else
/// (no `Accept`, `*/*` as curl sends, `text/plain`, `application/javascript`) gets the source
/// as raw text, so `curl .../script > script.js` round-trips with `PUT .../script`.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut fields = part.split(';');
            let media = fields.next().unwrap_or("").trim();
            // `application/json;q=0` refuses JSON rather than asking for it.
            let refused = fields.any(|f| {
                let f = f.trim().replace(' ', "");
                f == "q=0" || f == "q=0.0" || f == "q=0.00" || f == "q=0.000"
            });
            media.eq_ignore_ascii_case("application/json") && !refused
        })
}

/// A version as JSON ([`VersionView`] with its source) or, by `Accept`, its source alone
/// (`application/javascript; charset=utf-8`, with the version in `X-Thwonk-Version`).
fn version_answer(v: &thwonk_store::ScriptVersion, headers: &HeaderMap) -> Response {
    if wants_json(headers) {
        return Json(VersionView::of(v, true)).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/javascript; charset=utf-8"),
            ),
            (
                HeaderName::from_static("x-thwonk-version"),
                HeaderValue::from(v.version),
            ),
        ],
        v.source.clone(),
    )
        .into_response()
}

/// The active version: its source as raw text, or with `Accept: application/json` the
/// [`VersionView`] with its source.
pub async fn active(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let v = state
        .store
        .active_script(&t.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{} has no script yet", t.address)))?;
    Ok(version_answer(&v, &headers))
}

/// Every version, newest first (without sources; `GET .../versions/{n}` has one).
pub async fn versions(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
) -> Result<Json<VersionListView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let versions = state.store.list_script_versions(&t.id).await?;
    Ok(Json(VersionListView {
        active_version: t.active_version,
        versions: versions.iter().map(|v| VersionView::of(v, false)).collect(),
    }))
}

/// One version: as JSON with its source, or (by `Accept`, as `GET .../script`) the source.
pub async fn version(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((addr, version)): ApiPath<(String, i64)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let v = state
        .store
        .script_version(&t.id, version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{} has no version {version}", t.address)))?;
    Ok(version_answer(&v, &headers))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    version: i64,
}

/// Make an earlier (or any existing) version active again.
pub async fn rollback(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    JsonBody(body): JsonBody<Rollback>,
) -> Result<Json<ThwonkView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let t = state.store.activate_version(&t.id, body.version).await?;
    if let Err(e) = register_schedule(&state.redis, &t).await {
        tracing::warn!(error = %e, thwonk = %t.address, "cannot update the schedule; runners do at their next sync");
    }
    Ok(Json(ThwonkView::from(&t)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    /// The whole message (RFC 5322 text).
    message: String,
    /// Envelope sender; default: none (the null sender).
    #[serde(default)]
    mail_from: String,
    /// A script to try instead of the active version (checked as a deploy would be).
    script: Option<String>,
}

/// Dry runs in progress, per owner (admins share one key).
static DRY_RUNS: InFlight = InFlight::new();

/// Requests in progress per key, at most one each.
struct InFlight(std::sync::Mutex<Vec<String>>);

/// A key's place in [`InFlight`]; given back when dropped.
struct InFlightSlot(&'static InFlight, String);

impl InFlight {
    const fn new() -> Self {
        InFlight(std::sync::Mutex::new(Vec::new()))
    }

    fn try_enter(&'static self, key: &str) -> Option<InFlightSlot> {
        let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if keys.iter().any(|k| k == key) {
            return None;
        }
        keys.push(key.to_string());
        Some(InFlightSlot(self, key.to_string()))
    }
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        let mut keys = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.retain(|k| *k != self.1);
    }
}

/// Run the active script (or `script`) once on `message`: the run's result, what it would
/// send, write and publish; nothing is committed, sent or published. Files are read from
/// the thwonk's own VFS.
pub async fn dry_run(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(addr): ApiPath<String>,
    JsonBody(req): JsonBody<DryRunRequest>,
) -> Result<Json<DryRunView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    // One dry run per owner at a time: one owner's dry runs cannot take every sandbox worker
    // of the API while another owner's deploy waits for one to check its script.
    let _slot = DRY_RUNS
        .try_enter(caller.owner_id().unwrap_or(""))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                "a dry run of yours is already running; try again when it has finished",
            )
        })?;
    let source = match req.script {
        Some(source) => checked(&state, source).await?.0,
        None => {
            state
                .store
                .active_script(&t.id)
                .await?
                .ok_or_else(|| {
                    ApiError::conflict(format!(
                        "{addr} has no script yet: deploy one or pass \"script\""
                    ))
                })?
                .source
        }
    };
    // Created here, on a runtime thread: it enters the store through this runtime's handle.
    // Feeds are read too (`feed(name).items()`); nothing is written.
    let mut vfs = thwonk_control::vfs::StoreVfs::new(state.store.clone(), t.id.clone())
        .with_feeds(state.redis.clone(), &t);
    let (pool, limits) = (state.pool.clone(), state.config.limits.clone());
    let outcome = blocking(move || {
        dry_run_with_vfs(
            &DryRun {
                script: &source,
                raw_message: req.message.as_bytes(),
                address: &t.address,
                mail_from: &req.mail_from,
                files: None,
                limits: &limits,
                pool: &pool,
            },
            &mut vfs,
        )
    })
    .await?;
    Ok(Json(DryRunView::from(outcome)))
}
