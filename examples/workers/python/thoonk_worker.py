#!/usr/bin/env python3
"""A Thoonk job worker and feed follower for Thwonk, written from docs/thoonk.md alone.

No Thwonk or Thoonk client library: redis-py, the key layout and the Lua scripts below are all
it takes to take, process and finish Thwonk's jobs, publish jobs Thwonk takes, and follow a
Thwonk feed. Every script names each key it touches in KEYS, like Thwonk's own (so they also
run on Redis Cluster when a model's keys share a hash tag); redis-py's ``register_script``
runs them with EVALSHA and loads them again on NOSCRIPT.

    python3 thoonk_worker.py --url unix:///srv/thwonk/data/redis.sock work reports --count 10
    python3 thoonk_worker.py publish reports r1 '{"week": 12}'
    python3 thoonk_worker.py follow 'list@example.org/archive' --count 5

Each command prints one JSON object per line on stdout. The URL defaults to $THWONK_REDIS_URL.
"""

import argparse
import json
import os
import sys
import time

import redis

# --- The key layout (docs/thoonk.md, "Registries and settings", "Feed", "Job queue") ---

JOBS = "jobs"  # SET of job queue names
DAY_MS = 86_400_000


def job_keys(name):
    """The keys of one job queue; `name` is the queue's name itself (`job.ids:reports`)."""
    return {
        "ids": f"job.ids:{name}",  # LIST of available ids: LPUSH to add, take from the right
        "items": f"job.items:{name}",  # HASH id -> payload
        "published": f"job.published:{name}",  # ZSET id -> time queued (ms)
        "claimed": f"job.claimed:{name}",  # ZSET id -> time claimed (ms)
        "cancelled": f"job.cancelled:{name}",  # HASH id -> times a claim ended unfinished
        "publishes": f"job.publishes:{name}",  # counter
        "finishes": f"job.finishes:{name}",  # counter
        "errors": f"job.errors:{name}",  # HASH id -> last error (Thwonk's addition)
        # LIST of ids taken by BLMOVE and not yet claimed (Thwonk's addition): a worker killed
        # between the two steps leaves its job here, and Thwonk's reaper puts it back.
        "claiming": f"job.claiming:{name}",
        # HASH id -> when the reaper first saw it in `claiming` (Thwonk's addition).
        "claiming_since": f"job.claiming_since:{name}",
    }


def job_reply(name, id):
    """The reply LIST of one job (Thwonk's addition), left by a finish with a reply TTL."""
    return f"job.reply:{name}:{id}"


def job_event(event, name):
    """`event.job.{publish,claim,finish,...}:{name}`: payload `id`, or `id` NUL `result`."""
    return f"event.job.{event}:{name}"


def feed_event(event, name):
    """`event.feed.{publish,edit,retract}:{name}`: payload `id` NUL `item` (retract: `id`)."""
    return f"event.feed.{event}:{name}"


# --- The scripts (the same semantics as Thwonk's crates/thoonk/src/jobs.rs) ----------------

# KEYS: ids items published publishes jobs-registry. ARGV: name id payload now priority
# publish-channel. 1 when queued; 0 when the id already exists (its payload is replaced).
PUBLISH = """
local ids, items, published, publishes, registry = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, id, payload, now, priority, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
redis.call('SADD', registry, name)
if redis.call('HEXISTS', items, id) == 1 then
  redis.call('HSET', items, id, payload)
  return 0
end
if priority == '1' then
  redis.call('RPUSH', ids, id)
else
  redis.call('LPUSH', ids, id)
end
redis.call('INCR', publishes)
redis.call('HSET', items, id, payload)
redis.call('ZADD', published, now, id)
redis.call('PUBLISH', channel, id)
return 1
"""

# KEYS: claiming claimed items claiming-since. ARGV: id now claim-channel. The payload, or
# nil when the job went away (retracted, or given back by the reaper) while being taken.
CLAIM = """
local claiming, claimed, items, since = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, now, channel = ARGV[1], ARGV[2], ARGV[3]
redis.call('HDEL', since, id)
if redis.call('LREM', claiming, 1, id) == 0 then
  return false
end
local payload = redis.call('HGET', items, id)
if not payload then
  return false
end
redis.call('ZADD', claimed, now, id)
redis.call('PUBLISH', channel, id)
return payload
"""

# KEYS: claimed cancelled published finishes items errors reply. ARGV: id result
# finish-channel reply-ttl-ms. With a TTL (> 0) the result also stays in the job's reply list
# `job.reply:{queue}:{id}` until it expires: Thwonk reads it there if it missed the event.
FINISH = """
local claimed, cancelled, published, finishes, items, errors, reply = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id, result, channel, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('ZREM', claimed, id) == 0 then
  return redis.error_reply('Job not claimed')
end
if ttl > 0 then
  redis.call('DEL', reply)
  redis.call('RPUSH', reply, result)
  redis.call('PEXPIRE', reply, ttl)
end
redis.call('HDEL', cancelled, id)
redis.call('ZREM', published, id)
redis.call('INCR', finishes)
redis.call('HDEL', items, id)
redis.call('HDEL', errors, id)
if result == '' then
  redis.call('PUBLISH', channel, id)
else
  redis.call('PUBLISH', channel, id .. '\\0' .. result)
end
return 1
"""


def now_ms():
    return int(time.time() * 1000)


