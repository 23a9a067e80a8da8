#!/usr/bin/env node
// A Thoonk job worker and feed follower for Thwonk, written from docs/thoonk.md alone.
//
// No Thwonk or Thoonk client library: node-redis, the key layout and the Lua scripts below are
// all it takes to take, process and finish Thwonk's jobs, publish jobs Thwonk takes, and follow
// a Thwonk feed. Every script names each key it touches in KEYS, like Thwonk's own, and runs
// with EVALSHA, loaded again with SCRIPT LOAD when the server answers NOSCRIPT.
//
//   node worker.js --url unix:///srv/thwonk/data/redis.sock work reports --count 10
//   node worker.js publish reports r1 '{"week": 12}'
//   node worker.js follow 'list@example.org/archive' --count 5
//
// Each command prints one JSON object per line on stdout. The URL defaults to
// $THWONK_REDIS_URL.
'use strict';

const crypto = require('node:crypto');
const { createClient } = require('redis');

// --- The key layout (docs/thoonk.md, "Registries and settings", "Feed", "Job queue") ----

const JOBS = 'jobs'; // SET of job queue names
const DAY_MS = 86_400_000;

/** The keys of one job queue; `name` is the queue's name itself (`job.ids:reports`). */
function jobKeys(name) {
  return {
    ids: `job.ids:${name}`, // LIST of available ids: LPUSH to add, take from the right
    items: `job.items:${name}`, // HASH id -> payload
    published: `job.published:${name}`, // ZSET id -> time queued (ms)
    claimed: `job.claimed:${name}`, // ZSET id -> time claimed (ms)
    cancelled: `job.cancelled:${name}`, // HASH id -> times a claim ended unfinished
    publishes: `job.publishes:${name}`, // counter
    finishes: `job.finishes:${name}`, // counter
    errors: `job.errors:${name}`, // HASH id -> last error (Thwonk's addition)
    // LIST of ids taken by BLMOVE and not yet claimed (Thwonk's addition): a worker killed
    // between the two steps leaves its job here, and Thwonk's reaper puts it back.
    claiming: `job.claiming:${name}`,
    // HASH id -> when the reaper first saw it in `claiming` (Thwonk's addition).
    claimingSince: `job.claiming_since:${name}`,
  };
}

/** The reply LIST of one job (Thwonk's addition), left by a finish with a reply TTL. */
const jobReply = (name, id) => `job.reply:${name}:${id}`;
/** `event.job.{publish,claim,finish,...}:{name}`: payload `id`, or `id` NUL `result`. */
const jobEvent = (event, name) => `event.job.${event}:${name}`;
/** `event.feed.{publish,edit,retract}:{name}`: payload `id` NUL `item` (retract: `id`). */
const feedEvent = (event, name) => `event.feed.${event}:${name}`;

// --- The scripts (the same semantics as Thwonk's crates/thoonk/src/jobs.rs) -----------------

// KEYS: ids items published publishes jobs-registry. ARGV: name id payload now priority
// publish-channel. 1 when queued; 0 when the id already exists (its payload is replaced).
const PUBLISH = `
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
`;

// KEYS: claiming claimed items claiming-since. ARGV: id now claim-channel. The payload, or nil
// when the job went away (retracted, or given back by the reaper) while being taken.
const CLAIM = `
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
`;

// KEYS: claimed cancelled published finishes items errors reply. ARGV: id result
// finish-channel reply-ttl-ms. With a TTL (> 0) the result also stays in the job's reply list
// `job.reply:{queue}:{id}` until it expires: Thwonk reads it there if it missed the event.
const FINISH = `
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
`;

const nowMs = () => Date.now();

/** Job queues and feed events on one Redis server. */
class Thoonk {
  constructor(url) {
    this.url = url;
    this.client = null; // short commands and scripts
    this.taker = null; // BLMOVE blocks its connection, so it gets one of its own
  }

  async connect() {
    this.client = createClient({ url: this.url });
    this.client.on('error', (e) => console.error(`redis: ${e.message}`));
    await this.client.connect();
    this.taker = this.client.duplicate();
    this.taker.on('error', (e) => console.error(`redis: ${e.message}`));
    await this.taker.connect();
    return this;
  }

  async close() {
    for (const c of [this.taker, this.client]) if (c && c.isOpen) await c.close();
  }

  /** EVALSHA, and SCRIPT LOAD then EVALSHA again if the server does not know the script. */
  async script(source, keys, args) {
    const sha = crypto.createHash('sha1').update(source).digest('hex');
    const evalsha = () =>
      this.client.sendCommand(['EVALSHA', sha, String(keys.length), ...keys, ...args.map(String)]);
    try {
      return await evalsha();
    } catch (e) {
      if (!String(e.message).startsWith('NOSCRIPT')) throw e;
      await this.client.sendCommand(['SCRIPT', 'LOAD', source]);
      return await evalsha();
    }
  }

  /** Queue a job (FIFO; `priority` puts it at the head). True when newly queued. */
  async publish(queue, id, payload, priority = false) {
    const k = jobKeys(queue);
    const keys = [k.ids, k.items, k.published, k.publishes, JOBS];
    const args = [queue, id, payload, nowMs(), priority ? '1' : '0', jobEvent('publish', queue)];
    return (await this.script(PUBLISH, keys, args)) === 1;
  }

