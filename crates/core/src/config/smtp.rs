//! `[smtp]`: the SMTP ingress — where it listens, what it accepts, STARTTLS and session limits.

use super::{ConfigError, de, require_at_least_one};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Address the ingress listens on.
    #[serde(with = "de::listen")]
    pub listen: SocketAddr,
    /// Our name in the greeting, in EHLO and in `Received:` headers.
    pub hostname: String,
    /// Domains we accept mail for (lower case). Empty: any domain that has a thwonk (for
    /// the ingress; owners may then create thwonks only in domains an admin granted them).
    #[serde(deserialize_with = "de::string_or_list")]
    pub domains: Vec<String>,
    /// Local parts only an admin may give a thwonk (lower case; `NAME+tag` is reserved with
    /// `NAME`). The VERP prefix `bounces+` is reserved always.
    #[serde(deserialize_with = "de::string_or_list")]
    pub reserved_local_parts: Vec<String>,
    /// Largest message accepted, bytes (advertised in EHLO SIZE).
    pub max_message_size: u64,
    /// Most recipients accepted in one transaction.
    pub max_recipients: u32,
    /// How long a session may sit idle before it is closed (`idle_timeout_secs`).
    #[serde(rename = "idle_timeout_secs", with = "de::secs")]
    pub idle_timeout: Duration,
    /// PEM file with the certificate chain for STARTTLS. None (with `tls_key`): no STARTTLS.
    #[serde(with = "de::opt_text")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the private key for STARTTLS.
    #[serde(with = "de::opt_text")]
    pub tls_key: Option<PathBuf>,
    /// Refuse MAIL (530 5.7.0) until the client has said STARTTLS.
    pub require_tls: bool,
    /// Sessions at once from one client IP address; past it, 421 4.7.0 at connect.
    pub max_connections_per_ip: u32,
    /// Sessions at once from one client network (an IPv4 /24, an IPv6 /64); past it,
    /// 421 4.7.0 at connect. One host renting many addresses holds no more than this.
    pub max_connections_per_network: u32,
    /// Sessions at once in all; past it, 421 4.3.2 at connect.
    pub max_sessions: u32,
    /// Longest a DATA transfer may take in all, from 354 to the final dot
    /// (`data_timeout_secs`); past it, 421 4.4.2 and the connection closes.
    #[serde(rename = "data_timeout_secs", with = "de::secs")]
    pub data_timeout: Duration,
    /// Slowest average rate a DATA transfer may have once `data_rate_grace_secs` have passed,
    /// bytes per second (0: no minimum); slower, 421 4.4.2 and the connection closes.
    pub data_min_bytes_per_sec: u32,
    /// How long a DATA transfer runs before its rate is checked (`data_rate_grace_secs`).
    #[serde(rename = "data_rate_grace_secs", with = "de::secs")]
    pub data_rate_grace: Duration,
    /// Commands in a row that move no transaction forward (NOOP, RSET, VRFY, refused
    /// MAIL/RCPT, errors...) before the session is closed with 421 4.7.0.
    pub max_commands_without_progress: u32,
    /// Longest command line, CRLF included (at least 512, RFC 5321); longer: 500 5.5.2.
    pub max_line_length: u32,
    /// Most `Received:` headers a message may carry (a mail loop); more: 554 5.4.6.
    pub max_received_headers: u32,
    /// Message bytes all sessions together may hold while they receive DATA; a body that
    /// would pass it is read to its end and answered 452 4.3.1 (the client tries later).
    /// At least `max_message_size`.
    pub max_bytes_in_flight: u64,
    /// Most thwonks a message may have passed through (its `X-Thwonk-Loop` fields: a run's
    /// sends carry those of the message that triggered it, plus their own); more: 554 5.4.6.
    pub max_thwonk_hops: u32,
    /// Bounce records kept per bounce token (one sent message) per hour, or one per
    /// recipient of the message if that is more; the rest are dropped (logged).
    pub max_bounces_per_token_per_hour: u32,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 2525)),
            hostname: "localhost".into(),
            domains: Vec::new(),
            reserved_local_parts: [
                "postmaster",
                "abuse",
                "hostmaster",
                "webmaster",
                "mailer-daemon",
                "root",
                "security",
                "noreply",
                "no-reply",
                "bounces",
            ]
            .map(String::from)
            .to_vec(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            idle_timeout: Duration::from_secs(300),
            tls_cert: None,
            tls_key: None,
            require_tls: false,
            max_connections_per_ip: 50,
            max_connections_per_network: 100,
            max_sessions: 256,
            data_timeout: Duration::from_secs(600),
            data_min_bytes_per_sec: 1024,
            data_rate_grace: Duration::from_secs(30),
            max_commands_without_progress: 100,
            max_line_length: 512,
            max_received_headers: 50,
            max_bytes_in_flight: 256 * 1024 * 1024,
            max_thwonk_hops: 10,
            max_bounces_per_token_per_hour: 20,
        }
    }
}

impl SmtpConfig {
    /// The certificate chain and key files for STARTTLS, when both are set.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }

