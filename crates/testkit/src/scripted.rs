//! A scripted SMTP server on 127.0.0.1:0 for the egress's failure cases. It records each
//! transaction's MAIL FROM, RCPT TO and DATA exactly as sent on the wire and answers RCPT and
//! DATA with the codes it is told to; in silent mode it accepts the connection and never says
//! a word (for timeout tests). Unlike the [`crate::relay`], it is no real SMTP server: it
//! exists to misbehave on purpose.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the sink answers.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// Reply to every RCPT TO.
    pub rcpt: u16,
    /// Reply after the message data (the end-of-data dot).
    pub data: u16,
    /// Accept connections and never answer.
    pub silent: bool,
    /// Take the first message's data and never answer it (later sessions behave).
    pub stall_first_data: bool,
    /// This recipient alone is answered 550 at RCPT.
    pub refuse_rcpt: Option<&'static str>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            rcpt: 250,
            data: 250,
            silent: false,
            stall_first_data: false,
            refuse_rcpt: None,
        }
    }
}

/// One transaction as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent on the wire, before un-dot-stuffing, without the final dot line.
    pub data: Vec<u8>,
}

pub struct Sink {
    pub addr: SocketAddr,
    pub transactions: Arc<Mutex<Vec<Transaction>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    pub async fn start(behaviour: Behaviour) -> Sink {
        Sink::start_on("127.0.0.1:0".parse().unwrap(), behaviour).await
    }

    /// On a given address (another loopback address with the same port, say).
    pub async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> Sink {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let transactions = Arc::new(Mutex::new(Vec::new()));
        let recorded = transactions.clone();
        let stalled = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let recorded = recorded.clone();
                let stalled = stalled.clone();
                tokio::spawn(async move {
                    if behaviour.silent {
                        // Hold the connection open without a greeting.
                        let _keep = socket;
                        std::future::pending::<()>().await;
                    } else {
                        let _ = session(socket, behaviour, recorded, stalled).await;
                    }
                });
            }
        });
        Sink {
            addr,
            transactions,
            task,
        }
    }

    pub fn relay(&self) -> String {
        self.addr.to_string()
    }

    pub fn transactions(&self) -> Vec<Transaction> {
        self.transactions.lock().unwrap().clone()
    }
}

fn reply(code: u16) -> String {
    let text = match code {
        250 => "2.0.0 OK",
        354 => "go ahead",
        451 => "4.7.1 try again later",
        550 => "5.1.1 no such user",
        554 => "5.7.1 rejected",
        _ => "whatever",
    };
    format!("{code} {text}\r\n")
}

async fn session(
    socket: tokio::net::TcpStream,
    behaviour: Behaviour,
    recorded: Arc<Mutex<Vec<Transaction>>>,
    stalled: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut current = Transaction::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = text.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
        } else if upper.starts_with("HELO") {
            write.write_all(b"250 sink\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            current = Transaction {
                mail_from: angle(&text),
                ..Transaction::default()
            };
            write.write_all(reply(250).as_bytes()).await?;
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = angle(&text);
            let code = if behaviour.refuse_rcpt == Some(rcpt.as_str()) {
                550
            } else {
                behaviour.rcpt
            };
            if code == 250 {
                current.rcpt_to.push(rcpt);
            }
            write.write_all(reply(code).as_bytes()).await?;
        } else if upper == "DATA" {
            write.write_all(reply(354).as_bytes()).await?;
            let mut data = Vec::new();
            loop {
                line.clear();
                if read.read_until(b'\n', &mut line).await? == 0 {
                    return Ok(());
                }
                if line == b".\r\n" {
                    break;
                }
                data.extend_from_slice(&line);
            }
            current.data = data;
            if behaviour.stall_first_data && !stalled.swap(true, Ordering::SeqCst) {
                // Keep the connection, read nothing more, answer nothing.
                std::future::pending::<()>().await;
            }
            if behaviour.data == 250 {
                recorded.lock().unwrap().push(std::mem::take(&mut current));
            }
            write.write_all(reply(behaviour.data).as_bytes()).await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // RSET, NOOP and anything else a client may send between transactions.
            write.write_all(reply(250).as_bytes()).await?;
        }
    }
}

/// The address between `<` and `>` of `MAIL FROM:<a@b> SIZE=1`.
fn angle(line: &str) -> String {
    match (line.find('<'), line.find('>')) {
        (Some(a), Some(b)) if a < b => line[a + 1..b].to_string(),
        _ => String::new(),
    }
}
