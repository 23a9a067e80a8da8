//! Mode `mx`: deliver straight to each recipient domain's mail servers.
//!
//! Recipients are grouped by domain, because one SMTP transaction goes to one server and
//! lettre fails a whole transaction when one recipient is refused; each domain then gets its
//! own result in the report. Per domain: MX records sorted by preference (RFC 5321 §5.1), the
//! domain itself when there are none (implicit MX), nothing at all for a null MX (RFC 7505).
//! Each host's addresses (A and AAAA) are tried in turn until one gives a final answer: a
//! transient failure moves on to the next address, a permanent one ends the domain.
//!
//! Within a domain each recipient gets its own result (one refused RCPT fails that recipient
//! only; see [`crate::smtp::session`]); the job loop retries only the recipients still
//! queued, so a domain that took the message is not sent it again.

use crate::EgressError;
use crate::failure::{Class, Failure, classify};
use crate::smtp::{RecipientResult, envelope, merge, session};
use crate::transport::{DeliveryReport, Destination, Outgoing, Transport};
use futures_util::StreamExt as _;
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use lettre::address::Envelope;
use lettre::transport::smtp::extension::ClientId;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use thwonk_mail::normalize_crlf;

/// The port MX hosts listen on for relaying mail (RFC 5321 §4.5.4.2 names 25).
pub const SMTP_PORT: u16 = 25;

/// How hard to try one domain. Named defaults, the same as Postfix's
/// (`smtp_mx_address_limit = 5`); candidates for `[egress]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MxPolicy {
    /// Server addresses tried per domain per attempt, over all its MX hosts.
    pub max_addresses: usize,
    /// Domains of one message delivered at the same time.
    pub parallel_domains: usize,
}

impl Default for MxPolicy {
    fn default() -> Self {
        MxPolicy {
            max_addresses: 5,
            parallel_domains: 4,
        }
    }
}

/// Direct delivery.
#[derive(Clone)]
pub struct MxTransport {
    resolver: TokioResolver,
    hello: ClientId,
    timeout: Duration,
    port: u16,
    policy: MxPolicy,
}

impl MxTransport {
    /// A transport using the system's DNS configuration. `timeout` bounds each SMTP session.
    pub fn new(hello: &str, timeout: Duration, policy: MxPolicy) -> Result<Self, EgressError> {
        let resolver = TokioResolver::builder_tokio()
            .and_then(|b| b.build())
            .map_err(|e| EgressError::Resolver(e.to_string()))?;
        Ok(MxTransport {
            resolver,
            hello: ClientId::Domain(hello.to_string()),
            timeout,
            port: SMTP_PORT,
            policy,
        })
    }

    /// Deliver to another port than 25 (tests, or a firewall that redirects).
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The servers to try for `domain`, best first.
    async fn hosts(&self, domain: &str) -> Result<Vec<String>, Failure> {
        if let Some(ip) = address_literal(domain) {
            // `user@[192.0.2.1]` names its server directly (RFC 5321 §4.1.3): no DNS.
            return Ok(vec![ip.to_string()]);
        }
        // A trailing dot makes the name absolute: no search-list suffixes are tried.
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let records: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                        _ => None,
                    })
                    .collect();
                plan_mx(domain, &records)
            }
            Err(e) if e.is_nx_domain() => Err(Failure::NoSuchDomain(domain.to_string())),
            Err(e) if e.is_no_records_found() => plan_mx(domain, &[]),
            Err(e) => Err(Failure::Dns(format!("MX {domain}: {e}"))),
        }
    }

    /// A host's addresses; an IP literal is its own address.
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, Failure> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(ips) => Ok(ips.iter().collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(Failure::Dns(format!("{host}: {e}"))),
        }
    }

    /// Each recipient's result for `domain`. A server address that gives every recipient a
    /// transient failure is passed over for the next one; any final answer (a 250, or a
    /// permanent refusal of some recipient) ends the domain, the recipients it left transient
    /// retried on a later attempt.
    async fn deliver_domain(
        &self,
        domain: &str,
        env: &Envelope,
        raw: &[u8],
    ) -> Vec<RecipientResult> {
        let all = |f: Failure| -> Vec<RecipientResult> {
            env.to()
                .iter()
                .map(|a| (a.to_string(), Err(f.clone())))
                .collect()
        };
        let hosts = match self.hosts(domain).await {
            Ok(h) => h,
            Err(f) => return all(f),
        };
        let implicit = hosts.len() == 1 && hosts[0].eq_ignore_ascii_case(domain);
        let mut tried = 0;
        let mut last: Option<Vec<RecipientResult>> = None;
        let mut lookup_failure: Option<Failure> = None;
        for host in &hosts {
            let ips = match self.addresses(host).await {
                Ok(ips) => ips,
                Err(f) => {
                    lookup_failure = Some(f);
                    continue;
                }
            };
            for ip in ips {
                if tried == self.policy.max_addresses {
                    break;
                }
                tried += 1;
                let addr = SocketAddr::new(ip, self.port);
                let results =
                    session(addr, &self.hello, env.from(), env.to(), raw, self.timeout).await;
                let all_transient = results
                    .iter()
                    .all(|(_, r)| matches!(r, Err(f) if classify(f) == Class::Transient));
                if !all_transient {
                    return results;
                }
                tracing::debug!(%domain, %host, %addr, "every recipient deferred; trying the next address");
                last = Some(results);
            }
        }
        match (last, lookup_failure) {
            (Some(results), _) => results,
            (None, Some(f)) => all(f),
            // Nothing to connect to. Without MX records that is final (RFC 5321 §5.1); MX
            // hosts that do not resolve may be a passing DNS fault.
            (None, None) if implicit => all(Failure::NoMailServer(domain.to_string())),
            (None, None) => all(Failure::Dns(format!(
                "no MX host of {domain} has an address"
            ))),
        }
    }
}

