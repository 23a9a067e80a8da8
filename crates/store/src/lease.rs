//! The run lease: at most one runner (process or host) runs a thwonk's scripts at a time, so
//! its messages are processed in order and its VFS sees one writer. The lease lives on the
//! thwonk row and expires by itself, so a runner that dies holding it blocks the thwonk only
//! until `lease_until_ms`.

use crate::{Result, Store, StoreError};

impl Store {
    /// Take (or renew) the thwonk's run lease for `owner` until `now_ms + lease_ms`. False
    /// when another owner holds an unexpired lease. `NotFound` if the thwonk does not exist.
    ///
    /// One conditional `UPDATE`, atomic on both engines: it succeeds when there is no lease,
    /// the lease expired (`lease_until_ms < now_ms`), or `owner` already holds it. Owners must
    /// be unique per runner process (a fresh id at start), and hosts' clocks roughly in step.
    pub async fn try_lease(
        &self,
        thwonk_id: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE thwonks SET lease_owner = $1, lease_until_ms = $2 \
             WHERE id = $3 \
             AND (lease_owner IS NULL OR lease_until_ms IS NULL \
                  OR lease_until_ms < $4 OR lease_owner = $1)",
        )
        .bind(owner)
        .bind(now_ms.saturating_add(lease_ms))
        .bind(thwonk_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if !taken && self.thwonk(thwonk_id).await?.is_none() {
            return Err(StoreError::NotFound(format!("thwonk {thwonk_id}")));
        }
        Ok(taken)
    }

    /// Give the lease up (only if `owner` holds it).
    pub async fn release_lease(&self, thwonk_id: &str, owner: &str) -> Result<()> {
        sqlx::query(
            "UPDATE thwonks SET lease_owner = NULL, lease_until_ms = NULL \
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(thwonk_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
