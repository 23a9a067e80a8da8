//! The SMTP protocol of the ingress, over real TCP sockets, against an in-memory sink.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{config, start};

#[tokio::test]
async fn ehlo_advertises_pipelining_size_8bitmime_smtputf8_and_enhanced_codes() {
    let server = start(config()).await;
    let mut c = server.client().await;
    let ehlo = c.cmd("EHLO client.test", "250-mx.test").await;
    for ext in [
        "PIPELINING",
        "SIZE 65536",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
    ] {
        assert!(
            ehlo.contains(&format!("250-{ext}\r\n")) || ehlo.contains(&format!("250 {ext}\r\n")),
            "{ext} missing: {ehlo}"
        );
    }
    assert!(ehlo.contains("SMTPUTF8"), "{ehlo}");
    assert!(
        !ehlo.contains("STARTTLS"),
        "no certificate configured: {ehlo}"
    );
    assert!(!ehlo.contains("CHUNKING"), "{ehlo}");
}

#[tokio::test]
async fn a_full_transaction_is_stored_with_a_received_header() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<alice@example.net>", "250 2.1.0").await;
    c.cmd("RCPT TO:<List@Example.ORG>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.send("Subject: hello\r\n\r\nHi there.\r\n.\r\n").await;
    c.expect("250 2.0.0 Ok: queued as msg-1\r\n").await;
    c.cmd("QUIT", "221 2.0.0").await;
    c.expect_closed().await;

    let (env, raw) = server.sink.single();
    assert_eq!(env.mail_from, "alice@example.net");
    assert_eq!(env.rcpt_to.len(), 1);
    assert_eq!(env.rcpt_to[0].as_str(), "list@example.org");
    assert_eq!(env.helo, "client.test");
    assert_eq!(env.client_ip.to_string(), "127.0.0.1");
    assert!(
        raw.starts_with(
            "Received: from client.test ([127.0.0.1])\r\n\tby mx.test (Thwonk) with ESMTP id "
        ),
        "{raw}"
    );
    let (received, message) = raw.split_once("\r\nSubject:").unwrap();
    assert!(
        received.contains("\r\n\tfor <list@example.org>; "),
        "{received}"
    );
    assert_eq!(message, " hello\r\n\r\nHi there.\r\n");
}

#[tokio::test]
async fn the_null_sender_is_accepted_for_bounces() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<>", "250 2.1.0").await;
    c.cmd("RCPT TO:<list@example.org>", "250").await;
    c.cmd("DATA", "354").await;
    c.send("Subject: Undeliverable\r\n\r\nbounce\r\n.\r\n")
        .await;
    c.expect("250 2.0.0").await;
    assert_eq!(server.sink.single().0.mail_from, "");
}

#[tokio::test]
async fn mail_from_parameters_and_quoted_local_parts_are_understood() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd(
        "MAIL FROM:<a@example.net> SIZE=1000 BODY=8BITMIME",
        "250 2.1.0",
    )
    .await;
    c.cmd("RSET", "250 2.0.0").await;
    c.cmd("MAIL FROM: <a@example.net>", "250 2.1.0").await;
    c.cmd("RSET", "250").await;
    c.cmd("MAIL FROM:<\"john doe\"@example.net>", "250 2.1.0")
        .await;
    c.cmd("RCPT TO:<list@example.org>", "250").await;
    c.cmd("DATA", "354").await;
    c.send("\r\nx\r\n.\r\n").await;
    c.expect("250").await;
    assert_eq!(server.sink.single().0.mail_from, "\"john doe\"@example.net");
    c.cmd("MAIL FROM:<a@example.net> BODY=BINARYMIME", "555 5.5.4")
        .await;
    c.cmd("MAIL FROM:<a@example.net> FROBNICATE=1", "555 5.5.4")
        .await;
}

#[tokio::test]
async fn a_declared_size_over_the_limit_is_refused_at_mail() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net> SIZE=65537", "552 5.3.4")
        .await;
    c.cmd("MAIL FROM:<a@example.net> SIZE=65536", "250").await;
}

#[tokio::test]
async fn an_oversized_message_gets_552_and_the_session_goes_on() {
    let mut cfg = config();
    cfg.max_message_size = 1024;
    let server = start(cfg).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<list@example.org>", "250").await;
    c.cmd("DATA", "354").await;
    let line = format!("{}\r\n", "x".repeat(98));
    for _ in 0..50 {
        c.send(&line).await;
    }
    c.send(".\r\n").await;
    c.expect("552 5.3.4").await;
    assert!(server.sink.deliveries().is_empty());

    // The transaction is over; a new one goes through.
    c.cmd("RCPT TO:<list@example.org>", "503 5.5.1").await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<list@example.org>", "250").await;
    c.cmd("DATA", "354").await;
    c.send("small\r\n.\r\n").await;
    c.expect("250 2.0.0").await;
    assert_eq!(server.sink.deliveries().len(), 1);
}

