//! The one configuration loader.
//!
//! Settings come from, in rising precedence: the defaults below (documented key by key in
//! `config/thwonk.toml`), a TOML file, environment variables `THWONK_<SECTION>_<KEY>` (or
//! `THWONK_<KEY>` for top-level keys, e.g. `THWONK_DATA_DIR`), and finally command-line flags
//! applied by the binary. A wrong setting is refused at start with its key and the reason.

use crate::run::SandboxLimits;
use serde::{Deserialize, Deserializer, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    pub queues: QueuesConfig,
    pub feeds: FeedsConfig,
    pub schedules: SchedulesConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Address the ingress listens on.
    pub listen: String,
    /// Our name in the greeting, in EHLO and in `Received:` headers.
    pub hostname: String,
    /// Domains we accept mail for (lower case). Empty: any domain that has a thwonk.
    #[serde(deserialize_with = "string_or_list")]
    pub domains: Vec<String>,
    /// Largest message accepted, bytes (advertised in EHLO SIZE).
    pub max_message_size: u64,
    /// Most recipients accepted in one transaction.
    pub max_recipients: u32,
    /// Seconds a session may sit idle before it is closed.
    pub idle_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://...`. Empty: `sqlite://{data_dir}/thwonk.db`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db` or `unix:///path/to/socket`. Empty: `thwonk serve` starts a
    /// private redis-server on `{data_dir}/redis.sock`.
    pub url: String,
    /// The redis-server binary used for the private server.
    pub server_binary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// Runs in parallel in one runner process (different thwonks only).
    pub concurrency: u32,
    /// How long a runner holds a thwonk's lease before another runner may take over, ms.
    pub lease_ms: u64,
}

/// How outgoing mail leaves.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EgressMode {
    /// Write each message as an .eml file under `{data_dir}/captured/`.
    Capture,
    /// Hand every message to one SMTP relay (`egress.relay`).
    Relay,
    /// Look up each recipient domain's MX and deliver there.
    Mx,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    pub mode: EgressMode,
    /// `host:port` of the relay (mode `relay`).
    pub relay: String,
    /// Deliveries in parallel in one egress process.
    pub concurrency: u32,
    /// Seconds one SMTP delivery may take, connect to final reply.
    pub timeout_secs: u64,
    /// Delivery attempts before a message is given up on.
    pub max_attempts: u32,
    /// Delays between attempts, seconds; the last one repeats.
    pub retry_schedule_secs: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the HTTP API listens on.
    pub listen: String,
    /// Largest request body, bytes (larger: 413). At least `limits.file_max_bytes`, so a
    /// file that fits the VFS can be uploaded.
    pub max_body_bytes: u64,
    /// Sandbox workers that check deployed scripts and run dry runs for the API.
    pub sandbox_workers: u32,
    /// Seconds between keep-alive comments on an idle Server-Sent Events stream.
    pub sse_keep_alive_secs: u64,
    /// Items `GET /v1/thwonks/{address}/feeds/{name}` returns at most (the newest).
    pub max_feed_items: u64,
}

/// Job queues on Redis: when a claimed job counts as abandoned, and when it is given up on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueuesConfig {
    /// A job claimed longer than this without being finished is returned to its queue, ms.
    pub visibility_ms: u64,
    /// Claims a job may use (abandoned or failed) before it is stalled as a dead letter.
    pub max_attempts: u32,
    /// How often the reaper looks for abandoned jobs, ms.
    pub reaper_interval_ms: u64,
    /// How often runners re-queue queued messages and outbox rows whose job Redis lost (a
    /// restart that kept nothing), ms. Also done once at start.
    pub reconcile_interval_ms: u64,
}

/// Feeds that scripts publish to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsConfig {
    /// How often committed feed operations that could not reach Redis are tried again, ms.
    pub retry_interval_ms: u64,
}

/// Scripts' `schedule` exports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulesConfig {
    /// How often a runner looks for due schedules, ms.
    pub poll_ms: u64,
    /// How often a runner re-registers every thwonk's schedule from SQL, ms.
    pub sync_interval_ms: u64,
}

impl Default for QueuesConfig {
    fn default() -> Self {
        QueuesConfig {
            visibility_ms: 300_000,
            max_attempts: 10,
            reaper_interval_ms: 1_000,
            reconcile_interval_ms: 60_000,
        }
    }
}

