//! Users, API tokens and who owns a thwonk (the HTTP API's auth).
//!
//! A token's secret never reaches the database: the API hashes what a request presents and
//! looks the hash up ([`Store::user_by_token_hash`]), so comparison is an index lookup, not a
//! byte-by-byte compare an attacker could time. Revoked tokens stay, marked, for the record.

use sqlx::Row;
use sqlx::any::AnyRow;
use thwonk_core::Address;
use thwonk_core::ids::new_id;
use thwonk_core::time::now_ms;

use crate::rows::{self, thwonk_columns};
use crate::{Result, Store, StoreError, Thwonk};

/// How stale a token's recorded last use may get before a request records it again, ms.
const TOKEN_USE_RESOLUTION_MS: i64 = 60_000;

/// What a user may do: `admin` everything, `owner` only their own thwonks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    fn parse(s: &str) -> Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            other => Err(StoreError::Corrupt(format!("users.role {other:?}"))),
        }
    }
}

/// A user of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at_ms: i64,
}

/// An API token's record (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    /// The user's name, for listings.
    pub user_name: String,
    pub name: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

fn user(row: &AnyRow) -> Result<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::parse(&role)?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn token(row: &AnyRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        user_name: row.try_get("user_name")?,
        name: row.try_get("name")?,
        created_at_ms: row.try_get("created_at_ms")?,
        last_used_at_ms: row.try_get("last_used_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
    })
}

impl Store {
    /// Add a user. A name already taken is `Conflict`.
    pub async fn add_user(&self, name: &str, role: Role) -> Result<User> {
        let u = User {
            id: new_id(),
            name: name.to_string(),
            role,
            created_at_ms: now_ms(),
        };
        let added = sqlx::query(
            "INSERT INTO users (id, name, role, created_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&u.id)
        .bind(&u.name)
        .bind(role.as_str())
        .bind(u.created_at_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if added == 0 {
            return Err(StoreError::Conflict(format!("user {name:?} exists")));
        }
        Ok(u)
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        sqlx::query("SELECT id, name, role, created_at_ms FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user)
            .transpose()
    }

    /// Record a new token for a user; `hash` is the SHA-256 (hex) of its secret.
    pub async fn add_token(&self, user_id: &str, name: &str, hash: &str) -> Result<ApiToken> {
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, hash, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(name)
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.token(&id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token {id}")))
    }

    async fn token(&self, id: &str) -> Result<Option<ApiToken>> {
        sqlx::query(
            "SELECT t.id, t.user_id, u.name AS user_name, t.name, t.created_at_ms, \
             t.last_used_at_ms, t.revoked_at_ms \
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(token)
        .transpose()
    }

    /// Every token, oldest first (revoked ones too, marked).
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        sqlx::query(
            "SELECT t.id, t.user_id, u.name AS user_name, t.name, t.created_at_ms, \
             t.last_used_at_ms, t.revoked_at_ms \
             FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.created_at_ms, t.id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(token)
        .collect()
    }

    /// Revoke a token; false when there is no such token or it was already revoked.
    pub async fn revoke_token(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
    }

    /// The user a live (not revoked) token belongs to, found by its hash; records its use (to
    /// the minute).
    pub async fn user_by_token_hash(&self, hash: &str) -> Result<Option<User>> {
        let found = sqlx::query(
            "SELECT u.id, u.name, u.role, u.created_at_ms, t.id AS token_id, \
             t.last_used_at_ms FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.hash = $1 AND t.revoked_at_ms IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = found else {
            return Ok(None);
        };
        let token_id: String = row.try_get("token_id")?;
        let last_used: Option<i64> = row.try_get("last_used_at_ms")?;
        let now = now_ms();
        // A write per request would queue every API call behind the runners' commits on
        // SQLite; the last use to the minute is all a listing needs.
        if last_used.is_none_or(|t| now - t >= TOKEN_USE_RESOLUTION_MS) {
            sqlx::query("UPDATE api_tokens SET last_used_at_ms = $1 WHERE id = $2")
                .bind(now)
                .bind(&token_id)
                .execute(&self.pool)
                .await?;
        }
        user(&row).map(Some)
    }

    /// Who owns a thwonk (`None`: nobody, only admins see it).
    pub async fn thwonk_owner(&self, thwonk_id: &str) -> Result<Option<String>> {
        let owner: Option<Option<String>> =
            sqlx::query_scalar("SELECT owner_id FROM thwonks WHERE id = $1")
                .bind(thwonk_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(owner.flatten())
    }

    /// Create an empty thwonk (no script yet) owned by `owner_id` (`None`: admins only),
    /// unless the address is taken. True when this call created it. Ownership is settled
    /// before any version is written, so two users racing for one address cannot both deploy.
    pub async fn create_thwonk(&self, address: &Address, owner_id: Option<&str>) -> Result<bool> {
        let created = sqlx::query(
            "INSERT INTO thwonks (id, address, status, owner_id, created_at_ms) \
             VALUES ($1, $2, 'active', $3, $4) ON CONFLICT (address) DO NOTHING",
        )
        .bind(new_id())
        .bind(address.as_str())
        .bind(owner_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(created == 1)
    }

    /// The thwonks a user owns, ordered by address.
    pub async fn list_thwonks_owned_by(&self, user_id: &str) -> Result<Vec<Thwonk>> {
        sqlx::query(concat!(
            "SELECT ",
            thwonk_columns!(),
            " FROM thwonks WHERE owner_id = $1 ORDER BY address"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::thwonk)
        .collect()
    }
}
