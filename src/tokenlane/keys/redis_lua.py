"""The Lua scripts of the Redis limiter: each check-and-take runs inside Redis, atomically.

Redis runs one script at a time, so a script that reads a bucket, decides and writes it back
cannot interleave with another replica's: a 10 rpm key behind any number of replicas admits
exactly 10 a minute. The scripts mirror `LocalLimiter` step for step (budgets first, then
requests per minute, then tokens per minute; the same refill and reservation arithmetic), so
a key behaves the same on one process and on a fleet.

Per virtual key, under one hash tag (`{key id}`: a cluster keeps them in one slot):

    <p>:limits:{kid}:buckets        hash  rc r ra / tc t ta: capacity, level, time per bucket
    <p>:limits:{kid}:reservations   hash  id -> "A <usd> <tokens>" (active) or "E ..." (expired)
                                          and `_sum`, the USD of the active ones
    <p>:limits:{kid}:leases         zset  id scored by when its reservation lapses
    <p>:limits:{kid}:spend:<period>:<start>   USD spent in that period (TTL: its end)
    <p>:limits:{kid}:pushed:<batch> a reconciled batch's marker (a retried push is a no-op)

Numbers cross as strings ("%.17g"): a Lua number returned to Redis would be cut to an integer.
Time is the calling replica's wall clock (seconds), passed in: replicas share no monotonic
clock, and tests drive it. A replica whose clock lags cannot rewind a bucket (its time only
moves forward).
"""

from __future__ import annotations

__all__ = ["ADMIT", "RECONCILE", "SETTLE", "USAGE"]

# Shared by every script: formatting, spend keys created from the ledger's seed, buckets,
# and the lapse of reservations nobody settled.
_PRELUDE = r"""
local function num(x) return string.format('%.17g', x) end

-- USD spent in a period; a missing key (a new period, or a Redis that lost its data) starts
-- from what the ledger said at start-up (`seed`, 0 for a period the ledger was not read for).
-- ttl < 0: the period is over, nothing is kept for it.
local function spend_of(key, seed, ttl)
  local v = redis.call('GET', key)
  if v then return tonumber(v) end
  if ttl < 0 then return 0 end
  if ttl > 0 then redis.call('SET', key, seed, 'EX', ttl) else redis.call('SET', key, seed) end
  return tonumber(seed)
end

local function add_spend(key, seed, ttl, usd)
  if ttl < 0 then return end
  redis.call('SET', key, num(spend_of(key, seed, ttl) + usd), 'KEEPTTL')
end

-- The USD held by active reservations. Kept with Lua's doubles, not HINCRBYFLOAT's long
-- doubles: the same arithmetic as the local limiter's, so both decide alike at the margin.
local function held_of(reservations)
  return tonumber(redis.call('HGET', reservations, '_sum') or '0')
end

local function hold(reservations, usd)
  redis.call('HSET', reservations, '_sum', num(math.max(0, held_of(reservations) + usd)))
end

-- A bucket refilled up to `now` (capacity per minute) and written back, as the local
-- limiter's `TokenBucket.level` does: both then round alike, step by step.
local function refill(h, f, cap, level, at, now)
  if cap > 0 and now > at then
    level = math.min(cap, level + (now - at) * (cap / 60))
    redis.call('HSET', h, f, num(level), f .. 'a', num(now))
  end
  return level
end

-- The key's request and token buckets (nil: no such limit). New capacities (the key's rpm or
-- tpm changed) start both full, as the local limiter does.
local function buckets(h, rpm, tpm, now)
  local v = redis.call('HMGET', h, 'rc', 'r', 'ra', 'tc', 't', 'ta')
  local r, t = rpm, tpm
  if tonumber(v[1]) ~= rpm or tonumber(v[4]) ~= tpm then
    redis.call('HSET', h, 'rc', rpm, 'r', rpm, 'ra', num(now), 'tc', tpm, 't', tpm,
               'ta', num(now))
  else
    r = refill(h, 'r', rpm, tonumber(v[2]), tonumber(v[3]), now)
    t = refill(h, 't', tpm, tonumber(v[5]), tonumber(v[6]), now)
  end
  return (rpm > 0 and r or nil), (tpm > 0 and t or nil)
end

local function parse(v)
  local state, usd, tokens = string.match(v, '^(%a) (%S+) (%S+)$')
  return state, tonumber(usd), tonumber(tokens)
end

-- Reservations whose lease passed: their replica died, or the request outlived the lease.
-- They stop holding budget, and are remembered (as expired) one more lease so that a late
-- settle still counts its spend; after that they are forgotten. Returns the USD still held.
local function lapse(leases, reservations, now, lease)
  local due = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 256)
  for _, id in ipairs(due) do
    local v = redis.call('HGET', reservations, id)
    local state, usd, tokens = nil, 0, 0
    if v then state, usd, tokens = parse(v) end
    if state == 'A' then
      redis.call('HSET', reservations, id, 'E ' .. num(usd) .. ' ' .. tokens)
      hold(reservations, -usd)
      redis.call('ZADD', leases, now + lease, id)
    else
      redis.call('HDEL', reservations, id)
      redis.call('ZREM', leases, id)
    end
  end
  return held_of(reservations)
end
"""

