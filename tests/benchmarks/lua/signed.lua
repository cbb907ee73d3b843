-- wrk script of the sigwatch benchmark harness (tests/benchmarks/harness.py).
--
--   wrk -t1 -c64 -d10s -s signed.lua http://127.0.0.1:PORT -- REQUESTS_FILE [MAX_REQUESTS]
--
-- REQUESTS_FILE is a Lua file written by the harness: `return { "<raw request>", ... }`, each entry a
-- complete HTTP/1.1 request (head and body) pre-signed with SigV4 by botocore at the start of the run.
-- The requests are sent in that rotation (e.g. nine ListGateways and one failing
-- DescribeGatewayInformation). A signed request stays valid for the 15-minute clock window and sigwatch
-- does not reject replays, so the same bytes are sent again and again.
-- MAX_REQUESTS (optional) stops each thread after that many responses (a fixed-size profile run).
-- done() prints one line `BENCH_JSON {...}` with the figures the harness parses.

local raw = {}
local sent = 0
local received = 0
local limit = 0

function init(args)
   raw = dofile(args[1])
   if args[2] ~= nil then
      limit = tonumber(args[2])
   end
   if limit > 0 then
      -- defined only when needed: with a response() wrk hands every response's headers and body to Lua
      response = count_and_stop
   end
end

function request()
   sent = sent + 1
   return raw[(sent - 1) % #raw + 1]
end

function count_and_stop(status, headers, body)
   received = received + 1
   if received >= limit then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
