//! Delivery status notifications (RFC 3464): building the one egress sends when it gives up on
//! recipients, and reading the ones that come back to a bounce address.
//!
//! A DSN is a `multipart/report; report-type=delivery-status` (RFC 6522) of three parts: a
//! human-readable explanation, a `message/delivery-status` part (per-message fields, then one
//! block per recipient: `Final-Recipient`, `Action`, `Status`, `Remote-MTA`, `Diagnostic-Code`),
//! and the original message's header block as `text/rfc822-headers`.
//!
//! Every field value written here comes from the network (remote replies) or a sender: each is
//! made one printable-ASCII line of bounded length before it is written.

use mail_parser::MimeHeaders as _;
use thwonk_core::time::rfc5322;

/// Longest field value written into a DSN (a remote reply can be long; a header line must
/// stay under 998 octets, RFC 5322 §2.1.1).
const FIELD_MAX: usize = 900;

/// Longest original header block returned in the DSN; the rest is cut at a line end.
pub const ORIGINAL_HEADERS_MAX: usize = 64 * 1024;

/// Recipients read from one incoming DSN at most (the rest are ignored).
pub const PARSED_RECIPIENTS_MAX: usize = 1000;

/// One recipient the DSN reports as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecipient {
    pub rcpt: String,
    /// RFC 3463 status, `5.x.y` (see [`status_for_reply`]).
    pub status: String,
    /// The server that gave the answer, if one did (`host` or `host:port`).
    pub remote_mta: Option<String>,
    /// The remote server's reply (`550 5.1.1 no such user`), for `Diagnostic-Code: smtp; …`.
    pub smtp_reply: Option<String>,
    /// What went wrong, in words, for the human part.
    pub explanation: String,
}

/// What a DSN needs besides the failed recipients.
#[derive(Debug, Clone, Copy)]
pub struct DsnContext<'a> {
    /// Our host name: `Reporting-MTA` and the domain of the DSN's `From` and `Message-ID`.
    pub reporting_mta: &'a str,
    /// Names the DSN (`Message-ID: <dsn-{id}@{reporting_mta}>`); the failed outbox row's id.
    pub id: &'a str,
    /// The original envelope sender: the DSN's only recipient.
    pub to: &'a str,
    /// When the original was queued, ms since the epoch (`Arrival-Date`).
    pub arrival_ms: i64,
    /// The DSN's `Date`, ms since the epoch.
    pub date_ms: i64,
    /// The original message (only its header block is returned).
    pub original: &'a [u8],
}

/// Build the DSN: the whole RFC 5322 message, CRLF line ends. It goes out from the null
/// sender `<>` to [`DsnContext::to`], so nothing ever answers it.
pub fn build_dsn(ctx: &DsnContext<'_>, failed: &[FailedRecipient]) -> Vec<u8> {
    let host = field(ctx.reporting_mta);
    let headers = original_headers(ctx.original);

    let mut human = format!(
        "This is the mail system at {host}.\r\n\r\n\
         Your message could not be delivered to one or more recipients. It has not been\r\n\
         delivered to the addresses below, and will not be retried.\r\n\r\n"
    );
    for f in failed {
        human.push_str(&format!(
            "<{}>: {}\r\n",
            field(&f.rcpt),
            field(&f.explanation)
        ));
    }

    let mut status = format!(
        "Reporting-MTA: dns; {host}\r\nArrival-Date: {}\r\n",
        rfc5322(ctx.arrival_ms)
    );
    for f in failed {
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\n",
            field(&f.rcpt),
            field(&f.status)
        ));
        if let Some(mta) = &f.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {}\r\n", field(mta)));
        }
        if let Some(reply) = &f.smtp_reply {
            status.push_str(&format!("Diagnostic-Code: smtp; {}\r\n", field(reply)));
        }
    }

    let boundary = boundary_for(ctx.id, [human.as_bytes(), status.as_bytes(), &headers]);
    let mut out = Vec::with_capacity(headers.len() + human.len() + status.len() + 1024);
    let w = &mut out;
    push(
        w,
        &format!("From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n"),
    );
    push(w, &format!("To: <{}>\r\n", field(ctx.to)));
    push(w, "Subject: Undelivered Mail Returned to Sender\r\n");
    push(w, &format!("Date: {}\r\n", rfc5322(ctx.date_ms)));
    push(
        w,
        &format!("Message-ID: <dsn-{}@{host}>\r\n", field(ctx.id)),
    );
    push(w, "Auto-Submitted: auto-replied\r\n");
    push(w, "MIME-Version: 1.0\r\n");
    push(
        w,
        &format!(
            "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
        ),
    );
    push(
        w,
        "This is a MIME-encapsulated delivery status notification.\r\n",
    );
    push(w, &format!("\r\n--{boundary}\r\n"));
    push(w, "Content-Type: text/plain; charset=us-ascii\r\n");
    push(w, "Content-Description: Notification\r\n\r\n");
    push(w, &human);
    push(w, &format!("\r\n--{boundary}\r\n"));
    push(w, "Content-Type: message/delivery-status\r\n");
    push(w, "Content-Description: Delivery report\r\n\r\n");
    push(w, &status);
    push(w, &format!("\r\n--{boundary}\r\n"));
    push(w, "Content-Type: text/rfc822-headers\r\n");
    if !headers.is_ascii() {
        push(w, "Content-Transfer-Encoding: 8bit\r\n");
    }
    push(
        w,
        "Content-Description: Undelivered message headers\r\n\r\n",
    );
    out.extend_from_slice(&headers);
    push(&mut out, &format!("\r\n--{boundary}--\r\n"));
    out
}

