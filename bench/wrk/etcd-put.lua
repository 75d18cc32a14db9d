-- wrk: etcd v3 HTTP gateway, POST /v3/kv/put with one unique key per request.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "etcd-common.lua")
local counter = 0
function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
end
local n = 0
local val = b64("vvvvvvvvvvvvvvvv")
function request()
   n = n + 1
   local body = string.format('{"key":"%s","value":"%s"}', b64(string.format("b%d-%d", tid, n)), val)
   return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body)
end