impl Default for FeedsConfig {
    fn default() -> Self {
        FeedsConfig {
            retry_interval_ms: 5_000,
        }
    }
}

impl Default for SchedulesConfig {
    fn default() -> Self {
        SchedulesConfig {
            poll_ms: 1_000,
            sync_interval_ms: 60_000,
        }
    }
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
            queues: QueuesConfig::default(),
            feeds: FeedsConfig::default(),
            schedules: SchedulesConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: "127.0.0.1:2525".into(),
            hostname: "localhost".into(),
            domains: Vec::new(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            idle_timeout_secs: 300,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            max_connections: 8,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: String::new(),
            server_binary: "redis-server".into(),
        }
    }
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            concurrency: 4,
            lease_ms: 30_000,
        }
    }
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            mode: EgressMode::Capture,
            relay: String::new(),
            concurrency: 4,
            timeout_secs: 60,
            max_attempts: 8,
            retry_schedule_secs: vec![30, 120, 600, 1800, 3600],
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8025".into(),
            max_body_bytes: 2 * 1024 * 1024,
            sandbox_workers: 2,
            sse_keep_alive_secs: 15,
            max_feed_items: 1000,
        }
    }
}

/// A refused configuration: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config: {key}: {reason}")]
pub struct ConfigError {
    /// The key, dotted (`smtp.listen`), or the file or variable that could not be read.
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Variables with the `THWONK_` prefix that are not settings.
const NOT_SETTINGS: &[&str] = &["THWONK_CONFIG", "THWONK_LOG"];
const NOT_SETTINGS_PREFIX: &[&str] = &["THWONK_TEST_"];

impl Config {
    /// Load: defaults, then `file` (if any), then the `THWONK_*` variables in `env`, then
    /// validate. `env` is passed in (normally `std::env::vars()`) so tests need not touch the
    /// process environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?;
                text.parse::<toml::Table>().map_err(|e| {
                    ConfigError::new(path.display().to_string(), e.to_string().trim().to_string())
                })?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let cfg = Config::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError::new("config", e.to_string().trim().to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check every setting that deserialisation alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }
        parse_listen("smtp.listen", &self.smtp.listen)?;
        parse_listen("http.listen", &self.http.listen)?;
        if self.http.max_body_bytes < self.limits.file_max_bytes {
            return Err(ConfigError::new(
                "http.max_body_bytes",
                format!(
                    "must be at least limits.file_max_bytes ({}), or files that fit cannot be uploaded",
                    self.limits.file_max_bytes
                ),
            ));
        }
        if self.http.sandbox_workers == 0 {
            return Err(ConfigError::new(
                "http.sandbox_workers",
                "must be at least 1",
            ));
        }
        if self.smtp.hostname.trim().is_empty() || self.smtp.hostname.contains(char::is_whitespace)
        {
            return Err(ConfigError::new(
                "smtp.hostname",
                "must be a host name without spaces",
            ));
        }
        for d in &self.smtp.domains {
            if d.is_empty() || d.contains(['@', ' ']) || d.to_lowercase() != *d {
                return Err(ConfigError::new(
                    "smtp.domains",
                    format!("{d:?} is not a lower-case domain name"),
                ));
            }
        }
        if self.smtp.max_message_size < 1024 {
            return Err(ConfigError::new(
                "smtp.max_message_size",
                "must be at least 1024 bytes",
            ));
        }
        if self.smtp.idle_timeout_secs == 0 {
            return Err(ConfigError::new(
                "smtp.idle_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.smtp.max_recipients == 0 {
            return Err(ConfigError::new(
                "smtp.max_recipients",
                "must be at least 1",
            ));
        }
        let db = &self.database.url;
        if !db.is_empty()
            && !["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| db.starts_with(p))
        {
            return Err(ConfigError::new(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        let redis = &self.redis.url;
        if !redis.is_empty()
            && !["redis://", "rediss://", "unix://", "redis+unix://"]
                .iter()
                .any(|p| redis.starts_with(p))
        {
            return Err(ConfigError::new(
                "redis.url",
                "must start with redis://, rediss://, unix:// or redis+unix://",
            ));
        }
        if self.runner.concurrency == 0 {
            return Err(ConfigError::new("runner.concurrency", "must be at least 1"));
        }
        if self.runner.lease_ms < 1000 {
            return Err(ConfigError::new("runner.lease_ms", "must be at least 1000"));
        }
        if self.egress.mode == EgressMode::Relay {
            if self.egress.relay.is_empty() {
                return Err(ConfigError::new(
                    "egress.relay",
                    "must be set (host:port) when egress.mode = \"relay\"",
                ));
            }
            if !self.egress.relay.contains(':') {
                return Err(ConfigError::new(
                    "egress.relay",
                    format!("{:?} must be host:port", self.egress.relay),
                ));
            }
        }
        if self.egress.concurrency == 0 {
            return Err(ConfigError::new("egress.concurrency", "must be at least 1"));
        }
        if self.egress.max_attempts == 0 {
            return Err(ConfigError::new(
                "egress.max_attempts",
                "must be at least 1",
            ));
        }
        if self.egress.retry_schedule_secs.is_empty() {
            return Err(ConfigError::new(
                "egress.retry_schedule_secs",
                "must list at least one delay",
            ));
        }
        for (key, v) in [
            ("queues.visibility_ms", self.queues.visibility_ms),
            ("queues.max_attempts", u64::from(self.queues.max_attempts)),
            ("queues.reaper_interval_ms", self.queues.reaper_interval_ms),
            (
                "queues.reconcile_interval_ms",
                self.queues.reconcile_interval_ms,
            ),
            ("feeds.retry_interval_ms", self.feeds.retry_interval_ms),
            ("schedules.poll_ms", self.schedules.poll_ms),
            (
                "schedules.sync_interval_ms",
                self.schedules.sync_interval_ms,
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::new(key, "must be greater than 0"));
            }
        }
        let l = &self.limits;
        for (key, v) in [
            ("limits.instructions", l.instructions),
            ("limits.wall_clock_ms", l.wall_clock_ms),
            ("limits.memory_mib", l.memory_mib),
            ("limits.script_max_bytes", l.script_max_bytes),
            ("limits.recipients_per_run", l.recipients_per_run),
            ("limits.vfs_bytes_per_run", l.vfs_bytes_per_run),
            ("limits.file_max_bytes", l.file_max_bytes),
            ("limits.log_bytes_per_run", l.log_bytes_per_run),
        ] {
            if v == 0 {
                return Err(ConfigError::new(key, "must be greater than 0"));
            }
        }
        if l.script_max_depth == 0 || l.recursion_depth == 0 {
            return Err(ConfigError::new(
                "limits.script_max_depth",
                "script_max_depth and recursion_depth must be greater than 0",
            ));
        }
        Ok(())
    }

    /// The database URL in effect (the SQLite file in the data directory by default).
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("thwonk.db").display())
        } else {
            self.database.url.clone()
        }
    }

    /// The private Redis socket path (used when `redis.url` is empty), absolute: Redis URLs
    /// cannot carry a relative path, and the default data_dir is `./data`.
    pub fn private_redis_socket(&self) -> PathBuf {
        let socket = self.data_dir.join("redis.sock");
        std::path::absolute(&socket).unwrap_or(socket)
    }

    /// The Redis URL in effect: the configured one, or the private server's socket.
    pub fn redis_url(&self) -> String {
        if self.redis.url.is_empty() {
            format!("unix://{}", self.private_redis_socket().display())
        } else {
            self.redis.url.clone()
        }
    }

    /// Where capture mode writes outgoing mail.
    pub fn captured_dir(&self) -> PathBuf {
        self.data_dir.join("captured")
    }

    /// `smtp.listen` as a socket address (validated at load).
    pub fn smtp_listen(&self) -> SocketAddr {
        parse_listen("smtp.listen", &self.smtp.listen).expect("validated at load")
    }

    /// `http.listen` as a socket address (validated at load).
    pub fn http_listen(&self) -> SocketAddr {
        parse_listen("http.listen", &self.http.listen).expect("validated at load")
    }

    /// Whether mail for `domain` is accepted at all (before looking for a thwonk).
    pub fn accepts_domain(&self, domain: &str) -> bool {
        self.smtp.domains.is_empty() || self.smtp.domains.iter().any(|d| d == domain)
    }
}

fn parse_listen(key: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse::<SocketAddr>().map_err(|_| {
        ConfigError::new(
            key,
            format!("{v:?} is not an IP:port address (e.g. 127.0.0.1:2525)"),
        )
    })
}

/// Accept `["a", "b"]` in TOML and `"a,b"` from an environment variable.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(|x| x.trim().to_lowercase())
            .filter(|x| !x.is_empty())
            .collect(),
        OneOrMany::Many(v) => v.into_iter().map(|x| x.trim().to_lowercase()).collect(),
    })
}

