-- wrk: POST /key with one unique key per request, keys <prefix><thread>-<n>
-- (the seed's API: keyval and hraftd). wrk ... -s seq-set.lua URL -- PREFIX
-- lets successive runs add new keys, so the table grows (the scale part).
local counter = 0
function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
end
local prefix = "g"
function init(args)
   if args[1] then prefix = args[1] end
end
local n = 0
function request()
   n = n + 1
   local body = string.format('{"%s%d-%d":"vvvvvvvvvvvvvvvv"}', prefix, tid, n)
   return wrk.format("POST", "/key", {["Content-Type"] = "application/json"}, body)
end
