//! The one configuration loader: one file per section, each struct with its defaults and its
//! checks side by side.
//!
//! Settings come from, in rising precedence: the defaults (documented key by key in
//! `config/thwonk.toml`), a TOML file, environment variables `THWONK_<SECTION>_<KEY>` (or
//! `THWONK_<KEY>` for top-level keys, e.g. `THWONK_DATA_DIR`), and finally command-line flags
//! applied by the binary. Values are parsed once, at load: listen addresses are
//! `SocketAddr`s, durations `Duration`s, unset texts `None`. A wrong setting is refused at
//! start with its key and the reason.
//!
//! - `mod.rs` (here): [`Config`], [`Config::load`], the checks that span sections, and the
//!   values derived from several settings (database and Redis URLs in effect).
//! - [`smtp`], [`database`], [`redis`], [`runner`], [`egress`], [`http`], [`limits`],
//!   [`budgets`], [`queues`], [`feeds`], [`schedules`], [`shutdown`], [`invoke`], [`public`], [`metrics`],
//!   [`log`]: one
//!   section each (`[smtp]` ...), its struct, `Default` and `validate`.
//! - `env`: the `THWONK_*` overrides, typed from the defaults; unknown variables refused.
//! - `de`: how typed values are spelt in the file (`lease_ms = 30000`, `url = ""`).
//!
//! Not for: reading settings anywhere else. Roles get a `Config` (or one section of it).

pub mod budgets;
pub mod database;
mod de;
pub mod egress;
mod env;
pub mod feeds;
pub mod http;
pub mod invoke;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod public;
pub mod queues;
pub mod redis;
pub mod runner;
pub mod schedules;
pub mod shutdown;
pub mod smtp;

pub use budgets::BudgetsConfig;
pub use database::DatabaseConfig;
pub use egress::{EgressConfig, EgressMode};
pub use feeds::FeedsConfig;
pub use http::HttpConfig;
pub use invoke::{InvokeConfig, MAX_INVOKE_BODY_DEPTH};
pub use log::{LogConfig, LogFormat};
pub use metrics::MetricsConfig;
pub use public::PublicConfig;
pub use queues::QueuesConfig;
pub use redis::RedisConfig;
pub use runner::RunnerConfig;
pub use schedules::SchedulesConfig;
pub use shutdown::{DEFAULT_SHUTDOWN_GRACE_MS, ShutdownConfig};
pub use smtp::SmtpConfig;

use crate::run::SandboxLimits;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every setting of a Thwonk process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite file, the private Redis socket and captured mail live.
    pub data_dir: PathBuf,
    pub smtp: SmtpConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub runner: RunnerConfig,
    pub egress: EgressConfig,
    pub http: HttpConfig,
    pub limits: SandboxLimits,
    pub budgets: BudgetsConfig,
    pub queues: QueuesConfig,
    pub feeds: FeedsConfig,
    pub schedules: SchedulesConfig,
    pub shutdown: ShutdownConfig,
    pub invoke: InvokeConfig,
    pub public: PublicConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            smtp: SmtpConfig::default(),
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            runner: RunnerConfig::default(),
            egress: EgressConfig::default(),
            http: HttpConfig::default(),
            limits: SandboxLimits::default(),
            budgets: BudgetsConfig::default(),
            queues: QueuesConfig::default(),
            feeds: FeedsConfig::default(),
            schedules: SchedulesConfig::default(),
            shutdown: ShutdownConfig::default(),
            invoke: InvokeConfig::default(),
            public: PublicConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// A refused configuration: where, which key, and why. Shown as `config: FILE line N: KEY:
