-- Put before every endpoint script by bench/wrk.ts. Numbers the threads (scripts read `id`), and reports
-- the run as one line of JSON: exact counts and microseconds, where wrk's own summary rounds.
local threads = {}

function setup(thread)
  thread:set('id', #threads)
  threads[#threads + 1] = thread
end

function done(summary, latency)
  local exhausted = 0
  for _, thread in ipairs(threads) do exhausted = exhausted + (thread:get('exhausted') or 0) end
  local e = summary.errors
  io.write(string.format(
    'wrk-result {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"p50Us":%d,"p99Us":%d,"exhausted":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), exhausted))
end
