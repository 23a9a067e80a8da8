//! The accept loop: one task per session, a cap on sessions at once, and graceful shutdown.
//!
//! Shutdown is signalled by cancelling the [`CancellationToken`] given to [`serve`]. Then:
//! the listener stops accepting (and is closed); sessions waiting for a command answer
//! `421 4.3.2` and close; sessions in the middle of a DATA transfer or a delivery finish it
//! and answer its result first. `serve` returns once every session has ended, or after
//! [`Limits::shutdown_grace`], when the sessions still running are dropped (their clients
//! get no final reply, so they keep the mail and retry).

use crate::limits::{ACCEPT_ERROR_BACKOFF, Limits};
use crate::reply::Reply;
use crate::session::{self, SessionContext};
use crate::sink::MailSink;
use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use thwonk_core::config::SmtpConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Serve SMTP on `listener` until `shutdown` is cancelled, handing accepted mail to `sink`.
///
/// The caller binds the listener (so tests can use port 0, and so the binary reports a bind
/// error before anything starts). Returns when every session has ended.
pub async fn serve<S: MailSink>(
    listener: TcpListener,
    config: Arc<SmtpConfig>,
    sink: Arc<S>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let grace = Limits::from_config(&config).shutdown_grace;
    serve_with_grace(listener, config, sink, shutdown, grace).await
}

/// [`serve`], waiting at most `grace` after shutdown for sessions in a transaction (the
/// daemon passes `shutdown.grace_ms`).
pub async fn serve_with_grace<S: MailSink>(
    listener: TcpListener,
    config: Arc<SmtpConfig>,
    sink: Arc<S>,
    shutdown: CancellationToken,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    let mut limits = Limits::from_config(&config);
    limits.shutdown_grace = grace;
    let slots = Arc::new(Semaphore::new(limits.max_sessions));
    let per_ip = PerKey::new(limits.max_connections_per_ip);
    let per_network = PerKey::new(limits.max_connections_per_network);
    let grace = limits.shutdown_grace;
    let tls = match config.tls_files() {
        None => None,
        Some((cert, key)) => {
            Some(crate::tls::load_acceptor(cert, key).map_err(std::io::Error::other)?)
        }
    };
    let context = Arc::new(SessionContext {
        sink,
        hostname: config.hostname.clone(),
        in_flight: crate::in_flight::InFlight::new(config.max_bytes_in_flight),
        limits,
        shutdown: shutdown.clone(),
        tls,
        require_tls: config.require_tls,
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "SMTP ingress listening");
    }

    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let ip = peer.ip().to_canonical();
                    let Some(ip_slot) = per_ip.acquire(ip) else {
                        tracing::warn!(%peer, "too many sessions from one address, turning it away");
                        turn_away(stream, &Reply::TOO_MANY_FROM_IP);
                        continue;
                    };
                    let Some(network_slot) = per_network.acquire(network(ip)) else {
                        tracing::warn!(%peer, "too many sessions from one network, turning it away");
                        turn_away(stream, &Reply::TOO_MANY_FROM_NETWORK);
                        continue;
                    };
                    match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let context = context.clone();
                            sessions.spawn(async move {
                                start_session(stream, peer, context).await;
                                drop(slot);
                                drop(ip_slot);
                                drop(network_slot);
                            });
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "too many sessions, turning a client away");
                            turn_away(stream, &Reply::TOO_BUSY);
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: transient; do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            Some(joined) = sessions.join_next(), if !sessions.is_empty() => log_panic(joined),
        }
    }
    drop(listener);

    let drain = async {
        while let Some(joined) = sessions.join_next().await {
            log_panic(joined);
        }
    };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(
            sessions = sessions.len(),
            "shutdown grace over, dropping sessions still running"
        );
        sessions.shutdown().await;
    }
    Ok(())
}

async fn start_session<S: MailSink>(
    stream: TcpStream,
    peer: SocketAddr,
    context: Arc<SessionContext<S>>,
) {
    // Replies are batched by the session already; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    let client_ip = peer.ip().to_canonical();
    session::run(stream, client_ip, context).await;
}

/// The network a client address belongs to, for `smtp.max_connections_per_network`: its
/// IPv4 /24 or its IPv6 /64 (what one site or one customer of a host usually holds).
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & 0xffff_ff00)),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(
            u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
        )),
    }
}

/// Sessions at once per client address (or per network, keyed by [`network`]).
struct PerKey {
    max: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One session's place in [`PerKey`]; given back when dropped.
struct IpSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerKey {
    fn new(max: usize) -> PerKey {
        PerKey {
            max,
            counts: Arc::default(),
        }
    }

    /// A place for a session from `ip`, unless it has `max` sessions already.
    fn acquire(&self, ip: IpAddr) -> Option<IpSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                // Keep the map as small as the set of clients connected now.
                counts.remove(&self.ip);
            }
        }
    }
}

/// Tell a client it cannot be served now, without a task: the reply is written straight to
/// the socket, whose send buffer is empty and takes it whole. (Through tokio, a socket this
/// fresh may not be known writable yet.)
fn turn_away(stream: TcpStream, reply: &Reply) {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    if let Ok(stream) = stream.into_std() {
        let _ = (&stream).write(&out);
    }
}

fn log_panic(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined
        && e.is_panic()
    {
        tracing::error!(error = %e, "SMTP session panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_client_over_the_session_cap_is_told_421() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        turn_away(stream, &Reply::TOO_BUSY);
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("421 4.3.2 "), "{reply:?}");
    }

    #[test]
    fn per_ip_places_are_counted_and_given_back() {
        let per_ip = PerKey::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = per_ip.acquire(a).unwrap();
        let _second = per_ip.acquire(a).unwrap();
        assert!(per_ip.acquire(a).is_none());
        let _other = per_ip.acquire(b).unwrap();
        drop(first);
        assert!(per_ip.acquire(a).is_some());
    }

    #[test]
    fn networks_are_ipv4_slash_24_and_ipv6_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(network(ip("192.0.2.77")), ip("192.0.2.0"));
        assert_eq!(network(ip("192.0.2.1")), network(ip("192.0.2.254")));
        assert_ne!(network(ip("192.0.2.1")), network(ip("192.0.3.1")));
        assert_eq!(
            network(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(
            network(ip("2001:db8:1:2::1")),
            network(ip("2001:db8:1:3::1"))
        );
    }
}