fn push(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// The RFC 3463 status for a remote reply: the enhanced status code the reply starts with when
/// it has one of the reply's class (`550 5.1.1 …` → `5.1.1`), else `5.0.0`.
pub fn status_for_reply(code: u16, text: &str) -> String {
    let class = code / 100;
    let first = text.split_whitespace().next().unwrap_or("");
    let parts: Vec<&str> = first.split('.').collect();
    let enhanced = parts.len() == 3
        && parts[0] == class.to_string()
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    if enhanced && class == 5 {
        first.to_string()
    } else {
        "5.0.0".to_string()
    }
}

/// One line of printable ASCII, at most [`FIELD_MAX`] bytes: line breaks and tabs become
/// spaces, other bytes outside printable ASCII become `?`.
fn field(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| match c {
            '\r' | '\n' | '\t' => ' ',
            ' '..='~' => c,
            _ => '?',
        })
        .collect();
    out.truncate(FIELD_MAX);
    out.trim().to_string()
}

/// The original header block, CRLF line ends, cut at a line end within
/// [`ORIGINAL_HEADERS_MAX`].
fn original_headers(raw: &[u8]) -> Vec<u8> {
    let raw = crate::normalize_crlf(raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |i| i + 2);
    let mut block = raw[..end].to_vec();
    if block.len() > ORIGINAL_HEADERS_MAX {
        let cut = block[..ORIGINAL_HEADERS_MAX]
            .windows(2)
            .rposition(|w| w == b"\r\n")
            .map_or(0, |i| i + 2);
        block.truncate(cut);
    }
    if !block.is_empty() && !block.ends_with(b"\r\n") {
        block.extend_from_slice(b"\r\n");
    }
    block
}

/// A boundary that occurs in none of the parts.
fn boundary_for<const N: usize>(id: &str, parts: [&[u8]; N]) -> String {
    let base: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let mut boundary = format!("=_thwonk-dsn-{base}");
    while parts
        .iter()
        .any(|p| p.windows(boundary.len()).any(|w| w == boundary.as_bytes()))
    {
        boundary.push('x');
    }
    boundary
}

/// One recipient block of an incoming DSN, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportedRecipient {
    /// `Final-Recipient` (or `Original-Recipient`), without its `rfc822;` type.
    pub rcpt: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub remote_mta: Option<String>,
    pub diagnostic: Option<String>,
}

/// Read the per-recipient blocks of a DSN's `message/delivery-status` part. Best effort:
/// mail that is not a DSN, or a DSN in a shape we cannot read, gives an empty list.
pub fn parse_dsn(raw: &[u8]) -> Vec<ReportedRecipient> {
    let Some(message) = mail_parser::MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    let Some(part) = message.parts.iter().find(|p| {
        p.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("delivery-status"))
        })
    }) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(part.contents());
    delivery_status_blocks(&text)
}

/// Longest text read from a plain (non-RFC 3464) bounce when looking for its 5xx reply.
const PLAIN_REPORT_MAX: usize = 64 * 1024;

