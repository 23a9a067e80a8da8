//! Rules addresses and their script versions.

use thwonk_core::Address;
use thwonk_core::ids::new_id;
use thwonk_core::status::ThwonkStatus;
use thwonk_core::time::now_ms;

use crate::rows::{self, script_columns, thwonk_columns};
use crate::{Deployed, Result, ScriptVersion, Store, StoreError, Thwonk};

impl Store {
    /// Create the thwonk if missing, store `source` as its next version and activate it.
    ///
    /// One transaction. Concurrent deploys to one address get consecutive versions: the
    /// thwonk row is locked (PostgreSQL: row lock; SQLite: `BEGIN IMMEDIATE`) before the next
    /// version number is read. A `disabled` thwonk stays disabled.
    pub async fn deploy_script(
        &self,
        address: &Address,
        source: &str,
        schedule: Option<&str>,
    ) -> Result<Deployed> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;

        let created = sqlx::query(
            "INSERT INTO thwonks (id, address, status, created_at_ms) \
             VALUES ($1, $2, 'active', $3) ON CONFLICT (address) DO NOTHING",
        )
        .bind(new_id())
        .bind(address.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;

        // Writing the row first takes its lock, so the version read below is the latest.
        sqlx::query("UPDATE thwonks SET schedule = $1 WHERE address = $2")
            .bind(schedule)
            .bind(address.as_str())
            .execute(&mut *tx)
            .await?;
        let thwonk_id: String = sqlx::query_scalar("SELECT id FROM thwonks WHERE address = $1")
            .bind(address.as_str())
            .fetch_one(&mut *tx)
            .await?;

        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM script_versions WHERE thwonk_id = $1",
        )
        .bind(&thwonk_id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO script_versions (thwonk_id, version, source, schedule, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&thwonk_id)
        .bind(version)
        .bind(source)
        .bind(schedule)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE thwonks SET active_version = $1 WHERE id = $2")
            .bind(version)
            .bind(&thwonk_id)
            .execute(&mut *tx)
            .await?;

        let row = sqlx::query(concat!(
            "SELECT ",
            thwonk_columns!(),
            " FROM thwonks WHERE id = $1"
        ))
        .bind(&thwonk_id)
        .fetch_one(&mut *tx)
        .await?;
        let thwonk = rows::thwonk(&row)?;
        tx.commit().await?;
        Ok(Deployed {
            thwonk,
            version,
            created,
        })
    }

    pub async fn thwonk_by_address(&self, address: &Address) -> Result<Option<Thwonk>> {
        sqlx::query(concat!(
            "SELECT ",
            thwonk_columns!(),
            " FROM thwonks WHERE address = $1"
        ))
        .bind(address.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::thwonk)
        .transpose()
    }

