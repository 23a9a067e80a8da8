//! Mode relay against a real SMTP listener: what reaches the wire, and how the relay's answers
//! are classified.

mod support;

use std::time::{Duration, Instant};
use support::plan::{planned, statuses};
use thwonk_egress::relay::RelayTransport;
use thwonk_egress::{Class, DeliveryReport, Failure, Outgoing, Transport, classify};
use thwonk_store::RowOutcome;
use thwonk_testkit::scripted::{Behaviour, Sink};

const TIMEOUT: Duration = Duration::from_secs(5);

fn relay(sink_addr: &str, timeout: Duration) -> RelayTransport {
    RelayTransport::new(sink_addr, "egress.test", timeout).unwrap()
}

async fn send(t: &RelayTransport, raw: &[u8], rcpt: &[String]) -> DeliveryReport {
    t.deliver(&Outgoing {
        id: "o1",
        mail_from: "list@example.org",
        rcpt_to: rcpt,
        raw,
    })
    .await
}

fn rcpts() -> Vec<String> {
    vec!["a@example.com".into(), "b@example.net".into()]
}

fn only_failure(report: &DeliveryReport) -> &Failure {
    assert_eq!(report.destinations.len(), 1, "{report:?}");
    report.destinations[0].result.as_ref().unwrap_err()
}

#[tokio::test]
async fn delivered_mail_reaches_the_relay_with_its_envelope_and_crlf_line_ends() {
    let sink = Sink::start(Behaviour::default()).await;
    let t = relay(&sink.relay(), TIMEOUT);
    let raw = b"From: list@example.org\nSubject: hi\n\nline one\n.dot line\nend\n";
    let report = send(&t, raw, &rcpts()).await;
    assert_eq!(
        planned(&rcpts(), &report).outcome,
        RowOutcome::Sent,
        "{report:?}"
    );
    assert!(
        report.destinations[0]
            .result
            .as_ref()
            .unwrap()
            .starts_with("250")
    );

    let got = sink.transactions();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "list@example.org");
    assert_eq!(got[0].rcpt_to, rcpts());
    // Bare LF became CRLF and the leading dot was stuffed on the wire.
    assert_eq!(
        got[0].data,
        b"From: list@example.org\r\nSubject: hi\r\n\r\nline one\r\n..dot line\r\nend\r\n"
    );

    // The same transport delivers the next message.
    let report = send(&t, b"Subject: two\r\n\r\nx\r\n", &rcpts()).await;
    assert_eq!(planned(&rcpts(), &report).outcome, RowOutcome::Sent);
    assert_eq!(sink.transactions().len(), 2);
}

#[tokio::test]
async fn a_451_to_rcpt_is_transient_and_retried() {
    let sink = Sink::start(Behaviour {
        rcpt: 451,
        ..Behaviour::default()
    })
    .await;
    let report = send(
        &relay(&sink.relay(), TIMEOUT),
        b"Subject: x\r\n\r\nx\r\n",
        &rcpts(),
    )
    .await;
    let f = only_failure(&report);
    assert!(
        matches!(f, Failure::Reply { code: 451, message } if message.contains("try again later")),
        "{f:?}"
    );
    assert_eq!(classify(f), Class::Transient);
    let plan = planned(&rcpts(), &report);
    assert!(
        matches!(&plan.outcome, RowOutcome::Retry { error, .. } if error.contains("451")),
        "{plan:?}"
    );
    assert_eq!(plan.delay, Some(Duration::from_secs(30)));
    assert!(sink.transactions().is_empty());
}

#[tokio::test]
async fn a_550_to_data_is_permanent_and_keeps_the_remote_reply() {
    let sink = Sink::start(Behaviour {
        data: 550,
        ..Behaviour::default()
    })
    .await;
    let report = send(
        &relay(&sink.relay(), TIMEOUT),
        b"Subject: x\r\n\r\nx\r\n",
        &rcpts(),
    )
    .await;
    let f = only_failure(&report);
    assert!(matches!(f, Failure::Reply { code: 550, .. }), "{f:?}");
    assert_eq!(classify(f), Class::Permanent);
    let RowOutcome::Failed { error } = planned(&rcpts(), &report).outcome else {
        panic!("a 5xx must not be retried");
    };
    assert!(
        error.contains("550") && error.contains("no such user"),
        "{error}"
    );
}

