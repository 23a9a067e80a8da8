//! The ingress's limits, SMTPUTF8, loop protection and byte-exact storage, over real TCP
//! sockets: each test asserts the exact reply code and enhanced status code.

mod support;

use std::time::Duration;
use support::{Client, TestServer, config, start};

/// MAIL, RCPT list@, DATA, then `body` (which must end with the terminator); the reply.
async fn send_body(c: &mut Client, rcpts: &[&str], body: &[u8]) -> String {
    c.cmd("MAIL FROM:<a@example.net>", "250 2.1.0").await;
    for r in rcpts {
        c.cmd(&format!("RCPT TO:<{r}>"), "250 2.1.5").await;
    }
    c.cmd("DATA", "354").await;
    c.send_bytes(body).await;
    c.reply().await
}

/// The stored message without the Received: header the ingress put in front.
fn without_our_received(raw: &[u8]) -> &[u8] {
    assert!(raw.starts_with(b"Received: from "));
    // Our header is three lines; its end is the first CRLF not followed by a tab.
    let mut i = 0;
    loop {
        let p = raw[i..].windows(2).position(|w| w == b"\r\n").unwrap() + i;
        if raw.get(p + 2) != Some(&b'\t') {
            return &raw[p + 2..];
        }
        i = p + 2;
    }
}

#[tokio::test]
async fn smtputf8_addresses_are_accepted_only_when_mail_says_smtputf8() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<jörg@example.net>", "553 5.6.7").await;
    c.cmd("MAIL FROM:<a@example.net>", "250 2.1.0").await;
    c.cmd("RCPT TO:<jörg@example.org>", "553 5.6.7").await;
    c.cmd("RSET", "250").await;

    c.cmd("MAIL FROM:<jörg@exämple.net> SMTPUTF8", "250 2.1.0")
        .await;
    c.cmd("RCPT TO:<JÖRG@example.org>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.send("Subject: Grüße\r\n\r\nÄ\r\n.\r\n").await;
    c.expect("250 2.0.0").await;
    let (env, raw) = server.sink.single();
    assert_eq!(env.mail_from, "jörg@exämple.net");
    assert_eq!(env.rcpt_to[0].as_str(), "jörg@example.org");
    assert!(raw.contains(" with UTF8SMTP id "), "{raw}");
    assert!(raw.ends_with("\r\nSubject: Grüße\r\n\r\nÄ\r\n"), "{raw}");
}