    /// Whether mail for `domain` is accepted at all (before looking for a thwonk).
    pub fn accepts_domain(&self, domain: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| d == domain)
    }

    /// Whether `local` (a thwonk address's local part, lower case) is for admins only: one of
    /// `reserved_local_parts`, with or without a `+tag`, or in the VERP bounce space.
    pub fn is_reserved_local_part(&self, local: &str) -> bool {
        let local = local.to_lowercase();
        let base = local.split_once('+').map_or(local.as_str(), |(b, _)| b);
        local.starts_with("bounces+")
            || self
                .reserved_local_parts
                .iter()
                .any(|r| *r == local || *r == base)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for r in &self.reserved_local_parts {
            if r.is_empty() || r.contains(['@', ' ']) || r.to_lowercase() != *r {
                return Err(ConfigError::new(
                    "smtp.reserved_local_parts",
                    format!("{r:?} is not a lower-case local part"),
                ));
            }
        }
        if self.hostname.trim().is_empty() || self.hostname.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                "smtp.hostname",
                "must be a host name without spaces",
            ));
        }
        for d in &self.domains {
            if d.is_empty() || d.contains(['@', ' ']) || d.to_lowercase() != *d {
                return Err(ConfigError::new(
                    "smtp.domains",
                    format!("{d:?} is not a lower-case domain name"),
                ));
            }
        }
        if self.max_message_size < 1024 {
            return Err(ConfigError::new(
                "smtp.max_message_size",
                "must be at least 1024 bytes",
            ));
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::new(
                "smtp.idle_timeout_secs",
                "must be at least 1",
            ));
        }
        require_at_least_one("smtp.max_recipients", self.max_recipients)?;
        if self.tls_cert.is_none() != self.tls_key.is_none() {
            return Err(ConfigError::new(
                "smtp.tls_cert",
                "tls_cert and tls_key go together: set both, or neither",
            ));
        }
        if self.require_tls && self.tls_cert.is_none() {
            return Err(ConfigError::new(
                "smtp.require_tls",
                "needs tls_cert and tls_key (no STARTTLS is offered without them)",
            ));
        }
        if !(512..=65536).contains(&self.max_line_length) {
            return Err(ConfigError::new(
                "smtp.max_line_length",
                "must be from 512 (RFC 5321 section 4.5.3.1.4) to 65536",
            ));
        }
        require_at_least_one("smtp.max_connections_per_ip", self.max_connections_per_ip)?;
        require_at_least_one(
            "smtp.max_connections_per_network",
            self.max_connections_per_network,
        )?;
        require_at_least_one("smtp.max_sessions", self.max_sessions)?;
        if self.data_timeout.is_zero() {
            return Err(ConfigError::new(
                "smtp.data_timeout_secs",
                "must be at least 1",
            ));
        }
        require_at_least_one(
            "smtp.max_commands_without_progress",
            self.max_commands_without_progress,
        )?;
        require_at_least_one("smtp.max_received_headers", self.max_received_headers)?;
        if self.max_bytes_in_flight < self.max_message_size {
            return Err(ConfigError::new(
                "smtp.max_bytes_in_flight",
                "must be at least smtp.max_message_size (or no message of the largest size \
                 could ever be received)",
            ));
        }
        require_at_least_one("smtp.max_thwonk_hops", self.max_thwonk_hops)?;
        require_at_least_one(
            "smtp.max_bounces_per_token_per_hour",
            self.max_bounces_per_token_per_hour,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(
            None,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn tls_and_ingress_limits_are_checked_with_their_key() {
        let e = load(&[("THWONK_SMTP_TLS_CERT", "/x/cert.pem")]).unwrap_err();
        assert_eq!(e.key, "smtp.tls_cert");
        let e = load(&[("THWONK_SMTP_REQUIRE_TLS", "true")]).unwrap_err();
        assert_eq!(e.key, "smtp.require_tls");
        let e = load(&[("THWONK_SMTP_MAX_LINE_LENGTH", "100")]).unwrap_err();
        assert_eq!(e.key, "smtp.max_line_length");
        let e = load(&[("THWONK_SMTP_MAX_CONNECTIONS_PER_IP", "0")]).unwrap_err();
        assert_eq!(e.key, "smtp.max_connections_per_ip");
        let e = load(&[("THWONK_SMTP_MAX_CONNECTIONS_PER_NETWORK", "0")]).unwrap_err();
        assert_eq!(e.key, "smtp.max_connections_per_network");
        let e = load(&[("THWONK_SMTP_DATA_TIMEOUT_SECS", "0")]).unwrap_err();
        assert_eq!(e.key, "smtp.data_timeout_secs");
        let slow = load(&[
            ("THWONK_SMTP_DATA_MIN_BYTES_PER_SEC", "0"),
            ("THWONK_SMTP_MAX_SESSIONS", "8"),
        ])
        .unwrap();
        assert_eq!(slow.smtp.data_min_bytes_per_sec, 0);
        assert_eq!(slow.smtp.max_sessions, 8);
        let ok = load(&[
            ("THWONK_SMTP_TLS_CERT", "/x/cert.pem"),
            ("THWONK_SMTP_TLS_KEY", "/x/key.pem"),
            ("THWONK_SMTP_REQUIRE_TLS", "true"),
        ])
        .unwrap();
        assert!(ok.smtp.require_tls);
        assert_eq!(
            ok.smtp.tls_files(),
            Some((Path::new("/x/cert.pem"), Path::new("/x/key.pem")))
        );
    }
}
