-- Learned pacing: Limiter.learn (tether/policies/limiter.py), step for step. Within one fixed window (remaining
-- not going up, the reset not yet passed) each announcement bounds the reset anew and the earliest bound is kept,
-- until the provider shows that it rounds its resets down (the window outlasts a tightened bound, or it refuses a
-- call right after one): from then on each reset is taken as said.
-- KEYS[1]: the limiter hash (see limiter_reserve.lua), plus 'lr': the remaining calls last announced, 'tg': '0'
-- once tightening is off, 'td': '1' while the current window's bound is tighter than announced.
-- ARGV: now, remaining, reset_after, window ('1': a fixed window's announcement). Reply: 1.
local key = KEYS[1]
local now = clock()
local remaining = tonumber(ARGV[2])
local reset_after = tonumber(ARGV[3])
local window = ARGV[4] == '1'
if reset_after <= 0 then
  redis.call('HDEL', key, 'lu')
  return 1
end
local values = redis.call('HMGET', key, 'lu', 'lr', 'lt', 'tg', 'td')
local learned_until = tonumber(values[1]) or -math.huge
local learned_remaining = tonumber(values[2]) or 0
local tighten = values[4] ~= '0'
local tightened = values[5] == '1'
local till = now + reset_after
local same_window = 0 < remaining and remaining <= learned_remaining
local refused = remaining <= 0 and not window
if tightened and (refused or (same_window and now >= learned_until)) then
  tighten = false -- the window outlasted the earliest bound: this provider rounds down
end
if window and tighten and same_window and now < learned_until then
  tightened = tightened or learned_until < till
  till = math.min(till, learned_until) -- the same window: keep the tightest bound
elseif not same_window or not tighten then
  tightened = false
end
local flags = {'tg', tighten and '1' or '0', 'td', tightened and '1' or '0'}
if remaining <= 0 then
  local learned_tat = math.max(tonumber(values[3]) or -math.huge, till)
  redis.call('HSET', key, 'lu', fmt(till), 'lr', ARGV[2], 'li', '0', 'lt', fmt(learned_tat), unpack(flags))
  keep(key, now, math.max(till, learned_tat))
else
  redis.call('HSET', key, 'lu', fmt(till), 'lr', ARGV[2], 'li', fmt((till - now) / remaining), unpack(flags))
  keep(key, now, till)
end
return 1
