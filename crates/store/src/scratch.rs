//! Throw-away PostgreSQL databases, **for tests and benchmarks only**.
//!
//! Each test creates its own database on the server named by a base URL (in this project's
//! tests: the `THWONK_TEST_POSTGRES_URL` environment variable), so no test reads what another
//! left behind, and tests can run in parallel. Call [`ScratchDb::cleanup`] at the end;
//! databases a crashed test leaves are named `thwonk_scratch_*` and safe to drop by hand.
//!
//! ```no_run
//! # async fn t() -> thwonk_store::Result<()> {
//! let db = thwonk_store::scratch::scratch_postgres_url("postgres://postgres@127.0.0.1/test").await?;
//! let store = thwonk_store::Store::connect(db.url(), 4).await?;
//! store.migrate().await?;
//! // ... the test ...
//! store.close().await;
//! db.cleanup().await?;
//! # Ok(()) }
//! ```

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};

use crate::connect::redact_password;
use crate::{Result, StoreError};

/// Every scratch database's name starts with this.
pub const SCRATCH_PREFIX: &str = "thwonk_scratch_";

/// A database created for one test. Dropped on the server by [`ScratchDb::cleanup`], not by
/// Rust's `Drop` (dropping needs a connection and an `await`).
#[derive(Debug)]
pub struct ScratchDb {
    base_url: String,
    name: String,
    url: String,
}

impl ScratchDb {
    /// The URL of the new database (the base URL with its database name replaced).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The new database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drop the database, closing any connection still open to it.
    pub async fn cleanup(self) -> Result<()> {
        let mut conn = admin_connection(&self.base_url).await?;
        // The name is ours (prefix + hex digits): nothing in it needs escaping.
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }
}

/// Create a fresh, empty, uniquely named database on the server of `base_url` (which must name
/// a database the role can connect to, and the role needs `CREATEDB`), and return its URL.
/// Not migrated: call `Store::migrate`.
pub async fn scratch_postgres_url(base_url: &str) -> Result<ScratchDb> {
    let name = format!(
        "{SCRATCH_PREFIX}{}",
        thwonk_core::ids::new_id().replace('-', "")
    );
    let url = with_database(base_url, &name).ok_or_else(|| StoreError::Connect {
        url: redact_password(base_url),
        source: sqlx::Error::Configuration(
            "not a postgres://USER@HOST/DB URL: cannot derive a scratch database URL".into(),
        ),
    })?;
    let mut conn = admin_connection(base_url).await?;
    let sql = format!("CREATE DATABASE \"{name}\"");
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
    conn.close().await?;
    Ok(ScratchDb {
        base_url: base_url.to_string(),
        name,
        url,
    })
}

async fn admin_connection(base_url: &str) -> Result<PgConnection> {
    PgConnection::connect(base_url)
        .await
        .map_err(|source| StoreError::Connect {
            url: redact_password(base_url),
            source,
        })
}

/// `base_url` with its database (the path) replaced by `name`, keeping the query string.
fn with_database(base_url: &str, name: &str) -> Option<String> {
    let (scheme, rest) = base_url.split_once("://")?;
    if scheme != "postgres" && scheme != "postgresql" {
        return None;
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or("");
    let mut url = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/x")
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x").as_deref(),
            Some("postgresql://u:p@h/x?sslmode=disable")
        );
        assert_eq!(
            with_database("postgres://h", "x").as_deref(),
            Some("postgres://h/x")
        );
        assert_eq!(with_database("sqlite://a", "x"), None);
    }
}
