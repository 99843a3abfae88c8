-- List a page of 100 Ghosts.
dofile(os.getenv("WB_LUA") .. "/common.lua")

wrk.method = "GET"
wrk.path = BASE .. "/ghosts?limit=100"
