-- POST a new Bot with three references: a seeded Ghost, the public Shell ClaudeCode (found
-- through the fallback to "public"), and the seeded Model.
dofile(os.getenv("WB_LUA") .. "/common.lua")

local n = 0
local path = BASE .. "/bots"
local headers = headers_with("application/json")
local model = os.getenv("WB_MODEL") or "bench-model"
local shell = os.getenv("WB_SHELL") or "ClaudeCode"

function request()
  n = n + 1
  local body = '{"apiVersion":"agent.wecode.io/v1","kind":"Bot","metadata":{"name":"'
    .. unique_name("b", n) .. '"},"spec":{"ghostRef":{"name":"' .. seed_name(n)
    .. '"},"shellRef":{"name":"' .. shell .. '"},"modelRef":{"name":"' .. model .. '"}}}'
  return wrk.format("POST", path, headers, body)
end