/// Fold `THWONK_*` variables into the table, section by section. The key set comes from the
/// defaults, so a misspelt variable is refused rather than silently ignored.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let defaults = match toml::Value::try_from(Config::default()) {
        Ok(toml::Value::Table(t)) => t,
        _ => unreachable!("the default config serialises to a table"),
    };
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("THWONK_"))
        .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
        .filter(|(k, _)| !NOT_SETTINGS_PREFIX.iter().any(|p| k.starts_with(p)))
        .collect();
    vars.sort();
    'vars: for (name, value) in vars {
        let rest = name["THWONK_".len()..].to_lowercase();
        for (key, default) in &defaults {
            match default {
                toml::Value::Table(section) => {
                    let Some(sub) = rest.strip_prefix(&format!("{key}_")) else {
                        continue;
                    };
                    if let Some(d) = section.get(sub) {
                        let v = env_value(&name, &value, d)?;
                        let t = table
                            .entry(key.clone())
                            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                        match t {
                            toml::Value::Table(t) => {
                                t.insert(sub.to_string(), v);
                            }
                            _ => {
                                return Err(ConfigError::new(
                                    key.clone(),
                                    "must be a table ([section])",
                                ));
                            }
                        }
                        continue 'vars;
                    }
                }
                other => {
                    if rest == *key {
                        let v = env_value(&name, &value, other)?;
                        table.insert(key.clone(), v);
                        continue 'vars;
                    }
                }
            }
        }
        return Err(ConfigError::new(
            name,
            "is not a setting (THWONK_<SECTION>_<KEY>, see config/thwonk.toml)",
        ));
    }
    Ok(())
}

