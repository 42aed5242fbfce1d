-- CircuitState.record, step for step. ARGV: now, the circuit's settings (see _circuit.lua), then probe ('1' or
-- '0'), issued (the probe's issue time), failed ('1' or '0'), slow ('1' or '0'), min_calls, failure_ratio,
-- slow_ratio ('' when slow calls never open the circuit).
-- Reply: {changed (1 or 0), the phase after}.
local now = clock()
local failed = ARGV[13] == '1'
local slow = ARGV[14] == '1'

if ARGV[11] == '1' then -- CircuitState._record_probe
  local values = redis.call('HMGET', key, 'ph', 'tr', 'pr')
  local phase = values[1] or 'closed'
  local probes = read_probes(values[3])
  local issued = tonumber(ARGV[12])
  local found = nil
  for i, t in ipairs(probes) do
    if t == issued then
      found = i
      break
    end
  end
  if found == nil or phase ~= 'half_open' then
    return {0, phase} -- a lapsed probe, already counted as a failure
  end
  table.remove(probes, found)
  if failed or slow then
    trip(now, tonumber(values[2]) or 0)
    return {1, 'open'}
  end
  if #probes == 0 then
    close(now)
    return {1, 'closed'}
  end
  write_probes(probes)
  return {0, phase}
end

-- Another window shape (another setting wrote this circuit): its counts mean nothing under this one.
local written = redis.call('HGET', key, 'g')
if written ~= geometry then
  if written then
    local stale = bucket_fields(tonumber(string.match(written, '^(%d+)/')) or 0)
    stale[#stale + 1] = 'ls'
    redis.call('HDEL', key, unpack(stale))
  end
  redis.call('HSET', key, 'g', geometry)
end

-- CircuitState._advance: empty the buckets whose time slices left the window.
local slot = floordiv(now, slot_width)
local last = tonumber(redis.call('HGET', key, 'ls')) or 0
if slot > last then
  local stale = {}
  for expired = last + 1, math.min(slot, last + buckets) do
    local i = expired % buckets
    stale[#stale + 1] = 'c' .. i
    stale[#stale + 1] = 'f' .. i
    stale[#stale + 1] = 's' .. i
  end
  redis.call('HDEL', key, unpack(stale))
  redis.call('HSET', key, 'ls', fmt(slot))
end
keep(key, now, now + idle_ttl)

local index = slot % buckets
if not (failed or slow) then
  redis.call('HINCRBY', key, 'c' .. index, 1)
  return {0, ''}
end
local values = redis.call('HMGET', key, 'ph', 'tr')
local phase = values[1] or 'closed'
if phase ~= 'closed' then
  return {0, phase} -- a call admitted before the circuit opened: the decision is already made
end
redis.call('HINCRBY', key, 'c' .. index, 1)
if failed then
  redis.call('HINCRBY', key, 'f' .. index, 1)
end
if slow then
  redis.call('HINCRBY', key, 's' .. index, 1)
end
local counts = redis.call('HMGET', key, unpack(bucket_fields(buckets)))
local calls, failures, slows = 0, 0, 0
for i = 1, #counts, 3 do
  calls = calls + (tonumber(counts[i]) or 0)
  failures = failures + (tonumber(counts[i + 1]) or 0)
  slows = slows + (tonumber(counts[i + 2]) or 0)
end
if calls < tonumber(ARGV[15]) then
  return {0, phase}
end
local slow_ratio = tonumber(ARGV[17]) or math.huge
if failures >= tonumber(ARGV[16]) * calls or slows >= slow_ratio * calls then
  trip(now, tonumber(values[2]) or 0)
  return {1, 'open'}
end
return {0, phase}
