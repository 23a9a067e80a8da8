//! `/pub/{address}/…`: a thwonk on the web, without a token.
//!
//! - **Published files.** `GET`/`HEAD` of a path serves the file `public/{path}` of the
//!   thwonk's files (`index.html` for a folder; a folder named without its trailing `/` is
//!   redirected to it), read-only, without running the script: content type from the
//!   extension, `ETag` (a hash of the content) and `If-None-Match` (`304`), `Last-Modified`,
//!   `Cache-Control` (`public.cache_max_age_secs`). Nothing outside `public/` is reachable.
//! - **Public handlers.** A request the script's `publicRoutes` admits (`GET /archive/*`,
//!   `POST /unsubscribe`) and no published file answers runs `onRequest(req, thwonk)` through
//!   the runner, ordered with the thwonk's mail, one transaction like any run; `POST
//!   /invoke/{name}` (when admitted) runs `methods[name]`. The value it returns is the
//!   response (JSON `200`, or `{status, headers, body}`). Not admitted: `404`.
//! - **Honest statuses:** no handler `404`; the script threw `500` with the run's id; over
//!   budget `503`; a disabled thwonk `409` (files too: a disabled thwonk is off the web).
//! - **Safety:** a path spelt to climb out (`..` or `.` segments, plainly or percent-encoded,
//!   backslashes, NUL) is `400`. Every answer carries `X-Content-Type-Options: nosniff` and a
//!   CSP ([`CSP`]) that lets a published page run no script and connect nowhere, in an opaque
//!   origin (`sandbox`); no cookies are set or read, and `/v1` sends no CORS headers, so a
//!   page can never act as the owner (the API takes only bearer tokens).
//! - **Limits** (`[public]`): a request rate per client IP (`429` with `Retry-After`), the body
//!   size (`413`), handler runs per thwonk at once and in total a share of the runner's
//!   capacity (`503` with `Retry-After`), so public traffic cannot starve mail.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use percent_encoding::percent_decode_str;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use thwonk_control::invoke::invoke_request;
use thwonk_core::Config;
use thwonk_core::public_routes::{PublicRoute, is_method_name, parse_all};
use thwonk_core::run::{HttpRequestView, RunStatus};
use thwonk_core::status::ThwonkStatus;
use thwonk_store::Thwonk;
use tokio::sync::Semaphore;

use super::invoke::{api_error, client_ip, run_failed, timeout};
use crate::ApiState;
use crate::error::ApiError;

/// The Content-Security-Policy of every public answer: no script, no connections, styles and
/// images from the thwonk's own files (and inline styles, `data:` images), and an opaque
/// origin (`sandbox`) so even a page that found a way to run script is not this server's
/// origin.
pub const CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                       base-uri 'none'; form-action 'self'; frame-ancestors 'none'; sandbox allow-forms";

/// Headers a script's response may not set: framing (the server's), cookies (no cookies on the
/// public side) and the safety headers (the server's).
const RESERVED_RESPONSE_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "trailer",
    "set-cookie",
    "set-cookie2",
    "content-security-policy",
    "x-content-type-options",
    "access-control-allow-origin",
    "access-control-allow-credentials",
];

/// Request headers a script never sees (credentials).
const HIDDEN_REQUEST_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// Past this many remembered IPs, the rate limiter forgets those whose buckets are full.
const RATE_KEYS_SWEEP: usize = 10_000;

/// The public side's shared state: the rate limiter, the run counters, the route cache.
pub struct PublicState {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    /// Handler runs in flight per thwonk id.
    per_thwonk: Mutex<HashMap<String, u32>>,
    max_per_thwonk: u32,
    /// Handler runs in flight across every thwonk (the runner's share).
    runs: Arc<Semaphore>,
    /// `publicRoutes` per (thwonk id, script version), read once per version.
    routes: Mutex<HashMap<ScriptVersion, Arc<Vec<PublicRoute>>>>,
}

/// A script version: (thwonk id, version number).
type ScriptVersion = (String, i64);

