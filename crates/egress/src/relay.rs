//! Mode `relay`: every message goes to one SMTP server (a smarthost, or a local MTA), which
//! does the MX work. Plain SMTP for now; opportunistic STARTTLS comes with the TLS work.

use crate::EgressError;
use crate::policy::Failure;
use crate::smtp::{envelope, session, timed_out};
use crate::transport::{DeliveryReport, Destination, Outgoing, Transport};
use lettre::transport::smtp::extension::ClientId;
use std::time::Duration;
use thwonk_mail::normalize_crlf;

/// Delivery to one relay, one connection per message, through the same bounded session as
/// mode mx ([`crate::smtp::session`]: TCP_NODELAY, the whole session within the timeout).
///
/// No connection is kept between messages: a delivery cut off by the timeout would leave a
/// pooled connection in the middle of a transaction (the next message would then send its
/// commands into the old message's data). Reuse comes back when a connection can be told
/// to be mid-transaction.
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
    /// `timeout` bounds each whole delivery, name lookup included.
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
        let lookup = tokio::net::lookup_host((self.host.as_str(), self.port));
        let result = match tokio::time::timeout(self.timeout, lookup).await {
            Err(_) => Err(timed_out(self.timeout)),
            Ok(Err(e)) => Err(Failure::Network(format!(
                "cannot resolve {}: {e}",
                self.relay
            ))),
            Ok(Ok(mut addrs)) => match addrs.next() {
                None => Err(Failure::Network(format!("{} has no address", self.relay))),
                Some(addr) => session(addr, &self.hello, &env, &raw, self.timeout).await,
            },
        };
        report.destinations.push(Destination {
            name: self.relay.clone(),
            recipients: env.to().iter().map(|a| a.to_string()).collect(),
            result,
        });
        report
    }
}

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
