-- PUT a seeded Ghost without resourceVersion (unconditional). Each pass over the seeds flips
-- the body, and the body names the thread, so every request really writes.
dofile(os.getenv("WB_LUA") .. "/common.lua")

local reqs = {}
local i = 0
local headers = headers_with("application/json")

function thread_init(args)
  for k = 0, 2 * SEEDS - 1 do
    local name = seed_name(k)
    local variant = math.floor(k / SEEDS)
    local prompt = string.format("Replaced by thread %d, variant %d.", tid, variant)
    reqs[k] = wrk.format("PUT", BASE .. "/ghosts/" .. name, headers, ghost_body(name, prompt))
  end
  i = tid * math.floor(SEEDS / 2)
end

function request()
  i = i + 1
  return reqs[i % (2 * SEEDS)]
end
