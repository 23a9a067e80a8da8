//! The malformed-mail corpus: messages as a hostile or broken network sends them, each with
//! what Thwonk must make of it. Built by code, so the big ones (a 2 MB header block, 10,000
//! parts, 100-deep nesting) cost no repository space and every case says why it is here.
//!
//! Shared by the root end-to-end test (`tests/malformed.rs`, through real SMTP to a real
//! daemon) and the parser's own test (`crates/mail/tests/malformed.rs`).

#![allow(dead_code)]

/// What must become of a case.
#[derive(Debug, Clone)]
pub enum Expect {
    /// 250 at DATA, and the script sees these fields (`None`: not determinable, not
    /// checked; the run must still end `ok`).
    Accepted {
        subject: Option<&'static str>,
        /// A piece of `msg.text`.
        text_has: Option<&'static str>,
        /// `msg.sender.address`.
        sender: Option<&'static str>,
    },
    /// Refused at the end of DATA with this reply code and enhanced code.
    Refused(&'static str),
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    /// The message as meant (not dot-stuffed; the test kit's `smtp::dot_stuff` does that).
    pub raw: Vec<u8>,
    pub expect: Expect,
}

fn accepted(
    subject: Option<&'static str>,
    text_has: Option<&'static str>,
    sender: Option<&'static str>,
) -> Expect {
    Expect::Accepted {
        subject,
        text_has,
        sender,
    }
}

/// Every case.
pub fn cases() -> Vec<Case> {
    let mut cases = vec![
        Case {
            name: "broken_boundary",
            // Declared boundary "abc", parts delimited by "xyz": no part is ever found.
            raw: b"From: a@example.net\r\nSubject: broken boundary\r\nMIME-Version: 1.0\r\n\
                   Content-Type: multipart/mixed; boundary=\"abc\"\r\n\r\n\
                   --xyz\r\nContent-Type: text/plain\r\n\r\nhello broken\r\n--xyz--\r\n"
                .to_vec(),
            expect: accepted(Some("broken boundary"), Some("hello broken"), Some("a@example.net")),
        },
        Case {
            name: "unclosed_multipart",
            raw: b"From: a@example.net\r\nSubject: unclosed\r\nMIME-Version: 1.0\r\n\
                   Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
                   --b1\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n\
                   --b1\r\nContent-Type: text/plain\r\n\r\nnever closed\r\n"
                .to_vec(),
            expect: accepted(Some("unclosed"), Some("first part"), Some("a@example.net")),
        },
        Case {
            name: "empty_boundary_parameter",
            raw: b"Subject: empty boundary\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n\
                   --\r\n\r\nx\r\n----\r\n"
                .to_vec(),
            expect: accepted(Some("empty boundary"), None, None),
        },
        Case {
            name: "invalid_base64",
            raw: b"Subject: bad base64\r\nContent-Type: text/plain\r\n\
                   Content-Transfer-Encoding: base64\r\n\r\n!!!not*base64@@@\r\n====\r\n"
                .to_vec(),
            expect: accepted(Some("bad base64"), None, None),
        },
        Case {
            name: "invalid_quoted_printable",
            raw: b"Subject: bad qp\r\nContent-Type: text/plain\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\r\nsoft=ZZbreak=\r\n=4\r\nqp-tail\r\n"
                .to_vec(),
            expect: accepted(Some("bad qp"), Some("qp-tail"), None),
        },
        Case {
            name: "unknown_charset",
            raw: b"Subject: =?x-klingon?q?Qapla'?= unknown charset\r\n\
                   Content-Type: text/plain; charset=x-klingon\r\n\r\nplain ascii still\r\n"
                .to_vec(),
            expect: accepted(None, Some("plain ascii still"), None),
        },
        Case {
            name: "eight_bit_headers",
            // Raw UTF-8 in Subject, a Latin-1 byte in the From display name.
            raw: b"From: Ren\xe9 <rene@example.net>\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\r\n\
                   8-bit headers\r\n"
                .to_vec(),
            expect: accepted(Some("Grüße"), Some("8-bit headers"), Some("rene@example.net")),
        },
        Case {
            name: "nul_bytes",
            raw: b"Subject: nul\x00byte\r\nX-Nul: \x00\x00\r\n\r\nbefore\x00after\r\n".to_vec(),
            expect: accepted(None, Some("before"), None),
        },
        Case {
            name: "no_headers",
            raw: b"just a line of text, no header block\r\nand another\r\n".to_vec(),
            expect: accepted(Some(""), Some("just a line of text"), None),
        },
        Case {
            name: "only_headers",
            raw: b"From: a@example.net\r\nSubject: only headers\r\n".to_vec(),
            expect: accepted(Some("only headers"), None, Some("a@example.net")),
        },
        Case {
            name: "empty_body",
            raw: b"Subject: empty body\r\n\r\n".to_vec(),
            expect: accepted(Some("empty body"), None, None),
        },
        Case {
            name: "empty_message",
            raw: Vec::new(),
            expect: accepted(Some(""), None, None),
        },
        Case {
            name: "bare_cr",
            raw: b"Subject: bare cr\r\n\r\nline one\rline two\r\n".to_vec(),
            expect: accepted(Some("bare cr"), Some("line two"), None),
        },
        Case {
            name: "bare_lf",
            raw: b"Subject: bare lf\nFrom: a@example.net\n\nlf body\n".to_vec(),
            expect: accepted(Some("bare lf"), Some("lf body"), Some("a@example.net")),
        },
        Case {
            name: "garbage_header_lines",
            raw: b"Subject: garbage\r\n\xff\xfe no colon here\r\n: empty name\r\n\
                   X-\x01\x02: ctl\r\n\r\nbody after garbage\r\n"
                .to_vec(),
            expect: accepted(Some("garbage"), None, None),
        },
        Case {
            name: "mail_loop_received",
            // 60 hops: more than smtp.max_received_headers (50).
            raw: {
                let mut m = b"Received: from a by b; Tue, 14 Nov 2023 22:13:20 +0000\r\n".repeat(60);
                m.extend_from_slice(b"Subject: looping\r\n\r\nround and round\r\n");
                m
            },
            expect: Expect::Refused("554 5.4.6"),
        },
    ];
    cases.push(Case {
        name: "line_over_998",
        raw: {
            let mut m = b"Subject: long line\r\n\r\n".to_vec();
            m.extend_from_slice(&b"x".repeat(100_000));
            m.extend_from_slice(b"\r\nlong-tail\r\n");
            m
        },
        expect: accepted(Some("long line"), Some("long-tail"), None),
    });
    cases.push(Case {
        name: "two_mb_header_block",
        raw: {
            let mut m = b"From: a@example.net\r\nSubject: big headers\r\n".to_vec();
            let mut i = 0;
            while m.len() < 2 * 1024 * 1024 {
                m.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "f".repeat(200)).as_bytes());
                i += 1;
            }
            m.extend_from_slice(b"\r\nafter the headers\r\n");
            m
        },
        expect: accepted(
            Some("big headers"),
            Some("after the headers"),
            Some("a@example.net"),
        ),
    });
    cases.push(Case {
        name: "one_huge_header",
        raw: {
            let mut m = b"Subject: huge header\r\nX-Huge: ".to_vec();
            for _ in 0..20_000 {
                m.extend_from_slice(b"folded words here\r\n ");
            }
            m.extend_from_slice(b"end\r\n\r\nhuge-header body\r\n");
            m
        },
        expect: accepted(Some("huge header"), Some("huge-header body"), None),
    });
    cases.push(Case {
        name: "ten_thousand_parts",
        raw: many_parts(10_000),
        expect: accepted(Some("many parts"), Some("part 0"), None),
    });
    cases.push(Case {
        name: "nested_rfc822_100_deep",
        raw: nested_rfc822(100),
        expect: accepted(Some("level 0"), None, None),
    });
    cases.push(Case {
        name: "nested_multipart_1000_deep",
        raw: nested_multipart(1000),
        expect: accepted(Some("deep multipart"), None, None),
    });
    cases
}

