//! Following a model's changes: the pub/sub channels of docs/thoonk.md, decoded.
//!
//! Channels are `event.{model}.{kind}:{name}`; payloads are `id` or `id` NUL `item` (a
//! sorted feed's position events carry `id` NUL `rel`). Nothing is stored: a subscriber
//! sees what is announced while it listens, and reads the model itself for the rest.

use crate::keys::{feed_event, job_event, sorted_feed_position};
use crate::{Redis, Result};
use futures_util::StreamExt;

/// One announced change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `feed`, `sorted_feed` or `job`.
    pub model: String,
    /// `publish`, `edit`, `retract`, `position`, `claim`, `finish`, ...
    pub kind: String,
    /// The model's name.
    pub name: String,
    pub id: String,
    /// What followed the NUL: the item, the job's result, or a position's `rel`.
    pub data: Option<String>,
}

/// Decode a channel and payload; `None` for a channel outside the `event.` family.
pub fn parse_event(channel: &str, payload: &str) -> Option<Event> {
    let rest = channel.strip_prefix("event.")?;
    let (head, name) = rest.split_once(':')?;
    let (model, kind) = head.rsplit_once('.')?;
    let (id, data) = match payload.split_once('\0') {
        Some((id, data)) => (id.to_string(), Some(data.to_string())),
        None => (payload.to_string(), None),
    };
    Some(Event {
        model: model.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        id,
        data,
    })
}

/// The channels of a feed (and of a sorted feed's positions).
pub fn feed_channels(name: &str) -> Vec<String> {
    vec![
        feed_event("publish", name),
        feed_event("edit", name),
        feed_event("retract", name),
        sorted_feed_position(name),
    ]
}

/// The channels of a job queue.
pub fn job_channels(name: &str) -> Vec<String> {
    [
        "publish", "claim", "finish", "cancel", "stall", "retry", "delay",
    ]
    .iter()
    .map(|e| job_event(e, name))
    .collect()
}

/// A live subscription (its own connection).
pub struct Subscription {
    pubsub: redis::aio::PubSub,
}

impl Subscription {
    /// Subscribe to `channels`; announcements made after this returns are delivered.
    pub async fn new(redis: &Redis, channels: &[String]) -> Result<Subscription> {
        let mut pubsub = redis.pubsub().await?;
        for c in channels {
            pubsub.subscribe(c).await?;
        }
        Ok(Subscription { pubsub })
    }

    /// Subscribe to every channel matching one of `patterns` (PSUBSCRIBE globs).
    pub async fn patterns(redis: &Redis, patterns: &[String]) -> Result<Subscription> {
        let mut pubsub = redis.pubsub().await?;
        for p in patterns {
            pubsub.psubscribe(p).await?;
        }
        Ok(Subscription { pubsub })
    }

    /// A feed's (or sorted feed's) events.
    pub async fn feed(redis: &Redis, name: &str) -> Result<Subscription> {
        Subscription::new(redis, &feed_channels(name)).await
    }

    /// A job queue's events.
    pub async fn jobs(redis: &Redis, name: &str) -> Result<Subscription> {
        Subscription::new(redis, &job_channels(name)).await
    }

    /// The next event; `None` when the connection closed.
    pub async fn next(&mut self) -> Option<Event> {
        let mut messages = self.pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let payload: String = msg.get_payload().unwrap_or_default();
            if let Some(e) = parse_event(msg.get_channel_name(), &payload) {
                return Some(e);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_payloads_decode() {
        let e = parse_event("event.feed.publish:list@example.org/archive", "a1\0hello").unwrap();
        assert_eq!(
            (e.model.as_str(), e.kind.as_str(), e.name.as_str()),
            ("feed", "publish", "list@example.org/archive")
        );
        assert_eq!((e.id.as_str(), e.data.as_deref()), ("a1", Some("hello")));
        let e = parse_event("event.sorted_feed.position:s", "3\0:end").unwrap();
        assert_eq!(
            (e.model.as_str(), e.kind.as_str()),
            ("sorted_feed", "position")
        );
        let e = parse_event("event.job.finish:inbound", "j1").unwrap();
        assert_eq!((e.id.as_str(), e.data), ("j1", None));
        assert!(parse_event("feed.publish:x", "a").is_none());
    }
}
