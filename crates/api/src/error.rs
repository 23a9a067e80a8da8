//! The one error type of the API: every failure becomes a status and a JSON body
//! `{"error": {"code", "message"}}` (plus `line`/`column` for a refused script, `run_id`
//! for a failed run; `Retry-After` for `429` and `503` where waiting helps).
//!
//! Internal failures (database, Redis, sandbox) are logged with their detail and answered
//! with a generic message: a network client learns that something failed, not our insides.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API failure: what the client is told.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable (`not_found`, `bad_json`, ...).
    pub code: &'static str,
    pub message: String,
    /// Where a refused script failed (1-based), for `script_refused`.
    pub position: Option<(u32, u32)>,
    /// The run that failed (`500`, `503` from a run), so its record can be looked up.
    pub run_id: Option<String>,
    /// Seconds to wait before trying again (`Retry-After`, for `429` and `503`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            position: None,
            run_id: None,
            retry_after: None,
        }
    }

    /// The same error naming the run it comes from.
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// The same error with a `Retry-After` of `secs`.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// A failure of ours: logged in full, answered in general.
    pub fn internal(what: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{what}; the server log has the details"),
        )
    }

    /// A dependency (Redis, the sandbox) is not available now; worth retrying.
    pub fn unavailable(what: &str, detail: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "{what}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what}; try again later"),
        )
    }
}

impl From<thwonk_store::StoreError> for ApiError {
    fn from(e: thwonk_store::StoreError) -> Self {
        match e {
            thwonk_store::StoreError::NotFound(what) => ApiError::not_found(what),
            thwonk_store::StoreError::Conflict(what) => ApiError::conflict(what),
            other => ApiError::internal("database error", other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some((line, column)) = self.position {
            error["line"] = line.into();
            error["column"] = column.into();
        }
        if let Some(run_id) = &self.run_id {
            error["run_id"] = run_id.as_str().into();
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"thwonk\""),
            );
        }
        response
    }
}
