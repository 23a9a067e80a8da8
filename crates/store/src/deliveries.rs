//! Per-recipient delivery state and bounce records.
//!
//! An outbox row has one `outbox_recipients` row per envelope recipient. Egress attempts only
//! the recipients still `queued`, and records each attempt with [`Store::record_attempt`]: the
//! recipients' new states, the row's outcome, and (when egress gives up on recipients) the DSN
//! to send as a new outbox row, or bounce records, all in one transaction guarded on the row
//! still being `queued`. So a recipient that took the message is never sent it again, and a
//! row is failed together with its DSN or with neither.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use thwonk_core::ids::new_id;
use thwonk_core::status::DeliveryStatus;

use crate::rows::{self, outbox_columns};
use crate::{NewOutbox, OutboxRow, Result, Store};

/// One recipient of an outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientState {
    pub rcpt: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// The remote server's last answer, or what failed.
    pub last_reply: Option<String>,
    pub updated_at_ms: i64,
}

/// What one attempt did to one recipient (its `attempts` goes up by one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientUpdate {
    pub rcpt: String,
    /// `Queued` (try again), `Sent` or `Failed`.
    pub status: DeliveryStatus,
    pub reply: String,
}

/// What one attempt did to the outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    /// Every recipient has the message.
    Sent,
    /// Some recipients are still `queued`: `attempts += 1`, the error, the next attempt's time.
    Retry {
        error: String,
        next_attempt_at_ms: i64,
    },
    /// No recipient is left to try and at least one failed: `attempts += 1`, the error.
    Failed { error: String },
}

/// One delivery attempt, recorded in one transaction by [`Store::record_attempt`].
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outbox_id: String,
    pub recipients: Vec<RecipientUpdate>,
    pub outcome: RowOutcome,
    /// A DSN to queue as a new outbox row (same run and thwonk as the failed row).
    pub dsn: Option<NewOutbox>,
    /// Bounce records to add (egress gave up on recipients and sends no DSN).
    pub bounces: Vec<NewBounce>,
    pub now_ms: i64,
}

/// A bounce to record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewBounce {
    pub outbox_id: String,
    /// `remote` (a DSN came back to the bounce address) or `local` (egress gave up).
    pub source: String,
    pub rcpt: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub remote_mta: Option<String>,
    pub diagnostic: Option<String>,
    /// For `remote`: the envelope sender of the bounce (usually empty: `<>`).
    pub reported_by: Option<String>,
    pub received_at_ms: i64,
}

/// A recorded bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    pub id: String,
    pub bounce: NewBounce,
}

macro_rules! bounce_columns {
    () => {
        "b.id, b.outbox_id, b.source, b.rcpt, b.action, b.status, b.remote_mta, b.diagnostic, \
         b.reported_by, b.received_at_ms"
    };
}

