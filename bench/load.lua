-- wrk script: GET /users/me, each request with the next of the tokens in $TOKENS.
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do
  tokens[#tokens + 1] = line
end
local counter = 0
math.randomseed(os.time())
local offset = math.random(1, #tokens)

request = function()
  counter = counter + 1
  local token = tokens[((counter + offset) % #tokens) + 1]
  return wrk.format("GET", "/users/me", { ["Authorization"] = "Bearer " .. token })
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), errors))
end
