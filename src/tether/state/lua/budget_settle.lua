-- The retry budget's token bucket: RetryBudgetState._settle and try_spend (tether/policies/budget.py).
-- KEYS[1]: the budget hash. Fields: 'tk' tokens, 'ls' last settled at, 'rq' requests, 'rt' retries,
-- 'sp' suppressed retries.
-- ARGV: now, deposits (original requests since the caller last sent some), ratio, burst, min_per_second,
-- idle_ttl (seconds the key outlives its last write), spend ('1': take a token for a retry, '0': deposit only).
-- Reply: 1 when a token was taken, else 0.
local key = KEYS[1]
local now = clock()
local deposits = tonumber(ARGV[2])
local ratio = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local per_second = tonumber(ARGV[5])
local idle_ttl = tonumber(ARGV[6])
local values = redis.call('HMGET', key, 'tk', 'ls')
local tokens = tonumber(values[1]) or burst
local last = tonumber(values[2]) or now

-- Deposits and the trickle only add, so capping once after both equals capping after each.
tokens = tokens + deposits * ratio
local elapsed = now - last
if elapsed > 0 then
  tokens = tokens + elapsed * per_second
  last = now
end
tokens = math.min(burst, tokens)

local spent = 0
if ARGV[7] == '1' then
  if tokens >= 1.0 then
    tokens = tokens - 1.0
    spent = 1
    redis.call('HINCRBY', key, 'rt', 1)
  else
    redis.call('HINCRBY', key, 'sp', 1)
  end
end
if deposits > 0 then
  redis.call('HINCRBY', key, 'rq', deposits)
end
redis.call('HSET', key, 'tk', fmt(tokens), 'ls', fmt(last))
keep(key, now, now + idle_ttl)
return spent
