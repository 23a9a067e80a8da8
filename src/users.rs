//! `thwonk user` and `thwonk token`: the HTTP API's users and tokens, in the database
//! directly (a running daemon sees them at once: tokens are looked up per request).

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use thwonk_core::Config;
use thwonk_store::Role;

#[derive(Subcommand)]
pub enum UserAction {
    /// Add a user: an owner (sees only the thwonks it creates), or with --admin an admin.
    Add {
        name: String,
        #[arg(long)]
        admin: bool,
    },
    /// Domains besides smtp.domains where an owner may create thwonks.
    Domains {
        #[command(subcommand)]
        action: DomainAction,
    },
}

#[derive(Subcommand)]
pub enum DomainAction {
    /// Grant a user a domain (mail for it must reach this server: add it to smtp.domains too,
    /// or the ingress accepts it only while a thwonk has it, when smtp.domains is empty).
    Add { user: String, domain: String },
    /// Take a domain back (thwonks already there stay).
    Remove { user: String, domain: String },
    /// The domains granted to a user.
    List { user: String },
}

#[derive(Subcommand)]
pub enum TokenAction {
    /// Create a token for a user and print it: it is shown this once and stored only hashed.
    Create {
        #[arg(long)]
        user: String,
        /// A label, to tell a user's tokens apart.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by its id (from `token list`).
    Revoke { id: String },
}

pub async fn user(config: &Config, action: UserAction) -> Result<()> {
    let store = crate::manage::open(config).await?;
    match action {
        UserAction::Add { name, admin } => {
            if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_whitespace) {
                bail!("user names are 1 to 64 characters without spaces");
            }
            let role = if admin { Role::Admin } else { Role::Owner };
            let u = store.add_user(&name, role).await?;
            println!("added user {} ({}), id {}", u.name, u.role.as_str(), u.id);
        }
        UserAction::Domains { action } => domains(&store, action).await?,
    }
    Ok(())
}

async fn domains(store: &thwonk_store::Store, action: DomainAction) -> Result<()> {
    let user = |name: String| async move {
        store
            .user_by_name(&name)
            .await?
            .with_context(|| format!("no user {name:?}: thwonk user add {name}"))
    };
    match action {
        DomainAction::Add { user: name, domain } => {
            let u = user(name).await?;
            let domain = checked_domain(&domain)?;
            if store.add_user_domain(&u.id, &domain).await? {
                println!("{} may create thwonks in {domain}", u.name);
            } else {
                println!("{} already has {domain}", u.name);
            }
        }
        DomainAction::Remove { user: name, domain } => {
            let u = user(name).await?;
            let domain = domain.trim().to_lowercase();
            if !store.remove_user_domain(&u.id, &domain).await? {
                bail!("{} has no domain {domain}", u.name);
            }
            println!("{} no longer has {domain}", u.name);
        }
        DomainAction::List { user: name } => {
            let u = user(name).await?;
            for d in store.user_domains(&u.id).await? {
                println!("{d}");
            }
        }
    }
    Ok(())
}

/// A domain name an admin may grant, lower case: not an address literal, not an IP address.
fn checked_domain(raw: &str) -> Result<String> {
    let d = raw.trim().trim_end_matches('.').to_lowercase();
    let valid = !d.is_empty()
        && d.len() <= 253
        && d.parse::<std::net::IpAddr>().is_err()
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid {
        bail!("{raw:?} is not a domain name (letters, digits, hyphens and dots)");
    }
    Ok(d)
}

pub async fn token(config: &Config, action: TokenAction) -> Result<()> {
    let store = crate::manage::open(config).await?;
    match action {
        TokenAction::Create { user, name } => {
            let u = store
                .user_by_name(&user)
                .await?
                .with_context(|| format!("no user {user:?}: thwonk user add {user}"))?;
            let (secret, hash) = thwonk_api::auth::new_token();
            let t = store.add_token(&u.id, &name, &hash).await?;
            eprintln!(
                "token {} for {} ({}); it is shown once, keep it now:",
                t.id,
                u.name,
                u.role.as_str()
            );
            println!("{secret}");
        }
        TokenAction::List => {
            for t in store.list_tokens().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    t.id,
                    t.user_name,
                    t.name,
                    if t.revoked_at_ms.is_some() {
                        "revoked"
                    } else {
                        "live"
                    }
                );
            }
        }
        TokenAction::Revoke { id } => {
            if !store.revoke_token(&id).await? {
                bail!("no live token {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}
