-- Shared by every benchmark script (loaded with dofile from each one).
-- Environment, set by run.py:
--   WB_TOKEN  login JWT (the ceiling ignores it)        WB_NS     namespace
--   WB_API_TOKEN  an API token of the same user (get_t.lua)
--   WB_RUN    random id of this wrk run (name prefix)   WB_SEEDS  number of seeded Ghosts
--   WB_LAG    delete+create: how many creates a delete trails behind
-- done() prints one line "WRKJSON {...}" that run.py parses.
-- A script that sets FAMILY = "C" before loading this one addresses the namespace through the
-- Kubernetes path family (/apis/agent.wecode.io/v1/namespaces/NS); otherwise family B.

NS = os.getenv("WB_NS") or "default"
RUN = os.getenv("WB_RUN") or "r"
SEEDS = tonumber(os.getenv("WB_SEEDS") or "100")
if FAMILY == "C" then
  BASE = "/apis/agent.wecode.io/v1/namespaces/" .. NS
else
  BASE = "/api/v1/namespaces/" .. NS
end

-- A script that sets TOKEN_VARIABLE before loading this one sends that variable's token.
wrk.headers["Authorization"] = "Bearer " .. (os.getenv(TOKEN_VARIABLE or "WB_TOKEN") or "")

-- Headers for wrk.format: a table given to it replaces wrk.headers, so copy them in.
function headers_with(content_type)
  local h = {}
  for k, v in pairs(wrk.headers) do h[k] = v end
  h["Content-Type"] = content_type
  return h
end

local threads = {}

-- wrk calls request() once in thread 0 before the run to check the request it builds (and
-- never sends it): scripts that keep state skip that call with this flag.
verifying = false

function init(args)
  verifying = (tid == 0)
  if thread_init then thread_init(args) end
end

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- Name of the i-th seeded Ghost (0-based), as run.py creates them.
function seed_name(i)
  return string.format("seed-%04d", i % SEEDS)
end

-- A name unique to this run, thread and counter.
function unique_name(prefix, n)
  return string.format("%s-%s-%d-%d", prefix, RUN, tid, n)
end

function ghost_body(name, prompt)
  return '{"apiVersion":"agent.wecode.io/v1","kind":"Ghost","metadata":{"name":"' .. name
    .. '","labels":{"app":"bench"}},"spec":{"systemPrompt":"' .. prompt
    .. '","mcpServers":{}}}'
end

-- The latency distribution as quantiles (every 0.1% and every 0.01% above 99%), so that run.py
-- can merge several runs and compute its own percentiles. (The per-microsecond histogram,
-- latency[i], does not read back on every wrk build: Debian's answers strings.)
local function quantiles(latency)
  local parts = {}
  for k = 1, 989 do
    table.insert(parts, string.format("%d", latency:percentile(k / 10)))
  end
  for k = 9900, 9999 do
    table.insert(parts, string.format("%d", latency:percentile(k / 100)))
  end
  table.insert(parts, string.format("%d", latency.max))
  return "[" .. table.concat(parts, ",") .. "]"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,'
      .. '"p50":%d,"p90":%d,"p99":%d,"p999":%d},"quantiles":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), quantiles(latency)))
end
