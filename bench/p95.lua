-- wrk script for bench/web.py.
--
-- Usage: wrk -s bench/p95.lua URL [-- PATH ...]
-- With no PATH, wrk sends its one static request (the fastest path through wrk, so the
-- baseline is not slowed by the client). With PATHs, each thread sends them in turn; the
-- bench uses this to flip a sort back and forth so that every request changes it.
--
-- done() prints one line, "BENCH {json}", that bench/web.py parses. Latency numbers from wrk
-- are in microseconds; we report milliseconds.

-- With BENCH_BODY_FILE set, every request is a POST of that file's bytes, sent with the
-- Content-Type in BENCH_CONTENT_TYPE (the write-load row: a new request with a screenshot).
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
end

function init(args)
  if #args == 0 then
    return  -- no request() defined: wrk keeps its static request
  end
  local prepared = {}
  for _, path in ipairs(args) do
    -- wrk.format adds the -H headers (cookie, HX-Request) given on the command line.
    prepared[#prepared + 1] = wrk.format(nil, path)
  end
  local sent = 0
  -- wrk looks for request() only after init() ran, so defining it here is enough.
  request = function()
    sent = sent + 1
    return prepared[(sent - 1) % #prepared + 1]
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.3f, "p95_ms": %.3f, ' ..
    '"p99_ms": %.3f, "max_ms": %.3f, "http_errors": %d, "socket_errors": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
