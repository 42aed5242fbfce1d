-- Shared by every tether script (prepended to each): the clock, number formatting and key lifetimes.
--
-- ARGV[1] is the time to decide at: '' (what tether sends) reads the server's own clock with TIME, so every
-- process that shares this Redis agrees on time although their monotonic clocks do not; a number is the
-- caller's clock, for tests that drive a fake one. TIME before writes is allowed since Redis replicates a
-- script's effects, not the script (the only mode in Redis 7).

local function clock()
  local given = tonumber(ARGV[1])
  if given then
    return given
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Floats travel as strings: a Lua number in a reply is truncated to an integer, and '%.17g' round-trips.
local function fmt(x)
  return string.format('%.17g', x)
end

local MAX_TTL_MS = 2592000000 -- 30 days: the longest a key outlives its last write

-- Keep `key` until `horizon` (script time) plus a second's margin, at most MAX_TTL_MS; never shorten its TTL,
-- so whatever else the key holds keeps the lifetime an earlier write gave it.
local function keep(key, now, horizon)
  local ms = math.ceil((horizon - now) * 1000) + 1000
  if ms ~= ms or ms > MAX_TTL_MS then
    ms = MAX_TTL_MS
  elseif ms < 1000 then
    ms = 1000
  end
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end
