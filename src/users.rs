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
    }
    Ok(())
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
