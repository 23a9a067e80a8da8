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
    pub shutdown: ShutdownConfig,
    pub invoke: InvokeConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
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
    /// PEM file with the certificate chain for STARTTLS. Empty (with `tls_key`): no STARTTLS.
    pub tls_cert: String,
    /// PEM file with the private key for STARTTLS.
    pub tls_key: String,
    /// Refuse MAIL (530 5.7.0) until the client has said STARTTLS.
    pub require_tls: bool,
    /// Sessions at once from one client IP address; past it, 421 4.7.0 at connect.
    pub max_connections_per_ip: u32,
    /// Commands in a row that move no transaction forward (NOOP, RSET, VRFY, refused
    /// MAIL/RCPT, errors...) before the session is closed with 421 4.7.0.
    pub max_commands_without_progress: u32,
    /// Longest command line, CRLF included (at least 512, RFC 5321); longer: 500 5.5.2.
    pub max_line_length: u32,
    /// Most `Received:` headers a message may carry (a mail loop); more: 554 5.4.6.
    pub max_received_headers: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://...`. Empty: `sqlite://{data_dir}/thwonk.db`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Longest wait for a pooled connection (connecting included) before the operation fails
    /// (the ingress then answers 451), ms.
    pub acquire_timeout_ms: u64,
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
    /// Delays between attempts, ms; when not empty it is used instead of
    /// `retry_schedule_secs` (finer steps, for tests and fast local relays).
    pub retry_schedule_ms: Vec<u64>,
}

impl EgressConfig {
    /// The retry schedule in effect: `retry_schedule_ms` if set, else `retry_schedule_secs`.
    pub fn retry_schedule(&self) -> Vec<std::time::Duration> {
        if self.retry_schedule_ms.is_empty() {
            self.retry_schedule_secs
                .iter()
                .map(|&s| std::time::Duration::from_secs(s))
                .collect()
        } else {
            self.retry_schedule_ms
                .iter()
                .map(|&ms| std::time::Duration::from_millis(ms))
                .collect()
        }
    }
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

/// Stopping on SIGTERM (or Ctrl-C).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long every role of a process may take to finish the work in hand (a DATA transfer,
    /// a run, a delivery) after SIGTERM, ms. Past it the process abandons that work (its job
    /// returns to the queue) and exits with status 1.
    pub grace_ms: u64,
}

/// The default `shutdown.grace_ms`: room for a run at the default wall-clock limit and most
/// deliveries, and as long as the ingress's session drain always was.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 30_000;

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace_ms: DEFAULT_SHUTDOWN_GRACE_MS,
        }
    }
}

/// HTTP invoke: a JSON request runs the script's `onRequest` through the runner.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InvokeConfig {
    /// Largest request body (as JSON text) that becomes a job, bytes.
    pub max_body_bytes: u64,
    /// Deepest nesting of arrays and objects in a request body.
    pub max_body_depth: u32,
}

/// Prometheus metrics.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `IP:port` where a single-role process (`thwonk ingress|runner|egress`) serves
    /// `GET /metrics`. Empty: not served.
    pub listen: String,
}

/// How logs are written (to standard error). Levels: the `THWONK_LOG` filter.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// A log line's shape.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line, with the fields of every enclosing span.
    Json,
}

