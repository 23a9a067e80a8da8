//! What the two SMTP modes share: building lettre envelopes, reading lettre's errors as
//! [`Failure`]s, and one bounded SMTP session to one server with a result per recipient.

use crate::failure::Failure;
use crate::transport::Destination;
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
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
        // lettre writes "permanent error (550): {the server's text}"; keep the server's text.
        let text = e.to_string();
        let message = match text.split_once("): ") {
            Some((head, rest)) if head.ends_with(&format!("({code}")) => rest.to_string(),
            _ => text,
        };
        Failure::Reply {
            code: u16::from(code),
            message,
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

/// The result of one recipient.
pub type RecipientResult = (String, Result<String, Failure>);

/// One SMTP session to one server: connect, EHLO, MAIL, one RCPT per recipient, DATA, QUIT;
/// the whole session within `timeout` (lettre's own timeout covers only the connect).
///
/// Driven command by command on lettre's connection (not `send`, which ends the transaction at
/// the first refused RCPT), so each recipient gets its own result: a refused RCPT fails that
/// recipient only, and the others get the reply to DATA. Results come back in the order of
/// `rcpts`, merged per equal result (see [`merge`]).
pub async fn session<A>(
    server: A,
    hello: &ClientId,
    from: Option<&Address>,
    rcpts: &[Address],
    raw: &[u8],
    timeout: Duration,
) -> Vec<RecipientResult>
where
    A: tokio::net::ToSocketAddrs + Send,
{
    // Filled in as the session goes, so that a timeout keeps what is already known.
    let mut results: Vec<Option<Result<String, Failure>>> = vec![None; rcpts.len()];
    let attempt = transaction(server, hello, from, rcpts, raw, timeout, &mut results);
    let cut_off = tokio::time::timeout(timeout, attempt).await.is_err();
    rcpts
        .iter()
        .zip(results)
        .map(|(rcpt, result)| {
            let result = result.unwrap_or_else(|| {
                Err(if cut_off {
                    timed_out(timeout)
                } else {
                    Failure::Network("the session ended without an answer".into())
                })
            });
            (rcpt.to_string(), result)
        })
        .collect()
}

async fn transaction<A>(
    server: A,
    hello: &ClientId,
    from: Option<&Address>,
    rcpts: &[Address],
    raw: &[u8],
    timeout: Duration,
    results: &mut [Option<Result<String, Failure>>],
) where
    A: tokio::net::ToSocketAddrs + Send,
{
    let fail_all = |results: &mut [Option<Result<String, Failure>>], f: &Failure| {
        for r in results.iter_mut().filter(|r| r.is_none()) {
            *r = Some(Err(f.clone()));
        }
    };
    // Our own socket, for TCP_NODELAY: lettre writes the body and the final "." in two writes
    // and waits for the reply, so with Nagle on, the "." waits for the body's ACK, which the
    // server delays (~40 ms on Linux): every delivery paid that stall (thwonk bench: 83 → 531
    // delivered/s).
    let tcp = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(server)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return fail_all(results, &Failure::Network(format!("connect: {e}"))),
        Err(_) => return fail_all(results, &Failure::Network("connect timed out".into())),
    };
    if let Err(e) = tcp.set_nodelay(true) {
        return fail_all(results, &Failure::Network(format!("TCP_NODELAY: {e}")));
    }
    let mut conn = match AsyncSmtpConnection::connect_with_transport(Box::new(tcp), hello).await {
        Ok(c) => c,
        Err(e) => return fail_all(results, &failure_from_lettre(&e)),
    };
    let mut options = Vec::new();
    let info = conn.server_info();
    if rcpts
        .iter()
        .chain(from)
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii())
    {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            conn.abort().await;
            return fail_all(
                results,
                &Failure::Refused(
                    "an address is not ASCII and the server does not support SMTPUTF8".into(),
                ),
            );
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !raw.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            conn.abort().await;
            return fail_all(
                results,
                &Failure::Refused(
                    "the message is not ASCII and the server does not support 8BITMIME".into(),
                ),
            );
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    if let Err(e) = conn.command(Mail::new(from.cloned(), options)).await {
        conn.abort().await;
        return fail_all(results, &failure_from_lettre(&e));
    }
    let mut accepted = Vec::new();
    for (i, rcpt) in rcpts.iter().enumerate() {
        match conn.command(Rcpt::new(rcpt.clone(), Vec::new())).await {
            Ok(_) => accepted.push(i),
            Err(e) if e.status().is_some() => results[i] = Some(Err(failure_from_lettre(&e))),
            Err(e) => {
                // The connection broke: nobody gets the message from this session.
                conn.abort().await;
                return fail_all(results, &failure_from_lettre(&e));
            }
        }
    }
    if accepted.is_empty() {
        let _ = conn.quit().await;
        return;
    }
    let sent = match conn.command(Data).await {
        Ok(_) => conn.message(for_lettre(raw)).await,
        Err(e) => Err(e),
    };
    let outcome = sent.as_ref().map(reply_text).map_err(failure_from_lettre);
    for i in accepted {
        results[i] = Some(outcome.clone());
    }
    match sent {
        // The message is accepted at the final reply to DATA; a failed QUIT changes nothing.
        Ok(_) => {
            let _ = conn.quit().await;
        }
        Err(_) => conn.abort().await,
    }
}

/// Per-recipient results as destinations of `name`: recipients with equal results share one
/// destination, in first-seen order.
pub fn merge(name: &str, results: Vec<RecipientResult>) -> Vec<Destination> {
    let mut out: Vec<Destination> = Vec::new();
    for (rcpt, result) in results {
        match out.iter_mut().find(|d| d.result == result) {
            Some(d) => d.recipients.push(rcpt),
            None => out.push(Destination {
                name: name.to_string(),
                recipients: vec![rcpt],
                result,
            }),
        }
    }
    out
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
    fn equal_results_share_a_destination_in_first_seen_order() {
        let refused = Failure::Reply {
            code: 550,
            message: "no".into(),
        };
        let got = merge(
            "relay:25",
            vec![
                ("a@x".into(), Ok("250 ok".into())),
                ("b@x".into(), Err(refused.clone())),
                ("c@x".into(), Ok("250 ok".into())),
                ("d@x".into(), Err(Failure::Timeout { ms: 5 })),
            ],
        );
        let shape: Vec<(Vec<String>, bool)> = got
            .iter()
            .map(|d| (d.recipients.clone(), d.result.is_ok()))
            .collect();
        assert_eq!(
            shape,
            [
                (vec!["a@x".to_string(), "c@x".to_string()], true),
                (vec!["b@x".to_string()], false),
                (vec!["d@x".to_string()], false),
            ]
        );
        assert_eq!(got[1].result, Err(refused));
        assert!(got.iter().all(|d| d.name == "relay:25"));
    }

    #[test]
    fn the_null_sender_is_allowed() {
        let (env, bad) = envelope("", &["a@example.com".into()]);
        assert!(env.unwrap().from().is_none());
        assert!(bad.is_empty());
    }
}
