//! Mode mx through real SMTP sessions, with address-literal domains so no DNS is needed:
//! recipients are grouped per domain and each domain gets its own result.

mod support;

use std::time::Duration;
use support::plan::{planned, statuses};
use thwonk_egress::mx::{MxPolicy, MxTransport};
use thwonk_egress::{Outgoing, Transport};
use thwonk_store::RowOutcome;
use thwonk_testkit::scripted::{Behaviour, Sink};

fn transport(port: u16) -> MxTransport {
    MxTransport::new("egress.test", Duration::from_secs(5), MxPolicy::default())
        .expect("system resolver configuration")
        .with_port(port)
}

#[tokio::test]
async fn each_domain_gets_its_own_transaction_and_result() {
    let good = Sink::start(Behaviour::default()).await;
    let port = good.addr.port();
    let Ok(bad) = tokio::net::TcpListener::bind(("127.0.0.2", port)).await else {
        eprintln!("127.0.0.2:{port} not available; skipping");
        return;
    };
    drop(bad);
    let deferring = Sink::start_on(
        format!("127.0.0.2:{port}").parse().unwrap(),
        Behaviour {
            rcpt: 451,
            ..Behaviour::default()
        },
    )
    .await;

    let rcpt = vec![
        "a@[127.0.0.1]".to_string(),
        "b@[127.0.0.2]".to_string(),
        "c@[127.0.0.1]".to_string(),
    ];
    let report = transport(port)
        .deliver(&Outgoing {
            id: "o1",
            mail_from: "list@example.org",
            rcpt_to: &rcpt,
            raw: b"Subject: hi\n\nbody\n",
        })
        .await;

    assert_eq!(report.destinations.len(), 2, "{report:?}");
    let got = good.transactions();
    assert_eq!(
        got.len(),
        1,
        "one transaction for the two recipients of the domain"
    );
    assert_eq!(got[0].rcpt_to, vec!["a@[127.0.0.1]", "c@[127.0.0.1]"]);
    assert_eq!(got[0].data, b"Subject: hi\r\n\r\nbody\r\n");
    assert!(deferring.transactions().is_empty());
    let plan = planned(&rcpt, &report);
    // [127.0.0.1] took its two recipients; [127.0.0.2]'s 451 is retried.
    assert_eq!(
        statuses(&plan),
        [
            ("a@[127.0.0.1]", "sent"),
            ("b@[127.0.0.2]", "queued"),
            ("c@[127.0.0.1]", "sent")
        ]
    );
    let RowOutcome::Retry { error: text, .. } = &plan.outcome else {
        panic!("{plan:?}");
    };
    assert!(
        text.contains("[127.0.0.2]") && text.contains("451"),
        "{text}"
    );
}