#[tokio::test]
async fn a_550_to_rcpt_is_permanent() {
    let sink = Sink::start(Behaviour {
        rcpt: 550,
        ..Behaviour::default()
    })
    .await;
    let report = send(
        &relay(&sink.relay(), TIMEOUT),
        b"Subject: x\r\n\r\nx\r\n",
        &rcpts(),
    )
    .await;
    assert!(
        matches!(
            planned(&rcpts(), &report).outcome,
            RowOutcome::Failed { .. }
        ),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_relay_that_never_answers_times_out_as_transient() {
    let sink = Sink::start(Behaviour {
        silent: true,
        ..Behaviour::default()
    })
    .await;
    let timeout = Duration::from_millis(400);
    let started = Instant::now();
    let report = send(
        &relay(&sink.relay(), timeout),
        b"Subject: x\r\n\r\nx\r\n",
        &rcpts(),
    )
    .await;
    let elapsed = started.elapsed();
    let f = only_failure(&report);
    assert_eq!(f, &Failure::Timeout { ms: 400 });
    assert_eq!(classify(f), Class::Transient);
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[tokio::test]
async fn a_delivery_cut_off_mid_data_does_not_spoil_the_next_one() {
    let sink = Sink::start(Behaviour {
        stall_first_data: true,
        ..Behaviour::default()
    })
    .await;
    let t = relay(&sink.relay(), Duration::from_millis(400));
    let first = send(&t, b"Subject: one\r\n\r\nx\r\n", &rcpts()).await;
    assert_eq!(only_failure(&first), &Failure::Timeout { ms: 400 });
    // Give lettre time to park the abandoned connection, if it were going to.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = send(&t, b"Subject: two\r\n\r\ny\r\n", &rcpts()).await;
    assert_eq!(
        planned(&rcpts(), &second).outcome,
        RowOutcome::Sent,
        "{second:?}"
    );
    let got = sink.transactions();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"Subject: two\r\n\r\ny\r\n");
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // Bind and drop a listener to find a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let report = send(
        &relay(&format!("127.0.0.1:{port}"), TIMEOUT),
        b"Subject: x\r\n\r\nx\r\n",
        &rcpts(),
    )
    .await;
    let f = only_failure(&report);
    assert!(matches!(f, Failure::Network(_)), "{f:?}");
    assert!(matches!(
        planned(&rcpts(), &report).outcome,
        RowOutcome::Retry { .. }
    ));
}

#[tokio::test]
async fn an_unparseable_recipient_fails_alone() {
    let sink = Sink::start(Behaviour::default()).await;
    let rcpt = vec!["ok@example.com".to_string(), "not an address".to_string()];
    let report = send(
        &relay(&sink.relay(), TIMEOUT),
        b"Subject: x\r\n\r\nx\r\n",
        &rcpt,
    )
    .await;
    assert_eq!(report.destinations.len(), 2);
    let plan = planned(&rcpt, &report);
    assert_eq!(
        statuses(&plan),
        [("ok@example.com", "sent"), ("not an address", "failed")]
    );
    assert!(
        matches!(plan.outcome, RowOutcome::Failed { .. }),
        "{plan:?}"
    );
    assert_eq!(sink.transactions()[0].rcpt_to, vec!["ok@example.com"]);
}

#[tokio::test]
async fn a_refused_rcpt_fails_that_recipient_only() {
    let sink = Sink::start(Behaviour {
        refuse_rcpt: Some("bad@example.com"),
        ..Behaviour::default()
    })
    .await;
    let rcpt = vec![
        "a@example.com".to_string(),
        "bad@example.com".to_string(),
        "b@example.net".to_string(),
    ];
    let report = send(
        &relay(&sink.relay(), TIMEOUT),
        b"Subject: x\r\n\r\nx\r\n",
        &rcpt,
    )
    .await;
    assert_eq!(report.destinations.len(), 2, "{report:?}");
    let ok = &report.destinations[0];
    assert_eq!(ok.recipients, ["a@example.com", "b@example.net"]);
    assert!(ok.result.as_ref().unwrap().starts_with("250"), "{ok:?}");
    let refused = &report.destinations[1];
    assert_eq!(refused.recipients, ["bad@example.com"]);
    // The server's own words, without lettre's "permanent error (550): " in front.
    assert_eq!(
        refused.result,
        Err(Failure::Reply {
            code: 550,
            message: "5.1.1 no such user".into()
        })
    );
    let got = sink.transactions();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, ["a@example.com", "b@example.net"]);
}
