-- CircuitState.acquire, step for step. ARGV: now, then the circuit's settings (see _circuit.lua).
-- Reply: {'admit' | 'probe' | 'refuse', issued or retry_at ('' when admitted closed), phase after, changed
-- (1 when this decision changed the phase), now}.
local now = clock()
local values = redis.call('HMGET', key, 'ph', 'ou', 'tr', 'pr')
local phase = values[1] or 'closed'
if phase == 'closed' then
  return {'admit', '', 'closed', 0, fmt(now)}
end
local before = phase
local open_until = tonumber(values[2]) or -math.huge
local probes = read_probes(values[4])
if phase == 'open' then
  if now < open_until then
    return {'refuse', fmt(open_until), 'open', 0, fmt(now)}
  end
  phase = 'half_open'
  probes = {}
  redis.call('HSET', key, 'ph', phase)
  redis.call('HDEL', key, 'pr')
end
for _, issued in ipairs(probes) do
  if now - issued >= probe_timeout then -- a probe that never reported: a failure
    open_until = trip(now, tonumber(values[3]) or 0)
    return {'refuse', fmt(open_until), 'open', 1, fmt(now)}
  end
end
local changed = (before ~= phase) and 1 or 0
if #probes >= max_probes then
  return {'refuse', fmt(math.min(unpack(probes)) + probe_timeout), phase, changed, fmt(now)}
end
probes[#probes + 1] = now
write_probes(probes)
keep(key, now, now + math.max(idle_ttl, probe_timeout))
return {'probe', fmt(now), phase, changed, fmt(now)}