ADMIT = _PRELUDE + r"""
-- KEYS: buckets, reservations, leases, spend day, month, total
-- ARGV: now, rpm, tpm (0: none), tokens, usd, reservation id, lease s, limits day, month,
--       total (-1: none), seeds day, month, total, ttl day, month, total, bucket ttl
local now, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local need, usd, id, lease = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local held = lapse(KEYS[3], KEYS[2], now, lease)
local spent = {}
for i = 1, 3 do spent[i] = spend_of(KEYS[3 + i], ARGV[10 + i], tonumber(ARGV[13 + i])) end
for i = 1, 3 do
  local limit = tonumber(ARGV[7 + i])
  if limit >= 0 and spent[i] + held + usd > limit then
    return {'budget', i, num(limit), num(spent[i]), num(held)}
  end
end
local r, t = buckets(KEYS[1], rpm, tpm, now)
if r and r < math.min(1, rpm) then
  return {'rate', 'requests', num(r), num(t or -1)}
end
if t and t < math.min(need, tpm) then
  return {'rate', 'tokens', num(r or -1), num(t)}
end
if r then r = r - 1; redis.call('HSET', KEYS[1], 'r', num(r)) end
if t then t = t - need; redis.call('HSET', KEYS[1], 't', num(t)) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[17]))
local taken = t and need or 0
redis.call('HSET', KEYS[2], id, 'A ' .. num(usd) .. ' ' .. taken)
hold(KEYS[2], usd)
redis.call('ZADD', KEYS[3], now + lease, id)
-- A key nobody uses any more leaves nothing behind once its last lease has lapsed twice.
redis.call('EXPIRE', KEYS[2], math.ceil(3 * lease))
redis.call('EXPIRE', KEYS[3], math.ceil(3 * lease))
return {'ok', num(r or -1), num(t or -1), taken, num(spent[1]), num(spent[2]), num(spent[3]),
        num(held + usd)}
"""

SETTLE = _PRELUDE + r"""
-- KEYS: buckets, reservations, leases, spend day, month, total
-- ARGV: now, reservation id, usd, tokens used, seeds day, month, total, ttl day, month, total,
--       fresh (1: no earlier try of this settlement can have landed)
-- Idempotent: the reservation is gone once settled, and a retry finds nothing to do. A
-- reservation Redis does not know (lapsed twice over, or lost with Redis's data) on a fresh
-- settlement still has its spend counted.
local now, id, usd, used = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HGET', KEYS[2], id)
if v then
  local state, held, taken = parse(v)
  if state == 'A' then
    hold(KEYS[2], -held)
    local b = redis.call('HMGET', KEYS[1], 'tc', 't', 'ta')
    local tpm = tonumber(b[1] or '0')
    if tpm > 0 and taken > 0 then  -- tokens reserved and not used go back; more: taken
      local t = refill(KEYS[1], 't', tpm, tonumber(b[2]), tonumber(b[3]), now)
      redis.call('HSET', KEYS[1], 't', num(math.min(tpm, t + (taken - used))))
    end
  end
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
elseif ARGV[11] ~= '1' then
  return 0
end
for i = 1, 3 do add_spend(KEYS[3 + i], ARGV[4 + i], tonumber(ARGV[7 + i]), usd) end
return 1
"""

RECONCILE = _PRELUDE + r"""
-- KEYS: the batch's marker, spend day, month, total (the periods it was spent in)
-- ARGV: usd, seeds day, month, total, ttl day, month, total, marker ttl
-- Spend a replica counted while Redis was out of reach; a batch is added once, however often
-- its push is retried (a reply lost in a timeout).
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', tonumber(ARGV[8])) then return 0 end
local usd = tonumber(ARGV[1])
for i = 1, 3 do add_spend(KEYS[1 + i], ARGV[1 + i], tonumber(ARGV[4 + i]), usd) end
return 1
"""

USAGE = _PRELUDE + r"""
-- KEYS: reservations, leases, spend day, month, total; ARGV: now, lease s, seeds, ttls
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = lapse(KEYS[2], KEYS[1], now, lease)
local out = {}
for i = 1, 3 do out[i] = num(spend_of(KEYS[2 + i], ARGV[2 + i], tonumber(ARGV[5 + i]))) end
out[4] = num(held)
return out
"""
