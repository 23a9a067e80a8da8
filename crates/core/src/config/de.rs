//! How the typed settings are spelt in TOML and in `THWONK_*` variables.
//!
//! The file keeps its historical shape (`lease_ms = 30000`, `url = ""`, `listen =
//! "127.0.0.1:2525"`) while the structs hold parsed values (`Duration`, `Option`,
//! `SocketAddr`). Each codec here is used with `#[serde(with = "...")]` and writes back the
//! same shape, because the env overrides learn each key's type from the serialised defaults.

use serde::{Deserialize, Deserializer, Serializer};
use std::net::SocketAddr;
use std::time::Duration;

/// The refusal of a listen address, the same for every `*.listen` key.
fn bad_listen<E: serde::de::Error>(v: &str, why: &str) -> E {
    E::custom(format!(
        "{v:?} is not an IP:port or host:port address (e.g. 127.0.0.1:2525 or \
         localhost:2525){why}"
    ))
}

/// A listen address: `IP:port` as written, or `host:port` resolved once, at load. A name
/// with several addresses listens on its first IPv4 one (else its first IPv6 one), so that
/// `localhost:2525` means 127.0.0.1 as people expect.
fn parse_listen<E: serde::de::Error>(v: &str) -> Result<SocketAddr, E> {
    if let Ok(a) = v.parse() {
        return Ok(a);
    }
    // Only `host:port` is looked up: a bare port or a bare name is a mistake, not a name.
    let Some((host, port)) = v.rsplit_once(':') else {
        return Err(bad_listen(v, ""));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad_listen(v, ""));
    }
    let found: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(v)
        .map_err(|e| bad_listen(v, &format!(": {host:?} does not resolve ({e})")))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| bad_listen(v, &format!(": {host:?} has no address")))
}

/// A duration written as a whole number of milliseconds (`*_ms` keys).
pub mod ms {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A duration written as a whole number of seconds (`*_secs` keys).
pub mod secs {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// A list of durations in milliseconds.
pub mod ms_list {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            v.iter()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Ok(Vec::<u64>::deserialize(d)?
            .into_iter()
            .map(Duration::from_millis)
            .collect())
    }
}

/// A list of durations in seconds.
pub mod secs_list {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(Duration::as_secs))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Ok(Vec::<u64>::deserialize(d)?
            .into_iter()
            .map(Duration::from_secs)
            .collect())
    }
}

/// An `IP:port` or `host:port` listen address.
pub mod listen {
    use super::*;

    pub fn serialize<S: Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(a)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        let v = String::deserialize(d)?;
        parse_listen(&v)
    }
}

/// An optional `IP:port` or `host:port` listen address; the empty string is "not set".
pub mod opt_listen {
    use super::*;

    pub fn serialize<S: Serializer>(a: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => s.collect_str(a),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let v = String::deserialize(d)?;
        if v.is_empty() {
            return Ok(None);
        }
        parse_listen(&v).map(Some)
    }
}

/// An optional text setting (a URL, a path, host:port); the empty string is "not set".
pub mod opt_text {
    use super::*;
    use std::path::{Path, PathBuf};

    /// What an optional text setting may hold.
    pub trait Text: Sized {
        fn from_text(s: String) -> Self;
        fn text(&self) -> std::borrow::Cow<'_, str>;
    }

    impl Text for String {
        fn from_text(s: String) -> Self {
            s
        }
        fn text(&self) -> std::borrow::Cow<'_, str> {
            self.as_str().into()
        }
    }

    impl Text for PathBuf {
        fn from_text(s: String) -> Self {
            PathBuf::from(s)
        }
        fn text(&self) -> std::borrow::Cow<'_, str> {
            Path::to_string_lossy(self)
        }
    }

    pub fn serialize<T: Text, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_ref().map(T::text).as_deref().unwrap_or(""))
    }

    pub fn deserialize<'de, T: Text, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        let v = String::deserialize(d)?;
        Ok((!v.is_empty()).then(|| T::from_text(v)))
    }
}

/// Accept `["a", "b"]` in TOML and `"a,b"` from an environment variable; lower-cased.
pub fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(|x| x.trim().to_lowercase())
            .filter(|x| !x.is_empty())
            .collect(),
        OneOrMany::Many(v) => v.into_iter().map(|x| x.trim().to_lowercase()).collect(),
    })
}
