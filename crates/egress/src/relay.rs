//! Mode `relay`: every message goes to one SMTP server (a smarthost, or a local MTA), which
//! does the MX work. Plain SMTP for now; opportunistic STARTTLS comes with the TLS work.
//!
//! Per-recipient results: lettre's `send` ends a transaction at the first refused RCPT, so
//! one unknown address would fail (and, retried, re-send to) every recipient. Instead the
//! session is driven command by command on lettre's own connection ([`session`]): one MAIL,
//! one RCPT per recipient (each refused one fails alone), one DATA for the accepted ones.
//! That keeps lettre's tested parts (reply parsing, dot-stuffing, EHLO, TLS later) and needs
//! no SMTP client of our own; one transaction per recipient group would cost a session each.
//!
//! One connection per message: a delivery cut off by the timeout leaves its connection in the
//! middle of a transaction, and it is dropped rather than reused.

use crate::EgressError;
use crate::smtp::{envelope, merge, session};
use crate::transport::{DeliveryReport, Destination, Outgoing, Transport};
use lettre::transport::smtp::extension::ClientId;
use std::time::Duration;
use thwonk_mail::normalize_crlf;

/// Delivery to one relay.
#[derive(Clone)]
pub struct RelayTransport {
    relay: String,
    host: String,
    port: u16,
    hello: ClientId,
    timeout: Duration,
}

impl RelayTransport {
    /// `relay` is `host:port` (`[::1]:25` for an IPv6 literal); `hello` is our EHLO name;
    /// `timeout` bounds each whole delivery.
    pub fn new(relay: &str, hello: &str, timeout: Duration) -> Result<Self, EgressError> {
        let (host, port) = split_host_port(relay)?;
        Ok(RelayTransport {
            relay: relay.to_string(),
            host,
            port,
            hello: ClientId::Domain(hello.to_string()),
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
        let results = session(
            (self.host.as_str(), self.port),
            &self.hello,
            env.from(),
            env.to(),
            &raw,
            self.timeout,
        )
        .await;
        report.destinations.extend(merge(&self.relay, results));
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