impl PublicState {
    pub fn new(config: &Config) -> PublicState {
        let p = &config.public;
        let rate = NonZeroU32::new(p.requests_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(p.burst).unwrap_or(NonZeroU32::MIN);
        PublicState {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
            per_thwonk: Mutex::new(HashMap::new()),
            max_per_thwonk: p.max_concurrent_per_thwonk,
            runs: Arc::new(Semaphore::new(
                p.max_runs_in_flight(config.runner.concurrency),
            )),
            routes: Mutex::new(HashMap::new()),
        }
    }

    /// `429` with `Retry-After` when `ip` is over its rate.
    fn admit(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = ip else {
            return Ok(());
        };
        if self.limiter.len() > RATE_KEYS_SWEEP {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from your address (public.requests_per_minute); slow down",
            )
            .with_retry_after(wait.as_secs().max(1))
        })
    }

    /// A slot for one handler run of `thwonk_id`, or `503` with `Retry-After`.
    fn run_slot(&self, thwonk_id: &str) -> Result<RunSlot<'_>, ApiError> {
        let busy = |what: &str| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("{what}; try again shortly"),
            )
            .with_retry_after(1)
        };
        {
            let mut counts = self.per_thwonk.lock().unwrap_or_else(|e| e.into_inner());
            let n = counts.entry(thwonk_id.to_string()).or_insert(0);
            if *n >= self.max_per_thwonk {
                return Err(busy(
                    "this thwonk is answering as many web requests as it may at once \
                     (public.max_concurrent_per_thwonk)",
                ));
            }
            *n += 1;
        }
        match self.runs.clone().try_acquire_owned() {
            Ok(permit) => Ok(RunSlot {
                state: self,
                thwonk_id: thwonk_id.to_string(),
                _permit: permit,
            }),
            Err(_) => {
                self.release(thwonk_id);
                Err(busy(
                    "the server is answering as many web requests as it may at once \
                     (public.runner_share_percent)",
                ))
            }
        }
    }

    /// One of `thwonk_id`'s handler runs ended.
    fn release(&self, thwonk_id: &str) {
        let mut counts = self.per_thwonk.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(thwonk_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(thwonk_id);
            }
        }
    }

    fn cached_routes(&self, key: &(String, i64)) -> Option<Arc<Vec<PublicRoute>>> {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes.get(key).cloned()
    }

    fn remember_routes(&self, key: (String, i64), routes: Arc<Vec<PublicRoute>>) {
        let mut all = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() > 10_000 {
            all.clear();
        }
        all.insert(key, routes);
    }
}

/// One handler run's place in the counters; given back when dropped.
struct RunSlot<'a> {
    state: &'a PublicState,
    thwonk_id: String,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for RunSlot<'_> {
    fn drop(&mut self) {
        self.state.release(&self.thwonk_id);
    }
}

/// Every request under `/pub/`.
pub async fn serve(State(state): State<ApiState>, request: Request) -> Response {
    let mut response = match handle(&state, request).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    secure(response.headers_mut());
    response
}

/// The safety headers every public answer carries.
fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.remove(header::SET_COOKIE);
}

/// The address and the path below it, from the raw (still percent-encoded) URI path, so
/// that every spelling of a climb is seen: `..`/`.` segments, backslashes and NUL, plain or
/// encoded, are `400`. The path returned is decoded and starts with `/`.
fn split_path(raw: &str) -> Result<(String, String), ApiError> {
    let bad = |why: &str| ApiError::bad_request("bad_path", why.to_string());
    let rest = raw
        .strip_prefix("/pub/")
        .ok_or_else(|| bad("not a public path"))?;
    let (addr, below) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let addr = percent_decode_str(addr)
        .decode_utf8()
        .map_err(|_| bad("the address is not UTF-8"))?
        .into_owned();
    let decoded = percent_decode_str(below)
        .decode_utf8()
        .map_err(|_| bad("the path is not UTF-8"))?;
    if decoded.contains('\0') || decoded.contains('\\') || below.contains('\\') {
        return Err(bad("a path may not hold NUL or backslashes"));
    }
    if decoded.split('/').any(|s| s == ".." || s == ".") {
        return Err(bad("a path may not hold . or .. segments"));
    }
    if decoded.len() > thwonk_core::vfs::MAX_PATH_BYTES {
        return Err(bad("the path is too long"));
    }
    let path = if decoded.is_empty() {
        "/".to_string()
    } else {
        decoded.into_owned()
    };
    Ok((addr, path))
}

async fn handle(state: &ApiState, request: Request) -> Result<Response, ApiError> {
    let ip = client_ip(&request);
    // Parts (Sync) and the body apart: a borrowed request could not be held across awaits.
    let (request, body) = request.into_parts();
    state.public.admit(ip)?;
    let (addr, path) = split_path(request.uri.path())?;
    let address = super::address(&addr)?;
    let thwonk = state
        .store
        .thwonk_by_address(&address)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no thwonk at {address}")))?;
    if thwonk.status != ThwonkStatus::Active {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "disabled",
            format!("{address} is disabled"),
        ));
    }
    let method = request.method.clone();
    if (method == Method::GET || method == Method::HEAD)
        && let Some(file) = published_file(state, &thwonk, &path, &request).await?
    {
        return Ok(file);
    }
    let routes = public_routes(state, &thwonk).await?;
    if !routes.iter().any(|r| r.admits(method.as_str(), &path)) {
        return Err(ApiError::not_found(format!(
            "nothing published at {path} and no public route admits {method} {path}"
        )));
    }
    run_handler(state, &thwonk, ip, path, request, body).await
}

