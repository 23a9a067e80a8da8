//! Who is calling: a bearer token looked up by its hash, or the admin socket's trust.
//!
//! Tokens are `thw_` + 64 hex digits (32 random bytes). Only their SHA-256 is stored; a
//! request's token is hashed and the hash looked up, so the secret is never compared byte by
//! byte. Roles: `admin` sees everything; `owner` sees only the thwonks it owns, and another
//! owner's thwonk answers `404` exactly as a missing one does (what it holds is not told);
//! only creating its address (`POST`, or `PUT .../script`) answers `409 address_taken`.
//!
//! The admin socket marks its requests with [`TrustedAdmin`] (an extension a network client
//! cannot set): whoever can open the 0600 socket is the daemon's own user.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use thwonk_store::Role;

use crate::ApiState;
use crate::error::ApiError;

/// Every token starts with this, so a leaked one is recognisable (and greppable).
pub const TOKEN_PREFIX: &str = "thw_";

/// Longest `Authorization` value looked at; a real token is 68 bytes.
const MAX_TOKEN_BYTES: usize = 256;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Owner { user_id: String },
}

impl Caller {
    /// The owner a thwonk created by this caller gets (`None` for an admin).
    pub fn owner_id(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::Owner { user_id } => Some(user_id),
        }
    }
}

/// Request extension set by the admin socket's router: the caller is an admin.
#[derive(Debug, Clone, Copy)]
pub struct TrustedAdmin;

/// A new token: `(secret, hash)`. The secret is shown once; the hash is stored.
pub fn new_token() -> (String, String) {
    let mut bytes = Vec::with_capacity(32);
    // Two v4 UUIDs carry 244 bits from the OS's random source (getrandom).
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let secret = format!("{TOKEN_PREFIX}{}", hex(&bytes));
    let hash = hash_token(&secret);
    (secret, hash)
}

/// The stored form of a token: SHA-256, lower-case hex.
pub fn hash_token(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        if parts.extensions.get::<TrustedAdmin>().is_some() {
            return Ok(Caller::Admin);
        }
        let token = match parts.headers.get(AUTHORIZATION) {
            Some(value) => value
                .to_str()
                .ok()
                .filter(|v| v.len() <= MAX_TOKEN_BYTES)
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| t.starts_with(TOKEN_PREFIX))
                .ok_or_else(|| {
                    ApiError::unauthorized("malformed token: send Authorization: Bearer thw_...")
                })?
                .to_string(),
            None => event_stream_token(parts)?.ok_or_else(|| {
                ApiError::unauthorized("no token: send Authorization: Bearer thw_...")
            })?,
        };
        let token = token.as_str();
        let user = state
            .store
            .user_by_token_hash(&hash_token(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid token: unknown or revoked"))?;
        Ok(match user.role {
            Role::Admin => Caller::Admin,
            Role::Owner => Caller::Owner { user_id: user.id },
        })
    }
}

/// A browser's `EventSource` cannot set headers, so event streams (and only they: the token
/// would otherwise end up in more URLs and logs) also take `?access_token=thw_...`. A token
/// given there is never ignored: on another route, or malformed, it is refused as such
/// (`Err`), not answered as if there were none.
fn event_stream_token(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(token) = parts
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("access_token=")))
    else {
        return Ok(None);
    };
    if !is_event_stream(parts) {
        return Err(ApiError::unauthorized(
            "?access_token= is accepted on event streams (GET .../feeds/NAME/events) only: send Authorization: Bearer thw_...",
        ));
    }
    if token.len() > MAX_TOKEN_BYTES || !token.starts_with(TOKEN_PREFIX) {
        return Err(ApiError::unauthorized(
            "invalid token in ?access_token=: tokens look like thw_ and 64 hex digits",
        ));
    }
    Ok(Some(token.to_string()))
}

/// Whether the request is a `GET` of an event stream, `/v1/thwonks/{address}/feeds/{name}/events`
/// exactly: a path that merely ends in `/events` (a file named `events`, written with `PUT` or
/// removed with `DELETE`) is not one.
fn is_event_stream(parts: &Parts) -> bool {
    if parts.method != axum::http::Method::GET {
        return false;
    }
    let segments: Vec<&str> = parts.uri.path().split('/').collect();
    matches!(
        segments.as_slice(),
        ["", "v1", "thwonks", address, "feeds", name, "events"]
            if !address.is_empty() && !name.is_empty()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_stored_as_their_hash() {
        let (a, ha) = new_token();
        let (b, hb) = new_token();
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(hash_token(&a), ha);
        assert_eq!(ha.len(), 64);
        assert!(!ha.contains(&a[TOKEN_PREFIX.len()..]));
    }

    #[test]
    fn only_a_get_of_a_feeds_event_stream_is_an_event_stream() {
        let parts = |method: &str, uri: &str| {
            axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let feed = "/v1/thwonks/a@example.org/feeds/news/events";
        assert!(is_event_stream(&parts("GET", feed)));
        assert!(!is_event_stream(&parts("POST", feed)));
        for path in [
            "/v1/thwonks/a@example.org/files/events",
            "/v1/thwonks/a@example.org/files/x/events",
            "/v1/thwonks/a@example.org/feeds//events",
            "/v1/thwonks/a@example.org/feeds/news/events/x",
            "/v1/thwonks/a@example.org/events",
        ] {
            assert!(!is_event_stream(&parts("GET", path)), "{path}");
        }
        assert!(!is_event_stream(&parts(
            "PUT",
            "/v1/thwonks/a@example.org/files/events"
        )));
    }
}
