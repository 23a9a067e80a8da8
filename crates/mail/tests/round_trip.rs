//! compose → parse_message round trips, one per kind of send: what a script sends is what the
//! next script (or a mail client) reads.

use thwonk_core::run::{MessageView, OutgoingAttachment, SendKind, SendRequest};
use thwonk_mail::{ComposeContext, ComposeError, InboundEnvelope, compose, parse_message};

const THWONK: &str = "List@Example.org";
/// 2026-01-02T03:04:05Z
const DATE_MS: i64 = 1_767_323_045_000;

fn ctx(original: Option<&[u8]>) -> ComposeContext<'_> {
    ComposeContext {
        thwonk_address: THWONK,
        date_ms: DATE_MS,
        original,
        bounce_token: "0f3a9c",
        loop_marks: &[],
    }
}

fn send(id: &str) -> SendRequest {
    SendRequest {
        id: id.to_string(),
        to: vec!["Alice@Example.net".into()],
        subject: "Hello".into(),
        text: Some("Hi.".into()),
        ..SendRequest::default()
    }
}

fn read(raw: &[u8]) -> MessageView {
    parse_message(
        raw,
        &InboundEnvelope {
            id: "m1",
            mail_from: "list@example.org",
            to: "alice@example.net",
            recipients: &[],
            received_at_ms: DATE_MS,
        },
    )
}

fn header<'a>(m: &'a MessageView, name: &str) -> Vec<&'a str> {
    m.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn assert_crlf_only(raw: &[u8]) {
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(raw.get(i.wrapping_sub(1)), Some(&b'\r'), "bare LF at {i}");
        }
        if b == b'\r' {
            assert_eq!(raw.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }
}

#[test]
fn new_message_with_utf8_subject_and_body_round_trips() {
    let mut s = send("run1.1");
    s.subject = "Grüße aus Köln — ☕".into();
    s.text = Some("Zoë says: ça va?\nLine two.\n".into());
    s.cc = vec!["bob@example.com".into(), "ALICE@example.net".into()];
    s.bcc = vec!["hidden@example.com".into()];
    s.reply_to = Some("owner@example.org".into());
    s.headers = vec![
        ("X-Tag".into(), "one".into()),
        ("X-Tag".into(), "twö".into()),
    ];
    let c = compose(&s, &ctx(None)).unwrap();

    assert_eq!(c.mail_from, "bounces+0f3a9c@example.org");
    assert_eq!(
        c.rcpt_to,
        vec!["alice@example.net", "bob@example.com", "hidden@example.com"]
    );
    assert_eq!(c.message_id, "run1.1@example.org");
    assert_crlf_only(&c.raw);
    let text = String::from_utf8(c.raw.clone()).unwrap();
    assert!(
        text.is_ascii(),
        "headers and body are 7-bit encoded:\n{text}"
    );
    assert!(
        !text.to_lowercase().contains("hidden@"),
        "no Bcc anywhere:\n{text}"
    );
    assert!(text.contains("MIME-Version: 1.0\r\n"), "{text}");

    let m = read(&c.raw);
    assert_eq!(m.subject, "Grüße aus Köln — ☕");
    assert_eq!(
        m.text.replace("\r\n", "\n"),
        "Zoë says: ça va?\nLine two.\n"
    );
    assert_eq!(m.html, None);
    assert_eq!(m.message_id.as_deref(), Some("run1.1@example.org"));
    assert_eq!(m.date.as_deref(), Some("2026-01-02T03:04:05Z"));
    assert_eq!(m.sender.address, "List@Example.org");
    assert_eq!(m.sender.name, "");
    assert_eq!(header(&m, "to"), vec!["Alice@Example.net"]);
    assert_eq!(header(&m, "cc").len(), 1);
    assert!(header(&m, "cc")[0].contains("bob@example.com"));
    assert!(header(&m, "bcc").is_empty());
    assert_eq!(header(&m, "reply-to"), vec!["owner@example.org"]);
    assert_eq!(header(&m, "x-tag"), vec!["one", "twö"]);
    let ct = header(&m, "content-type");
    assert!(ct[0].starts_with("text/plain; charset=utf-8"), "{ct:?}");
}

#[test]
fn text_and_html_become_multipart_alternative() {
    let mut s = send("run1.2");
    s.html = Some("<p>Hi <b>there</b> ✓</p>".into());
    let c = compose(&s, &ctx(None)).unwrap();
    let m = read(&c.raw);
    assert!(header(&m, "content-type")[0].starts_with("multipart/alternative"));
    assert_eq!(m.text.trim_end(), "Hi.");
    assert_eq!(
        m.html.as_deref().map(str::trim_end),
        Some("<p>Hi <b>there</b> ✓</p>")
    );
    assert!(m.attachments.is_empty());
}

#[test]
fn html_only_gives_text_from_the_html() {
    let mut s = send("run1.3");
    s.text = None;
    s.html = Some("<p>Only <i>html</i></p>".into());
    let m = read(&compose(&s, &ctx(None)).unwrap().raw);
    assert!(m.text.contains("Only html"), "{:?}", m.text);
    assert!(m.html.is_some());
}

