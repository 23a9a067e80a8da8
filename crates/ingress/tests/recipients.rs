//! RCPT TO answered by the daemon's own sink over a real database: a disabled thwonk is a
//! temporary refusal (the sender keeps the mail), and a domain that is not ours is a relay
//! attempt (550 5.7.1), with `smtp.domains` set or not.

use std::net::SocketAddr;
use std::sync::Arc;
use thwonk_core::status::ThwonkStatus;
use thwonk_core::{Address, Config};
use thwonk_ingress::StoreSink;
use thwonk_store::Store;
use thwonk_testkit::SmtpClient;
use thwonk_thoonk::{INBOUND, JobQueue, PrivateRedis, Redis};
use tokio_util::sync::CancellationToken;

struct Server {
    addr: SocketAddr,
    store: Store,
    redis: Option<PrivateRedis>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(domains: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let redis = PrivateRedis::start(
            "redis-server",
            &dir.path().join("redis"),
            &dir.path().join("r.sock"),
        )
        .await
        .unwrap();
        let queue = JobQueue::new(&Redis::connect(&redis.url()).await.unwrap(), INBOUND);
        let db = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&db, 2).await.unwrap();
        store.migrate().await.unwrap();
        let mut config = Config::default();
        config.smtp.hostname = "mx.test".into();
        config.smtp.domains = domains.iter().map(|d| d.to_string()).collect();
        let config = Arc::new(config);
        let sink = StoreSink::new(store.clone(), queue, config.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(thwonk_ingress::serve(
            listener,
            Arc::new(config.smtp.clone()),
            Arc::new(sink),
            shutdown.clone(),
        ));
        Server {
            addr,
            store,
            redis: Some(redis),
            shutdown,
            _dir: dir,
        }
    }

    async fn deploy(&self, address: &str) -> String {
        let address = Address::parse(address).unwrap();
        let deployed = self
            .store
            .deploy_script(&address, "export function onMessage() {}", None)
            .await
            .unwrap();
        deployed.thwonk.id
    }

    async fn transaction(&self) -> SmtpClient {
        let mut c = SmtpClient::connect(self.addr).await;
        c.expect("220").await;
        c.cmd("EHLO client.test", "250").await;
        c.cmd("MAIL FROM:<ann@example.net>", "250").await;
        c
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(r) = self.redis.take() {
            r.stop().await;
        }
    }
}

#[tokio::test]
async fn a_disabled_thwonk_gets_a_temporary_450_and_mail_again_once_enabled() {
    let server = Server::start(&["example.org"]).await;
    let id = server.deploy("list@example.org").await;
    server
        .store
        .set_thwonk_status(&id, ThwonkStatus::Disabled)
        .await
        .unwrap();
    let mut c = server.transaction().await;
    let reply = c.cmd("RCPT TO:<list@example.org>", "450 4.2.1").await;
    assert!(reply.contains("try again later"), "{reply}");
    // An address nobody has stays a permanent refusal.
    c.cmd("RCPT TO:<nobody@example.org>", "550 5.1.1").await;

    server
        .store
        .set_thwonk_status(&id, ThwonkStatus::Active)
        .await
        .unwrap();
    c.cmd("RCPT TO:<list@example.org>", "250 2.1.5").await;
    server.stop().await;
}

#[tokio::test]
async fn a_foreign_domain_is_relaying_denied_with_or_without_smtp_domains() {
    // `smtp.domains` set: any other domain is foreign.
    let server = Server::start(&["example.org"]).await;
    server.deploy("list@example.org").await;
    let mut c = server.transaction().await;
    c.cmd("RCPT TO:<list@elsewhere.test>", "550 5.7.1").await;
    c.cmd("RCPT TO:<nobody@example.org>", "550 5.1.1").await;
    server.stop().await;

    // No `smtp.domains`: the domains served are those with a thwonk.
    let server = Server::start(&[]).await;
    server.deploy("list@example.org").await;
    let mut c = server.transaction().await;
    c.cmd("RCPT TO:<list@elsewhere.test>", "550 5.7.1").await;
    // A LIKE wildcard in the domain matches nothing but itself.
    c.cmd("RCPT TO:<list@exampl_.org>", "550 5.7.1").await;
    c.cmd("RCPT TO:<nobody@example.org>", "550 5.1.1").await;
    c.cmd("RCPT TO:<list@example.org>", "250 2.1.5").await;
    server.stop().await;
}
