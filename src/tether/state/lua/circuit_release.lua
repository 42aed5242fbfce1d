-- CircuitState.release, step for step. ARGV: now, the circuit's settings (see _circuit.lua), then the probe's
-- issue time. A probe whose call ended without a verdict (cancelled) frees its slot; nothing is counted.
-- Reply: 1 when the probe was still out and is now released, else 0.
local values = redis.call('HMGET', key, 'ph', 'pr')
if values[1] ~= 'half_open' then
  return 0
end
local probes = read_probes(values[2])
local issued = tonumber(ARGV[11])
for i, t in ipairs(probes) do
  if t == issued then
    table.remove(probes, i)
    write_probes(probes)
    return 1
  end
end
return 0
