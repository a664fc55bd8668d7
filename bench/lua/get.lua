-- GET the URL given on wrk's command line; report with report.lua (wrk's static request).
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")
