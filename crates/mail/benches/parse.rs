//! Cost of [`thwonk_mail::parse_message`] (raw bytes → the `msg` a script sees) on three
//! realistic messages, against two baselines on the same bytes: splitting them into lines (a
//! floor: touching every byte once) and mail-parser's own parse (what ours builds on; the
//! difference is building the view: decoding, copying, attachments to base64).
//!
//! `cargo bench -p thwonk-mail --bench parse`. Plain `Instant` timing: means over many
//! parses, measured in the same process one after the other.

use std::hint::black_box;
use std::time::{Duration, Instant};
use thwonk_mail::{InboundEnvelope, parse_message};

fn mean(runs: u32, mut f: impl FnMut()) -> Duration {
    f();
    let started = Instant::now();
    for _ in 0..runs {
        f();
    }
    started.elapsed() / runs
}

fn plain() -> Vec<u8> {
    let text = "The quick brown fox jumps over the lazy dog, again and again. ".repeat(5);
    format!(
        "Received: from mail.example.net (mail.example.net [192.0.2.7])\r\n\tby mx.example.org; Sat, 21 Nov 2026 12:00:00 +0000\r\n\
         Message-ID: <abc123@example.net>\r\nDate: Sat, 21 Nov 2026 12:00:00 +0000\r\n\
         From: Alice Example <alice@example.net>\r\nTo: list@example.org\r\nSubject: hello list\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    )
    .into_bytes()
}

fn alternative() -> Vec<u8> {
    let text = "Caf=C3=A9 au lait, cr=C3=A8me br=C3=BBl=C3=A9e, and a long line that is =\r\nsoft-broken. "
        .repeat(20);
    let html =
        "<p>Caf&eacute; au lait, <b>cr&egrave;me</b> br&ucirc;l&eacute;e.</p>\r\n".repeat(20);
    format!(
        "Message-ID: <alt@example.net>\r\nDate: Sat, 21 Nov 2026 12:00:00 +0000\r\n\
         From: =?UTF-8?Q?Ren=C3=A9e_Example?= <renee@example.net>\r\nTo: list@example.org\r\n\
         Cc: Bob <bob@example.net>, carol@example.net\r\n\
         Subject: =?UTF-8?B?Q2Fmw6kgbWVudSBmb3IgdG9tb3Jyb3c=?=\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{text}\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>{html}</body></html>\r\n--b1--\r\n"
    )
    .into_bytes()
}

fn attachment() -> Vec<u8> {
    // 48 KiB of binary data, base64 in 76-character lines (64 KiB on the wire).
    let data: Vec<u8> = (0..48 * 1024).map(|i| (i * 7 + 3) as u8).collect();
    let b64 = base64_lines(&data);
    format!(
        "Message-ID: <att@example.net>\r\nDate: Sat, 21 Nov 2026 12:00:00 +0000\r\n\
         From: alice@example.net\r\nTo: list@example.org\r\nSubject: the report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"m1\"\r\n\r\n\
         --m1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe report is attached.\r\n\
         --m1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--m1--\r\n"
    )
    .into_bytes()
}

fn base64_lines(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (n, chunk) in data.chunks(3).enumerate() {
        if n > 0 && n % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn main() {
    let recipients = vec!["list@example.org".to_string()];
    let envelope = InboundEnvelope {
        id: "bench",
        mail_from: "alice@example.net",
        to: "list@example.org",
        recipients: &recipients,
        received_at_ms: 1_000,
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    for (name, raw, runs) in [
        ("plain text", plain(), 20_000),
        (
            "multipart/alternative, QP, encoded words",
            alternative(),
            5_000,
        ),
        (
            "multipart/mixed, 48 KiB base64 attachment",
            attachment(),
            500,
        ),
    ] {
        // The view must really hold what was parsed, or the bench measures nothing.
        let view = parse_message(&raw, &envelope);
        assert!(!view.subject.is_empty() && !view.text.is_empty(), "{name}");
        let lines = mean(runs, || {
            black_box(black_box(&raw[..]).split(|b| *b == b'\n').count());
        });
        let raw_parse = mean(runs, || {
            black_box(mail_parser::MessageParser::default().parse(black_box(&raw[..])));
        });
        let ours = mean(runs, || {
            black_box(parse_message(black_box(&raw), &envelope));
        });
        println!("{name} ({} bytes), mean of {runs}:", raw.len());
        println!("  split into lines (floor)      : {:>9.2} µs", us(lines));
        println!(
            "  mail-parser parse             : {:>9.2} µs   ratio to lines {:.1}",
            us(raw_parse),
            raw_parse.as_secs_f64() / lines.as_secs_f64()
        );
        println!(
            "  parse_message (the msg view)  : {:>9.2} µs   ratio to lines {:.1}, to mail-parser {:.2}",
            us(ours),
            ours.as_secs_f64() / lines.as_secs_f64(),
            ours.as_secs_f64() / raw_parse.as_secs_f64()
        );
    }
}
