//! `.../feeds/{name}`: a feed's items, and `.../feeds/{name}/events`: its changes, live, as
//! Server-Sent Events a browser's `EventSource` can follow.
//!
//! `{name}` is what the script passes to `thwonk.feed(name)`; the Thoonk feed is
//! `THWONK_ID/NAME` (`thwonk_control::feeds::thoonk_feed_name`), and its events arrive on Redis
//! pub/sub (`event.feed.publish:THWONK_ID/NAME`, ...; the channel names live in `thwonk-thoonk`).
//!
//! Each SSE event is named after the change (`publish`, `edit`, `retract`, `position`), has
//! the item's id as its `id:` line and a JSON `data:` line `{"id", "item"}`, the item being the
//! JSON value the script published (not a string holding its JSON). Every stream of the
//! process follows one shared pub/sub connection (`thwonk_thoonk::EventHub`), which
//! reconnects by itself; after it was lost (or when a stream falls behind) a stream sends, as
//! `publish` events, the items published after the last id it sent, so a blip loses nothing
//! that is still in the feed. One token holds at most `http.max_event_streams_per_token`
//! streams at once (more: `429`). A client that
//! reconnects with `Last-Event-ID` gets the same catch-up. Comments keep idle streams alive
//! (`http.sse_keep_alive_secs`). A browser page on any origin may follow a stream
//! (`Access-Control-Allow-Origin: *`, with the token in `?access_token=`: no cookies).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thwonk_control::feeds::thoonk_feed_name;
use thwonk_control::views::{FeedItemView, FeedItemsView};
use thwonk_thoonk::{Feed, Followed, Follower, Redis};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::visible_thwonk;
use crate::ApiState;
use crate::auth::{Caller, hash_token};
use crate::error::ApiError;
use crate::extract::ApiPath;

/// Longest feed name, bytes (as the script API allows).
const MAX_FEED_NAME_BYTES: usize = 128;
/// Events buffered for one slow client before its stream waits.
const STREAM_BUFFER: usize = 64;

/// Feed names as scripts may spell them: 1 to 128 of `A-Z a-z 0-9 - _ . @`.
fn feed_name(name: &str) -> Result<&str, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_FEED_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(name)
    } else {
        Err(ApiError::bad_request(
            "bad_feed",
            format!("feed name {name:?}: use 1 to {MAX_FEED_NAME_BYTES} of A-Z a-z 0-9 - _ . @"),
        ))
    }
}

/// The newest items (at most `http.max_feed_items`), oldest first.
pub async fn items(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((addr, name)): ApiPath<(String, String)>,
) -> Result<Json<FeedItemsView>, ApiError> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let feed = thoonk_feed_name(&t, feed_name(&name)?);
    let mut items = Feed::new(&state.redis, &feed)
        .all()
        .await
        .map_err(|e| ApiError::unavailable("cannot read the feed from Redis", e))?;
    let max = usize::try_from(state.config.http.max_feed_items).unwrap_or(usize::MAX);
    let skip = items.len().saturating_sub(max);
    items.drain(..skip);
    let items = items
        .iter()
        .map(|i| FeedItemView::new(&i.id, Some(&i.item)))
        .collect();
    Ok(Json(FeedItemsView { feed: name, items }))
}

