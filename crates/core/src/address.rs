//! Rules addresses: `local@domain`, compared case-insensitively.
//!
//! Addresses are normalised to lower case at every boundary (SMTP, CLI, API), so that
//! `List@Example.ORG` and `list@example.org` are one thwonk.

use std::fmt;

/// A validated, lower-cased mail address.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Address(String);

/// Why a string is not an address we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address {0:?} has no '@'")]
    NoAt(String),
    #[error("address {0:?} has an empty local part or domain")]
    Empty(String),
    #[error("address {0:?} is longer than 254 bytes")]
    TooLong(String),
    #[error(
        "address {0:?} contains a character not allowed in an address (space, control, <, >, or a second '@')"
    )]
    BadChar(String),
}

impl Address {
    /// Parse and normalise an address (surrounding angle brackets and white space are removed).
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let t = s.trim();
        let t = t
            .strip_prefix('<')
            .and_then(|x| x.strip_suffix('>'))
            .unwrap_or(t);
        if t.len() > 254 {
            return Err(AddressError::TooLong(s.to_string()));
        }
        let (local, domain) = t
            .rsplit_once('@')
            .ok_or_else(|| AddressError::NoAt(s.to_string()))?;
        if local.is_empty() || domain.is_empty() {
            return Err(AddressError::Empty(s.to_string()));
        }
        if t.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
            || domain.contains('@')
            || local.contains('@')
        {
            return Err(AddressError::BadChar(s.to_string()));
        }
        Ok(Address(t.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or("")
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Address::parse(&s)
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.0
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lowercased_and_unbracketed() {
        let a = Address::parse(" <List@Example.ORG> ").unwrap();
        assert_eq!(a.as_str(), "list@example.org");
        assert_eq!(a.local(), "list");
        assert_eq!(a.domain(), "example.org");
    }

    #[test]
    fn bad_addresses_are_refused() {
        assert!(matches!(
            Address::parse("nobody"),
            Err(AddressError::NoAt(_))
        ));
        assert!(matches!(
            Address::parse("@x.org"),
            Err(AddressError::Empty(_))
        ));
        assert!(matches!(Address::parse("a@"), Err(AddressError::Empty(_))));
        assert!(matches!(
            Address::parse("a b@x.org"),
            Err(AddressError::BadChar(_))
        ));
        assert!(matches!(
            Address::parse("a@b@x.org"),
            Err(AddressError::BadChar(_))
        ));
        let long = format!("{}@x.org", "a".repeat(260));
        assert!(matches!(
            Address::parse(&long),
            Err(AddressError::TooLong(_))
        ));
    }
}
