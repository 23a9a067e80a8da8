//! A thwonk's files. Paths arrive normalised (`thwonk_core::vfs`); every query is keyed by
//! `thwonk_id`, so no path can reach another thwonk's files. Listings are in byte order of
//! the path on both engines (PostgreSQL's `path` column is `COLLATE "C"`).

use sqlx::{AnyConnection, Row};
use thwonk_core::run::FileInfo;

use crate::{Result, Store};

impl Store {
    /// A VFS file's bytes. `path` must be normalised (`thwonk_core::vfs::normalize_path`).
    pub async fn read_file(&self, thwonk_id: &str, path: &str) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT content FROM vfs_files WHERE thwonk_id = $1 AND path = $2")
                .bind(thwonk_id)
                .bind(path)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// A VFS file's bytes and when it was last written (ms), for serving it with
    /// `Last-Modified`. `path` must be normalised.
    pub async fn read_file_stamped(
        &self,
        thwonk_id: &str,
        path: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        let row = sqlx::query(
            "SELECT content, updated_at_ms FROM vfs_files WHERE thwonk_id = $1 AND path = $2",
        )
        .bind(thwonk_id)
        .bind(path)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some((
                row.try_get("content")?,
                row.try_get("updated_at_ms")?,
            ))),
        }
    }

    /// Files under a normalised prefix (`thwonk_core::vfs::normalize_prefix`; empty lists
    /// every file), ordered by path. The prefix is a string prefix: `arch` matches
    /// `archive/1.txt`; pass `archive/` for the folder only.
    pub async fn list_files(&self, thwonk_id: &str, prefix: &str) -> Result<Vec<FileInfo>> {
        // A range scan on the primary key instead of LIKE, which would need escaping and is
        // case-insensitive on SQLite.
        let found = sqlx::query(
            "SELECT path, size, updated_at_ms FROM vfs_files \
             WHERE thwonk_id = $1 AND path >= $2 AND ($3 IS NULL OR path < $3) ORDER BY path",
        )
        .bind(thwonk_id)
        .bind(prefix)
        .bind(prefix_end(prefix))
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|row| {
                let size: i64 = row.try_get("size")?;
                Ok(FileInfo {
                    path: row.try_get("path")?,
                    size: size.max(0) as u64,
                    updated_at_ms: row.try_get("updated_at_ms")?,
                })
            })
            .collect()
    }

    /// Write a file outside a run (operator tools).
    pub async fn put_file(
        &self,
        thwonk_id: &str,
        path: &str,
        content: &[u8],
        now_ms: i64,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        Self::upsert_file(&mut conn, thwonk_id, path, content, now_ms).await
    }

    /// Delete a file outside a run; false when it did not exist.
    pub async fn delete_file(&self, thwonk_id: &str, path: &str) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        Self::remove_file(&mut conn, thwonk_id, path).await
    }

    /// Create or replace a file (also a run's `VfsOp::Write`, inside its transaction).
    pub(crate) async fn upsert_file(
        conn: &mut AnyConnection,
        thwonk_id: &str,
        path: &str,
        content: &[u8],
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO vfs_files (thwonk_id, path, content, size, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (thwonk_id, path) DO UPDATE SET content = excluded.content, \
             size = excluded.size, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(thwonk_id)
        .bind(path)
        .bind(content)
        .bind(content.len() as i64)
        .bind(now_ms)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Delete a file (also a run's `VfsOp::Delete`); false when it did not exist.
    pub(crate) async fn remove_file(
        conn: &mut AnyConnection,
        thwonk_id: &str,
        path: &str,
    ) -> Result<bool> {
        let gone = sqlx::query("DELETE FROM vfs_files WHERE thwonk_id = $1 AND path = $2")
            .bind(thwonk_id)
            .bind(path)
            .execute(conn)
            .await?
            .rows_affected();
        Ok(gone > 0)
    }
}

/// The least string greater than every string that starts with `prefix`, or `None` when
/// there is none (empty prefix, or only `char::MAX`s). In code point order, which is UTF-8
/// byte order, which both engines use for `path`.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_string_past_the_prefix() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a"), Some("b".into()));
        assert_eq!(prefix_end("archive/"), Some("archive0".into()));
        assert_eq!(prefix_end("a\u{D7FF}"), Some("a\u{E000}".into()));
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }
}
