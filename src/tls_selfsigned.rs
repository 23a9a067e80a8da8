//! `thwonk tls-selfsigned`: a self-signed certificate and key for STARTTLS in development.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use thwonk_core::Config;

/// Write `cert.pem` and `key.pem` (mode 0600) into `out` for `hosts` (default: the
/// configured `smtp.hostname`), and print the `[smtp]` lines that use them.
pub fn run(config: &Config, out: &Path, hosts: Vec<String>) -> Result<()> {
    let hosts = if hosts.is_empty() {
        vec![config.smtp.hostname.clone()]
    } else {
        hosts
    };
    let pair = thwonk_ingress::self_signed(&hosts)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let cert = out.join("cert.pem");
    let key = out.join("key.pem");
    std::fs::write(&cert, &pair.cert_pem)
        .with_context(|| format!("cannot write {}", cert.display()))?;
    write_private(&key, pair.key_pem.as_bytes())
        .with_context(|| format!("cannot write {}", key.display()))?;
    println!("# Self-signed, for development only: clients must be told to trust it.");
    println!("# Valid for: {}", hosts.join(", "));
    println!("[smtp]");
    println!("tls_cert = {:?}", cert.display().to_string());
    println!("tls_key = {:?}", key.display().to_string());
    Ok(())
}

/// Create (or truncate) `path` readable by its owner only, then write `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)
}
