//! The `Received:` trace header (RFC 5321 §4.4) that the ingress prepends to every message.
//!
//! It records who handed us the message and when; rule scripts and loop detection read it,
//! so its shape is fixed here and nowhere else.

use std::net::IpAddr;
use thwonk_core::Address;

/// What the header records about one transaction.
pub(crate) struct Trace<'a> {
    /// The name the client gave in HELO/EHLO.
    pub(crate) helo: &'a str,
    pub(crate) client_ip: IpAddr,
    /// Our host name.
    pub(crate) hostname: &'a str,
    /// True when the client said EHLO (`with ESMTP`), false for HELO (`with SMTP`).
    pub(crate) esmtp: bool,
    /// The session was in TLS (STARTTLS): `ESMTPS` (RFC 3848).
    pub(crate) tls: bool,
    /// MAIL said SMTPUTF8: `UTF8SMTP` (RFC 6531).
    pub(crate) utf8: bool,
    /// The transaction's id, also logged.
    pub(crate) id: &'a str,
    pub(crate) rcpt_to: &'a [Address],
    pub(crate) received_at_ms: i64,
}

/// The header, folded over three lines, CRLF-terminated. The `for` clause is given only for
/// a single recipient: listing several would disclose every recipient to each of them.
pub(crate) fn received_header(t: &Trace<'_>) -> String {
    let ip = match t.client_ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("IPv6:{v6}"),
    };
    let date = thwonk_core::time::rfc5322(t.received_at_ms);
    let protocol = match (t.esmtp, t.utf8, t.tls) {
        (false, _, _) => "SMTP",
        (true, false, false) => "ESMTP",
        (true, false, true) => "ESMTPS",
        (true, true, false) => "UTF8SMTP",
        (true, true, true) => "UTF8SMTPS",
    };
    let head = format!(
        "Received: from {helo} ([{ip}])\r\n\tby {host} (Thwonk) with {protocol} id {id}",
        helo = header_token(t.helo),
        host = t.hostname,
        id = t.id,
    );
    match t.rcpt_to {
        [one] => format!("{head}\r\n\tfor <{one}>; {date}\r\n"),
        _ => format!("{head};\r\n\t{date}\r\n"),
    }
}

/// The HELO name as it may appear in a header: it is client input, so anything outside the
/// characters of host names and address literals becomes `?`.
fn header_token(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace<'a>(rcpt_to: &'a [Address], ip: IpAddr) -> Trace<'a> {
        Trace {
            helo: "client.example.net",
            client_ip: ip,
            hostname: "mx.example.org",
            esmtp: true,
            tls: false,
            utf8: false,
            id: "abc",
            rcpt_to,
            received_at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn one_recipient_gets_a_for_clause() {
        let rcpt = [Address::parse("list@example.org").unwrap()];
        let h = received_header(&trace(&rcpt, "192.0.2.1".parse().unwrap()));
        assert_eq!(
            h,
            "Received: from client.example.net ([192.0.2.1])\r\n\
             \tby mx.example.org (Thwonk) with ESMTP id abc\r\n\
             \tfor <list@example.org>; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        );
    }

    #[test]
    fn several_recipients_are_not_disclosed() {
        let rcpt = [
            Address::parse("a@example.org").unwrap(),
            Address::parse("b@example.org").unwrap(),
        ];
        let h = received_header(&trace(&rcpt, "2001:db8::1".parse().unwrap()));
        assert!(h.starts_with("Received: from client.example.net ([IPv6:2001:db8::1])\r\n"));
        assert!(
            h.ends_with("id abc;\r\n\tTue, 14 Nov 2023 22:13:20 +0000\r\n"),
            "{h}"
        );
        assert!(!h.contains("for <"));
    }

    #[test]
    fn a_hostile_helo_cannot_break_the_header() {
        assert_eq!(header_token("x\r\nBcc: y (z)"), "x??Bcc:?y??z?");
    }
}