/// The published file for a `GET`/`HEAD` of `path`, if there is one.
async fn published_file(
    state: &ApiState,
    thwonk: &Thwonk,
    path: &str,
    request: &Parts,
) -> Result<Option<Response>, ApiError> {
    let below = path.trim_start_matches('/');
    let folder = below.is_empty() || below.ends_with('/');
    let file = if folder {
        format!("public/{below}index.html")
    } else {
        format!("public/{below}")
    };
    let file = thwonk_core::vfs::normalize_path(&file)
        .map_err(|e| ApiError::bad_request("bad_path", e.to_string()))?;
    match state.store.read_file_stamped(&thwonk.id, &file).await? {
        Some((bytes, updated_at_ms)) => Ok(Some(file_response(
            state,
            &file,
            bytes,
            updated_at_ms,
            request,
        ))),
        None if !folder => {
            // `/archive` for the folder `archive/`: relative links need the trailing slash.
            let index = format!("{file}/index.html");
            if state
                .store
                .read_file_stamped(&thwonk.id, &index)
                .await?
                .is_some()
            {
                let to = format!("{}/", request.uri.path());
                let mut r = StatusCode::PERMANENT_REDIRECT.into_response();
                if let Ok(v) = HeaderValue::from_str(&to) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                return Ok(Some(r));
            }
            Ok(None)
        }
        None => Ok(None),
    }
}

fn file_response(
    state: &ApiState,
    file: &str,
    bytes: Vec<u8>,
    updated_at_ms: i64,
    request: &Parts,
) -> Response {
    let etag = format!("\"{}\"", hex(&Sha256::digest(&bytes)[..16]));
    let mime = mime_guess::from_path(file).first_or_octet_stream();
    let content_type = if mime.type_() == mime_guess::mime::TEXT
        || mime.essence_str() == "application/javascript"
        || mime.essence_str() == "application/json"
        || mime.essence_str() == "image/svg+xml"
        || mime.essence_str() == "application/rss+xml"
        || mime.essence_str() == "application/atom+xml"
    {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    };
    let matches = request
        .headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*");
    let mut headers = HeaderMap::new();
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(&mut headers, header::ETAG, &etag);
    set(
        &mut headers,
        header::LAST_MODIFIED,
        &thwonk_core::time::http_date(updated_at_ms),
    );
    set(
        &mut headers,
        header::CACHE_CONTROL,
        &format!("public, max-age={}", state.config.public.cache_max_age_secs),
    );
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    set(&mut headers, header::CONTENT_TYPE, &content_type);
    set(
        &mut headers,
        header::CONTENT_LENGTH,
        &bytes.len().to_string(),
    );
    let body = if request.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    (StatusCode::OK, headers, body).into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The thwonk's `publicRoutes` (its active version's), read from the script once per version
/// in a sandbox worker.
async fn public_routes(
    state: &ApiState,
    thwonk: &Thwonk,
) -> Result<Arc<Vec<PublicRoute>>, ApiError> {
    let Some(script) = state.store.active_script(&thwonk.id).await? else {
        return Ok(Arc::new(Vec::new()));
    };
    let key = (thwonk.id.clone(), script.version);
    if let Some(routes) = state.public.cached_routes(&key) {
        return Ok(routes);
    }
    let pool = state.pool.clone();
    let limits = state.config.limits.clone();
    let checked = super::blocking(move || pool.check(&script.source, &limits))
        .await?
        .map_err(|e| ApiError::unavailable("the script could not be read", e))?;
    // A deployed script passed the same check; one that now fails admits nothing.
    let entries = checked.map(|info| info.public_routes).unwrap_or_default();
    let routes = Arc::new(parse_all(&entries).unwrap_or_default());
    state.public.remember_routes(key, routes.clone());
    Ok(routes)
}

