-- GCRA over several quotas plus learned pacing: Limiter.reserve (tether/policies/limiter.py), step for step.
-- KEYS[1]: the limiter hash. Fields: 'lt' learned TAT, 'li' learned interval, 'lu' learned until ('lr': see
-- limiter_learn.lua), and one TAT per quota, named by the quota ('50/1.0/50').
-- ARGV: now, max_wait ('' for none), then field, interval, tolerance for each quota.
-- Reply: the wait in seconds; the slot is booked in every quota only when that wait is at most max_wait.
local key = KEYS[1]
local now = clock()
local max_wait = tonumber(ARGV[2])
local count = (#ARGV - 2) / 3
local fields, intervals, tolerances = {'lt', 'li', 'lu'}, {}, {}
for i = 1, count do
  fields[3 + i] = ARGV[3 * i]
  intervals[i] = tonumber(ARGV[3 * i + 1])
  tolerances[i] = tonumber(ARGV[3 * i + 2])
end
local values = redis.call('HMGET', key, unpack(fields))
local learned_tat = tonumber(values[1]) or -math.huge
local learned_interval = tonumber(values[2]) or 0
local learned_until = tonumber(values[3]) or -math.huge

local wait = 0
if now < learned_until or now < learned_tat then
  wait = math.max(0, learned_tat - now)
end
local tats = {}
for i = 1, count do
  tats[i] = tonumber(values[3 + i]) or -math.huge
  local ready = tats[i] - tolerances[i] - now
  if ready > wait then
    wait = ready
  end
end
if wait < 1e-6 then -- float dust from adding up intervals is not a wait
  wait = 0
end
if max_wait and wait > max_wait then
  return fmt(wait)
end

local start = now + wait
local horizon = -math.huge
local changes = {}
for i = 1, count do
  local tat = math.max(tats[i], start) + intervals[i]
  changes[#changes + 1] = fields[3 + i]
  changes[#changes + 1] = fmt(tat)
  horizon = math.max(horizon, tat)
end
if start < learned_until then
  learned_tat = math.max(learned_tat, start) + learned_interval
  changes[#changes + 1] = 'lt'
  changes[#changes + 1] = fmt(learned_tat)
  horizon = math.max(horizon, learned_tat, learned_until)
end
if #changes > 0 then
  redis.call('HSET', key, unpack(changes))
  keep(key, now, horizon)
end
return fmt(wait)
