//! Opening the database, migrating it, and beginning write transactions.
//!
//! SQLite settings cannot travel through `sqlx::Any`'s URL (it accepts only `mode`, `cache`,
//! `immutable`, `vfs`), so they are applied as pragmas: `journal_mode = WAL` once, on a
//! connection of its own before the pool opens (it needs an exclusive lock and is stored in
//! the file), and the per-connection ones in the pool's `after_connect`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, Connection, Transaction};

use crate::{Backend, Result, Store, StoreError};

/// How long a SQLite writer waits for another writer's lock before failing with "database is
/// locked". Long enough for any one of our transactions; short enough to surface a stuck one.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long getting a connection from the pool may take (connecting included) before the
/// operation fails, for [`Store::connect`]; the daemon passes `database.acquire_timeout_ms`
/// to [`Store::connect_with`]. sqlx's own default (30 s) would keep an SMTP client waiting
/// that long for its `451` while PostgreSQL refuses connections.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Applied to every pooled SQLite connection. `busy_timeout` matches [`SQLITE_BUSY_TIMEOUT`];
/// `synchronous = NORMAL` is durable across application crashes in WAL mode (only a power
/// loss can drop the last commits); foreign keys are off by default in SQLite.
const SQLITE_CONNECTION_PRAGMAS: &[&str] = &[
    "PRAGMA busy_timeout = 5000",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
];

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

impl Store {
    /// Connect (SQLite: create the file and its folder if missing, WAL, busy timeout). Does
    /// not migrate.
    ///
    /// URLs: `sqlite://PATH` (relative to the working directory, or `sqlite:///abs/path`),
    /// `sqlite::memory:` (tests only: one connection, gone when the pool closes), and
    /// `postgres://user@host/db`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        Store::connect_with(url, max_connections, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// [`Store::connect`], with the longest wait for a pooled connection (connecting
    /// included) before an operation fails with an error.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let connect_err = |source: sqlx::Error| StoreError::Connect {
            url: redact_password(url),
            source,
        };
        let max_connections = max_connections.max(1);
        match backend_of(url) {
            Some(Backend::Sqlite) => {
                let target = SqliteTarget::parse(url)
                    .map_err(|msg| connect_err(sqlx::Error::Configuration(msg.into())))?;
                let pool = open_sqlite(&target, max_connections, acquire_timeout)
                    .await
                    .map_err(connect_err)?;
                Ok(Store {
                    backend: Backend::Sqlite,
                    pool,
                })
            }
            Some(Backend::Postgres) => {
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(acquire_timeout)
                    .connect(url)
                    .await
                    .map_err(connect_err)?;
                Ok(Store {
                    backend: Backend::Postgres,
                    pool,
                })
            }
            None => Err(connect_err(sqlx::Error::Configuration(
                "unsupported database URL: use sqlite://PATH or postgres://USER@HOST/DB".into(),
            ))),
        }
    }

    /// Apply pending migrations (`migrations/sqlite` or `migrations/postgres`). Safe to call
    /// from several processes at once (the migrator takes a lock).
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Close the pool, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The one way to begin a transaction that writes.
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock up front, waiting up to the busy
    /// timeout. A plain (deferred) `BEGIN` starts as a reader and upgrades at its first write;
    /// in WAL mode that upgrade fails at once with `SQLITE_BUSY` (no waiting) when another
    /// writer committed since the read began, which is exactly what concurrent `commit_run`s
    /// would hit. Taking the lock first makes writers queue instead. (Single-statement writes
    /// outside a transaction need none of this: a write statement locks before it reads.)
    ///
    /// PostgreSQL: a plain `BEGIN` (read committed); the statements themselves take the row
    /// locks that order concurrent writers.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else {
        None
    }
}

/// A SQLite URL made ready for the driver.
#[derive(Debug, PartialEq, Eq)]
struct SqliteTarget {
    url: String,
    /// The database file (absolute); `None` in memory.
    file: Option<PathBuf>,
}

impl SqliteTarget {
    /// Make the path absolute (a relative path in `sqlite://rel/x.db` would otherwise be read
    /// as a URL host) and add `mode=rwc` (create if missing) unless a mode is given.
    fn parse(url: &str) -> Result<SqliteTarget, String> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| format!("{url:?} is not a sqlite: URL"))?;
        let (path, params) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let memory = path == ":memory:"
            || params.is_some_and(|q| q.split('&').any(|kv| kv == "mode=memory"));
        if memory {
            return Ok(SqliteTarget {
                url: url.to_string(),
                file: None,
            });
        }
        if path.is_empty() {
            return Err("the SQLite URL names no file: use sqlite://PATH".into());
        }
        let file = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            std::env::current_dir()
                .map_err(|e| format!("cannot resolve relative path {path:?}: {e}"))?
                .join(path)
        };
        let file_str = file
            .to_str()
            .ok_or_else(|| format!("database path {file:?} is not UTF-8"))?;
        let mut query: Vec<&str> = params
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|kv| !kv.is_empty())
            .collect();
        if !query.iter().any(|kv| kv.starts_with("mode=")) {
            query.push("mode=rwc");
        }
        Ok(SqliteTarget {
            url: format!("sqlite://{}?{}", encode_path(file_str), query.join("&")),
            file: Some(file),
        })
    }
}

