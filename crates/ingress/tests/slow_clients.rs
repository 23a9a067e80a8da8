//! Slow and abusive SMTP clients (issue 13 item 7), over real TCP sockets: slowloris
//! sessions trickling a body are cut off by the DATA deadline or the minimum rate with
//! `421 4.4.2`, and one network holds no more than its share of the sessions, so a normal
//! client from elsewhere is served throughout.
//!
//! Every 127.0.0.0/8 address is usable on Linux loopback: a client socket bound to
//! 127.0.0.2, 127.0.0.3... acts as distinct hosts of one /24, and 127.1.0.1 as a host of
//! another.

mod support;

use std::time::{Duration, Instant};
use support::{Client, TestServer, config, start};
use thwonk_testkit::SmtpClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client whose socket is bound to `from` (an address on loopback).
async fn connect_from(server: &TestServer, from: &str) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    SmtpClient::over(stream).reply_timeout(Duration::from_secs(20))
}

/// A client from `from` that has read the greeting (which must be 220) and said EHLO.
async fn hello_from(server: &TestServer, from: &str) -> Client {
    let mut c = connect_from(server, from).await;
    c.expect("220 ").await;
    c.cmd("EHLO client.test", "250").await;
    c
}

/// Take a session into DATA (354), then send one byte of body every `every` without ever
/// ending it. Returns what the server sent after the 354, up to its close, and how long
/// after the 354 the close came.
async fn slowloris(mut c: Client, every: Duration) -> (String, Duration) {
    c.cmd("MAIL FROM:<slow@example.net>", "250 2.1.0").await;
    c.cmd("RCPT TO:<list@example.org>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    let started = Instant::now();
    let stream = c.into_stream().unwrap();
    let (mut read, mut write) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let _ = read.read_to_end(&mut got).await;
        (
            String::from_utf8_lossy(&got).into_owned(),
            started.elapsed(),
        )
    });
    while !reader.is_finished() {
        // Errors once the server has closed: the reader has it all by then.
        if write.write_all(b"x").await.is_err() {
            break;
        }
        tokio::time::sleep(every).await;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "a slowloris session was never cut off"
        );
    }
    reader.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_sessions_are_cut_off_by_the_data_deadline_and_a_normal_client_is_served() {
    let mut cfg = config();
    cfg.max_sessions = 6;
    cfg.max_connections_per_network = 4;
    // Neither the idle timeout nor the rate can end a trickle of one byte a second: only
    // the deadline.
    cfg.idle_timeout = Duration::from_secs(30);
    cfg.data_min_bytes_per_sec = 0;
    cfg.data_timeout = Duration::from_secs(3);
    let server = start(cfg).await;

    // Eight hosts of one /24 attack: four get sessions, the others are told 421 at connect.
    let mut attackers = Vec::new();
    let mut refused = 0;
    for host in 2..10 {
        let mut c = connect_from(&server, &format!("127.0.0.{host}")).await;
        let greeting = c.reply().await;
        if greeting.starts_with("220 ") {
            c.cmd("EHLO slow.test", "250").await;
            attackers.push(tokio::spawn(slowloris(c, Duration::from_secs(1))));
        } else {
            assert!(
                greeting.starts_with("421 4.7.0 ") && greeting.contains("network"),
                "{greeting:?}"
            );
            c.expect_closed().await;
            refused += 1;
        }
    }
    assert_eq!((attackers.len(), refused), (4, 4));

    // Meanwhile a host of another network sends mail, again and again, until every
    // slowloris session has been cut off: every message is accepted.
    let mut normal = 0;
    let mut c = hello_from(&server, "127.1.0.1").await;
    while attackers.iter().any(|a| !a.is_finished()) {
        let reply = c
            .message(
                "a@example.net",
                "list@example.org",
                b"Subject: hi\r\n\r\nhello\r\n",
            )
            .await;
        assert!(reply.starts_with("250 2.0.0 "), "{reply:?}");
        normal += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // And a new session from there too.
    let mut fresh = hello_from(&server, "127.1.0.2").await;
    let reply = fresh
        .message(
            "b@example.net",
            "list@example.org",
            b"Subject: again\r\n\r\nhi\r\n",
        )
        .await;
    assert!(reply.starts_with("250 2.0.0 "), "{reply:?}");
    assert!(normal >= 2, "the normal client sent {normal} messages");

    for a in attackers {
        let (said, after) = a.await.unwrap();
        assert!(
            said.starts_with("421 4.4.2 ") && said.contains("longer than 3 s"),
            "{said:?}"
        );
        // Cut off at the deadline, not by the 30 s idle timeout.
        assert!(
            after >= Duration::from_secs(3) && after < Duration::from_secs(20),
            "closed {after:?} after DATA"
        );
    }
    // No slowloris body was taken for a message.
    let from_slow = server
        .sink
        .deliveries()
        .iter()
        .filter(|(e, _)| e.mail_from.starts_with("slow@"))
        .count();
    assert_eq!(from_slow, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_minimum_rate_is_cut_off_after_the_grace() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_secs(30);
    cfg.data_timeout = Duration::from_secs(120);
    cfg.data_min_bytes_per_sec = 100;
    cfg.data_rate_grace = Duration::from_secs(2);
    let server = start(cfg).await;

    let slow = hello_from(&server, "127.0.0.2").await;
    let (said, after) = slowloris(slow, Duration::from_millis(500)).await;
    assert!(
        said.starts_with("421 4.4.2 ") && said.contains("slower than 100 bytes/s"),
        "{said:?}"
    );
    // After the grace, long before the idle timeout or the deadline.
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(20),
        "closed {after:?} after DATA"
    );

    // A body sent at once is far above the rate, whatever its size.
    let mut c = hello_from(&server, "127.0.0.3").await;
    let body = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(60_000));
    let reply = c
        .message("a@example.net", "list@example.org", body.as_bytes())
        .await;
    assert!(reply.starts_with("250 2.0.0 "), "{reply:?}");
}

#[tokio::test]
async fn sessions_are_capped_per_ipv4_slash_24_and_places_are_given_back() {
    let mut cfg = config();
    cfg.max_connections_per_network = 2;
    let server = start(cfg).await;

    let first = hello_from(&server, "127.0.0.2").await;
    let _second = hello_from(&server, "127.0.0.3").await;
    // A third address of the same /24: refused at connect.
    let mut third = connect_from(&server, "127.0.0.4").await;
    let said = third.expect("421 4.7.0 ").await;
    assert!(said.contains("your network"), "{said:?}");
    third.expect_closed().await;
    // Another /24 is not affected.
    let _elsewhere = hello_from(&server, "127.1.0.1").await;
    let _elsewhere_too = hello_from(&server, "127.1.0.2").await;

    // A place is given back when a session of that /24 ends.
    first.quit().await;
    let start = Instant::now();
    loop {
        let mut c = connect_from(&server, "127.0.0.4").await;
        let greeting = c.reply().await;
        if greeting.starts_with("220 ") {
            break;
        }
        assert!(greeting.starts_with("421 4.7.0 "), "{greeting:?}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "place never given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
