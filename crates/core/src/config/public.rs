//! `[public]`: the public web side of thwonks — published files and public request handlers
//! under `/pub/{address}/…` on the HTTP API's listener, and the limits that keep public
//! traffic from starving mail.

use super::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PublicConfig {
    /// The public origin the web sees this server at (`https://lists.example.org`), no
    /// trailing `/`: `thwonk.url(path)` answers `{base_url}/pub/{address}/{path}`. Empty:
    /// `thwonk.url` throws (the server does not know its own public name).
    pub base_url: String,
    /// Public requests one client IP may make per minute (files and handlers); past it `429`
    /// with `Retry-After`.
    pub requests_per_minute: u32,
    /// Requests one IP may make at once above the steady rate (the bucket's size).
    pub burst: u32,
    /// Largest body a public request may carry, bytes (larger: `413`).
    pub max_body_bytes: u64,
    /// Public handler runs of one thwonk waiting or running at once (more: `503`).
    pub max_concurrent_per_thwonk: u32,
    /// Share of the runner's capacity (`runner.concurrency`, percent) that public handler
    /// runs may hold at once, across every thwonk; the rest stays for mail (more: `503`).
    pub runner_share_percent: u32,
    /// `Cache-Control: max-age` of published files, seconds (they are revalidated with their
    /// `ETag` after that).
    pub cache_max_age_secs: u32,
}

impl Default for PublicConfig {
    fn default() -> Self {
        PublicConfig {
            base_url: String::new(),
            requests_per_minute: 600,
            burst: 60,
            max_body_bytes: 64 * 1024,
            max_concurrent_per_thwonk: 4,
            runner_share_percent: 50,
            cache_max_age_secs: 60,
        }
    }
}

impl PublicConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.base_url.is_empty() {
            let b = &self.base_url;
            if !(b.starts_with("http://") || b.starts_with("https://"))
                || b.ends_with('/')
                || b.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(ConfigError::new(
                    "public.base_url",
                    "must be an http:// or https:// origin without a trailing / (or empty)",
                ));
            }
        }
        for (key, v) in [
            ("public.requests_per_minute", self.requests_per_minute),
            ("public.burst", self.burst),
            (
                "public.max_concurrent_per_thwonk",
                self.max_concurrent_per_thwonk,
            ),
        ] {
            super::require_at_least_one(key, v)?;
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::new(
                "public.max_body_bytes",
                "must be greater than 0",
            ));
        }
        if !(1..=100).contains(&self.runner_share_percent) {
            return Err(ConfigError::new(
                "public.runner_share_percent",
                "must be between 1 and 100",
            ));
        }
        Ok(())
    }

    /// Public handler runs allowed in flight at once for a runner of `concurrency` tasks: the
    /// configured share, at least one.
    pub fn max_runs_in_flight(&self, concurrency: u32) -> usize {
        ((concurrency as u64 * self.runner_share_percent as u64) / 100).max(1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_at_least_one_run() {
        let c = PublicConfig::default();
        assert_eq!(c.max_runs_in_flight(1), 1);
        assert_eq!(c.max_runs_in_flight(8), 4);
    }

    #[test]
    fn a_base_url_with_a_path_slash_is_refused() {
        let c = PublicConfig {
            base_url: "https://x.example/".into(),
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let c = PublicConfig {
            base_url: "https://x.example".into(),
            ..Default::default()
        };
        assert!(c.validate().is_ok());
    }
}
