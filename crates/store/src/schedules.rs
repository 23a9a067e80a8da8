//! Schedule ticks: the guard that a tick's run commits once, and the schedules to register.

use sqlx::Row;

use crate::{Result, Store};

/// An active thwonk's schedule, as its active script exports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThwonkSchedule {
    pub thwonk_id: String,
    pub address: String,
    /// The cron expression (UTC).
    pub schedule: String,
}

impl Store {
    /// Every active thwonk with a schedule, ordered by address.
    pub async fn schedules(&self) -> Result<Vec<ThwonkSchedule>> {
        let rows = sqlx::query(
            "SELECT id, address, schedule FROM thwonks \
             WHERE status = 'active' AND schedule IS NOT NULL AND schedule <> '' ORDER BY address",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ThwonkSchedule {
                    thwonk_id: r.try_get("id")?,
                    address: r.try_get("address")?,
                    schedule: r.try_get("schedule")?,
                })
            })
            .collect()
    }

    /// Whether the tick `at_ms` of the thwonk's schedule has committed a run.
    pub async fn schedule_tick_ran(&self, thwonk_id: &str, at_ms: i64) -> Result<bool> {
        let row =
            sqlx::query("SELECT run_id FROM schedule_ticks WHERE thwonk_id = $1 AND at_ms = $2")
                .bind(thwonk_id)
                .bind(at_ms)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// The id of the thwonk's newest queued message received at or before `at_ms`: what a
    /// schedule tick at `at_ms` processes before it runs.
    pub async fn last_queued_message_at(
        &self,
        thwonk_id: &str,
        at_ms: i64,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT id FROM messages WHERE thwonk_id = $1 AND status = 'queued' \
             AND received_at_ms <= $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(thwonk_id)
        .bind(at_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Record the tick in the run's commit transaction; false when it was already recorded
    /// (another delivery of the tick's job committed first).
    pub(crate) async fn insert_schedule_tick(
        conn: &mut sqlx::AnyConnection,
        thwonk_id: &str,
        at_ms: i64,
        run_id: &str,
    ) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO schedule_ticks (thwonk_id, at_ms, run_id) VALUES ($1, $2, $3) \
             ON CONFLICT (thwonk_id, at_ms) DO NOTHING",
        )
        .bind(thwonk_id)
        .bind(at_ms)
        .bind(run_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
