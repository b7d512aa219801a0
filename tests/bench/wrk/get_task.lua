-- GET /v0.7/tasks/{id}/ for a random id in [lo, hi]: the polling hot path.
-- wrk ... -s get_task.lua URL -- KEY LO HI
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "common.lua")
function init(args)
    bench_init(args)
    lo, hi = tonumber(args[2]), tonumber(args[3])
end
function request()
    return wrk.format("GET", "/v0.7/tasks/" .. math.random(lo, hi) .. "/", headers)
end
