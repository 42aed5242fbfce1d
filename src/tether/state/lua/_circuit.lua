-- Shared by the circuit scripts (prepended after _prelude.lua): CircuitState (tether/policies/breaker.py) kept
-- in one hash, with the same transitions.
-- KEYS[1]: fields 'ph' phase ('open' or 'half_open'; none: closed), 'ou' open until, 'tr' trips in a row,
-- 'pr' the issue times of the probes out (comma-separated), 'g' the window's geometry, 'ls' the last slot
-- recorded, and 'c<i>', 'f<i>', 's<i>': calls, failures and slow calls of bucket i (at most `buckets` each).
-- ARGV[2..10]: geometry ('<buckets>/<slot width>'), buckets, slot width, probes, probe_timeout, open_for,
-- open_multiplier, max_open_for, idle_ttl (seconds the key outlives its last write).
local key = KEYS[1]
local geometry = ARGV[2]
local buckets = tonumber(ARGV[3])
local slot_width = tonumber(ARGV[4])
local max_probes = tonumber(ARGV[5])
local probe_timeout = tonumber(ARGV[6])
local open_for = tonumber(ARGV[7])
local open_multiplier = tonumber(ARGV[8])
local max_open_for = tonumber(ARGV[9])
local idle_ttl = tonumber(ARGV[10])

local function read_probes(text)
  local probes = {}
  if text then
    for item in string.gmatch(text, '[^,]+') do
      probes[#probes + 1] = tonumber(item)
    end
  end
  return probes
end

local function write_probes(probes)
  if #probes == 0 then
    redis.call('HDEL', key, 'pr')
    return
  end
  local items = {}
  for i, issued in ipairs(probes) do
    items[i] = fmt(issued)
  end
  redis.call('HSET', key, 'pr', table.concat(items, ','))
end

-- Python's float floor division (x // y), so that slots are the local breaker's to the last bit.
local function floordiv(x, y)
  local mod = math.fmod(x, y)
  local div = (x - mod) / y
  if mod ~= 0 and ((y < 0) ~= (mod < 0)) then
    div = div - 1
  end
  if div == 0 then
    return 0
  end
  local floor = math.floor(div)
  if div - floor > 0.5 then
    floor = floor + 1
  end
  return floor
end

local function bucket_fields(count)
  local fields = {}
  for i = 0, count - 1 do
    fields[#fields + 1] = 'c' .. i
    fields[#fields + 1] = 'f' .. i
    fields[#fields + 1] = 's' .. i
  end
  return fields
end

-- CircuitState._trip: open for open_for, times open_multiplier per trip in a row, at most max_open_for.
local function trip(now, trips)
  local open_until = now + math.min(max_open_for, open_for * open_multiplier ^ math.min(trips, 64))
  redis.call('HSET', key, 'ph', 'open', 'ou', fmt(open_until), 'tr', trips + 1)
  redis.call('HDEL', key, 'pr')
  keep(key, now, math.max(now + idle_ttl, open_until))
  return open_until
end

-- CircuitState._close: closed, no trips, an empty window, no probes.
local function close(now)
  redis.call('HDEL', key, 'ph', 'tr', 'pr', unpack(bucket_fields(buckets)))
  keep(key, now, now + idle_ttl)
end