async fn run_handler(
    state: &ApiState,
    thwonk: &Thwonk,
    ip: Option<IpAddr>,
    path: String,
    request: Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let method = request.method.as_str().to_string();
    let handler = match path.strip_prefix("/invoke/") {
        Some(name) if method == "POST" => {
            if !is_method_name(name) {
                return Err(ApiError::not_found(format!("no method {name:?}")));
            }
            Some(name.to_string())
        }
        _ => None,
    };
    let query = request
        .uri
        .query()
        .map(|q| {
            let mut pairs: Vec<(String, String)> = Vec::new();
            for (k, v) in form_pairs(q) {
                pairs.retain(|(name, _)| *name != k);
                pairs.push((k, v));
            }
            pairs
        })
        .unwrap_or_default();
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter(|(k, _)| !HIDDEN_REQUEST_HEADERS.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let max = state.config.public.max_body_bytes;
    let too_large = || {
        ApiError::too_large(format!(
            "the request body is larger than {max} bytes (public.max_body_bytes)"
        ))
    };
    if let Some(len) = request
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, max as usize)
        .await
        .map_err(|_| too_large())?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("bad_body", "the request body is not UTF-8 text"))?;
    let http = HttpRequestView {
        method,
        path,
        query,
        headers,
        caller_kind: "public".into(),
        caller_ip: ip.map(|ip| ip.to_string()),
        handler,
        text: Some(text.clone()),
    };
    let _slot = state.public.run_slot(&thwonk.id)?;
    let out = invoke_request(
        &state.store,
        &state.redis,
        &thwonk.id,
        Value::String(text),
        Some(http),
        timeout(state),
        &state.config.invoke,
    )
    .await
    .map_err(api_error)?;
    if out.status != RunStatus::Ok {
        return Err(run_failed(&out, false));
    }
    respond(out.value.unwrap_or(Value::Null)).map_err(|why| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_response",
            format!("the script's response is not valid: {why}"),
        )
        .with_run_id(out.run_id.clone())
    })
}

/// `a=1&b=x%20y` as decoded pairs (`+` is a space, as forms send it).
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// A handler's return value as the HTTP response: `{status, headers?, body?}` (only those
/// keys, `status` an integer 200–599) is that response, a string body sent as text
/// (`text/plain` unless the headers say otherwise) and any other body as JSON; any other
/// value is JSON with `200`.
fn respond(value: Value) -> Result<Response, String> {
    let is_response = matches!(&value, Value::Object(o)
        if o.get("status").is_some_and(Value::is_u64)
            && o.keys().all(|k| matches!(k.as_str(), "status" | "headers" | "body")));
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !is_response {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok((StatusCode::OK, headers, value.to_string()).into_response());
    }
    let Value::Object(mut o) = value else {
        unreachable!("checked above")
    };
    let status = o.get("status").and_then(Value::as_u64).unwrap_or(200);
    let status = u16::try_from(status)
        .ok()
        .filter(|s| (200..=599).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| format!("status {status} is not between 200 and 599"))?;
    let body = match o.remove("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            s.into_bytes()
        }
        Some(other) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            other.to_string().into_bytes()
        }
    };
    match o.remove("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (name, value) in h {
                let lower = name.to_ascii_lowercase();
                if RESERVED_RESPONSE_HEADERS.contains(&lower.as_str()) {
                    return Err(format!("header {name:?} is the server's to set"));
                }
                let Value::String(value) = value else {
                    return Err(format!("header {name:?} must be a string"));
                };
                let name = HeaderName::from_bytes(lower.as_bytes())
                    .map_err(|_| format!("{name:?} is not a header name"))?;
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| format!("header {name}'s value is not valid"))?;
                headers.insert(name, value);
            }
        }
        Some(_) => return Err("headers must be an object of strings".into()),
    }
    Ok((status, headers, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_climb_is_refused() {
        for raw in [
            "/pub/a@x.example/../secret",
            "/pub/a@x.example/%2e%2e/secret",
            "/pub/a@x.example/%2E%2E%2fsecret",
            "/pub/a@x.example/public/./x",
            "/pub/a@x.example/x%5c..%5csecret",
            "/pub/a@x.example/x\\y",
            "/pub/a@x.example/x%00.html",
        ] {
            assert!(split_path(raw).is_err(), "{raw}");
        }
        assert_eq!(
            split_path("/pub/a%40x.example/a%20b/").unwrap(),
            ("a@x.example".into(), "/a b/".into())
        );
        assert_eq!(split_path("/pub/a@x.example").unwrap().1, "/");
    }

    #[test]
    fn a_response_object_is_the_response() {
        let r = respond(serde_json::json!({"status": 201, "body": "made"})).unwrap();
        assert_eq!(r.status(), 201);
        let r = respond(serde_json::json!({"status": 200, "headers": {"Set-Cookie": "a=b"}}));
        assert!(r.is_err());
        let r = respond(serde_json::json!({"status": 42}));
        assert!(r.is_err());
        let r = respond(serde_json::json!({"status": 200, "extra": 1})).unwrap();
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
    }
}
