-- Shared by the wrk scripts etcd-put.lua and etcd-range.lua (not a wrk
-- script itself): b64(s), the base64 that etcd's v3 HTTP gateway wants
-- for keys and values. The scripts load it with dofile from their own
-- directory.
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