#[test]
fn attachments_become_multipart_mixed_and_round_trip() {
    let mut s = send("run1.4");
    s.html = Some("<p>see attached</p>".into());
    s.attachments = vec![
        OutgoingAttachment {
            filename: "data.bin".into(),
            content_type: "application/octet-stream".into(),
            // NUL and high bytes, then "hello".
            content_base64: "AAEC/f7/aGVsbG8=".into(),
        },
        OutgoingAttachment {
            filename: "notes äö.txt".into(),
            content_type: "text/plain".into(),
            content_base64: "bm90ZXMK".into(),
        },
    ];
    let c = compose(&s, &ctx(None)).unwrap();
    let m = read(&c.raw);
    assert!(header(&m, "content-type")[0].starts_with("multipart/mixed"));
    assert_eq!(m.text.trim_end(), "Hi.");
    assert_eq!(
        m.html.as_deref().map(str::trim_end),
        Some("<p>see attached</p>")
    );
    assert_eq!(m.attachments.len(), 2, "{:?}", m.attachments);
    let a = &m.attachments[0];
    assert_eq!(a.filename, "data.bin");
    assert_eq!(a.content_type, "application/octet-stream");
    assert_eq!(a.size, 11);
    assert_eq!(a.content_base64, "AAEC/f7/aGVsbG8=");
    let b = &m.attachments[1];
    assert_eq!(b.filename, "notes äö.txt");
    assert_eq!(b.content_type, "text/plain");
    assert_eq!(b.content_base64, "bm90ZXMK");
}

#[test]
fn bad_attachments_are_refused() {
    let mut s = send("run1.5");
    s.attachments = vec![OutgoingAttachment {
        filename: "x".into(),
        content_type: "text/plain".into(),
        content_base64: "not base64!".into(),
    }];
    assert!(matches!(
        compose(&s, &ctx(None)),
        Err(ComposeError::BadAttachment { .. })
    ));
    s.attachments[0].content_base64 = "eA==".into();
    s.attachments[0].content_type = "nonsense".into();
    assert!(matches!(
        compose(&s, &ctx(None)),
        Err(ComposeError::BadAttachment { .. })
    ));
}

#[test]
fn reply_carries_threading_and_auto_submitted_headers() {
    let mut s = send("run2.1");
    s.subject = "Re: Hello".into();
    s.kind = SendKind::Reply {
        in_reply_to: Some("orig@mail.example.net".into()),
        references: vec!["<root@a.example>".into(), "orig@mail.example.net".into()],
    };
    let c = compose(&s, &ctx(None)).unwrap();
    let m = read(&c.raw);
    assert_eq!(header(&m, "in-reply-to"), vec!["<orig@mail.example.net>"]);
    assert_eq!(
        header(&m, "references"),
        vec!["<root@a.example> <orig@mail.example.net>"]
    );
    assert_eq!(header(&m, "auto-submitted"), vec!["auto-replied"]);
    assert_eq!(m.subject, "Re: Hello");

    s.headers = vec![("Auto-Submitted".into(), "no".into())];
    assert_eq!(
        compose(&s, &ctx(None)),
        Err(ComposeError::ReservedHeader("Auto-Submitted".into()))
    );
}

#[test]
fn reply_drops_malformed_message_ids_from_incoming_mail() {
    let mut s = send("run2.2");
    s.kind = SendKind::Reply {
        in_reply_to: Some("bad id\r\nBcc: x@y.z".into()),
        references: vec!["ok@x.y".into(), "no-at-sign".into()],
    };
    let c = compose(&s, &ctx(None)).unwrap();
    let m = read(&c.raw);
    assert!(header(&m, "in-reply-to").is_empty());
    assert!(header(&m, "bcc").is_empty());
    assert_eq!(header(&m, "references"), vec!["<ok@x.y>"]);
}

const MULTIPART_ORIGINAL: &str = "Return-Path: <alice@example.net>\n\
From: Alice <alice@example.net>\n\
To: list@example.org\n\
Bcc: secret@example.com\n\
Subject: =?utf-8?q?Caf=C3=A9?= plans\n\
Message-ID: <orig-1@example.net>\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"XyZ-boundary-42\"\n\
\n\
preamble\n\
--XyZ-boundary-42\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: 8bit\n\
\n\
Café at 10?\n\
--XyZ-boundary-42\n\
Content-Type: image/png; name=\"dot.png\"\n\
Content-Disposition: attachment; filename=\"dot.png\"\n\
Content-Transfer-Encoding: base64\n\
\n\
iVBORw0KGgo=\n\
--XyZ-boundary-42--\n\
epilogue\n";

