-- GET /v0.7/tasks/?task_ids=a,a+1,...: N consecutive ids from a random
-- start in [lo, hi - N + 1].
-- wrk ... -s list_tasks.lua URL -- KEY LO HI N
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "common.lua")
function init(args)
    bench_init(args)
    lo, hi, n = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
end
function request()
    local a = math.random(lo, hi - n + 1)
    local ids = {}
    for i = 0, n - 1 do ids[#ids + 1] = tostring(a + i) end
    return wrk.format("GET", "/v0.7/tasks/?limit=" .. n .. "&task_ids=" .. table.concat(ids, ","),
                      headers)
end
