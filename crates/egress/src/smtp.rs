//! What the two SMTP modes share: building lettre envelopes, reading lettre's errors as
//! [`Failure`]s, and one bounded SMTP session to one server address (modes mx and relay).

use crate::policy::Failure;
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use std::net::SocketAddr;
use std::time::Duration;

/// A lettre envelope for `mail_from` (empty: the null sender) and the recipients lettre can
/// parse; the others come back as [`Failure::BadAddress`], so that one bad address does not
/// stop the rest.
pub fn envelope(mail_from: &str, rcpt_to: &[String]) -> (Option<Envelope>, Vec<(String, Failure)>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for r in rcpt_to {
        match r.parse::<Address>() {
            Ok(a) => good.push(a),
            Err(_) => bad.push((r.clone(), Failure::BadAddress(r.clone()))),
        }
    }
    let from = if mail_from.is_empty() {
        None
    } else {
        match mail_from.parse::<Address>() {
            Ok(a) => Some(a),
            Err(_) => {
                // The sender is ours (the thwonk's address): a bad one fails every recipient.
                let all = rcpt_to
                    .iter()
                    .map(|r| (r.clone(), Failure::BadAddress(mail_from.to_string())))
                    .collect();
                return (None, all);
            }
        }
    };
    if good.is_empty() {
        return (None, bad);
    }
    match Envelope::new(from, good) {
        Ok(e) => (Some(e), bad),
        Err(e) => {
            let all = rcpt_to
                .iter()
                .map(|r| (r.clone(), Failure::Refused(e.to_string())))
                .collect();
            (None, all)
        }
    }
}

/// Read a lettre SMTP error: a reply code when the server gave one, else what broke.
pub fn failure_from_lettre(e: &lettre::transport::smtp::Error) -> Failure {
    if let Some(code) = e.status() {
        Failure::Reply {
            code: u16::from(code),
            message: e.to_string(),
        }
    } else if e.is_client() {
        Failure::Refused(e.to_string())
    } else {
        // Connection, network, unparseable reply, transport shut down: the path to the
        // server, not the message, is at fault (a connect timeout lands here too).
        Failure::Network(e.to_string())
    }
}

/// A final reply as text for the report: `250 2.0.0 Ok: queued as ...`.
pub fn reply_text(r: &Response) -> String {
    let message: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), message.join(" "))
}

/// The bytes to hand lettre for a CRLF-normalised message. lettre ends DATA with
/// `CRLF . CRLF` whether or not the message already ends with a line end; without its own
/// final CRLF the message arrives byte for byte instead of with an extra empty line.
pub fn for_lettre(raw: &[u8]) -> &[u8] {
    raw.strip_suffix(b"\r\n").unwrap_or(raw)
}

/// A timeout as a failure.
pub fn timed_out(timeout: Duration) -> Failure {
    Failure::Timeout {
        ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

/// One SMTP session to one server address: connect, EHLO, MAIL, RCPT, DATA, QUIT; the whole
/// session within `timeout` (lettre's own timeout covers only the connect).
pub async fn session(
    addr: SocketAddr,
    hello: &ClientId,
    envelope: &Envelope,
    raw: &[u8],
    timeout: Duration,
) -> Result<String, Failure> {
    let attempt = async {
        // Our own socket, for TCP_NODELAY: lettre writes the body and the final "." in two
        // writes and waits for the reply, so with Nagle on, the "." waits for the body's ACK,
        // which the server delays (~40 ms on Linux) — every delivery paid that stall.
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| Failure::Network(format!("connect to {addr}: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| Failure::Network(format!("TCP_NODELAY on {addr}: {e}")))?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), hello)
            .await
            .map_err(|e| failure_from_lettre(&e))?;
        let sent = conn.send(envelope, for_lettre(raw)).await;
        match sent {
            Ok(reply) => {
                // The message is accepted at the final reply to DATA; a failed QUIT changes
                // nothing.
                let _ = conn.quit().await;
                Ok(reply_text(&reply))
            }
            Err(e) => {
                conn.abort().await;
                Err(failure_from_lettre(&e))
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_recipients_are_split_off() {
        let (env, bad) = envelope(
            "list@example.org",
            &["a@example.com".into(), "not an address".into()],
        );
        let env = env.unwrap();
        assert_eq!(env.to().len(), 1);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "not an address");
    }

    #[test]
    fn the_null_sender_is_allowed() {
        let (env, bad) = envelope("", &["a@example.com".into()]);
        assert!(env.unwrap().from().is_none());
        assert!(bad.is_empty());
    }
}
