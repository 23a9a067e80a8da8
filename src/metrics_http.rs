//! `GET /metrics` for processes without the HTTP API (`thwonk ingress|runner|egress`), when
//! `metrics.listen` is set: a minimal HTTP/1.1 responder on tokio, one request per
//! connection.
//!
//! Scrapers are the only clients, but the port may be reachable by anyone: a request head
//! is read up to `MAX_HEAD` bytes within `READ_TIMEOUT`, nothing else is read, and every
//! answer closes the connection.

use std::time::Duration;
use thwonk_thoonk::Redis;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// The largest request head read (request line and headers); a scrape sends a few hundred.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve until `shutdown`.
pub async fn serve(listener: TcpListener, redis: Redis, shutdown: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    debug!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let redis = redis.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &redis).await {
                debug!(%peer, error = %e, "metrics: connection failed");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, redis: &Redis) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let (status, content_type, body) = match route(&head) {
        Route::Metrics => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            thwonk_control::metrics::render_all(redis).await,
        ),
        Route::NotFound => ("404 Not Found", "text/plain", "not found\n".to_string()),
        Route::BadMethod => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_string(),
        ),
        Route::BadRequest => ("400 Bad Request", "text/plain", "bad request\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The request head, up to the blank line (or `MAX_HEAD` bytes, or the end of the stream).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while head.len() < MAX_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n.min(MAX_HEAD - head.len())]);
    }
    Ok(head)
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    BadMethod,
    BadRequest,
}

fn route(head: &[u8]) -> Route {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    if method != "GET" {
        return Route::BadMethod;
    }
    match target.split('?').next() {
        Some("/metrics") => Route::Metrics,
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"\xff\xfe"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
    }
}
