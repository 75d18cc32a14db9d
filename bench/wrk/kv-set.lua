-- wrk: POST /key with one unique key per request (keyval).
-- Keys: b<thread>-<n>; value: 16 bytes.
local counter = 0
function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
end
local n = 0
function request()
   n = n + 1
   local body = string.format('{"b%d-%d":"vvvvvvvvvvvvvvvv"}', tid, n)
   return wrk.format("POST", "/key", {["Content-Type"] = "application/json"}, body)
end
