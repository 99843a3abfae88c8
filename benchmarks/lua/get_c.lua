-- GET one Ghost through family C (the Kubernetes path): get.lua with family C's base path.
FAMILY = "C"
dofile(os.getenv("WB_LUA") .. "/get.lua")
