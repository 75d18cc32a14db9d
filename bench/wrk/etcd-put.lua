-- wrk: etcd v3 HTTP gateway, POST /v3/kv/put with one unique key per request.
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