class Thoonk:
    """Job queues and feed events on one Redis server."""

    def __init__(self, url):
        # Strings in, strings out. A connection pool: the blocking BLMOVE gets a connection of
        # its own for as long as it blocks, so it holds up nothing else.
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self._publish = self.redis.register_script(PUBLISH)
        self._claim = self.redis.register_script(CLAIM)
        self._finish = self.redis.register_script(FINISH)

    def publish(self, queue, id, payload, priority=False):
        """Queue a job (FIFO; `priority` puts it at the head). True when newly queued."""
        k = job_keys(queue)
        keys = [k["ids"], k["items"], k["published"], k["publishes"], JOBS]
        args = [queue, id, payload, now_ms(), "1" if priority else "0", job_event("publish", queue)]
        return self._publish(keys=keys, args=args) == 1

    def take(self, queue, timeout):
        """Take the oldest job and claim it: `(id, payload)`, or None after `timeout` seconds.

        Two steps, because a script cannot block: BLMOVE moves the id from `job.ids` to
        `job.claiming` atomically, then the claim script moves it to `job.claimed`. A worker
        killed in between leaves the id in `job.claiming`, where Thwonk's reaper finds it.
        """
        k = job_keys(queue)
        id = self.redis.blmove(k["ids"], k["claiming"], timeout, "RIGHT", "LEFT")
        if id is None:
            return None
        keys = [k["claiming"], k["claimed"], k["items"], k["claiming_since"]]
        payload = self._claim(keys=keys, args=[id, now_ms(), job_event("claim", queue)])
        if payload is None:
            return None  # lost the job to a retract or the reaper: take again
        return id, payload

    def finish(self, queue, id, result=None, reply_ttl_ms=0):
        """Done with a claimed job; `result` goes out with `event.job.finish:{queue}`, and
        with `reply_ttl_ms` > 0 it also stays in `job.reply:{queue}:{id}` that long (for a
        script's job, Thwonk reads it there if no runner heard the event).

        Raises redis.ResponseError("Job not claimed") if the job is not claimed (any more).
        """
        k = job_keys(queue)
        keys = [k["claimed"], k["cancelled"], k["published"], k["finishes"], k["items"],
                k["errors"], job_reply(queue, id)]
        args = [id, result or "", job_event("finish", queue), int(reply_ttl_ms)]
        self._finish(keys=keys, args=args)

    def follow_feed(self, name, on_subscribed=None):
        """Yield a feed's events as dicts `{event, feed, id, item}` (no item on retract).

        Only what is announced while subscribed arrives: read `feed.items:{name}` for the rest.
        `on_subscribed` is called once Redis has confirmed every subscription.
        """
        channels = {feed_event(e, name): e for e in ("publish", "edit", "retract")}
        pubsub = self.redis.pubsub()
        pubsub.subscribe(*channels)
        confirmed = 0
        for message in pubsub.listen():
            if message["type"] == "subscribe":
                confirmed += 1
                if confirmed == len(channels) and on_subscribed:
                    on_subscribed(list(channels))
                continue
            if message["type"] != "message":
                continue
            id, sep, item = message["data"].partition("\0")
            event = {"event": channels[message["channel"]], "feed": name, "id": id}
            if sep:
                event["item"] = item
            yield event


# --- The command line --------------------------------------------------------------------


def emit(obj):
    print(json.dumps(obj), flush=True)


def process(payload):
    """The work: upper-case the payload."""
    return payload.upper()


def cmd_work(t, a):
    """Take, process and finish jobs until `--count` are done or none came for `--idle` s."""
    emit({"ready": a.queue})
    done, last = 0, time.monotonic()
    while a.count == 0 or done < a.count:
        job = t.take(a.queue, 1.0)
        if job is None:
            if a.idle and time.monotonic() - last >= a.idle:
                break
            continue
        id, payload = job
        result = process(payload)
        if a.delay_ms:
            time.sleep(a.delay_ms / 1000)
        t.finish(a.queue, id, result, a.reply_ttl_ms)
        emit({"id": id, "payload": payload, "result": result})
        done, last = done + 1, time.monotonic()
    return 0


def cmd_publish(t, a):
    emit({"id": a.id, "queued": t.publish(a.queue, a.id, a.payload)})
    return 0


def cmd_follow(t, a):
    seen = 0
    for event in t.follow_feed(a.feed, on_subscribed=lambda chans: emit({"subscribed": chans})):
        emit(event)
        seen += 1
        if a.count and seen >= a.count:
            break
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("THWONK_REDIS_URL"),
                   help="redis://host:port/db or unix:///path/redis.sock (default: $THWONK_REDIS_URL)")
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("work", help="take, process (upper-case) and finish jobs")
    w.add_argument("queue")
    w.add_argument("--count", type=int, default=0, help="stop after this many jobs (0: no limit)")
    w.add_argument("--idle", type=float, default=0, help="stop after this many seconds without a job")
    w.add_argument("--delay-ms", type=int, default=0, help="pretend each job takes this long")
    w.add_argument("--reply-ttl-ms", type=int, default=DAY_MS,
                   help="keep each result in the job's reply list this long (0: event only)")
    w.set_defaults(run=cmd_work)
    pub = sub.add_parser("publish", help="queue a job")
    pub.add_argument("queue")
    pub.add_argument("id")
    pub.add_argument("payload")
    pub.set_defaults(run=cmd_publish)
    f = sub.add_parser("follow", help="print a feed's events")
    f.add_argument("feed")
    f.add_argument("--count", type=int, default=0, help="stop after this many events (0: never)")
    f.set_defaults(run=cmd_follow)
    a = p.parse_args(argv)
    if not a.url:
        p.error("no Redis: pass --url or set THWONK_REDIS_URL")
    return a.run(Thoonk(a.url), a)


if __name__ == "__main__":
    sys.exit(main())