/// One multipart/mixed with `n` small text parts ("part 0", "part 1", ...).
pub fn many_parts(n: usize) -> Vec<u8> {
    let mut m = b"Subject: many parts\r\nMIME-Version: 1.0\r\n\
                  Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n"
        .to_vec();
    for i in 0..n {
        m.extend_from_slice(
            format!("--p\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n").as_bytes(),
        );
    }
    m.extend_from_slice(b"--p--\r\n");
    m
}

/// A message whose only part is a message/rfc822 whose only part is ... `depth` levels.
pub fn nested_rfc822(depth: usize) -> Vec<u8> {
    let mut inner = format!("Subject: level {depth}\r\n\r\ninnermost\r\n").into_bytes();
    for level in (0..depth).rev() {
        let mut m = format!(
            "Subject: level {level}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"n{level}\"\r\n\r\n\
             --n{level}\r\nContent-Type: message/rfc822\r\n\r\n"
        )
        .into_bytes();
        m.extend_from_slice(&inner);
        m.extend_from_slice(format!("\r\n--n{level}--\r\n").as_bytes());
        inner = m;
    }
    inner
}

/// `depth` multiparts, each inside the one before.
pub fn nested_multipart(depth: usize) -> Vec<u8> {
    let mut m = b"Subject: deep multipart\r\nMIME-Version: 1.0\r\n".to_vec();
    for level in 0..depth {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"d{level}\"\r\n\r\n--d{level}\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(b"Content-Type: text/plain\r\n\r\nat the bottom\r\n");
    for level in (0..depth).rev() {
        m.extend_from_slice(format!("--d{level}--\r\n").as_bytes());
    }
    m
}
