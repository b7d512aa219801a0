-- GET of one fixed path (a list page) with the API key.
-- wrk ... -s get_path.lua URL -- KEY PATH
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "common.lua")
function init(args)
    bench_init(args)
    path = args[2]
end
function request()
    return wrk.format("GET", path, headers)
end
