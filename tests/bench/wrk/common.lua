-- common.lua - shared by the wrk scripts of tests/bench/run.
-- Arguments after "--": the API key, then script-specific ones.
-- Each wrk thread gets its own random seed (setup runs once per thread in
-- the main Lua state; init runs inside the thread).
local counter = 0
function setup(thread)
    counter = counter + 1
    thread:set("seed", counter * 7919 + os.time())
end

function bench_init(args)
    math.randomseed(seed or os.time())
    key = args[1]
    headers = {["X-API-KEY"] = key}
end
