-- POST pledges with a new email on every request, or a read/write mix.
--
--   wrk -s bench/lua/pledge.lua URL -- TAG EVERY READ_PATH SPREAD SLUG [SLUG…]
--
-- Every EVERY-th request of each thread is a POST to /api/v1/campaigns/current/pledges
-- (EVERY=1: all of them; EVERY=10: a 90/10 read/write mix), the others GET READ_PATH.
-- Emails are TAG-<thread>-<n>@example.org: TAG differs per run, so no pledge is a duplicate.
-- SPREAD=1 sends each pledge from an address of its own in X-Forwarded-For (for a server
-- with TRUSTED_PROXIES=1, as behind a reverse proxy); SPREAD=0 sends none.
-- Every answer is counted by status (report.lua); anything but 2xx is an error.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")

local PLEDGES = "/api/v1/campaigns/current/pledges"
local HEADERS = {["Content-Type"] = "application/json", ["Accept"] = "application/json"}
local tag, every, spread, slugs, read_request
local sent = 0

function init(args)
   tag = args[1] or "wrk"
   every = tonumber(args[2] or "1")
   read_request = wrk.format("GET", args[3] or "/healthz")
   spread = args[4] == "1"
   slugs = {}
   for i = 5, #args do slugs[#slugs + 1] = args[i] end
   if #slugs == 0 then slugs = {"allentown"} end
end

function request()
   sent = sent + 1
   if sent % every ~= 0 then
      return read_request
   end
   local kind = (sent % 7 == 0) and "business" or "resident"
   local body = string.format(
      '{"kind":"%s","neighborhood":"%s","email":"%s-%d-%d@example.org"%s}',
      kind, slugs[sent % #slugs + 1], tag, thread_no, sent,
      kind == "business" and string.format(',"name":"Shop %d-%d","show_name":true', thread_no, sent) or "")
   local headers = HEADERS
   if spread then
      headers = {["Content-Type"] = HEADERS["Content-Type"], ["Accept"] = HEADERS["Accept"],
                 ["X-Forwarded-For"] = string.format("10.%d.%d.%d", thread_no % 256,
                                                     math.floor(sent / 256) % 256, sent % 256)}
   end
   return wrk.format("POST", PLEDGES, headers, body)
end

function response(status, headers, body)
   count_status(status)
end
