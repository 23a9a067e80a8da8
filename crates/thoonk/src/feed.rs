//! Feeds (docs/thoonk.md, "Feed"): time-ordered items, optionally bounded, each change announced.
//!
//! A publish whose id exists is an edit (`event.feed.edit`), a retract of a missing id does
//! nothing: applying the same operation twice leaves the feed as applying it once, which is
//! what lets the runner re-apply committed feed operations after a Redis hiccup.

use crate::keys::{FEEDS, FeedKeys, feed_event};
use crate::{Redis, Result};
use redis::Script;
use std::sync::LazyLock;

/// One item of a feed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeedItem {
    pub id: String,
    pub item: String,
}

/// KEYS: feeds config. ARGV: name type max-length. Creates (or reconfigures) a feed.
pub(crate) static CONFIGURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'type', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'max_length', ARGV[3])
end
return 1
"#,
    )
});

/// KEYS: feeds config ids items publishes. ARGV: name id item now publish-ch edit-ch
/// retract-ch. Returns the id.
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local feeds, config, ids, items, publishes = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, id, item, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('SADD', feeds, name)
if redis.call('HEXISTS', config, 'type') == 0 then
  redis.call('HSET', config, 'type', 'feed')
end
local existed = redis.call('ZSCORE', ids, id)
local max = tonumber(redis.call('HGET', config, 'max_length') or '') or 0
if not existed and max > 0 then
  local over = redis.call('ZCARD', ids) - max + 1
  if over > 0 then
    for _, old in ipairs(redis.call('ZRANGE', ids, 0, over - 1)) do
      redis.call('ZREM', ids, old)
      redis.call('HDEL', items, old)
      redis.call('PUBLISH', ARGV[7], old)
    end
  end
end
redis.call('ZADD', ids, now, id)
redis.call('INCR', publishes)
redis.call('HSET', items, id, item)
if existed then
  redis.call('PUBLISH', ARGV[6], id .. '\0' .. item)
else
  redis.call('PUBLISH', ARGV[5], id .. '\0' .. item)
end
return id
"#,
    )
});

/// KEYS: ids items. ARGV: id retract-channel. 1 if it was there.
static RETRACT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
"#,
    )
});

/// KEYS: ids items. Flat {id, item, ...} oldest first.
static ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out
"#,
    )
});

/// KEYS: ids, items. ARGV: n. The newest `n` items as `[id, item, ...]`, oldest first.
static LATEST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
local n = tonumber(ARGV[1])
if n <= 0 then return out end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], -n, -1)) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out
"#,
    )
});

/// KEYS: ids. Ids oldest first.
static IDS: LazyLock<Script> =
    LazyLock::new(|| Script::new("return redis.call('ZRANGE', KEYS[1], 0, -1)"));
/// KEYS: items. ARGV: id.
static GET: LazyLock<Script> =
    LazyLock::new(|| Script::new("return redis.call('HGET', KEYS[1], ARGV[1])"));
/// KEYS: ids.
static LENGTH: LazyLock<Script> =
    LazyLock::new(|| Script::new("return redis.call('ZCARD', KEYS[1])"));
/// KEYS: ids. ARGV: id.
static HAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new("if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 else return 0 end")
});

/// KEYS: feeds config ids items publishes idincr. ARGV: name. Removes the feed and its items
/// (no event: followers of a deleted feed simply hear nothing more). 1 if it existed.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local existed = redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return existed
"#,
    )
});

/// KEYS: feeds, then config ids items publishes idincr of the old name, then of the new.
/// ARGV: old name, new name. Renames every key that exists; nothing if a feed of the new name
/// exists (returns 0 then, 1 when renamed).
static RENAME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i = 7, 11 do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[1], ARGV[2])
for i = 2, 6 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + 5])
  end
end
return 1
"#,
    )
});

/// The names in the `feeds` set that start with `prefix` (SSCAN, so a large set does not
/// block Redis). `prefix` is matched literally: glob characters in it are escaped.
pub async fn feed_names_with_prefix(redis: &Redis, prefix: &str) -> Result<Vec<String>> {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    let mut conn = redis.shared();
    let mut cursor: u64 = 0;
    let mut names = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(FEEDS)
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(&mut conn)
            .await?;
        names.extend(batch.into_iter().filter(|n| n.starts_with(prefix)));
        if next == 0 {
            names.sort();
            names.dedup();
            return Ok(names);
        }
        cursor = next;
    }
}

/// One named feed (cheap to clone).
#[derive(Clone)]
pub struct Feed {
    redis: Redis,
    name: String,
    keys: FeedKeys,
}

