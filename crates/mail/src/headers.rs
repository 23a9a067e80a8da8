//! Extra header fields from scripts (`send({headers})`, `forward(msg, to, {headers})`).
//!
//! A script may add informational fields (`X-*`, `List-*`, `Precedence`, ...) but not the ones
//! Thwonk writes itself: a second `From` or `Message-ID` would make the message ambiguous, a
//! script-set `Content-Type` would break the MIME structure, and a `Bcc` would disclose hidden
//! recipients. Values are RFC 2047-encoded when they are not ASCII and folded by lettre's
//! encoder, so a script can never inject a header through a line break.

use crate::error::ComposeError;
use lettre::message::header::{HeaderName, HeaderValue, Headers};

/// Fields Thwonk writes (or deliberately drops) on every kind of outgoing message; compared
/// case-insensitively.
const RESERVED: &[&str] = &[
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "message-id",
    "date",
    "subject",
    "reply-to",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "return-path",
    "resent-from",
    "resent-sender",
    "resent-date",
    "resent-message-id",
    "resent-to",
    "resent-cc",
    "resent-bcc",
    // The loop marker (crate::loop_mark) is Thwonk's to write.
    "x-thwonk-loop",
    // Trace and authentication fields belong to the servers a message passes through: a
    // script's `Received` or `DKIM-Signature` would forge a path or a signature receivers
    // trust (and the ARC set is the same kind of claim).
    "received",
    "dkim-signature",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "authentication-results",
    // Fields that send mail elsewhere than the envelope says: bounces to `Errors-To`, read
    // receipts to `Disposition-Notification-To`/`Return-Receipt-To`, from every recipient.
    "errors-to",
    "disposition-notification-to",
    "return-receipt-to",
];

/// Longest field name lettre will write (so that the name and ": " fit a 78-column line).
const MAX_NAME_LEN: usize = 76;

/// Check a script's extra headers. `also_reserved` adds fields a particular kind writes
/// (`Auto-Submitted` on replies).
pub fn check_extra_headers(
    headers: &[(String, String)],
    also_reserved: &[&str],
) -> Result<(), ComposeError> {
    for (name, value) in headers {
        if !is_field_name(name) {
            return Err(ComposeError::BadHeaderName(name.clone()));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str()) || also_reserved.contains(&lower.as_str()) {
            return Err(ComposeError::ReservedHeader(name.clone()));
        }
        if value.contains(['\r', '\n', '\0']) {
            return Err(ComposeError::BadHeaderValue(name.clone()));
        }
    }
    Ok(())
}

/// RFC 5322 §3.6.8: `field-name = 1*ftext`, `ftext` = printable US-ASCII except ':'.
pub fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// Write header fields as `Name: encoded value\r\n` lines, in order, duplicates kept. Names
/// must have passed [`check_extra_headers`] (or be Thwonk's own constants).
pub fn write_fields(fields: &[(String, String)]) -> Result<Vec<u8>, ComposeError> {
    let mut out = Vec::new();
    for (name, value) in fields {
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| ComposeError::BadHeaderName(name.clone()))?;
        // One field at a time: lettre's `Headers` keeps a single value per name, and a script
        // may legitimately repeat a field (two `X-Tag`s, say).
        let mut one = Headers::new();
        one.insert_raw(HeaderValue::new(name, value.clone()));
        out.extend_from_slice(one.to_string().as_bytes());
    }
    Ok(out)
}

/// Insert header lines at the end of a message's top-level header block.
pub fn append_to_header_block(message: &[u8], lines: &[u8]) -> Vec<u8> {
    let at = header_block_end(message);
    let mut out = Vec::with_capacity(message.len() + lines.len());
    out.extend_from_slice(&message[..at]);
    out.extend_from_slice(lines);
    out.extend_from_slice(&message[at..]);
    out
}

/// Where the header block ends: just after the CRLF of the last header line (before the empty
/// line), or the whole input when there is no body separator.
pub fn header_block_end(message: &[u8]) -> usize {
    if message.starts_with(b"\r\n") {
        return 0;
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => p + 2,
        None => message.len(),
    }
}

/// A message id as it goes between angle brackets: `id-left "@" id-right`, printable ASCII
/// without spaces, brackets or quotes. Ids from incoming mail are network input: anything
/// else is dropped rather than written.
pub fn clean_msg_id(id: &str) -> Option<String> {
    let id = id.trim();
    let id = id
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(id);
    let ok = !id.is_empty()
        && id.len() <= 250
        && id.contains('@')
        && id
            .bytes()
            .all(|b| (33..=126).contains(&b) && !matches!(b, b'<' | b'>' | b'"' | b'\\'));
    ok.then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn informational_headers_are_accepted() {
        check_extra_headers(&[h("X-Tag", "a"), h("List-Id", "<l.example.org>")], &[]).unwrap();
    }

    #[test]
    fn reserved_bad_and_injected_headers_are_refused() {
        for name in [
            "From",
            "bcc",
            "MESSAGE-ID",
            "Date",
            "To",
            "Cc",
            "Content-Type",
            "Received",
            "DKIM-Signature",
            "ARC-Seal",
            "Authentication-Results",
            "Errors-To",
            "Disposition-Notification-To",
            "Return-Receipt-To",
        ] {
            assert_eq!(
                check_extra_headers(&[h(name, "x")], &[]),
                Err(ComposeError::ReservedHeader(name.into()))
            );
        }
        for name in ["", "X Tag", "X:Tag", "X-Tàg", "X-\u{7}"] {
            assert_eq!(
                check_extra_headers(&[h(name, "x")], &[]),
                Err(ComposeError::BadHeaderName(name.into()))
            );
        }
        for value in ["a\r\nBcc: x@y", "a\nb", "a\rb", "a\0"] {
            assert_eq!(
                check_extra_headers(&[h("X-A", value)], &[]),
                Err(ComposeError::BadHeaderValue("X-A".into()))
            );
        }
        assert!(check_extra_headers(&[h("Auto-Submitted", "no")], &["auto-submitted"]).is_err());
    }

    #[test]
    fn repeated_fields_are_all_written_and_non_ascii_is_encoded() {
        let out = write_fields(&[h("X-Tag", "a"), h("X-Tag", "b"), h("X-Name", "Zoë")]).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("X-Tag: a\r\nX-Tag: b\r\nX-Name: =?utf-8?"),
            "{s}"
        );
        assert!(s.is_ascii());
    }

    #[test]
    fn header_block_end_finds_the_separator() {
        assert_eq!(header_block_end(b"A: b\r\n\r\nbody"), 6);
        assert_eq!(header_block_end(b"\r\nbody"), 0);
        assert_eq!(header_block_end(b"A: b\r\n"), 6);
    }

    #[test]
    fn message_ids_are_cleaned() {
        assert_eq!(clean_msg_id("<a@b>").as_deref(), Some("a@b"));
        assert_eq!(clean_msg_id("a@b").as_deref(), Some("a@b"));
        assert_eq!(clean_msg_id("a b@c"), None);
        assert_eq!(clean_msg_id("<a@b>\r\nBcc: x"), None);
        assert_eq!(clean_msg_id("nodomain"), None);
    }
}
