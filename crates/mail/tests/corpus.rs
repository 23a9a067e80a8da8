//! The malformed-mail corpus (`tests/corpus/` at the repository root) through
//! `parse_message` directly, and random bytes for panics. The end-to-end twin is the root
//! `tests/malformed.rs`.

#[path = "../../../tests/corpus/mod.rs"]
mod corpus;

use corpus::Expect;
use std::time::Instant;
use thwonk_mail::parse::{MAX_ATTACHMENTS, MAX_TEXT_PARTS};
use thwonk_mail::{InboundEnvelope, parse_message};

fn env() -> InboundEnvelope<'static> {
    InboundEnvelope {
        id: "m1",
        mail_from: "",
        to: "list@example.org",
        recipients: &[],
        received_at_ms: 0,
    }
}

#[test]
fn every_corpus_case_yields_its_best_effort_fields() {
    // As sent, and as stored by the ingress: behind a Received: field.
    let received = b"Received: from c.test ([127.0.0.1])\r\n\tby mx.test (Thwonk) with ESMTP id x;\r\n\tTue, 14 Nov 2023 22:13:20 +0000\r\n";
    for (case, stored) in corpus::cases()
        .into_iter()
        .flat_map(|c| [(c.clone(), false), (c, true)])
    {
        let raw = if stored {
            [&received[..], &case.raw].concat()
        } else {
            case.raw.clone()
        };
        let started = Instant::now();
        let view = parse_message(&raw, &env());
        // Not asserted (no timed assertions in tests); printed for `--nocapture` readers.
        println!(
            "{:28} {:>6} {:>9} bytes  {:>8.1} ms  {} attachments",
            case.name,
            if stored { "stored" } else { "sent" },
            raw.len(),
            started.elapsed().as_secs_f64() * 1000.0,
            view.attachments.len()
        );
        assert_eq!(view.size, raw.len() as u64, "{}", case.name);
        if let Expect::Accepted {
            subject,
            text_has,
            sender,
        } = case.expect
        {
            if let Some(s) = subject {
                assert_eq!(view.subject, s, "{} ({stored})", case.name);
            }
            if let Some(t) = text_has {
                assert!(
                    view.text.contains(t),
                    "{} ({stored}): {:?}",
                    case.name,
                    view.text
                );
            }
            if let Some(a) = sender {
                assert_eq!(view.sender.address, a, "{} ({stored})", case.name);
            }
        }
    }
}

#[test]
fn ten_thousand_parts_are_bounded_in_the_view() {
    let view = parse_message(&corpus::many_parts(10_000), &env());
    assert!(view.text.starts_with("part 0"), "{}", &view.text[..100]);
    // The first MAX_TEXT_PARTS parts (100), not all 10,000.
    let shown = view.text.matches("part ").count();
    assert_eq!(shown, MAX_TEXT_PARTS, "text parts in msg.text");
}

#[test]
fn thousands_of_attachments_are_bounded_in_the_view() {
    let mut m =
        b"Subject: attachments\r\nContent-Type: multipart/mixed; boundary=\"a\"\r\n\r\n".to_vec();
    for i in 0..3000 {
        m.extend_from_slice(
            format!("--a\r\nContent-Type: application/octet-stream\r\n\r\nblob {i}\r\n").as_bytes(),
        );
    }
    m.extend_from_slice(b"--a--\r\n");
    let view = parse_message(&m, &env());
    assert_eq!(view.attachments.len(), MAX_ATTACHMENTS);
}

#[test]
fn a_few_parts_are_all_shown() {
    let view = parse_message(&corpus::many_parts(3), &env());
    assert_eq!(view.text.matches("part ").count(), 3);
}

#[test]
fn random_bytes_never_panic_the_parser() {
    // Deterministic: a fixed-seed xorshift, so a failure reproduces.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Fragments that steer random input into MIME code paths.
    let fragments: [&[u8]; 12] = [
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=\"b\"\r\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"=?utf-8?b?",
        b"Subject: ",
        b"From: <a@",
    ];
    for _ in 0..3000 {
        let len = (next() % 2048) as usize;
        let mut raw = Vec::with_capacity(len + 64);
        while raw.len() < len {
            let r = next();
            if r % 4 == 0 {
                raw.extend_from_slice(fragments[(r >> 8) as usize % fragments.len()]);
            } else {
                raw.push((r >> 16) as u8);
            }
        }
        let view = parse_message(&raw, &env());
        assert_eq!(view.size, raw.len() as u64);
    }
}

#[test]
fn very_deep_nesting_does_not_overflow_the_stack() {
    // mail-parser keeps nested multiparts on a heap stack (and recurses at most 3 levels for
    // encoded message/rfc822 parts), so depth costs memory linear in the input, not stack.
    for raw in [
        corpus::nested_multipart(20_000),
        corpus::nested_rfc822(2_000),
    ] {
        let view = parse_message(&raw, &env());
        assert_eq!(view.size, raw.len() as u64);
    }
}
