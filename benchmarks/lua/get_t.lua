-- GET one Ghost with an API token (wg-…, API.md §16) instead of the login JWT: get.lua as is.
TOKEN_VARIABLE = "WB_API_TOKEN"
dofile(os.getenv("WB_LUA") .. "/get.lua")
