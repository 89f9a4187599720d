"""Lua scripts of the Redis backends: each runs atomically inside Redis.

Values that can expire (session and page state with a ttl, or a closed page's state) are
indexed in a sorted set, ``<prefix>:due`` (on a Redis Cluster, one per shard, in the slot of
the keys it indexes: :class:`~statekit.backends.redis.RedisKeys`), scored by their expiry
time in milliseconds of Redis's clock. A value past its due time is dead to readers at once,
but stays in Redis until the cleanup claims it (``POP``), so its ``on_expire`` callback can
run with the value. A write over a dead, unclaimed value first "buries" it under a key of
scope ``expired`` that is due now, for the same reason. ``GRACE`` keeps Redis's own expiry
as a backstop for a project that never runs the cleanup.
"""

from __future__ import annotations

from statekit.backends.base import SLACK_FRACTION, SLACK_MAX_SECONDS

GRACE_MS = 24 * 3600 * 1000

PRELUDE = f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local GRACE = {GRACE_MS}
local function peek(key, index)
  local v = redis.call('GET', key)
  if not v then return false, nil end
  return v, tonumber(redis.call('ZSCORE', index, key))
end
local function dead(due) return due ~= nil and due <= now end
local function bury(key, v, index, grave)
  redis.call('SET', grave, v, 'PX', GRACE)
  redis.call('ZADD', index, now, grave)
  redis.call('ZREM', index, key)
end
local function take(key, index, grave)
  local v, due = peek(key, index)
  if v and dead(due) then bury(key, v, index, grave) return false end
  return v
end
local function track(key, index, ttl)
  if ttl > 0 then
    redis.call('ZADD', index, now + ttl, key)
    redis.call('PEXPIRE', key, ttl + GRACE)
  else
    redis.call('ZREM', index, key)
  end
end
"""

# KEYS: key, index. ARGV: ttl ms (0: none). The live value; a ttl slides the expiry, once it
# is short of now + ttl by more than the slack (statekit.backends.base.slack).
READ = f"""{PRELUDE}
local v, due = peek(KEYS[1], KEYS[2])
if not v or dead(due) then return false end
local ttl = tonumber(ARGV[1])
local slack = math.min(ttl / {SLACK_FRACTION}, {SLACK_MAX_SECONDS * 1000})
if ttl > 0 and (due == nil or now + ttl - due > slack) then track(KEYS[1], KEYS[2], ttl) end
return v
"""

# Write ARGV[1] with ttl ARGV[2] ms over the live value ``old`` (false: none).
# Without a ttl, a live value keeps its expiry (a closed page's state stays due).
PUT = """
local ttl = tonumber(ARGV[2])
if ttl == 0 and old then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[1])
  track(KEYS[1], KEYS[2], ttl)
end
"""

# KEYS: key, index, grave. ARGV: text, ttl ms. Returns the previous live value.
SET = f"""{PRELUDE}
local old = take(KEYS[1], KEYS[2], KEYS[3])
{PUT}
return old
"""

# The write of an update (compare-and-set, in one slot: no WATCH, which a cluster pipeline
# cannot combine with scripts). KEYS: key, index, grave. ARGV: text, ttl ms, the live value
# the update read, '1' if it read one ('0': none). Writes and returns 1 only if the live
# value is still that; else 0 (the caller reads again and retries).
SWAP = f"""{PRELUDE}
local v, due = peek(KEYS[1], KEYS[2])
local live = v
if v and dead(due) then live = false end
if (ARGV[4] == '1' and live ~= ARGV[3]) or (ARGV[4] == '0' and live) then return 0 end
local old = take(KEYS[1], KEYS[2], KEYS[3])
{PUT}
return 1
"""

# KEYS: key, index, grave. Returns the previous live value.
DELETE = f"""{PRELUDE}
local old = take(KEYS[1], KEYS[2], KEYS[3])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return old
"""

# KEYS: key, index, grave. ARGV: amount, default text, ttl ms.
# Returns {old, new}, or false (having changed nothing) when the base is not an integer
# Redis can add to, so the caller falls back to a compare-and-swap update.
INCR = f"""{PRELUDE}
local v, due = peek(KEYS[1], KEYS[2])
local live = v
if v and dead(due) then live = false end
local base = live or ARGV[2]
if not string.match(base, '^%-?%d+$') or string.len(base) > 18 then return false end
if v and not live then bury(KEYS[1], v, KEYS[2], KEYS[3]) end
if not live then redis.call('SET', KEYS[1], base) end
local new = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[3])
if ttl > 0 or not live then track(KEYS[1], KEYS[2], ttl) end
return {{live, new}}
"""

# KEYS: key, index. Returns {value or false, due or false, now}: what an update reads.
PEEK = f"""{PRELUDE}
local v, due = peek(KEYS[1], KEYS[2])
return {{v, due or false, now}}
"""

# KEYS: key, index. ARGV: ttl ms. Bring the expiry forward to now + ttl (never later).
EXPIRE = f"""{PRELUDE}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ttl = tonumber(ARGV[1])
local due = tonumber(redis.call('ZSCORE', KEYS[2], KEYS[1]))
if due == nil or now + ttl < due then
  redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])
  redis.call('PEXPIRE', KEYS[1], ttl + GRACE)
end
return 1
"""

# KEYS: index. ARGV: limit. Claims up to limit dead values: {key1, value1, key2, ...}.
POP = f"""{PRELUDE}
local out = {{}}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])) do
  redis.call('ZREM', KEYS[1], key)
  local v = redis.call('GET', key)
  if v then
    redis.call('DEL', key)
    out[#out + 1] = key
    out[#out + 1] = v
  end
end
return out
"""

# KEYS: index, then the keys to claim. Returns {key1, value1, ...} of those that existed.
TAKE = """
local out = {}
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], KEYS[i])
    out[#out + 1] = KEYS[i]
    out[#out + 1] = v
  end
end
return out
"""

# KEYS: old key, new key, index. Renames a value and carries its due time.
MOVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
local due = redis.call('ZSCORE', KEYS[3], KEYS[1])
if due then
  redis.call('ZADD', KEYS[3], due, KEYS[2])
  redis.call('ZREM', KEYS[3], KEYS[1])
end
return 1
"""

# On a Redis Cluster a session's new key is in another slot than its old one: MOVE is PEEK
# there, then PLACE on the new key, then DROP on the old one.
# KEYS: new key, its index. ARGV: value, due ms (or ''). Sets the value with its due time
# unless the key holds one already (written meanwhile: it is newer). Returns whether it did.
PLACE = f"""{PRELUDE}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then
  local due = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[2], due, KEYS[1])
  redis.call('PEXPIRE', KEYS[1], math.max(1, due - now + GRACE))
end
return 1
"""

# KEYS: old key, its index. ARGV: the value PEEK found. Deletes it if it still holds that.
DROP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return 1
"""
