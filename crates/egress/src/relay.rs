//! Mode `relay`: every message goes to one SMTP server (a smarthost, or a local MTA), which
//! does the MX work. Plain SMTP for now; opportunistic STARTTLS comes with the TLS work.

use crate::EgressError;
use crate::smtp::{envelope, failure_from_lettre, for_lettre, reply_text, timed_out};
use crate::transport::{DeliveryReport, Destination, Outgoing, Transport};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};
use std::time::Duration;
use thwonk_mail::normalize_crlf;

/// Delivery to one relay, one connection per message.
///
/// lettre's pool is sized to keep no idle connection: a delivery cut off by the timeout drops
/// lettre's future in the middle of a transaction, and lettre would park that connection for
/// the next message (which would then send its commands into the old message's data). Reuse
/// comes back when lettre can tell us a connection is mid-transaction.
#[derive(Clone)]
pub struct RelayTransport {
    relay: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
}

impl RelayTransport {
    /// `relay` is `host:port` (`[::1]:25` for an IPv6 literal); `hello` is our EHLO name;
    /// `timeout` bounds each whole delivery. Needs a running tokio runtime (lettre's pool
    /// spawns a task).
    pub fn new(relay: &str, hello: &str, timeout: Duration) -> Result<Self, EgressError> {
        let (host, port) = split_host_port(relay)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .hello_name(ClientId::Domain(hello.to_string()))
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(0))
            .build();
        Ok(RelayTransport {
            relay: relay.to_string(),
            transport,
            timeout,
        })
    }
}

impl Transport for RelayTransport {
    async fn deliver(&self, message: &Outgoing<'_>) -> DeliveryReport {
        let (env, bad) = envelope(message.mail_from, message.rcpt_to);
        let mut report = DeliveryReport::default();
        for (rcpt, failure) in bad {
            report.destinations.push(Destination {
                name: self.relay.clone(),
                recipients: vec![rcpt],
                result: Err(failure),
            });
        }
        let Some(env) = env else {
            return report;
        };
        let raw = normalize_crlf(message.raw);
        // lettre's own timeout covers only the connect; a server that stalls after the
        // greeting would otherwise hold this delivery forever.
        let result = match tokio::time::timeout(
            self.timeout,
            self.transport.send_raw(&env, for_lettre(&raw)),
        )
        .await
        {
            Ok(Ok(reply)) => Ok(reply_text(&reply)),
            Ok(Err(e)) => Err(failure_from_lettre(&e)),
            Err(_) => Err(timed_out(self.timeout)),
        };
        report.destinations.push(Destination {
            name: self.relay.clone(),
            recipients: env.to().iter().map(|a| a.to_string()).collect(),
            result,
        });
        report
    }
}

/// `host:port`, `[v6]:port`.
fn split_host_port(relay: &str) -> Result<(String, u16), EgressError> {
    let bad = || EgressError::BadRelay(relay.to_string());
    let (host, port) = relay.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_addresses_are_host_and_port() {
        assert_eq!(
            split_host_port("smtp.example.org:587").unwrap(),
            ("smtp.example.org".to_string(), 587)
        );
        assert_eq!(
            split_host_port("[::1]:25").unwrap(),
            ("::1".to_string(), 25)
        );
        assert!(split_host_port("nohost").is_err());
        assert!(split_host_port(":25").is_err());
        assert!(split_host_port("h:99999").is_err());
    }
}