#[tokio::test]
async fn a_client_over_its_per_ip_limit_gets_421_4_7_0_at_connect() {
    let mut cfg = config();
    cfg.max_connections_per_ip = 2;
    let server = start(cfg).await;
    let mut first = server.hello().await;
    let _second = server.hello().await;
    let mut third = server.connect().await;
    third.expect("421 4.7.0").await;
    third.expect_closed().await;

    // A place is given back when a session ends.
    first.cmd("QUIT", "221").await;
    first.expect_closed().await;
    let start = std::time::Instant::now();
    loop {
        let mut c = server.connect().await;
        let greeting = c.reply().await;
        if greeting.starts_with("220 ") {
            break;
        }
        assert!(greeting.starts_with("421 4.7.0"), "{greeting}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "place never given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn commands_without_progress_end_the_session_with_421_4_7_0() {
    let mut cfg = config();
    cfg.max_commands_without_progress = 5;
    let server = start(cfg).await;
    let mut c = server.client().await;
    // EHLO and three NOOPs: four without progress; an accepted MAIL starts the count over.
    c.cmd("EHLO client.test", "250").await;
    for _ in 0..3 {
        c.cmd("NOOP", "250").await;
    }
    c.cmd("MAIL FROM:<a@example.net>", "250 2.1.0").await;
    for _ in 0..3 {
        c.cmd("NOOP", "250").await;
    }
    // Refused recipients are no progress (directory harvesting).
    c.cmd("RCPT TO:<nobody@example.org>", "550 5.1.1").await;
    c.cmd("RSET", "250 2.0.0").await;
    c.expect("421 4.7.0").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn max_line_length_is_configurable_and_500_5_5_2_past_it() {
    let mut cfg = config();
    cfg.max_line_length = 1000;
    let server = start(cfg).await;
    let mut c = server.hello().await;
    // 998 bytes + CRLF fits; one more does not.
    c.cmd(&format!("NOOP {}", "x".repeat(993)), "250 2.0.0")
        .await;
    c.cmd(&format!("NOOP {}", "x".repeat(995)), "500 5.5.2")
        .await;
    c.cmd("NOOP", "250 2.0.0").await;
}

#[tokio::test]
async fn body_lines_longer_than_998_octets_are_accepted_as_they_are() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    let long = "y".repeat(5000);
    let body = format!("Subject: long\r\n\r\n{long}\r\n.\r\n");
    let reply = send_body(&mut c, &["list@example.org"], body.as_bytes()).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let (_, raw) = server.sink.single();
    assert!(raw.ends_with(&format!("\r\n\r\n{long}\r\n")));
}

#[tokio::test]
async fn the_stored_message_is_byte_exact_after_unstuffing() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    // What the sender meant, with 8-bit bytes, a NUL, dots at line starts and a lone dot.
    let mut meant = b"Subject: dots\r\nX-8bit: \xe9t\xe9\r\n\r\n".to_vec();
    meant.extend_from_slice(b".\r\n..\r\n.leading\r\nmid.dle\r\n\x00nul\r\n\xff\xfe\r\n.");
    meant.extend_from_slice(b"\r\n");
    // On the wire: every line starting with a dot gets one more.
    let mut wire = Vec::new();
    for line in meant.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
    }
    wire.extend_from_slice(b".\r\n");
    let reply = send_body(&mut c, &["list@example.org"], &wire).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let raw = server.sink.deliveries().remove(0).1;
    assert_eq!(without_our_received(&raw), &meant[..]);
}

#[tokio::test]
async fn lettre_stuffs_dots_and_the_ingress_unstuffs_them_byte_exact() {
    // The egress sends with lettre; its client codec dot-stuffs. Round trip through both.
    use lettre::address::Envelope;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let server = start(config()).await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .build();
    let meant = b"Subject: x\r\n\r\n.\r\n..\r\n.a\r\nb.\r\n".to_vec();
    let envelope = Envelope::new(
        Some("a@example.net".parse().unwrap()),
        vec!["list@example.org".parse().unwrap()],
    )
    .unwrap();
    transport.send_raw(&envelope, &meant).await.unwrap();
    let raw = server.sink.deliveries().remove(0).1;
    // lettre ends DATA with "\r\n.\r\n" even when the message already ends in CRLF, so the
    // message arrives with one empty line more at its end (an egress trait, not the ingress's
    // doing: the ingress stores what the wire says).
    let mut expected = meant.clone();
    expected.extend_from_slice(b"\r\n");
    assert_eq!(without_our_received(&raw), &expected[..]);
}

#[tokio::test]
async fn too_many_received_fields_get_554_5_4_6() {
    let mut cfg = config();
    cfg.max_received_headers = 3;
    let server = start(cfg).await;
    let mut c = server.hello().await;
    let hops = |n: usize| {
        let mut m = "Received: from a by b; Tue, 14 Nov 2023 22:13:20 +0000\r\n".repeat(n);
        m.push_str("Subject: hops\r\n\r\nbody\r\n.\r\n");
        m
    };
    let reply = send_body(&mut c, &["list@example.org"], hops(4).as_bytes()).await;
    assert!(reply.starts_with("554 5.4.6 "), "{reply}");
    assert!(server.sink.deliveries().is_empty());
    let reply = send_body(&mut c, &["list@example.org"], hops(3).as_bytes()).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
}

#[tokio::test]
async fn mail_that_passed_through_a_recipient_thwonk_is_not_delivered_to_it_again() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    let body = "X-Thwonk-Loop: other@example.org\r\nX-Thwonk-Loop: <List@Example.org>\r\n\
                Subject: round\r\n\r\nagain\r\n.\r\n";
    // Every recipient loops: refused.
    let reply = send_body(&mut c, &["list@example.org"], body.as_bytes()).await;
    assert!(reply.starts_with("554 5.4.6 "), "{reply}");
    assert!(reply.contains("list@example.org"), "{reply}");
    assert!(server.sink.deliveries().is_empty());

    // One of two loops: the other still gets it.
    let body = "X-Thwonk-Loop: list@example.org\r\nSubject: round\r\n\r\nagain\r\n.\r\n";
    let reply = send_body(
        &mut c,
        &["list@example.org", "other@example.org"],
        body.as_bytes(),
    )
    .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let (env, raw) = server.sink.single();
    let rcpts: Vec<&str> = env.rcpt_to.iter().map(|a| a.as_str()).collect();
    assert_eq!(rcpts, ["other@example.org"]);
    assert!(raw.contains("\tfor <other@example.org>; "), "{raw}");
}

#[tokio::test]
async fn a_loop_field_in_the_body_is_not_a_loop() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    let body = "Subject: quoted\r\n\r\nX-Thwonk-Loop: list@example.org\r\n.\r\n";
    let reply = send_body(&mut c, &["list@example.org"], body.as_bytes()).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
}

#[tokio::test]
async fn the_server_survives_garbage_and_keeps_serving() {
    let server: TestServer = start(config()).await;
    let mut c = server.connect().await;
    c.expect("220").await;
    c.send_bytes(b"\x00\xff\xfe\r\n\x16\x03\x01\x02\x00\x01\x00\r\n")
        .await;
    c.expect("500 5.5.1").await;
    c.expect("500 5.5.1").await;
    let mut d = server.hello().await;
    d.cmd("NOOP", "250").await;
}