impl Default for InvokeConfig {
    fn default() -> Self {
        InvokeConfig {
            max_body_bytes: 1024 * 1024,
            max_body_depth: 64,
        }
    }
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
            shutdown: ShutdownConfig::default(),
            invoke: InvokeConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
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
            tls_cert: String::new(),
            tls_key: String::new(),
            require_tls: false,
            max_connections_per_ip: 50,
            max_commands_without_progress: 100,
            max_line_length: 512,
            max_received_headers: 50,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            max_connections: 8,
            acquire_timeout_ms: 5_000,
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
            retry_schedule_ms: Vec::new(),
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

/// The deepest `invoke.max_body_depth` allowed: a job's JSON must stay under the 128 levels
/// `serde_json` parses, with room for the job's own fields around the body.
pub const MAX_INVOKE_BODY_DEPTH: u32 = 120;

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
        if !self.metrics.listen.is_empty() {
            parse_listen("metrics.listen", &self.metrics.listen)?;
        }
        if self.invoke.max_body_bytes == 0 {
            return Err(ConfigError::new(
                "invoke.max_body_bytes",
                "must be greater than 0",
            ));
        }
        // The job's JSON is parsed again by the runner, whose parser stops at 128 levels.
        if !(1..=MAX_INVOKE_BODY_DEPTH).contains(&self.invoke.max_body_depth) {
            return Err(ConfigError::new(
                "invoke.max_body_depth",
                format!("must be between 1 and {MAX_INVOKE_BODY_DEPTH}"),
            ));
        }
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
        self.validate_smtp_ingress()?;
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
            ("shutdown.grace_ms", self.shutdown.grace_ms),
            (
                "database.acquire_timeout_ms",
                self.database.acquire_timeout_ms,
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

    /// `metrics.listen` as a socket address, when set (validated at load).
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        if self.metrics.listen.is_empty() {
            return None;
        }
        parse_listen("metrics.listen", &self.metrics.listen).ok()
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
            // An empty default says nothing about the items' type: a list that is all
            // integers is integers (egress.retry_schedule_ms), anything else strings.
            let all_integers = {
                let mut p = parts.clone().peekable();
                p.peek().is_some() && p.all(|x| x.parse::<i64>().is_ok())
            };
            match items.first() {
                None if all_integers => toml::Value::Array(
                    parts
                        .map(|p| toml::Value::Integer(p.parse().unwrap_or_default()))
                        .collect(),
                ),
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

impl Config {
    /// The `[smtp]` settings of STARTTLS and the session limits.
    fn validate_smtp_ingress(&self) -> Result<(), ConfigError> {
        let smtp = &self.smtp;
        if smtp.tls_cert.is_empty() != smtp.tls_key.is_empty() {
            return Err(ConfigError::new(
                "smtp.tls_cert",
                "tls_cert and tls_key go together: set both, or neither",
            ));
        }
        if smtp.require_tls && smtp.tls_cert.is_empty() {
            return Err(ConfigError::new(
                "smtp.require_tls",
                "needs tls_cert and tls_key (no STARTTLS is offered without them)",
            ));
        }
        if !(512..=65536).contains(&smtp.max_line_length) {
            return Err(ConfigError::new(
                "smtp.max_line_length",
                "must be from 512 (RFC 5321 section 4.5.3.1.4) to 65536",
            ));
        }
        for (key, value) in [
            ("smtp.max_connections_per_ip", smtp.max_connections_per_ip),
            (
                "smtp.max_commands_without_progress",
                smtp.max_commands_without_progress,
            ),
            ("smtp.max_received_headers", smtp.max_received_headers),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod smtp_ingress_tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(
            None,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn tls_and_ingress_limits_are_checked_with_their_key() {
        let e = load(&[("THWONK_SMTP_TLS_CERT", "/x/cert.pem")]).unwrap_err();
        assert_eq!(e.key, "smtp.tls_cert");
        let e = load(&[("THWONK_SMTP_REQUIRE_TLS", "true")]).unwrap_err();
        assert_eq!(e.key, "smtp.require_tls");
        let e = load(&[("THWONK_SMTP_MAX_LINE_LENGTH", "100")]).unwrap_err();
        assert_eq!(e.key, "smtp.max_line_length");
        let e = load(&[("THWONK_SMTP_MAX_CONNECTIONS_PER_IP", "0")]).unwrap_err();
        assert_eq!(e.key, "smtp.max_connections_per_ip");
        let ok = load(&[
            ("THWONK_SMTP_TLS_CERT", "/x/cert.pem"),
            ("THWONK_SMTP_TLS_KEY", "/x/key.pem"),
            ("THWONK_SMTP_REQUIRE_TLS", "true"),
        ])
        .unwrap();
        assert!(ok.smtp.require_tls);
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
        assert_eq!(c.smtp.listen, "127.0.0.1:2626");
        assert_eq!(c.smtp.max_message_size, 5000);
        assert_eq!(c.smtp.domains, vec!["example.org", "lists.example.org"]);
        assert_eq!(c.egress.mode, EgressMode::Relay);
        assert_eq!(c.egress.retry_schedule_secs, vec![1, 2, 3]);
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
        assert_eq!(c.egress.retry_schedule_ms, vec![250, 500]);
        assert_eq!(
            c.egress.retry_schedule(),
            [250, 500].map(std::time::Duration::from_millis)
        );
        assert_eq!(c.shutdown.grace_ms, 1500);
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
