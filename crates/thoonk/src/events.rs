//! Following a model's changes: the pub/sub channels of docs/thoonk.md, decoded.
//!
//! Channels are `event.{model}.{kind}:{name}`; payloads are `id` or `id` NUL `item` (a
//! sorted feed's position events carry `id` NUL `rel`). Nothing is stored: a subscriber
//! sees what is announced while it listens, and reads the model itself for the rest.

use crate::keys::{feed_event, job_event, sorted_feed_position};
use crate::{Redis, Result, ThoonkError};
use futures_util::StreamExt;
use std::sync::{Arc, Once};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

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

/// Events a hub holds for its slowest follower before that follower lags (and catches up).
const HUB_BUFFER: usize = 1024;
/// Reconnecting a hub waits this long at first, doubling up to the cap.
const HUB_RETRY_FIRST: Duration = Duration::from_millis(100);
const HUB_RETRY_CAP: Duration = Duration::from_secs(5);
/// Longest wait for a hub's connection when a follower starts.
const HUB_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// One pub/sub connection shared by every follower in the process: a server with many event
/// streams holds one Redis connection for all of them, not one each (issue 13 item 9).
///
/// The hub subscribes to glob patterns once (for [`EventHub::feeds`]: every feed's and
/// sorted feed's events) and hands each event to the followers, who keep those of their own
/// model. It connects at the first follower, and reconnects by itself (backing off while
/// Redis is away); a follower then learns that it may have missed events
/// ([`Followed::Gap`]), as it does when it falls more than a buffer behind.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    redis: Redis,
    patterns: Vec<String>,
    events: broadcast::Sender<Arc<Event>>,
    state: watch::Sender<HubState>,
    started: Once,
    shutdown: CancellationToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HubState {
    /// Subscribed now.
    connected: bool,
    /// Connections made so far.
    generation: u64,
}

/// What a follower gets next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    Event(Arc<Event>),
    /// Events may have been missed (the connection was lost and is back, or this follower
    /// fell behind): read the model for what was announced meanwhile.
    Gap,
}

impl EventHub {
    /// A hub for every feed's and sorted feed's events; it stops at `shutdown`.
    pub fn feeds(redis: Redis, shutdown: CancellationToken) -> EventHub {
        let patterns = vec![
            "event.feed.*".to_string(),
            "event.sorted_feed.position:*".to_string(),
        ];
        EventHub::new(redis, patterns, shutdown)
    }

    fn new(redis: Redis, patterns: Vec<String>, shutdown: CancellationToken) -> EventHub {
        let (events, _) = broadcast::channel(HUB_BUFFER);
        let (state, _) = watch::channel(HubState {
            connected: false,
            generation: 0,
        });
        EventHub {
            inner: Arc::new(HubInner {
                redis,
                patterns,
                events,
                state,
                started: Once::new(),
                shutdown,
            }),
        }
    }

    /// Follow the events of model `name` (a feed's name): every event announced after
    /// this returns is delivered. Err when the hub cannot reach Redis in a few seconds.
    pub async fn follow(&self, name: &str) -> Result<Follower> {
        self.inner.started.call_once(|| {
            tokio::spawn(pump(self.inner.clone()));
        });
        // Subscribed to the hub first, so nothing announced once connected is missed.
        let events = self.inner.events.subscribe();
        let mut state = self.inner.state.subscribe();
        let connected = tokio::time::timeout(HUB_CONNECT_WAIT, state.wait_for(|s| s.connected))
            .await
            .map_err(|_| ThoonkError::Unavailable("no pub/sub connection to Redis".into()))?
            .map_err(|_| ThoonkError::Unavailable("event hub stopped".into()))?
            .generation;
        Ok(Follower {
            name: name.to_string(),
            events,
            state,
            generation: connected,
        })
    }
}

/// One follower of a hub, for one model's events.
pub struct Follower {
    name: String,
    events: broadcast::Receiver<Arc<Event>>,
    state: watch::Receiver<HubState>,
    /// The connection this follower's events came on.
    generation: u64,
}

impl Follower {
    /// The next event of this model, or a [`Followed::Gap`]; `None` when the hub stopped.
    pub async fn next(&mut self) -> Option<Followed> {
        loop {
            tokio::select! {
                received = self.events.recv() => match received {
                    Ok(e) if e.name == self.name => return Some(Followed::Event(e)),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return Some(Followed::Gap),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                changed = self.state.changed() => {
                    changed.ok()?;
                    let now = *self.state.borrow_and_update();
                    if now.connected && now.generation != self.generation {
                        self.generation = now.generation;
                        return Some(Followed::Gap);
                    }
                }
            }
        }
    }
}

/// The hub's connection: subscribe, pass events on, and start again when it drops.
async fn pump(hub: Arc<HubInner>) {
    let mut wait = HUB_RETRY_FIRST;
    let mut generation = 0;
    loop {
        match subscribe_patterns(&hub).await {
            Ok(pubsub) => {
                wait = HUB_RETRY_FIRST;
                generation += 1;
                hub.state.send_replace(HubState {
                    connected: true,
                    generation,
                });
                tracing::debug!(generation, "event hub subscribed");
                let mut messages = pubsub.into_on_message();
                loop {
                    let msg = tokio::select! {
                        _ = hub.shutdown.cancelled() => return,
                        msg = messages.next() => msg,
                    };
                    let Some(msg) = msg else { break };
                    let payload: String = msg.get_payload().unwrap_or_default();
                    if let Some(e) = parse_event(msg.get_channel_name(), &payload) {
                        // No follower now: nothing to do.
                        let _ = hub.events.send(Arc::new(e));
                    }
                }
                hub.state.send_replace(HubState {
                    connected: false,
                    generation,
                });
                tracing::warn!("event hub lost its pub/sub connection; subscribing again");
            }
            Err(e) => tracing::debug!(error = %e, "event hub cannot subscribe yet"),
        }
        tokio::select! {
            _ = hub.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(HUB_RETRY_CAP);
    }
}

async fn subscribe_patterns(hub: &HubInner) -> Result<redis::aio::PubSub> {
    let mut pubsub = hub.redis.pubsub().await?;
    for p in &hub.patterns {
        pubsub.psubscribe(p).await?;
    }
    Ok(pubsub)
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
