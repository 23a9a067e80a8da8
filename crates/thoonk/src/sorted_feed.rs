//! Sorted feeds (docs/thoonk.md, "Sorted feed"): items in an explicit order that publishers
//! choose. Ids come from a counter; every placement is announced on
//! `event.sorted_feed.position:{name}` as `id` NUL `rel`, where `rel` is `:end`, `begin:`,
//! `:{id}` (just before id) or `{id}:` (just after id).

use crate::feed::{CONFIGURE, FeedItem, pairs};
use crate::keys::{FEEDS, FeedKeys, feed_event, sorted_feed_position};
use crate::{Redis, Result, ThoonkError};
use redis::Script;
use std::sync::LazyLock;

/// Where an item goes, relative to the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Last (`:end`).
    End,
    /// First (`begin:`).
    Begin,
    /// Just before this id (`:{id}`).
    Before(String),
    /// Just after this id (`{id}:`).
    After(String),
}

impl Position {
    /// The `rel` of the position event.
    pub fn rel(&self) -> String {
        match self {
            Position::End => ":end".into(),
            Position::Begin => "begin:".into(),
            Position::Before(id) => format!(":{id}"),
            Position::After(id) => format!("{id}:"),
        }
    }

    /// Parse a `rel` as it appears in position events.
    pub fn parse(rel: &str) -> Option<Position> {
        match rel {
            ":end" => Some(Position::End),
            "begin:" => Some(Position::Begin),
            _ => {
                if let Some(id) = rel.strip_prefix(':') {
                    Some(Position::Before(id.to_string()))
                } else {
                    rel.strip_suffix(':')
                        .map(|id| Position::After(id.to_string()))
                }
            }
        }
    }
}

/// The placement code shared by insert and move. Expects locals `ids`, `id`, `where_`, `rel`
/// (the related id, or '').
const PLACE: &str = r#"
local function place(ids, id, where_, rel)
  if where_ == 'end' then
    redis.call('RPUSH', ids, id)
  elseif where_ == 'begin' then
    redis.call('LPUSH', ids, id)
  else
    local before = 'BEFORE'
    if where_ == 'after' then before = 'AFTER' end
    if redis.call('LINSERT', ids, before, rel, id) < 0 then
      return false
    end
  end
  return true
end
"#;

/// KEYS: feeds config ids items publishes idincr. ARGV: name item where rel-id rel
/// publish-ch position-ch. Returns the new id, or an error when the related id is missing.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{PLACE}
local feeds, config, ids, items, publishes, idincr = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local name, item, where_, relid, rel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('SADD', feeds, name)
if redis.call('HEXISTS', config, 'type') == 0 then
  redis.call('HSET', config, 'type', 'sorted_feed')
end
if relid ~= '' and redis.call('HEXISTS', items, relid) == 0 then
  return redis.error_reply('NOITEM ' .. relid)
end
local id = tostring(redis.call('INCR', idincr))
if not place(ids, id, where_, relid) then
  return redis.error_reply('NOITEM ' .. relid)
end
redis.call('HSET', items, id, item)
redis.call('INCR', publishes)
redis.call('PUBLISH', ARGV[6], id .. '\0' .. item)
redis.call('PUBLISH', ARGV[7], id .. '\0' .. rel)
return id
"#
    ))
});

/// KEYS: ids items. ARGV: id where rel-id rel position-ch.
static MOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{PLACE}
local ids, items = KEYS[1], KEYS[2]
local id, where_, relid, rel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HEXISTS', items, id) == 0 then
  return redis.error_reply('NOITEM ' .. id)
end
if relid ~= '' and (relid == id or redis.call('HEXISTS', items, relid) == 0) then
  return redis.error_reply('NOITEM ' .. relid)
end
redis.call('LREM', ids, 1, id)
place(ids, id, where_, relid)
redis.call('PUBLISH', ARGV[5], id .. '\0' .. rel)
return 1
"#
    ))
});

/// KEYS: items publishes. ARGV: id item edit-ch.
static EDIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return redis.error_reply('NOITEM ' .. ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], ARGV[1] .. '\0' .. ARGV[2])
return 1
"#,
    )
});

/// KEYS: ids items. ARGV: id retract-ch.
static RETRACT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
"#,
    )
});

/// KEYS: ids items. Flat {id, item, ...} in order.
static ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out
"#,
    )
});

/// KEYS: items. ARGV: id.
static GET: LazyLock<Script> =
    LazyLock::new(|| Script::new("return redis.call('HGET', KEYS[1], ARGV[1])"));

