//! STARTTLS end to end: a real rustls client (trusting the generated self-signed
//! certificate) against the ingress over TCP.

mod support;

use std::sync::Arc;
use support::{Client, TestServer, config, start};
use thwonk_core::config::SmtpConfig;
use thwonk_testkit::SmtpClient;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A server with a fresh self-signed certificate for `localhost`; the certificate PEM.
async fn tls_server(require_tls: bool) -> (TestServer, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pair = thwonk_ingress::self_signed(&["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    let cfg = SmtpConfig {
        tls_cert: Some(cert),
        tls_key: Some(key),
        require_tls,
        ..config()
    };
    (start(cfg).await, pair.cert_pem, dir)
}

fn connector(cert_pem: &str) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// The kit's SMTP client, over TLS.
type TlsClient = SmtpClient<TlsStream<TcpStream>>;

/// EHLO and STARTTLS on a plain connection (with `behind` sent in the same write right after
/// STARTTLS), read the 220, and shake hands.
async fn upgrade(server: &TestServer, cert_pem: &str, behind: &str) -> TlsClient {
    let mut c = server.connect().await;
    let greeting = c.reply().await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    let ehlo = c.cmd("EHLO client.test", "250").await;
    assert!(ehlo.contains("250-STARTTLS\r\n") || ehlo.contains("250 STARTTLS\r\n"));
    c.send(&format!("STARTTLS\r\n{behind}")).await;
    let ready = c.reply().await;
    assert!(ready.starts_with("220 2.0.0 "), "{ready:?}");
    // Nothing of the handshake may have been read with the 220.
    let tcp = c.into_stream().expect("nothing after the 220");
    let tls = connector(cert_pem)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    SmtpClient::over(tls).reply_timeout(std::time::Duration::from_secs(10))
}

#[tokio::test]
async fn mail_goes_through_after_starttls_and_says_esmtps() {
    let (server, cert, _dir) = tls_server(false).await;
    let mut c = upgrade(&server, &cert, "").await;
    // The session starts over: EHLO first, and no STARTTLS offered again.
    c.cmd("MAIL FROM:<a@example.net>", "503 5.5.1").await;
    let ehlo = c.cmd("EHLO client.test", "250-mx.test").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.cmd("STARTTLS", "503 5.5.1").await;
    c.cmd("MAIL FROM:<a@example.net>", "250 2.1.0").await;
    c.cmd("RCPT TO:<list@example.org>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.send("Subject: secret\r\n\r\nover TLS\r\n.\r\n").await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    c.cmd("QUIT", "221").await;
    let (_, raw) = server.sink.single();
    assert!(raw.contains(" with ESMTPS id "), "{raw}");
}

#[tokio::test]
async fn commands_pipelined_behind_starttls_are_discarded() {
    // The STARTTLS command injection: plain-text commands sent behind STARTTLS must not be
    // run as if they came over TLS.
    let (server, cert, _dir) = tls_server(false).await;
    let mut c = upgrade(
        &server,
        &cert,
        "EHLO evil\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<list@example.org>\r\n",
    )
    .await;
    // Had the injected lines been kept, EHLO would be answered already and MAIL given.
    c.cmd("RCPT TO:<list@example.org>", "503 5.5.1").await;
    c.cmd("EHLO client.test", "250-mx.test").await;
    c.cmd("RCPT TO:<list@example.org>", "503 5.5.1").await;
    c.cmd("MAIL FROM:<a@example.net>", "250 2.1.0").await;
}

#[tokio::test]
async fn require_tls_refuses_mail_before_starttls_with_530_5_7_0() {
    let (server, cert, _dir) = tls_server(true).await;
    let mut plain = server.hello().await;
    plain.cmd("MAIL FROM:<a@example.net>", "530 5.7.0").await;
    let mut c = upgrade(&server, &cert, "").await;
    c.cmd("EHLO client.test", "250").await;
    c.cmd("MAIL FROM:<a@example.net>", "250 2.1.0").await;
}

#[tokio::test]
async fn starttls_is_refused_inside_a_transaction() {
    let (server, _cert, _dir) = tls_server(false).await;
    let mut c: Client = server.hello().await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    c.cmd("STARTTLS", "503 5.5.1").await;
}

#[tokio::test]
async fn a_bad_certificate_path_stops_the_server_with_a_clear_error() {
    let cfg = SmtpConfig {
        tls_cert: Some("/nonexistent/cert.pem".into()),
        tls_key: Some("/nonexistent/key.pem".into()),
        ..config()
    };
    let server = start(cfg).await;
    let err = server.task.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
}

#[tokio::test]
async fn a_client_that_stalls_or_babbles_after_starttls_is_dropped() {
    let (server, _cert, _dir) = {
        let dir = tempfile::tempdir().unwrap();
        let pair = thwonk_ingress::self_signed(&["localhost".to_string()]).unwrap();
        std::fs::write(dir.path().join("c.pem"), &pair.cert_pem).unwrap();
        std::fs::write(dir.path().join("k.pem"), &pair.key_pem).unwrap();
        let cfg = SmtpConfig {
            tls_cert: Some(dir.path().join("c.pem")),
            tls_key: Some(dir.path().join("k.pem")),
            idle_timeout: std::time::Duration::from_secs(1),
            ..config()
        };
        (start(cfg).await, pair.cert_pem, dir)
    };
    // Silent after 220: the handshake times out and the connection is closed.
    let mut silent = server.hello().await;
    silent.cmd("STARTTLS", "220 2.0.0").await;
    silent.expect_closed().await;
    // Plain text instead of a ClientHello: the handshake fails, the connection is closed.
    let mut babbler = server.hello().await;
    babbler.cmd("STARTTLS", "220 2.0.0").await;
    babbler.send("MAIL FROM:<a@example.net>\r\n").await;
    let rest = babbler.read_to_close().await;
    // At most a TLS alert record (content type 21), never an SMTP reply.
    assert!(rest.is_empty() || rest[0] == 0x15, "{rest:?}");
    // The server goes on.
    let mut c = server.hello().await;
    c.cmd("NOOP", "250").await;
}