/// What a message sent to a bounce address reports about the outbox row's recipients
/// `rcpts`, if it is a bounce at all (issue 13 item 5: anything may be sent to a bounce
/// address once it is seen, so only a real report counts):
///
/// - a DSN (RFC 3464): `multipart/report; report-type=delivery-status` at the top, whose
///   `message/delivery-status` part has recipient blocks naming recipients of the row (the
///   blocks naming others are left out);
/// - a plain report, as some servers send: a text that names a recipient of the row and
///   carries a 5xx reply (`550 5.1.1 ...`); one `failed` block per recipient named.
///
/// `None` when it is neither: mail that is not a bounce, or a bounce for someone else.
pub fn read_bounce(raw: &[u8], rcpts: &[String]) -> Option<Vec<ReportedRecipient>> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let ours = |named: &str| {
        rcpts
            .iter()
            .find(|r| r.eq_ignore_ascii_case(named))
            .cloned()
    };
    let is_report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    });
    let found: Vec<ReportedRecipient> = if is_report {
        parse_dsn(raw)
            .into_iter()
            .filter_map(|mut r| {
                r.rcpt = Some(ours(r.rcpt.as_deref()?)?);
                Some(r)
            })
            .collect()
    } else {
        let mut text = message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default();
        if text.len() > PLAIN_REPORT_MAX {
            let mut cut = PLAIN_REPORT_MAX;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let line = text.lines().find(|l| permanent_reply(l).is_some())?;
        let status = permanent_reply(line).unwrap_or_else(|| "5.0.0".into());
        let lower = text.to_ascii_lowercase();
        rcpts
            .iter()
            .filter(|r| named_in(&lower, &r.to_ascii_lowercase()))
            .map(|r| ReportedRecipient {
                rcpt: Some(r.clone()),
                action: Some("failed".into()),
                status: Some(status.clone()),
                remote_mta: None,
                diagnostic: Some(format!("smtp; {}", field(line.trim()))),
            })
            .collect()
    };
    (!found.is_empty()).then_some(found)
}

/// The RFC 3463 status of a line carrying a permanent SMTP reply (`550 5.1.1 ...`,
/// `550-5.1.1 ...`, `... said: 554 ...`): the enhanced code if there is one, else `5.0.0`.
fn permanent_reply(line: &str) -> Option<String> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        let code = w.split('-').next().unwrap_or(w);
        if code.len() == 3 && code.starts_with('5') && code.bytes().all(|b| b.is_ascii_digit()) {
            let enhanced = w
                .split_once('-')
                .map(|(_, e)| e)
                .or(words.get(i + 1).copied())
                .filter(|e| is_enhanced_permanent(e));
            return Some(enhanced.map_or_else(|| "5.0.0".to_string(), str::to_string));
        }
    }
    None
}

/// `5.x.y` with 1 to 3 digits each.
fn is_enhanced_permanent(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts[0] == "5"
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `address` occurs in `text` as a whole address (not inside a longer one).
fn named_in(text: &str, address: &str) -> bool {
    let edge =
        |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || "._+-@".contains(c)));
    text.match_indices(address).any(|(at, _)| {
        edge(text[..at].chars().next_back()) && edge(text[at + address.len()..].chars().next())
    })
}

/// The recipient blocks of a `message/delivery-status` body: blocks of header fields
/// separated by empty lines; the first (per-message) block has no recipient field.
pub fn delivery_status_blocks(text: &str) -> Vec<ReportedRecipient> {
    let mut out = Vec::new();
    let normalized = text.replace("\r\n", "\n");
    for block in normalized.split("\n\n") {
        if out.len() == PARSED_RECIPIENTS_MAX {
            break;
        }
        let mut r = ReportedRecipient::default();
        let mut original = None;
        for (name, value) in unfold(block) {
            let value = field(&value);
            match name.to_ascii_lowercase().as_str() {
                "final-recipient" => r.rcpt = Some(typed_value(&value)),
                "original-recipient" => original = Some(typed_value(&value)),
                "action" => r.action = Some(value.to_ascii_lowercase()),
                "status" => r.status = Some(value),
                "remote-mta" => r.remote_mta = Some(typed_value(&value)),
                "diagnostic-code" => r.diagnostic = Some(value),
                _ => {}
            }
        }
        if r.rcpt.is_none() {
            r.rcpt = original;
        }
        if r.rcpt.is_some() {
            out.push(r);
        }
    }
    out
}