impl Store {
    /// Insert an outbox row (`queued`, due now) and its recipients, inside `tx`.
    pub(crate) async fn insert_outbox(
        tx: &mut Transaction<'static, Any>,
        run_id: &str,
        thwonk_id: &str,
        mail: &NewOutbox,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox (id, run_id, thwonk_id, mail_from, rcpt_to, raw, \
             status, attempts, next_attempt_at_ms, created_at_ms, bounce_token) \
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $7, $8)",
        )
        .bind(&mail.id)
        .bind(run_id)
        .bind(thwonk_id)
        .bind(&mail.mail_from)
        .bind(rows::to_json(&mail.rcpt_to)?)
        .bind(&mail.raw[..])
        .bind(now)
        .bind(mail.bounce_token.as_deref())
        .execute(&mut **tx)
        .await?;
        for rcpt in &mail.rcpt_to {
            Self::insert_recipient(tx, &mail.id, rcpt, now).await?;
        }
        Ok(())
    }

    async fn insert_recipient(
        tx: &mut Transaction<'static, Any>,
        outbox_id: &str,
        rcpt: &str,
        now: i64,
    ) -> Result<()> {
        // A recipient listed twice is one recipient.
        sqlx::query(
            "INSERT INTO outbox_recipients (outbox_id, rcpt, status, attempts, updated_at_ms) \
             VALUES ($1, $2, 'queued', 0, $3) ON CONFLICT (outbox_id, rcpt) DO NOTHING",
        )
        .bind(outbox_id)
        .bind(rcpt)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The recipients of an outbox row, by address. A row from before per-recipient state
    /// gets its recipients (`queued`) on first read; empty if there is no such row.
    pub async fn outbox_recipients(&self, outbox_id: &str) -> Result<Vec<RecipientState>> {
        let found = self.select_recipients(outbox_id).await?;
        if !found.is_empty() {
            return Ok(found);
        }
        let Some(row) = self.outbox(outbox_id).await? else {
            return Ok(Vec::new());
        };
        let mut tx = self.begin_write().await?;
        let now = thwonk_core::time::now_ms();
        for rcpt in &row.rcpt_to {
            Self::insert_recipient(&mut tx, outbox_id, rcpt, now).await?;
        }
        tx.commit().await?;
        self.select_recipients(outbox_id).await
    }

    async fn select_recipients(&self, outbox_id: &str) -> Result<Vec<RecipientState>> {
        let found = sqlx::query(
            "SELECT rcpt, status, attempts, last_reply, updated_at_ms FROM outbox_recipients \
             WHERE outbox_id = $1 ORDER BY rcpt",
        )
        .bind(outbox_id)
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|r| {
                Ok(RecipientState {
                    rcpt: r.try_get("rcpt")?,
                    status: rows::word(r, "status", "outbox_recipients", DeliveryStatus::parse)?,
                    attempts: r.try_get("attempts")?,
                    last_reply: r.try_get("last_reply")?,
                    updated_at_ms: r.try_get("updated_at_ms")?,
                })
            })
            .collect()
    }

    /// Record one delivery attempt (see [`Attempt`]) in one transaction, guarded on the row
    /// being `queued`: false, and nothing written, if it was not (another taker recorded it).
    pub async fn record_attempt(&self, attempt: &Attempt) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let id = &attempt.outbox_id;
        let guarded = match &attempt.outcome {
            RowOutcome::Sent => sqlx::query(
                "UPDATE outbox SET status = 'sent', sent_at_ms = $1 \
                 WHERE id = $2 AND status = 'queued'",
            )
            .bind(attempt.now_ms)
            .bind(id),
            RowOutcome::Retry {
                error,
                next_attempt_at_ms,
            } => sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $1, \
                 next_attempt_at_ms = $2 WHERE id = $3 AND status = 'queued'",
            )
            .bind(error.as_str())
            .bind(*next_attempt_at_ms)
            .bind(id),
            RowOutcome::Failed { error } => sqlx::query(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1 \
                 WHERE id = $2 AND status = 'queued'",
            )
            .bind(error.as_str())
            .bind(id),
        }
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if guarded == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for r in &attempt.recipients {
            // Only a queued recipient moves: a recipient marked sent stays sent.
            sqlx::query(
                "UPDATE outbox_recipients SET status = $1, attempts = attempts + 1, \
                 last_reply = $2, updated_at_ms = $3 \
                 WHERE outbox_id = $4 AND rcpt = $5 AND status = 'queued'",
            )
            .bind(r.status.as_str())
            .bind(r.reply.as_str())
            .bind(attempt.now_ms)
            .bind(id)
            .bind(r.rcpt.as_str())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(dsn) = &attempt.dsn {
            let owner = sqlx::query("SELECT run_id, thwonk_id FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let run_id: String = owner.try_get("run_id")?;
            let thwonk_id: String = owner.try_get("thwonk_id")?;
            Self::insert_outbox(&mut tx, &run_id, &thwonk_id, dsn, attempt.now_ms).await?;
        }
        for b in &attempt.bounces {
            Self::insert_bounce(&mut tx, b).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The outbox row whose bounce address carries `token`.
    pub async fn outbox_by_bounce_token(&self, token: &str) -> Result<Option<OutboxRow>> {
        sqlx::query(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM outbox WHERE bounce_token = $1"
        ))
        .bind(token)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::outbox)
        .transpose()
    }

    /// Record bounces that arrived as mail, in one transaction; their ids.
    pub async fn insert_bounces(&self, bounces: &[NewBounce]) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let mut ids = Vec::with_capacity(bounces.len());
        for b in bounces {
            ids.push(Self::insert_bounce(&mut tx, b).await?);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn insert_bounce(tx: &mut Transaction<'static, Any>, b: &NewBounce) -> Result<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO bounces (id, outbox_id, source, rcpt, action, status, remote_mta, \
             diagnostic, reported_by, received_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(&b.outbox_id)
        .bind(&b.source)
        .bind(b.rcpt.as_deref())
        .bind(b.action.as_deref())
        .bind(b.status.as_deref())
        .bind(b.remote_mta.as_deref())
        .bind(b.diagnostic.as_deref())
        .bind(b.reported_by.as_deref())
        .bind(b.received_at_ms)
        .execute(&mut **tx)
        .await?;
        Ok(id)
    }

    /// How many bounces that came back as mail (`remote`) the outbox row has, received at
    /// or after `since_ms`: the ingress caps them per bounce token.
    pub async fn count_remote_bounces_since(&self, outbox_id: &str, since_ms: i64) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM bounces \
             WHERE outbox_id = $1 AND source = 'remote' AND received_at_ms >= $2",
        )
        .bind(outbox_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The bounces of one outbox row, oldest first.
    pub async fn bounces_of_outbox(&self, outbox_id: &str) -> Result<Vec<Bounce>> {
        sqlx::query(concat!(
            "SELECT ",
            bounce_columns!(),
            " FROM bounces b WHERE b.outbox_id = $1 ORDER BY b.received_at_ms, b.id"
        ))
        .bind(outbox_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(bounce)
        .collect()
    }

    /// The bounces of every outbox row a run sent, oldest first.
    pub async fn bounces_of_run(&self, run_id: &str) -> Result<Vec<Bounce>> {
        sqlx::query(concat!(
            "SELECT ",
            bounce_columns!(),
            " FROM bounces b JOIN outbox o ON o.id = b.outbox_id WHERE o.run_id = $1 \
             ORDER BY b.received_at_ms, b.id"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(bounce)
        .collect()
    }

    /// Outbox rows a run queued, oldest first (its sends, and DSNs about them).
    pub async fn outbox_of_run(&self, run_id: &str) -> Result<Vec<OutboxRow>> {
        sqlx::query(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM outbox WHERE run_id = $1 ORDER BY created_at_ms, id"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::outbox)
        .collect()
    }
}

fn bounce(row: &AnyRow) -> Result<Bounce> {
    Ok(Bounce {
        id: row.try_get("id")?,
        bounce: NewBounce {
            outbox_id: row.try_get("outbox_id")?,
            source: row.try_get("source")?,
            rcpt: row.try_get("rcpt")?,
            action: row.try_get("action")?,
            status: row.try_get("status")?,
            remote_mta: row.try_get("remote_mta")?,
            diagnostic: row.try_get("diagnostic")?,
            reported_by: row.try_get("reported_by")?,
            received_at_ms: row.try_get("received_at_ms")?,
        },
    })
}
