-- wrk: GET /key/r<i> over the preloaded keys r0..r99 (keyval).
-- wrk ... -s kv-get.lua URL -- stale   adds ?level=stale.
local q = ""
local n = 0
function init(args)
   if args[1] == "stale" then q = "?level=stale" end
end
function request()
   n = n + 1
   return wrk.format("GET", "/key/r" .. (n % 100) .. q)
end