#[tokio::test]
async fn an_unknown_recipient_gets_550_5_1_1() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<nobody@example.org>", "550 5.1.1").await;
    c.cmd("RCPT TO:<postmaster>", "550 5.1.1").await;
    c.cmd("DATA", "554 5.5.1").await;
}

#[tokio::test]
async fn a_foreign_domain_gets_550_5_7_1_relaying_denied() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    let r = c.cmd("RCPT TO:<someone@elsewhere.net>", "550 5.7.1").await;
    assert!(r.contains("elaying"), "{r}");
}

#[tokio::test]
async fn bad_recipient_addresses_get_501_5_1_3() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<nobody>", "501 5.1.3").await;
    c.cmd("RCPT TO:<a b@example.org>", "501 5.1.3").await;
    c.cmd("RCPT TO:<\"a b\"@example.org>", "501 5.1.3").await;
    c.cmd("RCPT TO:<jörg@example.org>", "553 5.6.7").await;
}

#[tokio::test]
async fn a_recipient_lookup_failure_gets_451() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<tempfail@example.org>", "451 4.3.0").await;
}

#[tokio::test]
async fn pipelined_commands_get_their_replies_in_order() {
    let server = start(config()).await;
    let mut c = server.client().await;
    c.send(concat!(
        "EHLO client.test\r\n",
        "MAIL FROM:<a@example.net>\r\n",
        "RCPT TO:<list@example.org>\r\n",
        "RCPT TO:<nobody@example.org>\r\n",
        "RCPT TO:<other@example.org>\r\n",
        "DATA\r\n",
    ))
    .await;
    c.expect("250-mx.test").await;
    c.expect("250 2.1.0").await;
    c.expect("250 2.1.5").await;
    c.expect("550 5.1.1").await;
    c.expect("250 2.1.5").await;
    c.expect("354").await;
    c.send("Subject: p\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        .await;
    c.expect("250 2.0.0 Ok: queued").await;
    c.expect("250 2.0.0 Ok").await;
    c.expect("221").await;
    c.expect_closed().await;

    let (env, raw) = server.sink.single();
    let rcpts: Vec<&str> = env.rcpt_to.iter().map(|a| a.as_str()).collect();
    assert_eq!(rcpts, ["list@example.org", "other@example.org"]);
    assert!(
        !raw.contains("for <"),
        "several recipients are not disclosed: {raw}"
    );
    assert!(raw.ends_with("\r\nSubject: p\r\n\r\nbody\r\n"), "{raw}");
}

#[tokio::test]
async fn dot_stuffed_lines_arrive_unstuffed() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<list@example.org>", "250").await;
    c.cmd("DATA", "354").await;
    c.send("Subject: dots\r\n\r\n..x\r\n...\r\n.\r\n").await;
    c.expect("250").await;
    let (_, raw) = server.sink.single();
    assert!(raw.ends_with("\r\n\r\n.x\r\n..\r\n"), "{raw:?}");
}

#[tokio::test]
async fn a_bare_lf_client_ends_data_with_lf_dot_lf() {
    let server = start(config()).await;
    let mut c = server.client().await;
    c.send("HELO client.test\n").await;
    c.expect("250 mx.test").await;
    c.send("MAIL FROM:<a@example.net>\n").await;
    c.expect("250").await;
    c.send("RCPT TO:<list@example.org>\n").await;
    c.expect("250").await;
    c.send("DATA\n").await;
    c.expect("354").await;
    c.send("Subject: lf\n\n..hi\n.\n").await;
    c.expect("250 2.0.0").await;
    let (_, raw) = server.sink.single();
    assert!(raw.contains(" with SMTP id "), "HELO is plain SMTP: {raw}");
    assert!(
        raw.ends_with("\r\nSubject: lf\n\n.hi\n"),
        "stored as received: {raw:?}"
    );
}

#[tokio::test]
async fn lf_dot_lf_inside_a_crlf_message_is_content_not_a_second_message() {
    // SMTP smuggling: a forged transaction hidden behind a bare-LF terminator.
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<list@example.org>", "250").await;
    c.cmd("DATA", "354").await;
    c.send(concat!(
        "Subject: outer\r\n\r\nhi\n.\n",
        "MAIL FROM:<ceo@example.org>\r\nRCPT TO:<list@example.org>\r\nDATA\r\n",
        "Subject: forged\r\n\r\n.\r\n",
    ))
    .await;
    c.expect("250 2.0.0").await;
    c.cmd("NOOP", "250").await;
    let (_, raw) = server.sink.single();
    assert!(
        raw.contains("hi\n.\nMAIL FROM:<ceo@example.org>\r\n"),
        "{raw:?}"
    );
}

