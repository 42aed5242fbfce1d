-- CircuitState.snapshot, read only. ARGV: now, then the circuit's settings (see _circuit.lua).
-- Reply: {phase, calls, failures, slow, trips, open_until ('' unless open), now}.
local now = clock()
local values = redis.call('HMGET', key, 'ph', 'tr', 'ou', 'g', 'ls')
local phase = values[1] or 'closed'
local calls, failures, slows = 0, 0, 0
if values[4] == geometry then
  local slot = floordiv(now, slot_width)
  local last = tonumber(values[5]) or 0
  local stale = {}
  if slot > last then
    for expired = last + 1, math.min(slot, last + buckets) do
      stale[expired % buckets] = true
    end
  end
  local counts = redis.call('HMGET', key, unpack(bucket_fields(buckets)))
  for i = 0, buckets - 1 do
    if not stale[i] then
      calls = calls + (tonumber(counts[3 * i + 1]) or 0)
      failures = failures + (tonumber(counts[3 * i + 2]) or 0)
      slows = slows + (tonumber(counts[3 * i + 3]) or 0)
    end
  end
end
local open_until = ''
if phase == 'open' then
  open_until = values[3]
end
return {phase, calls, failures, slows, tonumber(values[2]) or 0, open_until, fmt(now)}
