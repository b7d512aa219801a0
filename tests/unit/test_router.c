/* test_router.c - route matching and dispatch: route parameters, 404, 405
 * with Allow, OPTIONS, the auth hook, and the error body rendered once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "http/router.h"
#include "json/jv.h"

static int calls;
static const char *seen_param;

static bool handler(nn_request_t *req)
{
    calls++;
    seen_param = req->route_params[0];
    return buf_append_str(&req->body, "{}");
}

static bool auth_ok(nn_request_t *req)
{
    (void)req;
    return true;
}

static const route_t routes[] = {
    {"GET", "/networks/public", handler, ROUTE_AUTH},
    {"GET", "/networks/public/{}", handler, ROUTE_AUTH},
    {"GET", "/networks/{}", handler, ROUTE_AUTH},
    {"DELETE", "/networks/{}", handler, ROUTE_AUTH},
};

/* Dispatches method path (route_path as req_init derives it, without the
 * /v0.7 prefix) and checks that the body is valid JSON. */
static void dispatch(arena_t *arena, nn_request_t *req, const char *method, const char *path)
{
    calls = 0;
    seen_param = NULL;
    assert_true(req_init(req, arena, NULL, NULL));
    req->method = method;
    req->path = arena_printf(arena, "/v0.7%s", path);
    req->route_path = path;
    router_dispatch(req, routes, sizeof(routes) / sizeof(routes[0]), auth_ok);
    if (req->status != 204) {
        nn_error_t err;
        nn_error_init(&err);
        assert_non_null(buf_cstr(&req->body));
        assert_non_null(jv_parse(arena, buf_cstr(&req->body), req->body.len, "body", &err));
    }
}

static void test_params(void **state)
{
    arena_t *arena = *state;
    nn_request_t req;
    dispatch(arena, &req, "GET", "/networks/42");
    assert_int_equal(req.status, 200);
    assert_int_equal(calls, 1);
    assert_string_equal(seen_param, "42");

    /* A literal route listed first wins over the parameter route. */
    dispatch(arena, &req, "GET", "/networks/public");
    assert_int_equal(calls, 1);
    assert_null(seen_param);
    assert_string_equal(req.route_name, "/networks/public");

    dispatch(arena, &req, "GET", "/networks/public/caf\xc3\xa9");
    assert_int_equal(calls, 1);
    assert_string_equal(seen_param, "caf\xc3\xa9");
}

/* Found by fuzz_route: nginx decodes "%93" in the path, and the byte went
 * on to the database as the slug (which refuses it as text: a 500).  A
 * segment that is not UTF-8 names nothing: 404, handler never called. */
static void test_param_not_utf8(void **state)
{
    arena_t *arena = *state;
    nn_request_t req;
    static const char *const paths[] = {
        "/networks/public/some-\x93lug", "/networks/\xff", "/networks/\xc0\xaf",
        "/networks/public/\xed\xa0\x80", "/networks/public/\xf4\x90\x80\x80",
        "/networks/public/\xe2\x82",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        dispatch(arena, &req, "GET", paths[i]);
        assert_int_equal(req.status, 404);
        assert_int_equal(calls, 0);
        assert_string_equal(req.err.code, "not_found");
        assert_non_null(strstr(buf_cstr(&req.body), "\"error_code\":\"not_found\""));
    }
}

static void test_not_found_and_methods(void **state)
{
    arena_t *arena = *state;
    nn_request_t req;
    dispatch(arena, &req, "GET", "/nothing");
    assert_int_equal(req.status, 404);
    assert_string_equal(req.route_name, "unknown");

    dispatch(arena, &req, "PUT", "/networks/7");
    assert_int_equal(req.status, 405);
    assert_int_equal(calls, 0);
    assert_non_null(buf_cstr(&req.headers));
    assert_non_null(strstr(buf_cstr(&req.headers), "Allow: GET, DELETE\r\n"));

    dispatch(arena, &req, "OPTIONS", "/networks/7");
    assert_int_equal(req.status, 204);
    assert_non_null(buf_cstr(&req.headers));
    assert_non_null(strstr(buf_cstr(&req.headers), "Allow: GET, DELETE\r\n"));

    dispatch(arena, &req, "HEAD", "/networks/7");
    assert_int_equal(req.status, 200);
    assert_int_equal(calls, 1);
}

/* Found by fuzz_route: REQUEST_SCHEME went as it was into the scheme of
 * the links a list sends (a "next" URL), whatever it held.  Only http and
 * https are taken from it. */
static void test_scheme_from_params(void **state)
{
    arena_t *arena = *state;
    static const struct {
        const char *scheme_param, *https, *expect;
    } cases[] = {
        {"REQUEST_SCHEME=/public/some-sl\xf2\xf2\xf2ST=x", NULL, "http"},
        {"REQUEST_SCHEME=javascript", "HTTPS=on", "https"},
        {"REQUEST_SCHEME=https", NULL, "https"},
        {"REQUEST_SCHEME=HTTP", "HTTPS=on", "http"},
        {"REQUEST_SCHEME=", NULL, "http"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *envp[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/v0.7/networks",
                        (char *)cases[i].scheme_param, (char *)cases[i].https, NULL};
        FCGX_Request fcgi;
        memset(&fcgi, 0, sizeof(fcgi));
        fcgi.envp = envp;
        nn_request_t req;
        assert_true(req_init(&req, arena, &fcgi, NULL));
        assert_string_equal(req.scheme, cases[i].expect);
    }
}

/* Found by fuzz_route: without a Host header, SERVER_ADDR and SERVER_PORT
 * went as they were into the host of the links we send. */
static void test_host_from_server_params(void **state)
{
    arena_t *arena = *state;
    static const struct {
        const char *addr, *port, *expect;
    } cases[] = {
        {"SERVER_ADDR=::1STRING==tmiil1/health\xac\xab", "SERVER_PORT=8080", "localhost"},
        {"SERVER_ADDR=10.0.0.1", "SERVER_PORT=80/x", "localhost"},
        {"SERVER_ADDR=10.0.0.1", "SERVER_PORT=8080", "10.0.0.1:8080"},
        {"SERVER_ADDR=::1", "SERVER_PORT=8080", "[::1]:8080"},
        {"SERVER_ADDR=::1", "SERVER_PORT=", "[::1]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *envp[] = {"REQUEST_URI=/v0.7/networks", (char *)cases[i].addr,
                        (char *)cases[i].port, NULL};
        FCGX_Request fcgi;
        memset(&fcgi, 0, sizeof(fcgi));
        fcgi.envp = envp;
        nn_request_t req;
        assert_true(req_init(&req, arena, &fcgi, NULL));
        assert_string_equal(req.host, cases[i].expect);
    }
}

static int setup(void **state)
{
    *state = arena_create(0);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    arena_destroy(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_param_not_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheme_from_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_from_server_params, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
