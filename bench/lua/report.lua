-- Shared by the wrk scripts of bench/throughput.py: one JSON line at the end of a run.
--
-- WRK_HOLD_MS (environment): the first request of every connection waits this long, so
-- that the server has accepted every connection before the load starts (gunicorn's
-- gevent workers accept one connection per turn of their loop when there are several
-- workers, which under load takes seconds). Latency starts when a request is written, so
-- the hold is not in it; the requests per second are over the run minus the hold.
-- WRK_CONNECTIONS_PER_THREAD tells each thread how many first requests to hold.
--
-- Every thread counts the answers it saw by status (only when the script defines
-- response(); plain GET runs leave it out so that wrk keeps its static request and
-- spends no Lua on each answer). done() prints the totals, latency percentiles in
-- microseconds, and wrk's own error counts, after the marker "WRK-JSON ".

local threads = {}
statuses = {}
local hold_ms = tonumber(os.getenv("WRK_HOLD_MS") or "0")
local to_hold = tonumber(os.getenv("WRK_CONNECTIONS_PER_THREAD") or "0")

if hold_ms > 0 then
   function delay()
      if to_hold > 0 then
         to_hold = to_hold - 1
         return hold_ms
      end
      return 0
   end
end

function setup(thread)
   thread:set("thread_no", #threads + 1)
   table.insert(threads, thread)
end

function count_status(status)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

local function json_object(pairs_of)
   local parts = {}
   for key, value in pairs(pairs_of) do
      parts[#parts + 1] = string.format('"%s":%s', key, tostring(value))
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
   local by_status = {}
   for _, thread in ipairs(threads) do
      local seen = thread:get("statuses") or {}
      for key, n in pairs(seen) do
         by_status[key] = (by_status[key] or 0) + n
      end
   end
   local percentiles = {}
   for _, p in ipairs({50, 90, 99, 99.9}) do
      percentiles[string.format("p%s", tostring(p))] = latency:percentile(p)
   end
   local e = summary.errors
   io.write("WRK-JSON ", json_object({
      duration_us = summary.duration,
      hold_us = hold_ms * 1000,
      requests = summary.requests,
      bytes = summary.bytes,
      latency_mean_us = latency.mean,
      latency_max_us = latency.max,
      latency_us = json_object(percentiles),
      errors = json_object({connect = e.connect, read = e.read, write = e.write,
                            status = e.status, timeout = e.timeout}),
      statuses = json_object(by_status),
   }), "\n")
end
