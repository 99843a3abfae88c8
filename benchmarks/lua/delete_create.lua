-- Alternate DELETE and POST over a ring of names of this thread: each name is created,
-- deleted WB_LAG creates later, and created again one ring later (the trash grows). The lag
-- keeps a delete from overtaking its own create on another connection.
dofile(os.getenv("WB_LUA") .. "/common.lua")

local lag = tonumber(os.getenv("WB_LAG") or "32")
local ring = 2 * lag
local created, deleted = 0, 0
local last_post = false
local headers = headers_with("application/json")
local path = BASE .. "/ghosts"

function request()
  if verifying then
    verifying = false
    return wrk.format("GET", path)
  end
  if last_post and created - deleted > lag then
    last_post = false
    local name = unique_name("dc", deleted % ring)
    deleted = deleted + 1
    return wrk.format("DELETE", path .. "/" .. name)
  end
  last_post = true
  local name = unique_name("dc", created % ring)
  created = created + 1
  return wrk.format("POST", path, headers, ghost_body(name, "Deleted and created again."))
end