/// Turn a variable's text into a TOML value of the same type as the setting's default.
fn env_value(name: &str, raw: &str, default: &toml::Value) -> Result<toml::Value, ConfigError> {
    let bad = |what: &str| ConfigError::new(name, format!("{raw:?} is not {what}"));
    Ok(match default {
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?)
        }
        toml::Value::Boolean(_) => {
            toml::Value::Boolean(raw.trim().parse().map_err(|_| bad("true or false"))?)
        }
        toml::Value::Float(_) => {
            toml::Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?)
        }
        toml::Value::Array(items) => {
            let parts = raw.split(',').map(str::trim).filter(|s| !s.is_empty());
            match items.first() {
                Some(toml::Value::Integer(_)) => toml::Value::Array(
                    parts
                        .map(|p| {
                            p.parse()
                                .map(toml::Value::Integer)
                                .map_err(|_| bad("a comma-separated list of integers"))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => toml::Value::Array(parts.map(|p| toml::Value::String(p.into())).collect()),
            }
        }
        _ => toml::Value::String(raw.to_string()),
    })
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
        assert_eq!(c.smtp.listen, "127.0.0.1:2626");
        assert_eq!(c.smtp.max_message_size, 5000);
        assert_eq!(c.smtp.domains, vec!["example.org", "lists.example.org"]);
        assert_eq!(c.egress.mode, EgressMode::Relay);
        assert_eq!(c.egress.retry_schedule_secs, vec![1, 2, 3]);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.limits.instructions, 1000);
        assert_eq!(c.database_url(), "postgres://localhost/test");
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
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile_dir();
        let f = dir.join("t.toml");
        std::fs::write(&f, "[smtp]\nlisen = \"127.0.0.1:1\"\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err();
        assert!(e.reason.contains("lisen"), "{e}");
        let e = Config::load(Some(&dir.join("missing.toml")), env(&[])).unwrap_err();
        assert!(e.key.ends_with("missing.toml"));
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("thwonk-core-test-{}", crate::ids::new_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
