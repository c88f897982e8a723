-- wrk script for cold tokens: GET /users/me, each request with a token no request used before.
-- Thread n of N takes tokens n, n+N, n+2N, ... of $TOKENS, so no token is sent twice (as long as
-- the run sends fewer requests than there are tokens; the script reports how many it wrapped).
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

local tokens = {}
function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    tokens[#tokens + 1] = line
  end
  stride = tonumber(os.getenv("THREADS") or "2")
  index = id + 1
  wrapped = 0
end

request = function()
  local token = tokens[index]
  index = index + stride
  if index > #tokens then
    index = id + 1
    wrapped = wrapped + 1
  end
  return wrk.format("GET", "/users/me", { ["Authorization"] = "Bearer " .. token })
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), errors))
end
