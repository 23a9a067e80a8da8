//! One clock unit everywhere: milliseconds since the Unix epoch, as `i64` (it fits SQL
//! `BIGINT` and Redis scores without conversion).

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