    /// Whether any thwonk (in any state) has an address at `domain` (lower case, as
    /// addresses are stored). With no `smtp.domains` configured, these are the domains the
    /// ingress accepts mail for.
    pub async fn domain_has_thwonks(&self, domain: &str) -> Result<bool> {
        let mut pattern = String::from("%@");
        for c in domain.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        let found = sqlx::query("SELECT 1 FROM thwonks WHERE address LIKE $1 ESCAPE '\\' LIMIT 1")
            .bind(pattern)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    pub async fn thwonk(&self, id: &str) -> Result<Option<Thwonk>> {
        sqlx::query(concat!(
            "SELECT ",
            thwonk_columns!(),
            " FROM thwonks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::thwonk)
        .transpose()
    }

    /// Every thwonk, ordered by address.
    pub async fn list_thwonks(&self) -> Result<Vec<Thwonk>> {
        sqlx::query(concat!(
            "SELECT ",
            thwonk_columns!(),
            " FROM thwonks ORDER BY address"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::thwonk)
        .collect()
    }

    /// The thwonk's active script version (`None` when nothing was deployed or the thwonk
    /// does not exist).
    pub async fn active_script(&self, thwonk_id: &str) -> Result<Option<ScriptVersion>> {
        sqlx::query(concat!(
            "SELECT ",
            script_columns!(),
            " FROM script_versions s WHERE s.thwonk_id = $1 \
             AND s.version = (SELECT t.active_version FROM thwonks t WHERE t.id = $1)"
        ))
        .bind(thwonk_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::script)
        .transpose()
    }

    /// One version of a thwonk's script, active or not.
    pub async fn script_version(
        &self,
        thwonk_id: &str,
        version: i64,
    ) -> Result<Option<ScriptVersion>> {
        sqlx::query(concat!(
            "SELECT ",
            script_columns!(),
            " FROM script_versions WHERE thwonk_id = $1 AND version = $2"
        ))
        .bind(thwonk_id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::script)
        .transpose()
    }

    /// Set a thwonk's status: active (accepts mail) or disabled. `NotFound` if no such
    /// thwonk.
    pub async fn set_thwonk_status(&self, thwonk_id: &str, status: ThwonkStatus) -> Result<()> {
        let done = sqlx::query("UPDATE thwonks SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(thwonk_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if done == 0 {
            return Err(StoreError::NotFound(format!("thwonk {thwonk_id}")));
        }
        Ok(())
    }

    /// Every version of a thwonk's script, newest first.
    pub async fn list_script_versions(&self, thwonk_id: &str) -> Result<Vec<ScriptVersion>> {
        sqlx::query(concat!(
            "SELECT ",
            script_columns!(),
            " FROM script_versions WHERE thwonk_id = $1 ORDER BY version DESC"
        ))
        .bind(thwonk_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::script)
        .collect()
    }

    /// Make an existing version the active one again (and its schedule the thwonk's).
    /// `NotFound` when the thwonk has no such version. Returns the thwonk as it is now.
    pub async fn activate_version(&self, thwonk_id: &str, version: i64) -> Result<Thwonk> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE thwonks SET active_version = s.version, schedule = s.schedule \
             FROM (SELECT version, schedule FROM script_versions \
                   WHERE thwonk_id = $1 AND version = $2) AS s WHERE thwonks.id = $1",
        )
        .bind(thwonk_id)
        .bind(version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            // Named by its address, what the user knows (not the internal id).
            let address: Option<String> =
                sqlx::query_scalar("SELECT address FROM thwonks WHERE id = $1")
                    .bind(thwonk_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Err(StoreError::NotFound(match address {
                Some(a) => format!("{a} has no version {version}"),
                None => format!("no thwonk {thwonk_id}"),
            }));
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            thwonk_columns!(),
            " FROM thwonks WHERE id = $1"
        ))
        .bind(thwonk_id)
        .fetch_one(&mut *tx)
        .await?;
        let thwonk = rows::thwonk(&row)?;
        tx.commit().await?;
        Ok(thwonk)
    }

    /// Delete a thwonk with everything that is its own (versions, messages, runs, files,
    /// outbox rows, feed operations, ticks). False when it did not exist.
    ///
    /// Rows that point at runs without cascading (messages.run_id, outbox, feed_ops,
    /// schedule_ticks) go first, then the runs, then the thwonk, whose cascade takes the rest.
    pub async fn delete_thwonk(&self, thwonk_id: &str) -> Result<bool> {
        use sqlx::Row;
        let mut tx = self.begin_write().await?;
        // Its messages' bodies, deleted after the messages unless another thwonk's message
        // of the same delivery still uses them.
        let bodies: Vec<String> =
            sqlx::query("SELECT DISTINCT body_id FROM messages WHERE thwonk_id = $1")
                .bind(thwonk_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.try_get("body_id"))
                .collect::<std::result::Result<_, _>>()?;
        for sql in [
            "DELETE FROM schedule_ticks WHERE thwonk_id = $1",
            "DELETE FROM feed_ops WHERE thwonk_id = $1",
            "DELETE FROM outbox WHERE thwonk_id = $1",
            "DELETE FROM messages WHERE thwonk_id = $1",
            "DELETE FROM runs WHERE thwonk_id = $1",
            "DELETE FROM script_versions WHERE thwonk_id = $1",
            "DELETE FROM vfs_files WHERE thwonk_id = $1",
            // Its own budget windows (its owner's stay: deleting a thwonk frees no budget).
            "DELETE FROM budget_counts WHERE scope = 'thwonk' AND scope_id = $1",
        ] {
            sqlx::query(sql).bind(thwonk_id).execute(&mut *tx).await?;
        }
        crate::messages::delete_unused_bodies(&mut tx, &bodies).await?;
        let gone = sqlx::query("DELETE FROM thwonks WHERE id = $1")
            .bind(thwonk_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone > 0)
    }
}