/// Escape what would end or corrupt the path part of a URL; the driver percent-decodes it.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            _ => out.push(c),
        }
    }
    out
}

async fn open_sqlite(
    target: &SqliteTarget,
    max_connections: u32,
    acquire_timeout: Duration,
) -> sqlx::Result<sqlx::AnyPool> {
    let options = AnyPoolOptions::new()
        .acquire_timeout(acquire_timeout)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                for pragma in SQLITE_CONNECTION_PRAGMAS {
                    sqlx::query(*pragma).execute(&mut *conn).await?;
                }
                Ok(())
            })
        });
    match &target.file {
        Some(file) => {
            if let Some(dir) = file.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            enable_wal(&target.url).await?;
            options
                .max_connections(max_connections)
                .connect(&target.url)
                .await
        }
        // Through `Any`, every new connection to `:memory:` is a new, empty database: keep
        // exactly one connection alive for the pool's lifetime.
        None => {
            options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect(&target.url)
                .await
        }
    }
}

/// WAL is a property of the file; switching to it needs an exclusive lock that the busy
/// timeout does not wait for, so do it once, before the pool opens, and only when needed.
async fn enable_wal(url: &str) -> sqlx::Result<()> {
    let mut conn = AnyConnection::connect(url).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?;
    if !mode.eq_ignore_ascii_case("wal") {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut conn)
            .await?;
    }
    conn.close().await
}

/// The URL with any password replaced, fit for an error message or a log.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_sqlite_paths_become_absolute_and_creatable() {
        let t = SqliteTarget::parse("sqlite://data/thwonk.db").unwrap();
        let file = t.file.unwrap();
        assert!(file.is_absolute());
        assert!(file.ends_with("data/thwonk.db"));
        assert!(t.url.starts_with("sqlite:///"));
        assert!(t.url.ends_with("data/thwonk.db?mode=rwc"));
    }

    #[test]
    fn absolute_sqlite_paths_keep_their_params_and_escape_specials() {
        let t = SqliteTarget::parse("sqlite:///var/lib/x.db?cache=shared").unwrap();
        assert_eq!(t.file.unwrap(), PathBuf::from("/var/lib/x.db"));
        assert_eq!(t.url, "sqlite:///var/lib/x.db?cache=shared&mode=rwc");

        let t = SqliteTarget::parse("sqlite:///x/my db.sqlite?mode=rw").unwrap();
        assert_eq!(t.url, "sqlite:///x/my db.sqlite?mode=rw");
        assert_eq!(encode_path("/a%b#c?d"), "/a%25b%23c%3Fd");
    }

    #[test]
    fn memory_urls_have_no_file() {
        assert_eq!(SqliteTarget::parse("sqlite::memory:").unwrap().file, None);
        assert!(SqliteTarget::parse("sqlite://").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://u:secret@db:5432/x?sslmode=require"),
            "postgres://u:***@db:5432/x?sslmode=require"
        );
        assert_eq!(redact_password("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_password("sqlite://a/b"), "sqlite://a/b");
    }

    /// Read-then-write transactions racing on one SQLite file: with `begin_write` they queue
    /// on the write lock; a deferred `BEGIN` here fails with "database is locked" instead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_write_transactions_queue_instead_of_failing_busy() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Store::connect(&url, 8).await.unwrap();
        store.migrate().await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut tx = store.begin_write().await?;
                    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM thwonks")
                        .fetch_one(&mut *tx)
                        .await?;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    sqlx::query(
                        "INSERT INTO thwonks (id, address, status, created_at_ms) \
                         VALUES ($1, $2, 'active', $3)",
                    )
                    .bind(format!("id-{i}"))
                    .bind(format!("t{i}@x.org"))
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok::<_, StoreError>(n)
                })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap().expect("a queued writer must not fail"));
        }
        // Each transaction saw every earlier one: they ran one after another.
        seen.sort();
        assert_eq!(seen, (0..8).collect::<Vec<i64>>());
        // And the file is in WAL mode.
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn an_in_memory_database_keeps_its_data_across_queries() {
        let store = Store::connect("sqlite::memory:", 8).await.unwrap();
        store.migrate().await.unwrap();
        let a = thwonk_core::Address::parse("m@x.org").unwrap();
        store.deploy_script(&a, "s", None).await.unwrap();
        assert!(store.thwonk_by_address(&a).await.unwrap().is_some());
        assert_eq!(store.backend(), Backend::Sqlite);
    }

    #[tokio::test]
    async fn unusable_urls_fail_with_the_url_and_no_password() {
        let err = Store::connect("mysql://u:pw@h/db", 1).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("mysql://u:***@h/db"), "{msg}");
        assert!(msg.contains("use sqlite://PATH or postgres://"), "{msg}");
        assert!(!msg.contains("pw"), "{msg}");
    }

    #[test]
    fn backends_are_told_by_scheme() {
        assert_eq!(backend_of("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(backend_of("postgresql://x/y"), Some(Backend::Postgres));
        assert_eq!(backend_of("mysql://x/y"), None);
    }
}
