//! The SMTP ingress of a real `thwonk serve`: STARTTLS with a certificate made by
//! `thwonk tls-selfsigned`, and loop protection with the marker the daemon's own outgoing
//! mail carries.

mod support;

use std::time::Duration;
use support::Daemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_tls_selfsigned_certificate_and_lettre_as_the_client() {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let dir = tempfile::tempdir().unwrap();
    let mut env = support::env(dir.path(), "127.0.0.1:9".parse().unwrap(), None);
    let certs = dir.path().join("tls");
    let printed = env.ok(&[
        "tls-selfsigned",
        "--out",
        certs.to_str().unwrap(),
        "--host",
        "localhost",
    ]);
    assert!(printed.contains("tls_cert = "), "{printed}");
    let key = certs.join("key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is private: {mode:o}");
    }
    env.vars.push((
        "THWONK_SMTP_TLS_CERT".into(),
        certs.join("cert.pem").display().to_string(),
    ));
    env.vars
        .push(("THWONK_SMTP_TLS_KEY".into(), key.display().to_string()));
    env.vars
        .push(("THWONK_SMTP_REQUIRE_TLS".into(), "true".into()));
    let script = support::repo().join("sandbox-scripts/echo.js");
    env.deploy("echo@example.org", script.to_str().unwrap());
    let daemon = Daemon::start(&env).await;

    let message = || {
        Message::builder()
            .from("zoe@example.net".parse().unwrap())
            .to("echo@example.org".parse().unwrap())
            .subject("over tls")
            .body(String::from("secret"))
            .unwrap()
    };
    // Without TLS: refused (require_tls).
    let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(daemon.smtp.port())
        .build();
    let err = plain.send(message()).await.unwrap_err();
    assert!(err.to_string().contains("530"), "{err}");

    let pem = std::fs::read(certs.join("cert.pem")).unwrap();
    let tls = TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let secure = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(daemon.smtp.port())
        .tls(Tls::Required(tls))
        .build();
    let response = secure.send(message()).await.unwrap();
    assert_eq!(response.code().to_string(), "250");
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thwonks_own_reply_sent_back_to_it_is_refused_as_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = support::env(dir.path(), "127.0.0.1:9".parse().unwrap(), None);
    // Capture egress: the echo's reply is written to a file instead of sent.
    env.vars.retain(|(k, _)| !k.starts_with("THWONK_EGRESS_"));
    let script = support::repo().join("sandbox-scripts/echo.js");
    env.deploy("echo@example.org", script.to_str().unwrap());
    let daemon = Daemon::start(&env).await;
    support::send_mail(
        daemon.smtp,
        "zoe@example.net",
        "echo@example.org",
        "ping",
        "hello",
    )
    .await;

    let eml = support::captured_eml(dir.path(), Duration::from_secs(60)).await;
    let reply = std::fs::read(&eml).unwrap();
    assert!(
        reply.starts_with(b"X-Thwonk-Loop: echo@example.org\r\n"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    // The reply comes back to the echo (a misconfigured sender, say): 554 5.4.6, so the
    // echo does not answer its own answer.
    let mut c = support::SmtpClient::hello(daemon.smtp, "client.test")
        .await
        .unwrap();
    c.cmd("MAIL FROM:<echo@example.org>", "250").await;
    c.cmd("RCPT TO:<echo@example.org>", "250").await;
    c.cmd("DATA", "354").await;
    let err = c.data(&reply).await.unwrap();
    assert!(err.to_string().contains("5.4.6"), "{err}");
    daemon.stop(Duration::from_secs(20)).await;
}
