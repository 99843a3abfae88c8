-- Merge-patch (RFC 7386) a seeded Ghost's systemPrompt and a label; alternating values.
dofile(os.getenv("WB_LUA") .. "/common.lua")

local reqs = {}
local i = 0
local headers = headers_with("application/merge-patch+json")

function thread_init(args)
  for k = 0, 2 * SEEDS - 1 do
    local variant = math.floor(k / SEEDS)
    local body = string.format(
      '{"metadata":{"labels":{"patched":"t%d-v%d"}},"spec":{"systemPrompt":'
        .. '"Patched by thread %d, variant %d."}}', tid, variant, tid, variant)
    reqs[k] = wrk.format("PATCH", BASE .. "/ghosts/" .. seed_name(k), headers, body)
  end
  i = tid * math.floor(SEEDS / 2) + 3
end

function request()
  i = i + 1
  return reqs[i % (2 * SEEDS)]
end
