-- wrk script: GET $REQ_PATH with two headers a line of $HEADERS_FILE gives, tab-separated:
-- `Authorization` and `DPoP` (a DPoP-bound token and a proof made for it). Every proof is
-- single-use, so each wrk thread takes its own lines (thread k of n: lines k, k+n, ...); a run
-- longer than the file has lines replays proofs, which warden refuses (counted as errors).
-- X-Forwarded-Method and X-Forwarded-Uri ($FORWARDED_URI) say what request the proofs name, as
-- a gateway's forward auth does. Prints one RESULT line in bench/load.lua's format.
local threads = {}
local next_id = 0

setup = function(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local lines = {}
local id, stride, counter = 0, 1, 0
local path = os.getenv("REQ_PATH")

init = function(args)
  id = tonumber(wrk.thread:get("id")) or 0
  stride = tonumber(os.getenv("WRK_THREADS")) or 1
  for line in io.lines(os.getenv("HEADERS_FILE")) do
    if line ~= "" then
      local tab = line:find("\t", 1, true)
      lines[#lines + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
    end
  end
end

request = function()
  local pair = lines[((counter * stride + id) % #lines) + 1]
  counter = counter + 1
  -- What a gateway tells warden of the request the proof was made for.
  return wrk.format("GET", path, { ["Authorization"] = pair[1], ["DPoP"] = pair[2],
    ["X-Forwarded-Method"] = "GET", ["X-Forwarded-Uri"] = os.getenv("FORWARDED_URI") })
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), errors, summary.errors.timeout))
end