#[tokio::test]
async fn a_sink_failure_gets_451_and_nothing_is_kept() {
    let server = start(config()).await;
    server.sink.fail.store(true, Ordering::SeqCst);
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<list@example.org>", "250").await;
    c.cmd("DATA", "354").await;
    c.send("x\r\n.\r\n").await;
    c.expect("451 4.3.0").await;
    assert!(server.sink.deliveries().is_empty());
    // The session is still usable.
    c.cmd("NOOP", "250").await;
}

#[tokio::test]
async fn too_many_recipients_get_452() {
    let mut cfg = config();
    cfg.max_recipients = 1;
    let server = start(cfg).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<list@example.org>", "250").await;
    c.cmd("RCPT TO:<other@example.org>", "452 4.5.3").await;
    c.cmd("DATA", "354").await;
    c.send("x\r\n.\r\n").await;
    c.expect("250").await;
    assert_eq!(server.sink.single().0.rcpt_to.len(), 1);
}

#[tokio::test]
async fn an_overlong_command_line_gets_500_and_the_session_goes_on() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd(&format!("NOOP {}", "x".repeat(600)), "500 5.5.2")
        .await;
    // Much longer than the read buffer: still answered once, still bounded.
    c.cmd(&format!("NOOP {}", "x".repeat(200_000)), "500 5.5.2")
        .await;
    c.cmd("NOOP", "250 2.0.0").await;
}

#[tokio::test]
async fn an_idle_client_gets_421_and_is_disconnected() {
    let mut cfg = config();
    cfg.idle_timeout = std::time::Duration::from_secs(1);
    let server = start(cfg).await;
    let mut c = server.hello().await;
    let started = std::time::Instant::now();
    c.expect("421 4.4.2").await;
    c.expect_closed().await;
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn commands_out_of_sequence_get_503_and_unknown_ones_500() {
    let server = start(config()).await;
    let mut c = server.client().await;
    c.cmd("MAIL FROM:<a@example.net>", "503 5.5.1").await;
    c.cmd("HELO client.test", "250 mx.test").await;
    c.cmd("RCPT TO:<list@example.org>", "503 5.5.1").await;
    c.cmd("DATA", "503 5.5.1").await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("MAIL FROM:<a@example.net>", "503 5.5.1").await;
    c.cmd("DATA", "554 5.5.1").await;
    c.cmd("FROB", "500 5.5.1").await;
    c.cmd("MAIL TO:<a@example.net>", "501 5.5.4").await;
    c.cmd("STARTTLS", "502 5.5.1").await;
    c.cmd("VRFY list", "252").await;
    c.cmd("HELP", "214").await;
    c.cmd("NOOP", "250 2.0.0").await;
    c.cmd("RSET", "250 2.0.0").await;
    c.cmd("QUIT", "221 2.0.0").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn bdat_without_chunking_is_refused_and_its_chunk_skipped() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.send("BDAT 10 LAST\r\nQUIT\r\nxxxxNOOP\r\n").await;
    c.expect("502 5.5.1").await;
    c.expect("250 2.0.0").await;
}

#[tokio::test]
async fn a_client_that_keeps_erring_is_disconnected() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    for _ in 0..20 {
        c.cmd("FROB", "500").await;
    }
    c.expect("421 4.7.0").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn shutdown_answers_421_to_waiting_clients_and_stops_accepting() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    server.shutdown.cancel();
    c.expect("421 4.3.2").await;
    c.expect_closed().await;
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_lets_a_data_transfer_in_progress_finish() {
    let server = start(config()).await;
    let mut c = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("RCPT TO:<list@example.org>", "250").await;
    c.cmd("DATA", "354").await;
    c.send("Subject: late\r\n\r\n").await;
    server.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.send("body\r\n.\r\nNOOP\r\n").await;
    c.expect("250 2.0.0 Ok: queued").await;
    c.expect("421 4.3.2").await;
    assert_eq!(server.sink.deliveries().len(), 1);
}

#[tokio::test]
async fn lettre_can_send_through_the_ingress() {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let server = start(config()).await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .build();
    let message = Message::builder()
        .from("Alice <alice@example.net>".parse().unwrap())
        .to("list@example.org".parse().unwrap())
        .subject("from lettre")
        .body(String::from("Hello.\r\n.leading dot\r\n"))
        .unwrap();
    let response = transport.send(message).await.unwrap();
    assert_eq!(response.code().to_string(), "250");
    let (env, raw) = server.sink.single();
    assert_eq!(env.mail_from, "alice@example.net");
    assert!(raw.contains("Subject: from lettre\r\n"), "{raw}");
    assert!(raw.contains("\r\n.leading dot\r\n"), "{raw}");
}
