-- POST a new Ghost; names unique per run, thread and request.
dofile(os.getenv("WB_LUA") .. "/common.lua")

local n = 0
local path = BASE .. "/ghosts"
local headers = headers_with("application/json")

function request()
  n = n + 1
  local name = unique_name("g", n)
  return wrk.format("POST", path, headers, ghost_body(name, "You are ghost " .. name .. "."))
end