  /**
   * Take the oldest job and claim it: `{id, payload}`, or null after `timeout` seconds.
   *
   * Two steps, because a script cannot block: BLMOVE moves the id from `job.ids` to
   * `job.claiming` atomically, then the claim script moves it to `job.claimed`. A worker
   * killed in between leaves the id in `job.claiming`, where Thwonk's reaper finds it.
   */
  async take(queue, timeout) {
    const k = jobKeys(queue);
    const id = await this.taker.sendCommand(['BLMOVE', k.ids, k.claiming, 'RIGHT', 'LEFT', String(timeout)]);
    if (id === null) return null;
    const keys = [k.claiming, k.claimed, k.items, k.claimingSince];
    const payload = await this.script(CLAIM, keys, [id, nowMs(), jobEvent('claim', queue)]);
    if (payload === null) return null; // lost the job to a retract or the reaper: take again
    return { id, payload };
  }

  /**
   * Done with a claimed job; `result` goes out with `event.job.finish:{queue}`, and with
   * `replyTtlMs` > 0 it also stays in `job.reply:{queue}:{id}` that long (for a script's job,
   * Thwonk reads it there if no runner heard the event). Rejects with "Job not claimed" if
   * the job is not claimed (any more).
   */
  async finish(queue, id, result = '', replyTtlMs = 0) {
    const k = jobKeys(queue);
    const keys = [k.claimed, k.cancelled, k.published, k.finishes, k.items, k.errors, jobReply(queue, id)];
    await this.script(FINISH, keys, [id, result, jobEvent('finish', queue), replyTtlMs]);
  }

  /**
   * Call `onEvent({event, feed, id, item})` for each of a feed's events (no item on retract).
   * Resolves, with the subscriber connection, once Redis has confirmed every subscription;
   * only what is announced after that arrives (read `feed.items:{name}` for the rest).
   */
  async followFeed(name, onEvent) {
    const sub = this.client.duplicate();
    sub.on('error', (e) => console.error(`redis: ${e.message}`));
    await sub.connect();
    const channels = {};
    for (const e of ['publish', 'edit', 'retract']) channels[feedEvent(e, name)] = e;
    await sub.subscribe(Object.keys(channels), (message, channel) => {
      const nul = message.indexOf('\0');
      const event = { event: channels[channel], feed: name };
      if (nul < 0) {
        event.id = message;
      } else {
        event.id = message.slice(0, nul);
        event.item = message.slice(nul + 1);
      }
      onEvent(event);
    });
    return sub;
  }
}

// --- The command line ------------------------------------------------------------------------

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
/** The work: upper-case the payload. */
const work = (payload) => payload.toUpperCase();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function cmdWork(t, a) {
  emit({ ready: a.queue });
  let done = 0;
  let last = Date.now();
  while (a.count === 0 || done < a.count) {
    const job = await t.take(a.queue, 1);
    if (job === null) {
      if (a.idle && Date.now() - last >= a.idle * 1000) break;
      continue;
    }
    const result = work(job.payload);
    if (a.delayMs) await sleep(a.delayMs);
    await t.finish(a.queue, job.id, result, a.replyTtlMs);
    emit({ id: job.id, payload: job.payload, result });
    done += 1;
    last = Date.now();
  }
}

async function cmdPublish(t, a) {
  emit({ id: a.id, queued: await t.publish(a.queue, a.id, a.payload) });
}

async function cmdFollow(t, a) {
  let seen = 0;
  let stop;
  const stopped = new Promise((r) => (stop = r));
  const chans = ['publish', 'edit', 'retract'].map((e) => feedEvent(e, a.feed));
  const sub = await t.followFeed(a.feed, (event) => {
    emit(event);
    seen += 1;
    if (a.count && seen >= a.count) stop();
  });
  emit({ subscribed: chans });
  await stopped;
  await sub.close();
}

const USAGE = `usage: worker.js [--url URL] work QUEUE [--count N] [--idle SECS] [--delay-ms MS]
                                          [--reply-ttl-ms MS]
       worker.js [--url URL] publish QUEUE ID PAYLOAD
       worker.js [--url URL] follow FEED [--count N]
URL: redis://host:port/db or unix:///path/redis.sock (default: $THWONK_REDIS_URL)`;

function parseArgs(argv) {
  const a = { url: process.env.THWONK_REDIS_URL, count: 0, idle: 0, delayMs: 0, replyTtlMs: DAY_MS, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    if (flag === '--url') a.url = value();
    else if (flag === '--count') a.count = Number(value());
    else if (flag === '--idle') a.idle = Number(value());
    else if (flag === '--delay-ms') a.delayMs = Number(value());
    else if (flag === '--reply-ttl-ms') a.replyTtlMs = Number(value());
    else if (flag === '-h' || flag === '--help') throw new Error('help');
    else if (flag.startsWith('--')) throw new Error(`unknown option ${flag}`);
    else a.rest.push(flag);
  }
  const [command, ...pos] = a.rest;
  const want = { work: ['queue'], publish: ['queue', 'id', 'payload'], follow: ['feed'] }[command];
  if (!want || pos.length !== want.length) throw new Error('bad arguments');
  want.forEach((name, i) => (a[name] = pos[i]));
  a.command = command;
  if (!a.url) throw new Error('no Redis: pass --url or set THWONK_REDIS_URL');
  return a;
}

async function main() {
  let a;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message === 'help' ? USAGE : `${e.message}\n${USAGE}`);
    return 2;
  }
  const t = await new Thoonk(a.url).connect();
  try {
    await { work: cmdWork, publish: cmdPublish, follow: cmdFollow }[a.command](t, a);
  } finally {
    await t.close();
  }
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => (process.exitCode = code),
    (e) => {
      console.error(e.stack || String(e));
      process.exitCode = 1;
    },
  );
}

module.exports = { Thoonk, jobKeys, jobEvent, feedEvent };