/// Event streams open at once, per token (`http.max_event_streams_per_token`).
#[derive(Clone, Default)]
pub struct StreamCounts {
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream's place in [`StreamCounts`]; given back when its stream ends.
pub struct StreamPlace {
    key: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl StreamCounts {
    fn acquire(&self, key: String, max: usize) -> Option<StreamPlace> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamPlace {
            key,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for StreamPlace {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// What streams are counted by: the token the request was authenticated with (already
/// checked by [`Caller`]), as its stored hash; the admin socket, which has none, is one key.
fn stream_key(headers: &HeaderMap, uri: &Uri) -> String {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let query = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("access_token=")));
    match bearer.or(query) {
        Some(token) => hash_token(token),
        None => "admin socket".to_string(),
    }
}

pub async fn events(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((addr, name)): ApiPath<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<
    (
        [(HeaderName, &'static str); 1],
        Sse<impl Stream<Item = Result<Event, Infallible>>>,
    ),
    ApiError,
> {
    let t = visible_thwonk(&state, &caller, &addr).await?;
    let feed = thoonk_feed_name(&t, feed_name(&name)?);
    let max = state.config.http.max_event_streams_per_token;
    let place = state
        .streams
        .acquire(stream_key(&headers, &uri), max as usize)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "this token has {max} event streams open already \
                     (http.max_event_streams_per_token): close one first"
                ),
            )
        })?;
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Following before the response starts: every change after it is delivered.
    let follower = state
        .events
        .follow(&feed)
        .await
        .map_err(|e| ApiError::unavailable("cannot follow the feed on Redis", e))?;
    let (tx, mut rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(follow(
        state.redis.clone(),
        feed,
        follower,
        last_id,
        tx,
        state.shutdown.clone(),
        place,
    ));
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)));
    let keep_alive = state.config.http.sse_keep_alive.max(Duration::from_secs(1));
    // Any origin may read the stream: it carries no cookies, only the token it was given.
    Ok((
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive)),
    ))
}

/// SSE `id`/`event` values may not hold line breaks or NUL (axum panics on them); ids from a
/// foreign publisher could.
fn clean(s: &str) -> bool {
    !s.contains(['\r', '\n', '\0'])
}

/// `data:` is `{"id", "item"}` with the item as the JSON value it holds (no `item` on a
/// retraction), as in `GET .../feeds/{name}`.
fn sse_event(kind: &str, id: &str, item: Option<&str>) -> Event {
    let data = serde_json::to_string(&FeedItemView::new(id, item)).unwrap_or_default();
    let mut event = Event::default().data(data);
    if clean(kind) {
        event = event.event(kind);
    }
    if clean(id) {
        event = event.id(id);
    }
    event
}

/// Forward the follower's events until the client leaves or the server shuts down; after a
/// gap (the shared connection was lost and is back, or this stream fell behind), catch up
/// from the feed. The stream's place is given back when this ends.
async fn follow(
    redis: Redis,
    feed: String,
    mut follower: Follower,
    mut last_id: Option<String>,
    tx: mpsc::Sender<Event>,
    shutdown: CancellationToken,
    _place: StreamPlace,
) {
    if catch_up(&redis, &feed, &mut last_id, &tx).await.is_err() {
        return;
    }
    loop {
        let next = tokio::select! {
            _ = tx.closed() => return,
            _ = shutdown.cancelled() => return,
            next = follower.next() => next,
        };
        match next {
            Some(Followed::Event(e)) => {
                let event = sse_event(&e.kind, &e.id, e.data.as_deref());
                last_id = Some(e.id.clone());
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            Some(Followed::Gap) => {
                tracing::debug!(feed = %feed, "event stream catching up after a gap");
                if catch_up(&redis, &feed, &mut last_id, &tx).await.is_err() {
                    return;
                }
            }
            None => return,
        }
    }
}

/// Send, as `publish` events, the items after `last_id` (nothing when there is no last id
/// or it is no longer in the feed). Err when the client has gone.
async fn catch_up(
    redis: &Redis,
    feed: &str,
    last_id: &mut Option<String>,
    tx: &mpsc::Sender<Event>,
) -> Result<(), ()> {
    let Some(after) = last_id.clone() else {
        return Ok(());
    };
    let items = match Feed::new(redis, feed).all().await {
        Ok(items) => items,
        Err(e) => {
            tracing::debug!(feed = %feed, error = %e, "cannot catch up");
            return Ok(());
        }
    };
    let Some(pos) = items.iter().position(|i| i.id == after) else {
        return Ok(());
    };
    for item in &items[pos + 1..] {
        tx.send(sse_event("publish", &item.id, Some(&item.item)))
            .await
            .map_err(|_| ())?;
        *last_id = Some(item.id.clone());
    }
    Ok(())
}