#[test]
fn forward_keeps_the_original_mime_intact() {
    let mut s = send("run3.1");
    s.kind = SendKind::Forward {
        original_message_id: "m-orig".into(),
        subject_prefix: Some("list".into()),
    };
    s.to = vec!["member1@example.com".into(), "Member2@Example.com".into()];
    s.headers = vec![("List-Id".into(), "<list.example.org>".into())];
    let original = MULTIPART_ORIGINAL.as_bytes();
    let c = compose(&s, &ctx(Some(original))).unwrap();

    assert_eq!(c.mail_from, "bounces+0f3a9c@example.org");
    assert_eq!(
        c.rcpt_to,
        vec!["member1@example.com", "member2@example.com"]
    );
    assert_eq!(c.message_id, "run3.1@example.org");
    assert_crlf_only(&c.raw);
    let text = String::from_utf8(c.raw.clone()).unwrap();
    // The body, from the header/body separator on, is the original byte for byte (CRLF).
    let body_at = MULTIPART_ORIGINAL.find("\n\n").unwrap();
    let original_body = MULTIPART_ORIGINAL[body_at..].replace('\n', "\r\n");
    assert!(text.ends_with(&original_body), "{text}");
    assert!(text.contains("boundary=\"XyZ-boundary-42\"\r\n"));
    assert!(!text.contains("secret@"), "original Bcc dropped:\n{text}");
    assert!(!text.contains("Return-Path"), "{text}");

    let m = read(&c.raw);
    assert_eq!(m.subject, "[list] Café plans");
    assert_eq!(m.message_id.as_deref(), Some("orig-1@example.net"));
    assert_eq!(m.sender.address, "alice@example.net");
    assert_eq!(header(&m, "resent-from"), vec!["List@Example.org"]);
    assert_eq!(
        header(&m, "resent-message-id"),
        vec!["<run3.1@example.org>"]
    );
    assert_eq!(header(&m, "list-id"), vec!["<list.example.org>"]);
    assert_eq!(m.text.trim_end(), "Café at 10?");
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].filename, "dot.png");
    assert_eq!(m.attachments[0].content_base64, "iVBORw0KGgo=");
}

#[test]
fn forward_without_prefix_keeps_the_subject_bytes() {
    let mut s = send("run3.2");
    s.kind = SendKind::Forward {
        original_message_id: "m".into(),
        subject_prefix: None,
    };
    let c = compose(&s, &ctx(Some(MULTIPART_ORIGINAL.as_bytes()))).unwrap();
    let text = String::from_utf8(c.raw).unwrap();
    assert!(text.contains("\r\nSubject: =?utf-8?q?Caf=C3=A9?= plans\r\n"));
}

#[test]
fn forward_needs_the_original_and_refuses_reserved_headers() {
    let mut s = send("run3.3");
    s.kind = SendKind::Forward {
        original_message_id: "m".into(),
        subject_prefix: None,
    };
    assert_eq!(compose(&s, &ctx(None)), Err(ComposeError::MissingOriginal));
    s.headers = vec![("Message-ID".into(), "<x@y>".into())];
    assert_eq!(
        compose(&s, &ctx(Some(b"Subject: x\r\n\r\nbody"))),
        Err(ComposeError::ReservedHeader("Message-ID".into()))
    );
}

#[test]
fn sends_without_recipients_or_with_bad_addresses_are_refused() {
    let mut s = send("run4.1");
    s.to.clear();
    assert_eq!(compose(&s, &ctx(None)), Err(ComposeError::NoRecipients));
    s.to = vec!["not an address".into()];
    assert!(matches!(
        compose(&s, &ctx(None)),
        Err(ComposeError::BadAddress { field: "to", .. })
    ));
    let s = send("bad id");
    assert_eq!(
        compose(&s, &ctx(None)),
        Err(ComposeError::BadId("bad id".into()))
    );
}

#[test]
fn bcc_only_sends_have_no_recipient_headers() {
    let mut s = send("run4.2");
    s.to.clear();
    s.bcc = vec!["quiet@example.com".into()];
    let c = compose(&s, &ctx(None)).unwrap();
    assert_eq!(c.rcpt_to, vec!["quiet@example.com"]);
    let text = String::from_utf8(c.raw).unwrap();
    assert!(!text.contains("quiet@"), "{text}");
}

#[test]
fn subject_line_breaks_cannot_inject_headers() {
    let mut s = send("run4.3");
    s.subject = "hi\r\nBcc: evil@example.com".into();
    let c = compose(&s, &ctx(None)).unwrap();
    let m = read(&c.raw);
    assert!(header(&m, "bcc").is_empty());
    assert_eq!(m.subject, "hi Bcc: evil@example.com");
}

#[test]
fn the_envelope_sender_is_the_bounce_address_and_a_bad_token_is_refused() {
    let c = compose(&send("run9.1"), &ctx(None)).unwrap();
    assert_eq!(c.mail_from, "bounces+0f3a9c@example.org");
    // The From: header still names the thwonk.
    let m = read(&c.raw);
    assert_eq!(m.sender.address, "List@Example.org");
    let bad = ComposeContext {
        bounce_token: "x@y",
        loop_marks: &[],
        ..ctx(None)
    };
    assert_eq!(
        compose(&send("run9.1"), &bad),
        Err(ComposeError::BadBounceToken("x@y".into()))
    );
}