/// One named sorted feed (cheap to clone).
#[derive(Clone)]
pub struct SortedFeed {
    redis: Redis,
    name: String,
    keys: FeedKeys,
}

impl SortedFeed {
    pub fn new(redis: &Redis, name: &str) -> SortedFeed {
        SortedFeed {
            redis: redis.clone(),
            name: name.to_string(),
            keys: FeedKeys::new(name),
        }
    }

    /// Register the sorted feed (its first insert does too).
    pub async fn configure(&self) -> Result<()> {
        CONFIGURE
            .key(FEEDS)
            .key(&self.keys.config)
            .arg(&self.name)
            .arg("sorted_feed")
            .arg("")
            .invoke_async::<i64>(&mut self.redis.shared())
            .await?;
        Ok(())
    }

    /// Add an item at the end.
    pub async fn append(&self, item: &str) -> Result<String> {
        self.insert(item, &Position::End).await
    }

    /// Add an item at the beginning.
    pub async fn prepend(&self, item: &str) -> Result<String> {
        self.insert(item, &Position::Begin).await
    }

    /// Add an item just before `rel`.
    pub async fn publish_before(&self, rel: &str, item: &str) -> Result<String> {
        self.insert(item, &Position::Before(rel.to_string())).await
    }

    /// Add an item just after `rel`.
    pub async fn publish_after(&self, rel: &str, item: &str) -> Result<String> {
        self.insert(item, &Position::After(rel.to_string())).await
    }

    /// Add an item at `pos`; returns its new id. `NoSuchItem` when `pos` names a missing id.
    pub async fn insert(&self, item: &str, pos: &Position) -> Result<String> {
        let (place, rel_id) = split(pos);
        let k = &self.keys;
        INSERT
            .key(FEEDS)
            .key(&k.config)
            .key(&k.ids)
            .key(&k.items)
            .key(&k.publishes)
            .key(&k.idincr)
            .arg(&self.name)
            .arg(item)
            .arg(place)
            .arg(rel_id)
            .arg(pos.rel())
            .arg(feed_event("publish", &self.name))
            .arg(sorted_feed_position(&self.name))
            .invoke_async(&mut self.redis.shared())
            .await
            .map_err(no_such_item)
    }

    /// Replace an item's content in place.
    pub async fn edit(&self, id: &str, item: &str) -> Result<()> {
        EDIT.key(&self.keys.items)
            .key(&self.keys.publishes)
            .arg(id)
            .arg(item)
            .arg(feed_event("edit", &self.name))
            .invoke_async::<i64>(&mut self.redis.shared())
            .await
            .map_err(no_such_item)?;
        Ok(())
    }

    /// Move an item to `pos`.
    pub async fn move_to(&self, id: &str, pos: &Position) -> Result<()> {
        let (place, rel_id) = split(pos);
        MOVE.key(&self.keys.ids)
            .key(&self.keys.items)
            .arg(id)
            .arg(place)
            .arg(rel_id)
            .arg(pos.rel())
            .arg(sorted_feed_position(&self.name))
            .invoke_async::<i64>(&mut self.redis.shared())
            .await
            .map_err(no_such_item)?;
        Ok(())
    }

    /// Remove an item; true if it was there.
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

    pub async fn get(&self, id: &str) -> Result<Option<String>> {
        Ok(GET
            .key(&self.keys.items)
            .arg(id)
            .invoke_async(&mut self.redis.shared())
            .await?)
    }

    /// Every item, in order.
    pub async fn all(&self) -> Result<Vec<FeedItem>> {
        let flat: Vec<String> = ALL
            .key(&self.keys.ids)
            .key(&self.keys.items)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(pairs(flat))
    }

    /// Ids, in order.
    pub async fn ids(&self) -> Result<Vec<String>> {
        Ok(self.all().await?.into_iter().map(|i| i.id).collect())
    }
}

fn split(pos: &Position) -> (&'static str, &str) {
    match pos {
        Position::End => ("end", ""),
        Position::Begin => ("begin", ""),
        Position::Before(id) => ("before", id),
        Position::After(id) => ("after", id),
    }
}

/// The scripts answer `NOITEM {id}` (an error code of their own, so it survives the client's
/// split into code and detail).
fn no_such_item(e: redis::RedisError) -> ThoonkError {
    if e.code() == Some("NOITEM") {
        ThoonkError::NoSuchItem(e.detail().unwrap_or_default().trim().to_string())
    } else {
        e.into()
    }
}
