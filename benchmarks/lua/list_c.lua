-- List a page of 100 Ghosts through family C (the Kubernetes path): list.lua with family C's
-- base path.
FAMILY = "C"
dofile(os.getenv("WB_LUA") .. "/list.lua")