/// REASON`, each part only when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, dotted (`smtp.listen`), or the file or variable that could not be read;
    /// empty for the top level of the file (an unknown section, say).
    pub key: String,
    pub reason: String,
    /// Where in the configuration file (`/etc/thwonk.toml line 3, column 1`), when the
    /// fault is in the file.
    pub location: Option<String>,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
            location: None,
        }
    }

    /// A fault at `span` (bytes) of the file `path` holding `text`.
    fn in_file(
        path: &Path,
        text: &str,
        span: Option<std::ops::Range<usize>>,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let location = match span {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                format!(
                    "{} line {}, column {}",
                    path.display(),
                    before.matches('\n').count() + 1,
                    before[line_start..].chars().count() + 1
                )
            }
            None => path.display().to_string(),
        };
        ConfigError {
            key: key.into(),
            reason: reason.into(),
            location: Some(location),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("config: ")?;
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// The dotted key of a serde path; empty for the top level.
fn dotted(path: &serde_path_to_error::Path) -> String {
    match path.to_string() {
        p if p == "." => String::new(),
        p => p,
    }
}

/// Refuse a count of 0 with "must be at least 1".
fn require_at_least_one(key: &str, v: u32) -> Result<(), ConfigError> {
    if v == 0 {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(())
}

/// Refuse a size or count of 0 with "must be greater than 0".
fn require_positive_count(key: &str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        return Err(ConfigError::new(key, "must be greater than 0"));
    }
    Ok(())
}

/// Refuse a zero duration with "must be greater than 0".
fn require_positive(key: &str, v: Duration) -> Result<(), ConfigError> {
    if v.is_zero() {
        return Err(ConfigError::new(key, "must be greater than 0"));
    }
    Ok(())
}

impl Config {
    /// Load: defaults, then `file` (if any), then the `THWONK_*` variables in `env`, then
    /// validate. `env` is passed in (normally `std::env::vars()`) so tests need not touch the
    /// process environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?;
                Some((path, text))
            }
            None => None,
        };
        let mut table = match &file {
            Some((path, text)) => text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::in_file(path, text, e.span(), "", e.message().trim()))?,
            None => toml::Table::new(),
        };
        env::apply_env(&mut table, env)?;
        // The path of a value that does not parse (`smtp.listen`) is its key in the error.
        let cfg: Config = match serde_path_to_error::deserialize(toml::Value::Table(table)) {
            Ok(cfg) => cfg,
            Err(e) => {
                let key = dotted(e.path());
                // A fault of the file is found again in the file's own text, whose parser
                // knows where each key is: the error names the file and the line.
                if let Some((path, text)) = &file
                    && let Ok(de) = toml::de::Deserializer::parse(text)
                    && let Err(fe) = serde_path_to_error::deserialize::<_, Config>(de)
                    && dotted(fe.path()) == key
                {
                    return Err(ConfigError::in_file(
                        path,
                        text,
                        fe.inner().span(),
                        key,
                        fe.inner().message().trim(),
                    ));
                }
                return Err(ConfigError::new(key, e.inner().message().trim()));
            }
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check every setting that parsing alone cannot: each section's own rules, then those
    /// that span sections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }
        self.invoke.validate()?;
        self.public.validate()?;
        if self.http.max_body_bytes < self.limits.file_max_bytes {
            return Err(ConfigError::new(
                "http.max_body_bytes",
                format!(
                    "must be at least limits.file_max_bytes ({}), or files that fit cannot be uploaded",
                    self.limits.file_max_bytes
                ),
            ));
        }
        self.http.validate()?;
        self.smtp.validate()?;
        self.database.validate()?;
        self.redis.validate()?;
        self.runner.validate()?;
        self.egress.validate()?;
        self.queues.validate()?;
        self.feeds.validate()?;
        self.schedules.validate()?;
        self.shutdown.validate()?;
        self.budgets.validate()?;
        limits::validate(&self.limits)
    }

    /// The database URL in effect (the SQLite file in the data directory by default).
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("thwonk.db").display()),
        }
    }

    /// The private Redis socket path (used when `redis.url` is not set), absolute: Redis URLs
    /// cannot carry a relative path, and the default data_dir is `./data`.
    pub fn private_redis_socket(&self) -> PathBuf {
        let socket = self.data_dir.join("redis.sock");
        std::path::absolute(&socket).unwrap_or(socket)
    }

    /// The Redis URL in effect: the configured one, or the private server's socket.
    pub fn redis_url(&self) -> String {
        match &self.redis.url {
            Some(url) => url.clone(),
            None => format!("unix://{}", self.private_redis_socket().display()),
        }
    }

    /// Where capture mode writes outgoing mail.
    pub fn captured_dir(&self) -> PathBuf {
        self.data_dir.join("captured")
    }

    /// Whether mail for `domain` is accepted at all (before looking for a thwonk).
    pub fn accepts_domain(&self, domain: &str) -> bool {
        self.smtp.accepts_domain(domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.egress.mode, EgressMode::Capture);
        assert_eq!(c.database_url(), "sqlite://./data/thwonk.db");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            c.redis_url(),
            format!("unix://{}", cwd.join("data/redis.sock").display()),
            "the socket path is absolute: a Redis URL cannot carry a relative one"
        );
    }

    #[test]
    fn the_documented_config_file_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/thwonk.toml");
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(
            c,
            Config::default(),
            "config/thwonk.toml must state the defaults"
        );
    }

    #[test]
    fn env_overrides_file_and_parses_types() {
        let dir = tempfile_dir();
        let f = dir.join("t.toml");
        std::fs::write(
            &f,
            "[smtp]\nlisten = \"127.0.0.1:1\"\nmax_message_size = 5000\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&f),
            env(&[
                ("THWONK_SMTP_LISTEN", "127.0.0.1:2626"),
                ("THWONK_SMTP_DOMAINS", "Example.org, lists.example.org"),
                ("THWONK_EGRESS_MODE", "relay"),
                ("THWONK_EGRESS_RELAY", "127.0.0.1:2500"),
                ("THWONK_EGRESS_RETRY_SCHEDULE_SECS", "1,2,3"),
                ("THWONK_DATA_DIR", "/tmp/x"),
                ("THWONK_LIMITS_INSTRUCTIONS", "1000"),
                ("THWONK_DATABASE_URL", "postgres://localhost/test"),
                ("THWONK_LOG", "debug"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.smtp.listen, "127.0.0.1:2626".parse().unwrap());
        assert_eq!(c.smtp.max_message_size, 5000);
        assert_eq!(c.smtp.domains, vec!["example.org", "lists.example.org"]);
        assert_eq!(c.egress.mode, EgressMode::Relay);
        assert_eq!(
            c.egress.retry_schedule_secs,
            [1, 2, 3].map(std::time::Duration::from_secs)
        );
        assert_eq!(
            c.egress.retry_schedule(),
            [1, 2, 3].map(std::time::Duration::from_secs)
        );
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.limits.instructions, 1000);
        assert_eq!(c.database_url(), "postgres://localhost/test");
    }

    #[test]
    fn a_retry_schedule_in_ms_wins_over_seconds() {
        let c = Config::load(
            None,
            env(&[
                ("THWONK_EGRESS_RETRY_SCHEDULE_MS", "250, 500"),
                ("THWONK_SHUTDOWN_GRACE_MS", "1500"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.egress.retry_schedule_ms,
            [250, 500].map(std::time::Duration::from_millis)
        );
        assert_eq!(
            c.egress.retry_schedule(),
            [250, 500].map(std::time::Duration::from_millis)
        );
        assert_eq!(c.shutdown.grace, std::time::Duration::from_millis(1500));
        let e = Config::load(None, env(&[("THWONK_SHUTDOWN_GRACE_MS", "0")])).unwrap_err();
        assert_eq!(e.key, "shutdown.grace_ms");
        // Lists with an empty default stay strings unless every item is an integer.
        let c = Config::load(None, env(&[("THWONK_SMTP_DOMAINS", "example.org")])).unwrap();
        assert_eq!(c.smtp.domains, vec!["example.org"]);
    }

    #[test]
    fn wrong_settings_are_refused_with_key_and_reason() {
        let e = Config::load(None, env(&[("THWONK_SMTP_LISTEN", "nowhere")])).unwrap_err();
        assert_eq!(e.key, "smtp.listen");
        assert!(e.reason.contains("IP:port"), "{e}");

        let e = Config::load(None, env(&[("THWONK_EGRESS_MODE", "relay")])).unwrap_err();
        assert_eq!(e.key, "egress.relay");

        let e = Config::load(None, env(&[("THWONK_SMTP_MAX_MESSAGE_SIZE", "big")])).unwrap_err();
        assert_eq!(e.key, "THWONK_SMTP_MAX_MESSAGE_SIZE");

        let e = Config::load(None, env(&[("THWONK_SMTP_LISTN", "x")])).unwrap_err();
        assert_eq!(e.key, "THWONK_SMTP_LISTN");

        let e = Config::load(None, env(&[("THWONK_EGRESS_MODE", "carrier-pigeon")])).unwrap_err();
        assert!(e.reason.contains("carrier-pigeon"), "{e}");

        let e = Config::load(None, env(&[("THWONK_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert_eq!(e.key, "database.url");
    }

    #[test]
    fn values_are_stored_parsed_and_empty_texts_are_none() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(
            c.smtp.listen,
            std::net::SocketAddr::from(([127, 0, 0, 1], 2525))
        );
        assert_eq!(c.metrics.listen, None);
        assert_eq!(c.database.url, None);
        assert_eq!(c.smtp.tls_files(), None);
        assert_eq!(c.runner.lease, std::time::Duration::from_secs(30));
        let c = Config::load(
            None,
            env(&[
                ("THWONK_METRICS_LISTEN", "127.0.0.1:9100"),
                ("THWONK_RUNNER_LEASE_MS", "1500"),
                ("THWONK_SMTP_IDLE_TIMEOUT_SECS", "7"),
            ]),
        )
        .unwrap();
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(c.runner.lease, std::time::Duration::from_millis(1500));
        assert_eq!(c.smtp.idle_timeout, std::time::Duration::from_secs(7));
        let e = Config::load(None, env(&[("THWONK_METRICS_LISTEN", "9100")])).unwrap_err();
        assert_eq!(e.key, "metrics.listen");
        assert!(e.reason.contains("IP:port"), "{e}");
        let e = Config::load(None, env(&[("THWONK_EGRESS_MODE", "carrier-pigeon")])).unwrap_err();
        assert_eq!(e.key, "egress.mode");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile_dir();
        let f = dir.join("t.toml");
        std::fs::write(&f, "[smtp]\nlisen = \"127.0.0.1:1\"\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err();
        assert!(e.reason.contains("lisen"), "{e}");
        let e = Config::load(Some(&dir.join("missing.toml")), env(&[])).unwrap_err();
        assert!(e.key.ends_with("missing.toml"));
    }

    #[test]
    fn an_unknown_key_names_the_file_line_and_column() {
        let dir = tempfile_dir();
        let f = dir.join("bad.toml");
        std::fs::write(
            &f,
            "data_dir = \"/tmp/x\"\n\n[smtp]\nhostname = \"mx\"\n  lisen = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err();
        let shown = e.to_string();
        assert_eq!(
            e.location.as_deref(),
            Some(format!("{} line 5, column 3", f.display()).as_str()),
            "{shown}"
        );
        assert!(shown.contains("lisen"), "{shown}");
        assert!(!shown.contains("config: config"), "{shown}");
        assert!(!shown.contains('\n'), "one line: {shown}");

        assert_eq!(e.key, "smtp.lisen");

        // At the top level: the key alone, and no doubled prefix.
        std::fs::write(&f, "colour = \"blue\"\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err();
        let shown = e.to_string();
        assert_eq!(
            shown,
            format!(
                "config: {} line 1, column 1: colour: {}",
                f.display(),
                e.reason
            )
        );
        assert!(e.reason.starts_with("unknown field `colour`"), "{shown}");

        // A value that does not parse: its line, and its key.
        std::fs::write(&f, "[http]\nlisten = \"nowhere\"\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err();
        assert_eq!(e.key, "http.listen");
        assert!(
            e.location
                .as_deref()
                .unwrap()
                .ends_with("line 2, column 10"),
            "{e}"
        );
        // The same mistake in a variable has no file location.
        let e = Config::load(None, env(&[("THWONK_HTTP_LISTEN", "nowhere")])).unwrap_err();
        assert_eq!(e.location, None);
        assert_eq!(e.to_string(), format!("config: http.listen: {}", e.reason));

        // A file that is not TOML: its line too.
        std::fs::write(&f, "[smtp]\nlisten = \n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err();
        assert!(e.location.as_deref().unwrap().contains("line 2"), "{e}");
    }

    #[test]
    fn listen_addresses_may_be_host_names() {
        let dir = tempfile_dir();
        let f = dir.join("names.toml");
        std::fs::write(
            &f,
            "[smtp]\nlisten = \"localhost:2525\"\n[http]\nlisten = \"localhost:8025\"\n\
             [metrics]\nlisten = \"localhost:9100\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&f), env(&[])).unwrap();
        assert_eq!(c.smtp.listen, "127.0.0.1:2525".parse().unwrap());
        assert_eq!(c.http.listen, "127.0.0.1:8025".parse().unwrap());
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9100".parse().unwrap()));
        let c = Config::load(None, env(&[("THWONK_SMTP_LISTEN", "localhost:2626")])).unwrap();
        assert_eq!(c.smtp.listen, "127.0.0.1:2626".parse().unwrap());
        // A name that does not resolve, and a name without a port, are refused.
        let e = Config::load(
            None,
            env(&[("THWONK_SMTP_LISTEN", "no-such-host.invalid:25")]),
        )
        .unwrap_err();
        assert_eq!(e.key, "smtp.listen");
        assert!(e.reason.contains("does not resolve"), "{e}");
        let e = Config::load(None, env(&[("THWONK_SMTP_LISTEN", "localhost")])).unwrap_err();
        assert!(e.reason.contains("host:port"), "{e}");
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("thwonk-core-test-{}", crate::ids::new_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
