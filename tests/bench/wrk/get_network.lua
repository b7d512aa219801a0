-- GET /v0.7/networks/{id}/ for a random id in [lo, hi].
-- wrk ... -s get_network.lua URL -- KEY LO HI
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "common.lua")
function init(args)
    bench_init(args)
    lo, hi = tonumber(args[2]), tonumber(args[3])
end
function request()
    return wrk.format("GET", "/v0.7/networks/" .. math.random(lo, hi) .. "/", headers)
end
