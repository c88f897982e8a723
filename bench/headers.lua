-- wrk script: GET $REQ_PATH, each request with the next line of $HEADERS_FILE as the value of
-- the header $HEADER (e.g. HEADER=Authorization and lines "Bearer <token>", or HEADER=Cookie and
-- lines "better-auth.session_token=...; better-auth.session_data=..."). Prints one RESULT line
-- in bench/load.lua's format.
local values = {}
for line in io.lines(os.getenv("HEADERS_FILE")) do
  if line ~= "" then
    values[#values + 1] = line
  end
end
local header = os.getenv("HEADER")
local path = os.getenv("REQ_PATH")
local counter = 0
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local offset = math.random(1, #values)

request = function()
  counter = counter + 1
  return wrk.format("GET", path, { [header] = values[((counter + offset) % #values) + 1] })
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), errors, summary.errors.timeout))
end
