-- wrk: etcd v3 HTTP gateway, POST /v3/kv/range of the preloaded keys
-- r0..r99; wrk ... -- serializable   asks for a serializable read.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "etcd-common.lua")
local ser = ""
function init(args)
   if args[1] == "serializable" then ser = ',"serializable":true' end
end
local bodies = {}
for i = 0, 99 do
   bodies[i] = string.format('{"key":"%s"%%s}', b64("r" .. i))
end
local n = 0
function request()
   n = n + 1
   local body = string.format(bodies[n % 100], ser)
   return wrk.format("POST", "/v3/kv/range", {["Content-Type"] = "application/json"}, body)
end