/// `name: value` fields of one block, continuation lines joined.
fn unfold(block: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// `rfc822; a@b` → `a@b` (the address type is dropped); a value with no type as it is.
fn typed_value(v: &str) -> String {
    v.split_once(';')
        .map_or(v, |(_, rest)| rest)
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    #[test]
    fn only_reports_naming_a_recipient_of_the_row_are_bounces() {
        let rcpts = vec!["bob@example.net".to_string()];
        let dsn = build_dsn(&ctx(), &failed());
        let got = read_bounce(&dsn, &rcpts).expect("a DSN naming bob");
        assert_eq!(got.len(), 1, "carol is not a recipient of the row");
        assert_eq!(got[0].rcpt.as_deref(), Some("bob@example.net"));
        assert_eq!(got[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(read_bounce(&dsn, &["dave@example.net".to_string()]), None);

        let plain = b"From: MAILER-DAEMON@mx.example.net\r\nSubject: failure\r\n\r\n\
            I could not deliver to <Bob@Example.net>:\r\nhost mx.example.net said: 550 5.1.1 no such user\r\n";
        let got = read_bounce(plain, &rcpts).expect("a plain 5xx report");
        assert_eq!(got[0].rcpt.as_deref(), Some("bob@example.net"));
        assert_eq!(got[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(got[0].action.as_deref(), Some("failed"));

        for junk in [
            &b"Subject: hi\r\n\r\nbob@example.net, buy now\r\n"[..],
            b"Subject: hi\r\n\r\n550 5.1.1 someone else: carol@example.net\r\n",
            b"Subject: hi\r\n\r\n550 5.1.1 xbob@example.net.evil\r\n",
            b"Subject: hi\r\n\r\n450 4.2.0 bob@example.net try later\r\n",
            b"",
        ] {
            assert_eq!(
                read_bounce(junk, &rcpts),
                None,
                "{}",
                String::from_utf8_lossy(junk)
            );
        }
    }

    #[test]
    fn permanent_replies_are_found_in_a_line() {
        assert_eq!(
            permanent_reply("said: 550 5.1.1 no").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            permanent_reply("550-5.7.1 blocked").as_deref(),
            Some("5.7.1")
        );
        assert_eq!(permanent_reply("(554) refused").as_deref(), Some("5.0.0"));
        assert_eq!(permanent_reply("450 4.2.0 later"), None);
        assert_eq!(permanent_reply("port 5500 open"), None);
    }

    const ORIGINAL: &[u8] = b"From: list@example.org\r\nTo: bob@example.net\r\nSubject: Hello\r\nMessage-ID: <r1.1@example.org>\r\n\r\nsecret body\r\n";

    fn failed() -> Vec<FailedRecipient> {
        vec![
            FailedRecipient {
                rcpt: "bob@example.net".into(),
                status: status_for_reply(550, "5.1.1 <bob@example.net>: no such user"),
                remote_mta: Some("relay.example.com".into()),
                smtp_reply: Some("550 5.1.1 <bob@example.net>: no such user".into()),
                explanation: "remote server replied 550".into(),
            },
            FailedRecipient {
                rcpt: "carol@nowhere.example".into(),
                status: "5.1.2".into(),
                remote_mta: None,
                smtp_reply: None,
                explanation: "domain nowhere.example does not exist".into(),
            },
        ]
    }

    fn ctx() -> DsnContext<'static> {
        DsnContext {
            reporting_mta: "mx.example.org",
            id: "0190-abcd",
            to: "alice@example.com",
            arrival_ms: 1_767_323_045_000,
            date_ms: 1_767_323_105_000,
            original: ORIGINAL,
        }
    }

    #[test]
    fn a_dsn_is_a_multipart_report_that_mail_parser_reads_back() {
        let raw = build_dsn(&ctx(), &failed());
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(!text.contains("\n\n"), "CRLF only: {text}");
        let msg = MessageParser::default().parse(&raw[..]).unwrap();
        let ct = msg.content_type().unwrap();
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("report"));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
        assert_eq!(
            msg.header("Auto-Submitted").and_then(|h| h.as_text()),
            Some("auto-replied")
        );
        assert_eq!(
            msg.to().and_then(|a| a.first()).and_then(|a| a.address()),
            Some("alice@example.com")
        );
        let types: Vec<String> = msg
            .parts
            .iter()
            .skip(1)
            .map(|p| {
                let ct = p.content_type().unwrap();
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
            })
            .collect();
        assert_eq!(
            types,
            [
                "text/plain",
                "message/delivery-status",
                "text/rfc822-headers"
            ]
        );
        // The original's headers come back, its body does not.
        let headers = String::from_utf8_lossy(msg.parts[3].contents()).into_owned();
        assert!(
            headers.contains("Message-ID: <r1.1@example.org>"),
            "{headers}"
        );
        assert!(!text.contains("secret body"));
    }

    #[test]
    fn the_delivery_status_fields_read_back_per_recipient() {
        let raw = build_dsn(&ctx(), &failed());
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(
            text.contains("Reporting-MTA: dns; mx.example.org\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Arrival-Date: Fri, 2 Jan 2026 03:04:05 +0000\r\n"),
            "{text}"
        );
        let got = parse_dsn(&raw);
        assert_eq!(
            got,
            vec![
                ReportedRecipient {
                    rcpt: Some("bob@example.net".into()),
                    action: Some("failed".into()),
                    status: Some("5.1.1".into()),
                    remote_mta: Some("relay.example.com".into()),
                    diagnostic: Some("smtp; 550 5.1.1 <bob@example.net>: no such user".into()),
                },
                ReportedRecipient {
                    rcpt: Some("carol@nowhere.example".into()),
                    action: Some("failed".into()),
                    status: Some("5.1.2".into()),
                    remote_mta: None,
                    diagnostic: None,
                },
            ]
        );
    }

    #[test]
    fn hostile_replies_cannot_add_fields_or_lines() {
        let mut f = failed();
        f[0].smtp_reply =
            Some("550 x\r\nAction: delivered\r\n\r\nFinal-Recipient: rfc822; evil@x".into());
        f[0].rcpt = "bob@example.net\r\nX-Evil: 1".into();
        let raw = build_dsn(&ctx(), &f);
        let got = parse_dsn(&raw);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].action.as_deref(), Some("failed"));
        assert!(!String::from_utf8_lossy(&raw).contains("\r\nX-Evil"));
    }

    #[test]
    fn the_boundary_never_occurs_in_a_part() {
        let original = b"Subject: =_thwonk-dsn-0190-abcd\r\n\r\nx";
        let c = DsnContext { original, ..ctx() };
        let raw = build_dsn(&c, &failed());
        let msg = MessageParser::default().parse(&raw[..]).unwrap();
        assert_eq!(msg.parts.len(), 4);
    }

    #[test]
    fn long_original_headers_are_cut_at_a_line_end() {
        let mut original = Vec::new();
        for i in 0..5000 {
            original.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "y".repeat(20)).as_bytes());
        }
        original.extend_from_slice(b"\r\nbody");
        let block = original_headers(&original);
        assert!(block.len() <= ORIGINAL_HEADERS_MAX);
        assert!(block.ends_with(b"\r\n"));
        assert!(block.starts_with(b"X-Filler-0: "));
    }

    #[test]
    fn statuses_come_from_the_reply_when_it_has_one() {
        assert_eq!(status_for_reply(550, "5.1.1 no such user"), "5.1.1");
        assert_eq!(status_for_reply(554, "5.7.1 rejected"), "5.7.1");
        assert_eq!(status_for_reply(550, "no such user"), "5.0.0");
        assert_eq!(status_for_reply(550, "4.1.1 mismatched class"), "5.0.0");
        assert_eq!(status_for_reply(550, "5.1.1234 too long"), "5.0.0");
        // Retries exhausted on a 4xx still reports a failure.
        assert_eq!(status_for_reply(451, "4.3.0 later"), "5.0.0");
    }

    #[test]
    fn delivery_status_blocks_read_folded_and_original_recipients() {
        let text = "Reporting-MTA: dns; mx.example.com\r\n\r\n\
                    Original-Recipient: rfc822;<Bob@Example.net>\r\n\
                    Action: Failed\r\nStatus: 5.2.2\r\n\
                    Diagnostic-Code: smtp; 552 mailbox\r\n  full\r\n";
        let got = delivery_status_blocks(text);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rcpt.as_deref(), Some("Bob@Example.net"));
        assert_eq!(got[0].action.as_deref(), Some("failed"));
        assert_eq!(got[0].diagnostic.as_deref(), Some("smtp; 552 mailbox full"));
        assert!(parse_dsn(b"Subject: not a dsn\r\n\r\nhello").is_empty());
    }
}