impl Feed {
    /// A handle on the feed `name`; it is created by its first publish (unbounded) or by
    /// [`Feed::configure`].
    pub fn new(redis: &Redis, name: &str) -> Feed {
        Feed {
            redis: redis.clone(),
            name: name.to_string(),
            keys: FeedKeys::new(name),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Register the feed with a bound: `max_length` 0 means unbounded.
    pub async fn configure(&self, max_length: u64) -> Result<()> {
        CONFIGURE
            .key(FEEDS)
            .key(&self.keys.config)
            .arg(&self.name)
            .arg("feed")
            .arg(max_length)
            .invoke_async::<i64>(&mut self.redis.shared())
            .await?;
        Ok(())
    }

    /// Publish `item` under `id` (a new UUID when `None`) at `now_ms`; an existing id is
    /// edited. Returns the id.
    pub async fn publish(&self, id: Option<&str>, item: &str, now_ms: i64) -> Result<String> {
        let id = match id {
            Some(id) => id.to_string(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let k = &self.keys;
        Ok(PUBLISH
            .key(FEEDS)
            .key(&k.config)
            .key(&k.ids)
            .key(&k.items)
            .key(&k.publishes)
            .arg(&self.name)
            .arg(&id)
            .arg(item)
            .arg(now_ms)
            .arg(feed_event("publish", &self.name))
            .arg(feed_event("edit", &self.name))
            .arg(feed_event("retract", &self.name))
            .invoke_async(&mut self.redis.shared())
            .await?)
    }

    /// Remove an item; true if it was there (a missing id is a no-op, announced nowhere).
    pub async fn retract(&self, id: &str) -> Result<bool> {
        let n: i64 = RETRACT
            .key(&self.keys.ids)
            .key(&self.keys.items)
            .arg(id)
            .arg(feed_event("retract", &self.name))
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(n == 1)
    }

    /// Delete the feed: its name from `feeds` and every key of it. True if it existed.
    pub async fn delete(&self) -> Result<bool> {
        let k = &self.keys;
        let n: i64 = DELETE
            .key(FEEDS)
            .key(&k.config)
            .key(&k.ids)
            .key(&k.items)
            .key(&k.publishes)
            .key(&k.idincr)
            .arg(&self.name)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(n == 1)
    }

    /// Give the feed another name, items and settings kept (no event); false, and nothing
    /// done, if a feed named `to` exists. Followers of the old name hear nothing more.
    pub async fn rename(&self, to: &str) -> Result<bool> {
        let (a, b) = (&self.keys, FeedKeys::new(to));
        let n = RENAME
            .key(FEEDS)
            .key(&a.config)
            .key(&a.ids)
            .key(&a.items)
            .key(&a.publishes)
            .key(&a.idincr)
            .key(&b.config)
            .key(&b.ids)
            .key(&b.items)
            .key(&b.publishes)
            .key(&b.idincr)
            .arg(&self.name)
            .arg(to)
            .invoke_async::<i64>(&mut self.redis.shared())
            .await?;
        Ok(n == 1)
    }

    pub async fn get(&self, id: &str) -> Result<Option<String>> {
        Ok(GET
            .key(&self.keys.items)
            .arg(id)
            .invoke_async(&mut self.redis.shared())
            .await?)
    }

    /// Ids, oldest first.
    pub async fn ids(&self) -> Result<Vec<String>> {
        Ok(IDS
            .key(&self.keys.ids)
            .invoke_async(&mut self.redis.shared())
            .await?)
    }

    /// Every item, oldest first.
    pub async fn all(&self) -> Result<Vec<FeedItem>> {
        let flat: Vec<String> = ALL
            .key(&self.keys.ids)
            .key(&self.keys.items)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(pairs(flat))
    }

    /// The newest `n` items, oldest first (a bounded [`Feed::all`]).
    pub async fn latest(&self, n: usize) -> Result<Vec<FeedItem>> {
        let flat: Vec<String> = LATEST
            .key(&self.keys.ids)
            .key(&self.keys.items)
            .arg(n)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(pairs(flat))
    }

    pub async fn length(&self) -> Result<i64> {
        Ok(LENGTH
            .key(&self.keys.ids)
            .invoke_async(&mut self.redis.shared())
            .await?)
    }

    pub async fn has(&self, id: &str) -> Result<bool> {
        let n: i64 = HAS
            .key(&self.keys.ids)
            .arg(id)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(n == 1)
    }
}

/// `[id, item, id, item, ...]` → items.
pub(crate) fn pairs(flat: Vec<String>) -> Vec<FeedItem> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(id), Some(item)) = (it.next(), it.next()) {
        out.push(FeedItem { id, item });
    }
    out
}
