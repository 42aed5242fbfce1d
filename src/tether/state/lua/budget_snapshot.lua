-- The retry budget's state for diagnostics (read only). KEYS[1]: the budget hash (see budget_settle.lua).
-- ARGV: now (unused: tokens are as of the last decision, as RetryBudgetState.snapshot reports them).
-- Reply: {tokens or '', requests, retries, suppressed}.
local values = redis.call('HMGET', KEYS[1], 'tk', 'rq', 'rt', 'sp')
return {values[1] or '', tonumber(values[2]) or 0, tonumber(values[3]) or 0, tonumber(values[4]) or 0}
