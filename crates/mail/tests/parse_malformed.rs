//! Malformed incoming mail still yields a view: parse_message never fails and never panics.

use thwonk_mail::{InboundEnvelope, parse_message};

fn env() -> InboundEnvelope<'static> {
    InboundEnvelope {
        id: "m1",
        mail_from: "",
        to: "list@example.org",
        recipients: &[],
        received_at_ms: 1_767_323_045_123,
    }
}

#[test]
fn envelope_fields_size_raw_and_received_at_are_always_set() {
    let m = parse_message(b"", &env());
    assert_eq!(m.id, "m1");
    assert_eq!(m.to, "list@example.org");
    assert_eq!(m.size, 0);
    assert_eq!(m.received_at, "2026-01-02T03:04:05.123Z");
    assert_eq!(m.subject, "");
    assert_eq!(m.text, "");
}

#[test]
fn a_plain_message_is_read() {
    let raw = b"From: \"Bob B.\" <bob@example.com>\r\nSubject: hi\r\nDate: Fri, 2 Jan 2026 04:04:05 +0100\r\nMessage-ID: <abc@example.com>\r\nX-Folded: one\r\n two\r\n\r\nhello\r\n";
    let m = parse_message(raw, &env());
    assert_eq!(m.sender.name, "Bob B.");
    assert_eq!(m.sender.address, "bob@example.com");
    assert_eq!(m.subject, "hi");
    assert_eq!(m.date.as_deref(), Some("2026-01-02T03:04:05Z"));
    assert_eq!(m.message_id.as_deref(), Some("abc@example.com"));
    assert_eq!(m.text, "hello\n");
    assert_eq!(m.size, raw.len() as u64);
    assert_eq!(m.headers[0].0, "From");
    assert_eq!(
        m.headers[4],
        ("X-Folded".to_string(), "one two".to_string())
    );
}

#[test]
fn rfc2047_header_values_are_decoded() {
    let raw = b"From: =?iso-8859-1?q?Andr=E9?= <a@x.y>\r\nX-Note: =?utf-8?b?4pyTIGRvbmU=?=\r\n\r\n";
    let m = parse_message(raw, &env());
    assert_eq!(m.sender.name, "André");
    assert_eq!(m.headers[1].1, "✓ done");
    assert!(m.headers[0].1.starts_with("André"), "{:?}", m.headers[0]);
}

#[test]
fn malformed_inputs_never_panic() {
    let big_nesting = "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n".repeat(200);
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n".to_vec(),
        b"\r\n\r\n\r\n".to_vec(),
        b"just some text, no headers at all".to_vec(),
        b"no colon here\r\nnor here\r\n\r\nbody".to_vec(),
        b"Subject: a\0b\r\nFrom: \0\r\n\r\n\0\0\0".to_vec(),
        b"Subject: caf\xe9 \xff\xfe\r\nFrom: J\xf6rg <j@x.y>\r\n\r\n\xc3\x28".to_vec(),
        b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nunterminated part".to_vec(),
        b"Content-Type: multipart/alternative; boundary=\"\"\r\n\r\n--\r\n--\r\n".to_vec(),
        b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\n--x--".to_vec(),
        b"Content-Type: text/plain; charset=x-unknown-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!".to_vec(),
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=".to_vec(),
        b"Subject: =?utf-8?b?broken?=\r\nDate: not a date\r\nMessage-ID: <>\r\nFrom: <<<@>>>\r\n\r\n".to_vec(),
        b"Subject".to_vec(),
        b":\r\n:\r\n\r\n".to_vec(),
        b"From: a@b.c\n\nbare LF body\n".to_vec(),
        big_nesting.into_bytes(),
        (0u8..=255).cycle().take(10_000).collect(),
    ];
    for raw in inputs {
        let m = parse_message(&raw, &env());
        assert_eq!(m.size, raw.len() as u64);
        assert_eq!(m.raw, String::from_utf8_lossy(&raw));
    }
}

#[test]
fn a_message_without_headers_is_all_text() {
    let m = parse_message(b"just some text", &env());
    assert!(m.text.contains("just some text"), "{:?}", m.text);
}

#[test]
fn a_broken_boundary_still_yields_the_readable_text() {
    let raw = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nstill here\r\n--wrong--\r\n";
    let m = parse_message(raw, &env());
    assert!(m.text.contains("still here"), "{:?}", m.text);
}

#[test]
fn text_right_after_the_headers_without_an_empty_line_is_the_body() {
    // What text with no header block looks like once the ingress put Received: in front.
    let raw = b"Received: from x\r\n\tby y; Tue, 14 Nov 2023 22:13:20 +0000\r\njust text, no headers\r\nmore\r\n";
    let m = parse_message(raw, &env());
    assert_eq!(m.text, "just text, no headers\nmore\n");
    assert_eq!(m.headers.len(), 1);
    assert_eq!(m.raw.as_bytes(), raw, "raw is the message as received");
    let m = parse_message(b"Subject: lf\nbody line\n", &env());
    assert_eq!(m.subject, "lf");
    assert_eq!(m.text, "body line\n");
}

#[test]
fn text_has_lf_line_ends_and_no_trailing_blank_lines_while_raw_is_untouched() {
    let raw = b"Subject: crlf\r\n\r\nline one\r\nline two  \r\n\r\n \r\n\r\n";
    let m = parse_message(raw, &env());
    assert_eq!(m.text, "line one\nline two  \n");
    assert_eq!(m.raw.as_bytes(), raw, "raw keeps CRLF and the blank lines");
    // Bare CRs are line ends too; a body of blank lines is empty; no final line end stays so.
    let m = parse_message(b"Subject: cr\r\n\r\na\rb", &env());
    assert_eq!(m.text, "a\nb");
    let m = parse_message(b"Subject: blank\r\n\r\n\r\n\r\n", &env());
    assert_eq!(m.text, "");
    let m = parse_message(b"no headers at all\r\n\r\n", &env());
    assert_eq!(m.text, "no headers at all\n");
}
