-- wrk: etcd v3 HTTP gateway, POST /v3/kv/range of the preloaded keys
-- r0..r99; wrk ... -- serializable   asks for a serializable read.
local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
function b64(s)
   local out = {}
   for i = 1, #s, 3 do
      local a, b, c = s:byte(i, i + 2)
      local v = a * 65536 + (b or 0) * 256 + (c or 0)
      local k = {}
      for j = 3, 0, -1 do
         local idx = math.floor(v / (64 ^ j)) % 64
         k[#k + 1] = b64chars:sub(idx + 1, idx + 1)
      end
      if not b then k[3] = '=' end
      if not c then k[4] = '=' end
      out[#out + 1] = table.concat(k)
   end
   return table.concat(out)
end
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
