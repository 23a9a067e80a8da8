//! VERP bounce addresses: `bounces+TOKEN@domain`.
//!
//! Every message Thwonk sends leaves with such an envelope sender (see
//! [`compose`](crate::compose())), `TOKEN` being a random token stored on its outbox row. A
//! bounce for it comes back to that address, and the token names the row without trusting
//! anything else in the bounce. The token is random (128 bits), not derived from the row id,
//! so nobody can forge a bounce for a row they did not receive mail from.
//!
//! The local parts `bounces+…` are reserved: no thwonk may have one.

/// The local-part prefix of every bounce address (compared case-insensitively).
pub const BOUNCE_PREFIX: &str = "bounces+";

/// Longest token accepted back (ours are 32 hex digits); keeps lookups on junk cheap.
const TOKEN_MAX: usize = 64;

/// `bounces+{token}@{domain}`, lower case.
pub fn bounce_address(token: &str, domain: &str) -> String {
    format!("{BOUNCE_PREFIX}{token}@{domain}").to_lowercase()
}

/// Whether `address` (`local@domain`) is a bounce address of any domain, well-formed token or
/// not. Mail from such an address is itself a bounce: it never gets a DSN.
pub fn is_bounce_address(address: &str) -> bool {
    let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
    local.len() >= BOUNCE_PREFIX.len()
        && local.as_bytes()[..BOUNCE_PREFIX.len()].eq_ignore_ascii_case(BOUNCE_PREFIX.as_bytes())
}

/// The token of a bounce address (lower case), if `address` is one with a well-formed token
/// (ASCII letters and digits only).
pub fn bounce_token(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    if domain.is_empty() || !is_bounce_address(local) {
        return None;
    }
    let token = &local[BOUNCE_PREFIX.len()..];
    let ok = !token.is_empty()
        && token.len() <= TOKEN_MAX
        && token.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| token.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_addresses_round_trip() {
        let a = bounce_address("0f3a9c", "Example.org");
        assert_eq!(a, "bounces+0f3a9c@example.org");
        assert_eq!(bounce_token(&a).as_deref(), Some("0f3a9c"));
        assert_eq!(
            bounce_token("BOUNCES+0F3A@example.org").as_deref(),
            Some("0f3a")
        );
    }

    #[test]
    fn only_well_formed_tokens_are_read() {
        assert_eq!(bounce_token("bounces+@example.org"), None);
        assert_eq!(bounce_token("bounces+a.b@example.org"), None);
        assert_eq!(bounce_token("bounces+abc"), None);
        assert_eq!(bounce_token("bounces+abc@"), None);
        assert_eq!(bounce_token("list@example.org"), None);
        assert_eq!(
            bounce_token(&format!("bounces+{}@x.y", "a".repeat(65))),
            None
        );
    }

    #[test]
    fn bounce_addresses_are_recognised_whatever_the_token() {
        assert!(is_bounce_address("bounces+x@example.org"));
        assert!(is_bounce_address("Bounces+@example.org"));
        assert!(!is_bounce_address("bounces@example.org"));
        assert!(!is_bounce_address("alice@example.org"));
        assert!(!is_bounce_address(""));
    }
}
