//! Which addresses an owner (an API user who is not an admin) may claim for a thwonk, and how
//! many thwonks an owner may have (issue 13 items 1 and 2). Admins are not limited: they run
//! the server, and `postmaster@` is theirs to give.
//!
//! An owner may claim an address only when:
//! - its domain is a domain name, not an address literal (`x@[127.0.0.1]`) nor an IP address;
//! - its local part is not reserved (`smtp.reserved_local_parts`, with or without a `+tag`,
//!   and the VERP bounce space `bounces+…` always): mail to `postmaster@` or `abuse@` must
//!   reach the server's people, and `bounces+…` is how bounces find their message;
//! - its domain is in `smtp.domains` or among the domains an admin granted the owner
//!   (`thwonk user domains add`). An empty `smtp.domains` (the ingress then serves any domain
//!   that has a thwonk) gives owners no domain at all: otherwise any owner could claim
//!   `ceo@bank.example`, and mail would leave with that `From:`;
//! - the owner has fewer than `budgets.thwonks_per_owner` thwonks.

use thwonk_core::{Address, Config};
use thwonk_store::{Store, StoreError};

/// Why an owner may not claim an address: a stable code and a message for the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRefused {
    /// `address_not_allowed` or `thwonk_limit`.
    pub code: &'static str,
    pub message: String,
}

impl ClaimRefused {
    fn address(message: String) -> Self {
        ClaimRefused {
            code: "address_not_allowed",
            message,
        }
    }
}

/// Whether the owner `user_id` may create a thwonk at `address`; `Ok(Some(why))` when not.
pub async fn owner_may_claim(
    store: &Store,
    config: &Config,
    user_id: &str,
    address: &Address,
) -> Result<Option<ClaimRefused>, StoreError> {
    let domain = address.domain();
    if domain.starts_with('[') || domain.parse::<std::net::IpAddr>().is_ok() {
        return Ok(Some(ClaimRefused::address(format!(
            "{address}: an address literal cannot be a thwonk's address; use a domain name"
        ))));
    }
    if config.smtp.is_reserved_local_part(address.local()) {
        return Ok(Some(ClaimRefused::address(format!(
            "{address}: the local part {:?} is reserved for the server's administrators",
            address.local()
        ))));
    }
    let ours = config.smtp.domains.iter().any(|d| d == domain);
    if !ours
        && !store
            .user_domains(user_id)
            .await?
            .iter()
            .any(|d| d == domain)
    {
        let message = if config.smtp.domains.is_empty() {
            format!(
                "{address}: owners may create thwonks only in the server's domains, and none \
                 is set; the administrator must set smtp.domains (or grant you {domain} with \
                 `thwonk user domains add`)"
            )
        } else {
            format!(
                "{address}: {domain} is not one of this server's domains ({}); ask an \
                 administrator to grant it to you",
                config.smtp.domains.join(", ")
            )
        };
        return Ok(Some(ClaimRefused::address(message)));
    }
    let cap = config.budgets.thwonks_per_owner;
    if store.count_thwonks_owned_by(user_id).await? >= cap as i64 {
        return Ok(Some(ClaimRefused {
            code: "thwonk_limit",
            message: format!(
                "you have {cap} thwonks, the most one owner may have (budgets.thwonks_per_owner); \
                 delete one first"
            ),
        }));
    }
    Ok(None)
}
