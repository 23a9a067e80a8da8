//! A minimal HTTP/1.1 client for the admin socket (the CLI) and for tests: one request per
//! connection (`Connection: close`), the answer read to the end, chunked bodies decoded.
//! [`EventStream`] follows a `text/event-stream` (Server-Sent Events) as a browser's
//! EventSource does. Not for the open network: no TLS, no redirects.

use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `{"error": {"message"}}` of a failure, or the body as text.
    pub fn error_message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// Send one request on `stream` and read the whole answer.
pub async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: thwonk\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse(&raw)
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// Parse a complete HTTP/1.1 response.
pub fn parse(raw: &[u8]) -> std::io::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers in the response"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("truncated chunk size"))?;
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .ok_or_else(|| bad("bad chunk size"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err(bad("truncated chunk"));
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Percent-encode a path segment (`keep_slash`: a file path keeps its `/`).
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The CLI's way to a running daemon.
#[derive(Debug, Clone)]
pub struct AdminClient {
    path: PathBuf,
}

impl AdminClient {
    /// A client when a daemon answers on the data directory's admin socket; `None` when
    /// there is no socket or nobody listens on it (then use the database directly).
    pub async fn connect(data_dir: &Path) -> Option<AdminClient> {
        let path = crate::admin_socket::socket_path(data_dir);
        UnixStream::connect(&path).await.ok()?;
        Some(AdminClient { path })
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<Response> {
        let stream = UnixStream::connect(&self.path).await?;
        send(stream, method, path, &[], body).await
    }

    /// [`AdminClient::request`] with headers (`Accept`, say).
    pub async fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let stream = UnixStream::connect(&self.path).await?;
        send(stream, method, path, headers, body).await
    }

    /// Follow an event stream (`.../feeds/{name}/events`).
    pub async fn events(&self, path: &str) -> std::io::Result<EventStream> {
        EventStream::open_unix(&self.path, path, None).await
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// A `text/event-stream` read over a plain socket, parsed as the EventSource spec says
/// (`event:`, `id:`, `data:` lines, `:` comments, a blank line ends an event), with the
/// HTTP/1.1 chunked framing removed.
pub struct EventStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    chunked: bool,
    /// Decoded bytes not yet parsed into lines.
    pending: Vec<u8>,
    /// Comments seen (keep-alives).
    pub comments: usize,
    /// The body, for a non-200 answer.
    pub body: Vec<u8>,
}

impl EventStream {
    pub async fn open(
        addr: std::net::SocketAddr,
        path: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> std::io::Result<EventStream> {
        let stream = TcpStream::connect(addr).await?;
        Self::start(stream, path, token, last_event_id).await
    }

    /// The same over a Unix socket (the admin socket: no token).
    pub async fn open_unix(
        socket: &Path,
        path: &str,
        last_event_id: Option<&str>,
    ) -> std::io::Result<EventStream> {
        let stream = UnixStream::connect(socket).await?;
        Self::start(stream, path, None, last_event_id).await
    }

    async fn start<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
        mut stream: S,
        path: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> std::io::Result<EventStream> {
        let mut head = format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(id) = last_event_id {
            head.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        let stream: Box<dyn AsyncRead + Send + Unpin> = Box::new(stream);
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).await?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let mut s = EventStream {
            status,
            headers,
            reader,
            chunked,
            pending: Vec::new(),
            comments: 0,
            body: Vec::new(),
        };
        if status != 200 {
            let len: usize = s
                .header("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            s.reader.read_exact(&mut body).await?;
            s.body = body;
        }
        Ok(s)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    async fn fill(&mut self) -> bool {
        if self.chunked {
            let mut size_line = String::new();
            if self.reader.read_line(&mut size_line).await.unwrap_or(0) == 0 {
                return false;
            }
            let Ok(size) = usize::from_str_radix(size_line.trim(), 16) else {
                return false;
            };
            if size == 0 {
                return false;
            }
            let mut chunk = vec![0; size + 2];
            if self.reader.read_exact(&mut chunk).await.is_err() {
                return false;
            }
            chunk.truncate(size);
            self.pending.extend_from_slice(&chunk);
        } else {
            let mut buf = [0u8; 4096];
            let n = self.reader.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return false;
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
        true
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next event (comments skipped and counted); `None` when the stream ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        let mut e = SseEvent {
            event: "message".into(),
            ..Default::default()
        };
        let mut data: Vec<String> = Vec::new();
        let mut any = false;
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                if any {
                    e.data = data.join("\n");
                    return Some(e);
                }
                continue;
            }
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            any = true;
            match field {
                "event" => e.event = value.to_string(),
                "id" => e.id = Some(value.to_string()),
                "data" => data.push(value.to_string()),
                _ => {}
            }
        }
    }

    /// The next event within `wait`.
    pub async fn next_within(&mut self, wait: std::time::Duration) -> Option<SseEvent> {
        tokio::time::timeout(wait, self.next()).await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_plain_and_chunked_bodies() {
        let r = parse(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"no"[..]));
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn encoding_keeps_addresses_readable_and_escapes_the_rest() {
        assert_eq!(encode("list@example.org", false), "list@example.org");
        assert_eq!(encode("a b/c", true), "a%20b/c");
        assert_eq!(encode("a/c", false), "a%2Fc");
    }
}