impl Transport for MxTransport {
    async fn deliver(&self, message: &Outgoing<'_>) -> DeliveryReport {
        let raw = normalize_crlf(message.raw);
        let (groups, mut report) = group_by_domain(message.rcpt_to);
        let results = futures_util::stream::iter(groups)
            .map(|(domain, rcpts)| {
                let raw = &raw;
                async move {
                    let (env, bad) = envelope(message.mail_from, &rcpts);
                    let mut out: Vec<Destination> = bad
                        .into_iter()
                        .map(|(r, f)| Destination {
                            name: domain.clone(),
                            recipients: vec![r],
                            result: Err(f),
                        })
                        .collect();
                    if let Some(env) = env {
                        let results = self.deliver_domain(&domain, &env, raw).await;
                        out.extend(merge(&domain, results));
                    }
                    out
                }
            })
            .buffer_unordered(self.policy.parallel_domains.max(1))
            .collect::<Vec<_>>()
            .await;
        report.destinations.extend(results.into_iter().flatten());
        report
    }
}

/// The IP address of an address-literal domain (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
pub fn address_literal(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
        .unwrap_or(inner);
    inner.parse().ok()
}

/// Recipients by lower-case domain (sorted, for a stable report), and a report holding the
/// recipients that have no domain at all.
pub fn group_by_domain(rcpt_to: &[String]) -> (BTreeMap<String, Vec<String>>, DeliveryReport) {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut report = DeliveryReport::default();
    for r in rcpt_to {
        match r.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                groups
                    .entry(domain.to_lowercase())
                    .or_default()
                    .push(r.clone());
            }
            _ => report.destinations.push(Destination {
                name: r.clone(),
                recipients: vec![r.clone()],
                result: Err(Failure::BadAddress(r.clone())),
            }),
        }
    }
    (groups, report)
}

/// The hosts to try for `domain` from its MX records `(preference, exchange)`: by preference
/// (stable for equal ones), trailing dots removed, duplicates dropped. No records: the domain
/// itself. Only a null MX (`.`): the domain takes no mail.
pub fn plan_mx(domain: &str, records: &[(u16, String)]) -> Result<Vec<String>, Failure> {
    let is_null = |x: &str| x.trim_end_matches('.').is_empty();
    if records.is_empty() {
        return Ok(vec![domain.to_string()]);
    }
    if records.iter().all(|(_, x)| is_null(x)) {
        return Err(Failure::NullMx(domain.to_string()));
    }
    let mut sorted: Vec<&(u16, String)> = records.iter().filter(|(_, x)| !is_null(x)).collect();
    sorted.sort_by_key(|(pref, _)| *pref);
    let mut hosts: Vec<String> = Vec::new();
    for (_, x) in sorted {
        let h = x.trim_end_matches('.').to_lowercase();
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(p: u16, x: &str) -> (u16, String) {
        (p, x.to_string())
    }

    #[test]
    fn mx_hosts_are_sorted_by_preference() {
        let hosts = plan_mx(
            "example.com",
            &[
                rec(20, "b.mx.example.com."),
                rec(10, "A.mx.example.com."),
                rec(20, "c.mx.example.com."),
                rec(30, "a.mx.example.com."),
            ],
        )
        .unwrap();
        assert_eq!(
            hosts,
            vec!["a.mx.example.com", "b.mx.example.com", "c.mx.example.com"]
        );
    }

    #[test]
    fn no_mx_falls_back_to_the_domain() {
        assert_eq!(plan_mx("example.com", &[]).unwrap(), vec!["example.com"]);
    }

    #[test]
    fn a_null_mx_is_a_permanent_failure() {
        let e = plan_mx("example.com", &[rec(0, ".")]).unwrap_err();
        assert_eq!(e, Failure::NullMx("example.com".into()));
        assert_eq!(classify(&e), Class::Permanent);
        // A null MX beside real ones is a misconfiguration; the real ones are used.
        assert_eq!(
            plan_mx("example.com", &[rec(0, "."), rec(10, "mx.example.com.")]).unwrap(),
            vec!["mx.example.com"]
        );
    }

    #[test]
    fn address_literals_name_their_server() {
        assert_eq!(
            address_literal("[127.0.0.1]"),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(address_literal("[IPv6:::1]"), "::1".parse().ok());
        assert_eq!(address_literal("example.com"), None);
        assert_eq!(address_literal("[example.com]"), None);
    }

    #[test]
    fn recipients_are_grouped_by_domain() {
        let (groups, report) = group_by_domain(&[
            "a@x.example".into(),
            "b@Y.example".into(),
            "c@X.EXAMPLE".into(),
            "nodomain".into(),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups["x.example"], vec!["a@x.example", "c@X.EXAMPLE"]);
        assert_eq!(groups["y.example"], vec!["b@Y.example"]);
        assert_eq!(report.destinations.len(), 1);
        assert!(report.destinations[0].result.is_err());
    }
}
