-- PATCH /v0.7/networks/{id}/ {"description": ...} for a random id in [lo, hi].
-- wrk ... -s patch_network.lua URL -- KEY LO HI
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "common.lua")
function init(args)
    bench_init(args)
    lo, hi = tonumber(args[2]), tonumber(args[3])
    headers["Content-Type"] = "application/json"
    n = 0
end
function request()
    n = n + 1
    return wrk.format("PATCH", "/v0.7/networks/" .. math.random(lo, hi) .. "/", headers,
                      '{"description": "bench patch ' .. n .. '"}')
end
