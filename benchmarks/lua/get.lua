-- GET one Ghost, walking over the seeded Ghosts.
dofile(os.getenv("WB_LUA") .. "/common.lua")

local reqs = {}
local i = 0

function thread_init(args)
  for k = 0, SEEDS - 1 do
    reqs[k] = wrk.format("GET", BASE .. "/ghosts/" .. seed_name(k))
  end
  i = tid * 7
end

function request()
  i = i + 1
  return reqs[i % SEEDS]
end
