-- Learned pacing: Limiter.learn (tether/policies/limiter.py), step for step. Within one window (remaining not
-- going up, the reset not yet passed) each announcement bounds the reset anew and the earliest bound is kept.
-- KEYS[1]: the limiter hash (see limiter_reserve.lua), plus 'lr': the remaining calls last announced.
-- ARGV: now, remaining, reset_after. Reply: 1.
local key = KEYS[1]
local now = clock()
local remaining = tonumber(ARGV[2])
local reset_after = tonumber(ARGV[3])
if reset_after <= 0 then
  redis.call('HDEL', key, 'lu')
  return 1
end
local values = redis.call('HMGET', key, 'lu', 'lr', 'lt')
local learned_until = tonumber(values[1]) or -math.huge
local learned_remaining = tonumber(values[2]) or 0
local till = now + reset_after
if 0 < remaining and remaining <= learned_remaining and now < learned_until then
  till = math.min(till, learned_until) -- the same window: keep the tightest bound
end
if remaining <= 0 then
  local learned_tat = math.max(tonumber(values[3]) or -math.huge, till)
  redis.call('HSET', key, 'lu', fmt(till), 'lr', ARGV[2], 'li', '0', 'lt', fmt(learned_tat))
  keep(key, now, math.max(till, learned_tat))
else
  redis.call('HSET', key, 'lu', fmt(till), 'lr', ARGV[2], 'li', fmt((till - now) / remaining))
  keep(key, now, till)
end
return 1
