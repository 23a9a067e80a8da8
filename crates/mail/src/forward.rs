//! Forwarding: the original message re-sent with its body and MIME structure untouched.
//!
//! The bytes are the original's, with line ends normalised to CRLF, and only the header block
//! changes: a resent block on top (RFC 5322 §3.6.6: `Resent-From` the thwonk, `Resent-Date`,
//! `Resent-Message-ID` with Thwonk's id), the script's extra fields, an optional subject
//! prefix; `Bcc` (would disclose hidden recipients) and `Return-Path` (written only by the
//! final delivery, RFC 5321 §4.4) are dropped. The original `From`, `To` and `Message-ID`
//! stay, so replies thread with the original, as with a mailing list.

use crate::crlf::normalize_crlf;
use crate::error::ComposeError;
use crate::headers::{header_block_end, write_fields};
use crate::parse::decode_unstructured;
use thwonk_core::time::rfc5322;

/// Fields of the original that are not forwarded.
const DROPPED: &[&str] = &["bcc", "resent-bcc", "return-path"];

/// How the forward is resent.
#[derive(Debug, Clone, Copy)]
pub struct Resent<'a> {
    /// The thwonk's address.
    pub from: &'a str,
    pub date_ms: i64,
    /// Thwonk's id for this send, without angle brackets.
    pub message_id: &'a str,
    /// `list` gives `[list] subject`; a prefix already in brackets is used as is.
    pub subject_prefix: Option<&'a str>,
    /// Already checked by [`crate::headers::check_extra_headers`].
    pub extra_headers: &'a [(String, String)],
}

/// The forwarded message's bytes.
pub fn forward(original: &[u8], resent: &Resent<'_>) -> Result<Vec<u8>, ComposeError> {
    let raw = normalize_crlf(original);
    let end = header_block_end(&raw);
    let (head, rest) = raw.split_at(end);

    let mut top = vec![
        ("Resent-From".to_string(), resent.from.to_string()),
        ("Resent-Date".to_string(), rfc5322(resent.date_ms)),
        (
            "Resent-Message-ID".to_string(),
            format!("<{}>", resent.message_id),
        ),
    ];
    top.extend(resent.extra_headers.iter().cloned());

    let tag = resent.subject_prefix.and_then(subject_tag);
    let mut out = Vec::with_capacity(raw.len() + 512);
    let mut saw_subject = false;
    let mut kept = Vec::with_capacity(head.len());
    for field in fields(head) {
        let name = field_name(field).map(str::to_ascii_lowercase);
        match name.as_deref() {
            Some(n) if DROPPED.contains(&n) => {}
            Some("subject") if !saw_subject => {
                saw_subject = true;
                match &tag {
                    Some(tag) => {
                        let value = field
                            .iter()
                            .position(|&b| b == b':')
                            .map(|colon| decode_unstructured(&field[colon + 1..]))
                            .unwrap_or_default();
                        let subject = prefixed(tag, &value);
                        kept.extend(write_fields(&[("Subject".to_string(), subject)])?);
                    }
                    None => kept.extend_from_slice(field),
                }
            }
            _ => kept.extend_from_slice(field),
        }
    }
    if let (Some(tag), false) = (&tag, saw_subject) {
        top.push(("Subject".to_string(), tag.clone()));
    }
    if !kept.is_empty() && !kept.ends_with(b"\r\n") {
        // The last header line had no line end (a message that is all header).
        kept.extend_from_slice(b"\r\n");
    }
    out.extend(write_fields(&top)?);
    out.extend(kept);
    if rest.is_empty() {
        // A message of headers only still needs the empty line that ends the header block.
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(rest);
    }
    Ok(out)
}

/// The `[tag]` for a prefix, or `None` for a blank one.
fn subject_tag(prefix: &str) -> Option<String> {
    let p = prefix.trim();
    if p.is_empty() {
        None
    } else if p.starts_with('[') && p.ends_with(']') {
        Some(p.to_string())
    } else {
        Some(format!("[{p}]"))
    }
}

/// `[tag] subject`, unless the subject already carries the tag (a reply to a forwarded post,
/// `Re: [tag] ...`, keeps one tag, as mailing-list software does).
fn prefixed(tag: &str, subject: &str) -> String {
    let subject = subject.trim();
    if subject.contains(tag) {
        subject.to_string()
    } else if subject.is_empty() {
        tag.to_string()
    } else {
        format!("{tag} {subject}")
    }
}

/// Split a CRLF header block into fields, each with its continuation lines.
fn fields(head: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < head.len() {
        let line_end = head[i..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| i + p + 2)
            .unwrap_or(head.len());
        let continues = i > start && matches!(head.get(i), Some(b' ' | b'\t'));
        if !continues && i > start {
            out.push(&head[start..i]);
            start = i;
        }
        i = line_end;
    }
    if start < head.len() {
        out.push(&head[start..]);
    }
    out
}

/// The field's name, if the line is a well-formed `name:` field.
fn field_name(field: &[u8]) -> Option<&str> {
    let colon = field.iter().position(|&b| b == b':')?;
    let name = std::str::from_utf8(&field[..colon]).ok()?.trim_end();
    crate::headers::is_field_name(name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resent<'a>(prefix: Option<&'a str>, extra: &'a [(String, String)]) -> Resent<'a> {
        Resent {
            from: "list@example.org",
            date_ms: 0,
            message_id: "r1.1@example.org",
            subject_prefix: prefix,
            extra_headers: extra,
        }
    }

    #[test]
    fn fields_keep_their_continuation_lines() {
        let f = fields(b"A: 1\r\n 2\r\nB: 3\r\n");
        assert_eq!(f, vec![&b"A: 1\r\n 2\r\n"[..], &b"B: 3\r\n"[..]]);
    }

    #[test]
    fn bcc_is_dropped_and_subject_prefixed_once() {
        let orig = b"From: a@b.c\nBcc: secret@x.y\nSubject: Re: [list] hi\n\nbody\n";
        let out = forward(orig, &resent(Some("list"), &[])).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(!s.to_lowercase().contains("bcc"), "{s}");
        assert!(s.contains("\r\nSubject: Re: [list] hi\r\n"), "{s}");
        assert!(s.ends_with("\r\n\r\nbody\r\n"), "{s}");
        assert!(s.starts_with("Resent-From: list@example.org\r\nResent-Date: "));
    }

    #[test]
    fn a_missing_subject_is_added_and_headers_only_mail_gets_a_body_separator() {
        let out = forward(b"From: a@b.c", &resent(Some("[x]"), &[])).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("Subject: [x]\r\n"), "{s}");
        assert!(s.ends_with("From: a@b.c\r\n\r\n"), "{s}");
    }

    #[test]
    fn encoded_subjects_are_decoded_before_prefixing() {
        let orig = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nx";
        let s = String::from_utf8(forward(orig, &resent(Some("l"), &[])).unwrap()).unwrap();
        let m = crate::parse::parse_message(
            s.as_bytes(),
            &crate::parse::InboundEnvelope {
                id: "m",
                mail_from: "",
                to: "l@x.y",
                recipients: &[],
                received_at_ms: 0,
            },
        );
        assert_eq!(m.subject, "[l] Grüße");
    }
}
