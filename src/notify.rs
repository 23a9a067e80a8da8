//! systemd's readiness protocol (`Type=notify`, sd_notify(3)), without libsystemd.
//!
//! When systemd starts a unit with `Type=notify` it sets `NOTIFY_SOCKET` to a Unix datagram
//! socket (a path, or an abstract name written with a leading `@`). The service sends
//! `READY=1` once it serves, `STOPPING=1` when shutdown begins, and `STATUS=...` lines a user
//! sees in `systemctl status`. With no `NOTIFY_SOCKET` (a terminal, docker, a test) every call
//! here does nothing.
//!
//! systemd learns *that* the daemon is ready, not *where*: with ports chosen by the kernel
//! (`127.0.0.1:0`) a supervisor, a test or the load tool needs the addresses actually bound.
//! `--ready-file FILE` ([`Ready`]) gives them: once every role serves, the daemon writes a
//! small JSON object there, whole (a temporary file renamed into place, so a reader never
//! sees half of it), and removes it again when it stops:
//!
//! ```json
//! {"pid": 4242, "smtp": "127.0.0.1:40123", "http": "127.0.0.1:40124",
//!  "metrics": null, "admin_socket": "/var/lib/thwonk/admin.sock",
//!  "outgoing": "relayed to smtp.example.net:587"}
//! ```
//!
//! A listener this process does not run is `null`.

use serde::Serialize;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use tracing::warn;

/// The addresses one process serves on, for `--ready-file`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Ready {
    pub pid: u32,
    /// The SMTP ingress.
    pub smtp: Option<SocketAddr>,
    /// The HTTP API.
    pub http: Option<SocketAddr>,
    /// `/metrics` (when `metrics.listen` is set).
    pub metrics: Option<SocketAddr>,
    /// The admin socket (with the HTTP API).
    pub admin_socket: Option<PathBuf>,
    /// Where outgoing mail goes, in words (with the egress): "captured as .eml files in
    /// DIR (nothing is sent)", "relayed to HOST:PORT" or "delivered to each recipient
    /// domain's MX hosts".
    pub outgoing: Option<String>,
}

impl Ready {
    pub fn new() -> Ready {
        Ready {
            pid: std::process::id(),
            ..Ready::default()
        }
    }

    /// Write the JSON to `path` whole: to a temporary file beside it, then renamed.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    /// Remove a ready file (a stale one before start-up, ours when stopping); a missing file
    /// is fine.
    pub fn remove(path: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Tell the service manager `state` (newline-separated `KEY=VALUE` assignments). Failures are
/// logged, never fatal: a daemon that serves mail must not stop because systemd went away.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&path, state) {
        warn!(socket = ?path, error = %e, "cannot notify the service manager");
    }
}

fn send(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reaches_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1\nSTATUS=serving").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
    }

    #[test]
    fn a_state_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("thwonk-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        send(std::ffi::OsStr::new(&format!("@{name}")), "READY=1").unwrap();
        let mut buf = [0u8; 16];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn the_ready_file_names_what_is_served_and_null_for_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        let ready = Ready {
            smtp: Some("127.0.0.1:2525".parse().unwrap()),
            admin_socket: Some(dir.path().join("admin.sock")),
            ..Ready::new()
        };
        ready.write(&path).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["pid"], std::process::id());
        assert_eq!(v["smtp"], "127.0.0.1:2525");
        assert!(v["http"].is_null() && v["metrics"].is_null(), "{v}");
        assert_eq!(
            v["admin_socket"],
            dir.path().join("admin.sock").display().to_string()
        );
        assert!(
            !dir.path().join("ready.json.tmp").exists(),
            "renamed into place"
        );
        Ready::remove(&path).unwrap();
        Ready::remove(&path).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nobody-listens");
        assert!(send(missing.as_os_str(), "READY=1").is_err());
    }
}
