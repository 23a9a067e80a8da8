//! The API's TCP front: accepting connections within limits, and hyper's HTTP/1.1 server
//! with a header read timeout.
//!
//! `axum::serve` has neither a connection cap nor a timer for hyper, so a client that opens
//! connections and sends half a request holds a file descriptor each for as long as it
//! likes. Here hyper's own `header_read_timeout` (with `hyper-util`'s tokio timer) closes a
//! connection whose request headers are not complete in `http.header_read_timeout_secs`
//! (and a kept-alive connection that starts no new request in that time), and the accept
//! loop holds at most `http.max_connections` connections, `http.max_connections_per_ip`
//! from one address. A connection over a cap gets `503` with the JSON error shape and is
//! closed at once.

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thwonk_core::config::HttpConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long the accept loop pauses after a failed `accept` (out of descriptors, say).
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Serve `app` on `listener` until `shutdown`, then wait for the connections in progress
/// (event streams end at the shutdown too).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    http: &HttpConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout);
    let limits = ConnectionLimits::new(
        usize::try_from(http.max_connections).unwrap_or(usize::MAX),
        usize::try_from(http.max_connections_per_ip).unwrap_or(usize::MAX),
    );
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let place = match limits.acquire(peer.ip().to_canonical()) {
            Ok(place) => place,
            Err(refusal) => {
                tracing::warn!(%peer, "{}, turning an HTTP client away", refusal.message());
                turn_away(stream, refusal);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Each request knows its peer (`ConnectInfo`), as `axum::serve` with connect info
        // gives it: the public side limits its rate per address.
        let service = TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
            drop(place);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    TooMany,
    TooManyFromIp,
}

impl Refusal {
    fn message(self) -> &'static str {
        match self {
            Refusal::TooMany => "too many connections (http.max_connections)",
            Refusal::TooManyFromIp => {
                "too many connections from your address (http.max_connections_per_ip)"
            }
        }
    }
}

/// Tell the client it cannot be served now and close. Written straight to the fresh
/// socket, whose send buffer takes it whole; no task, no waiting on the client.
fn turn_away(stream: TcpStream, refusal: Refusal) {
    let body = serde_json::json!({
        "error": {"code": "too_many_connections", "message": refusal.message()}
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 5\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Ok(stream) = stream.into_std() {
        let _ = (&stream).write(response.as_bytes());
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
}

/// Connections at once, in all and per client address.
struct ConnectionLimits {
    max: usize,
    max_per_ip: usize,
    counts: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One connection's place; given back when dropped.
struct Place {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionLimits {
    fn new(max: usize, max_per_ip: usize) -> ConnectionLimits {
        ConnectionLimits {
            max,
            max_per_ip,
            counts: Arc::default(),
        }
    }

    fn acquire(&self, ip: IpAddr) -> Result<Place, Refusal> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.max {
            return Err(Refusal::TooMany);
        }
        let n = counts.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Refusal::TooManyFromIp);
        }
        *n += 1;
        counts.total += 1;
        Ok(Place {
            ip,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_in_all_and_per_address_and_given_back() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limits.acquire(a).unwrap();
        let _second = limits.acquire(a).unwrap();
        assert_eq!(limits.acquire(a).err(), Some(Refusal::TooManyFromIp));
        let _third = limits.acquire(b).unwrap();
        assert_eq!(limits.acquire(b).err(), Some(Refusal::TooMany));
        drop(first);
        assert!(limits.acquire(a).is_ok());
    }
}
