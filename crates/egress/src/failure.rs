//! Why a destination did not take a message ([`Failure`]), and whether that is worth another
//! try ([`classify`]). Plain types and functions, no I/O, so every rule is pinned down by a unit
//! test; the transports produce failures, [`crate::attempt`] decides on them.

use std::fmt;

/// Why one destination did not take a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered a negative reply; `message` is what it said.
    Reply { code: u16, message: String },
    /// No final answer within `egress.timeout_secs`.
    Timeout { ms: u64 },
    /// Connecting failed or the connection broke (refused, reset, unreachable, bad reply).
    Network(String),
    /// The client refused to go on (an address the server cannot take, say): another try
    /// would do the same.
    Refused(String),
    /// A recipient that is not a mail address.
    BadAddress(String),
    /// The domain does not exist (NXDOMAIN).
    NoSuchDomain(String),
    /// The domain publishes a null MX (RFC 7505): it accepts no mail.
    NullMx(String),
    /// The domain has no MX and no address to fall back to (RFC 5321 §5.1).
    NoMailServer(String),
    /// DNS did not answer usefully (timeout, SERVFAIL): may work later.
    Dns(String),
    /// Writing on this host failed (capture mode: disk full, permissions).
    Local(String),
}

/// Whether a failure is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Transient,
    Permanent,
}

/// Sort a failure: 4xx replies, timeouts, network, DNS trouble and local write errors may
/// clear up; 5xx replies and mail that can never be delivered as addressed will not.
pub fn classify(failure: &Failure) -> Class {
    match failure {
        Failure::Reply { code, .. } if (500..600).contains(code) => Class::Permanent,
        // 4xx, and any other code where a final answer was expected: the server is confused,
        // which is a reason to wait, not to give up.
        Failure::Reply { .. } => Class::Transient,
        Failure::Timeout { .. } | Failure::Network(_) | Failure::Dns(_) | Failure::Local(_) => {
            Class::Transient
        }
        Failure::Refused(_)
        | Failure::BadAddress(_)
        | Failure::NoSuchDomain(_)
        | Failure::NullMx(_)
        | Failure::NoMailServer(_) => Class::Permanent,
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Reply { code, message } => {
                write!(f, "remote server replied {code}: {message}")
            }
            Failure::Timeout { ms } => write!(f, "no answer within {} s", *ms as f64 / 1000.0),
            Failure::Network(e) => write!(f, "connection failed: {e}"),
            Failure::Refused(e) => write!(f, "cannot send: {e}"),
            Failure::BadAddress(a) => write!(f, "{a:?} is not a mail address"),
            Failure::NoSuchDomain(d) => write!(f, "domain {d} does not exist"),
            Failure::NullMx(d) => write!(f, "domain {d} accepts no mail (null MX)"),
            Failure::NoMailServer(d) => {
                write!(f, "domain {d} has no mail server (no MX, no address)")
            }
            Failure::Dns(e) => write!(f, "DNS lookup failed: {e}"),
            Failure::Local(e) => write!(f, "local write failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16) -> Failure {
        Failure::Reply {
            code,
            message: "x".into(),
        }
    }

    #[test]
    fn four_hundreds_are_transient_and_five_hundreds_permanent() {
        assert_eq!(classify(&reply(421)), Class::Transient);
        assert_eq!(classify(&reply(451)), Class::Transient);
        assert_eq!(classify(&reply(452)), Class::Transient);
        assert_eq!(classify(&reply(550)), Class::Permanent);
        assert_eq!(classify(&reply(554)), Class::Permanent);
        assert_eq!(classify(&reply(250)), Class::Transient);
    }

    #[test]
    fn network_timeouts_and_dns_trouble_are_transient() {
        assert_eq!(classify(&Failure::Timeout { ms: 1000 }), Class::Transient);
        assert_eq!(
            classify(&Failure::Network("refused".into())),
            Class::Transient
        );
        assert_eq!(classify(&Failure::Dns("servfail".into())), Class::Transient);
        assert_eq!(
            classify(&Failure::Local("disk full".into())),
            Class::Transient
        );
    }

    #[test]
    fn undeliverable_addresses_are_permanent() {
        for f in [
            Failure::NullMx("x.y".into()),
            Failure::NoSuchDomain("x.y".into()),
            Failure::NoMailServer("x.y".into()),
            Failure::BadAddress("nope".into()),
            Failure::Refused("SMTPUTF8 not supported".into()),
        ] {
            assert_eq!(classify(&f), Class::Permanent, "{f}");
        }
    }
}
