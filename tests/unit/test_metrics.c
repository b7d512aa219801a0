/* test_metrics.c - the exposition format, histogram math, the bounded
 * dimensions, and counters shared by forked processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/metrics.h"

static bool handler(nn_request_t *req)
{
    (void)req;
    return true;
}

/* Static storage, as metrics_create asks. */
static const route_t routes[] = {
    {"GET", "/health", handler, 0},         {"GET", "/networks", handler, 0},
    {"POST", "/networks", handler, 0},      {"GET", "/networks/{}", handler, 0},
    {"DELETE", "/networks/{}", handler, 0},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

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

static const char *text_of(nn_buf_t *b)
{
    const char *s = buf_cstr(b);
    assert_non_null(s);
    return s;
}

/* ------------------------------------------------ a tiny format checker */

static bool is_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || isdigit((unsigned char)c);
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Checks text against the text format 0.0.4 as Prometheus parses it: HELP
 * then TYPE before a family's samples, names and label names well formed,
 * label values quoted with only \\ \" \n escapes, a float value, every
 * sample belonging to the family declared last (histograms: _bucket with
 * an le label, _sum, _count), and no family declared twice.  Fails the
 * test with the offending line. */
static void assert_exposition_valid(const char *text)
{
    char family[128] = "";
    char type[32] = "";
    char declared[64][128];
    size_t ndeclared = 0;
    const char *line = text;
    assert_true(*text == '\0' || text[strlen(text) - 1] == '\n');
    while (*line) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        size_t len = (size_t)(end - line);
        char copy[1024];
        assert_true(len < sizeof(copy));
        memcpy(copy, line, len);
        copy[len] = '\0';
        if (strncmp(copy, "# HELP ", 7) == 0) {
            const char *name = copy + 7;
            size_t n = strcspn(name, " ");
            assert_true(n > 0 && n < sizeof(family));
            memcpy(family, name, n);
            family[n] = '\0';
            for (size_t i = 0; i < ndeclared; i++)
                if (strcmp(declared[i], family) == 0)
                    fail_msg("family declared twice: %s", family);
            assert_true(ndeclared < 64);
            strcpy(declared[ndeclared++], family);
            type[0] = '\0';
        } else if (strncmp(copy, "# TYPE ", 7) == 0) {
            char name[128], kind[32];
            assert_int_equal(sscanf(copy + 7, "%127s %31s", name, kind), 2);
            assert_string_equal(name, family);
            assert_true(strcmp(kind, "counter") == 0 || strcmp(kind, "gauge") == 0 ||
                        strcmp(kind, "histogram") == 0);
            snprintf(type, sizeof(type), "%s", kind);
        } else {
            assert_true(copy[0] != '#' && type[0] != '\0');
            const char *p = copy;
            if (!is_name_start(*p))
                fail_msg("bad metric name: %s", copy);
            while (is_name_char(*p))
                p++;
            size_t name_len = (size_t)(p - copy);
            bool has_le = false;
            if (*p == '{') {
                p++;
                while (*p != '}') {
                    const char *label = p;
                    if (!is_name_start(*p))
                        fail_msg("bad label name: %s", copy);
                    while (is_name_char(*p))
                        p++;
                    if ((size_t)(p - label) == 2 && strncmp(label, "le", 2) == 0)
                        has_le = true;
                    if (p[0] != '=' || p[1] != '"')
                        fail_msg("label without quoted value: %s", copy);
                    p += 2;
                    while (*p != '"') {
                        if (*p == '\0' || *p == '\n')
                            fail_msg("unterminated label value: %s", copy);
                        if (*p == '\\') {
                            if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                                fail_msg("bad escape: %s", copy);
                            p++;
                        }
                        p++;
                    }
                    p++;
                    if (*p == ',')
                        p++;
                    else if (*p != '}')
                        fail_msg("bad label list: %s", copy);
                }
                p++;
            }
            if (strcmp(type, "histogram") == 0) {
                size_t flen = strlen(family);
                bool ok =
                    (ends_with(copy, name_len, "_bucket") && name_len == flen + 7 && has_le) ||
                    (ends_with(copy, name_len, "_sum") && name_len == flen + 4) ||
                    (ends_with(copy, name_len, "_count") && name_len == flen + 6);
                if (!ok || strncmp(copy, family, flen) != 0)
                    fail_msg("not a sample of histogram %s: %s", family, copy);
            } else if (name_len != strlen(family) || strncmp(copy, family, name_len) != 0) {
                fail_msg("not a sample of %s: %s", family, copy);
            }
            if (*p != ' ')
                fail_msg("no space before the value: %s", copy);
            p++;
            if (strcmp(p, "+Inf") != 0 && strcmp(p, "-Inf") != 0 && strcmp(p, "NaN") != 0) {
                char *stop;
                (void)strtod(p, &stop);
                if (stop == p || *stop != '\0')
                    fail_msg("bad value: %s", copy);
            }
        }
        line = end + 1;
    }
}

/* The value of the sample series (name and labels exactly as written), or
 * -1 when the text has no such line. */
static double sample_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            break;
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = end + 1;
    }
    return -1;
}

/* ------------------------------------------------------------ the format */

static void test_family_and_samples(void **state)
{
    nn_buf_t b;
    buf_init(&b, *state);
    metrics_write_family(&b, "x_total", "counter", "a help\nwith \\ a newline");
    metrics_label_t labels[] = {{"route", "/a/{}"}, {"v", "q\"u\\o\nte"}};
    metrics_write_sample(&b, "x_total", labels, 2, 42);
    metrics_write_sample(&b, "x_total", NULL, 0, 0.25);
    metrics_write_sample(&b, "x_total", labels, 1, 1e20);
    metrics_write_sample(&b, "x_total", NULL, 0, 0.1);
    metrics_write_family(&b, "y", "gauge", "special values");
    metrics_write_sample(&b, "y", NULL, 0, INFINITY);
    metrics_write_sample(&b, "y", NULL, 0, -INFINITY);
    metrics_write_sample(&b, "y", NULL, 0, NAN);
    metrics_write_sample(&b, "y", NULL, 0, -3);
    assert_string_equal(text_of(&b), "# HELP x_total a help\\nwith \\\\ a newline\n"
                                     "# TYPE x_total counter\n"
                                     "x_total{route=\"/a/{}\",v=\"q\\\"u\\\\o\\nte\"} 42\n"
                                     "x_total 0.25\n"
                                     "x_total{route=\"/a/{}\"} 1e+20\n"
                                     "x_total 0.1\n"
                                     "# HELP y special values\n"
                                     "# TYPE y gauge\n"
                                     "y +Inf\n"
                                     "y -Inf\n"
                                     "y NaN\n"
                                     "y -3\n");
    assert_exposition_valid(text_of(&b));
}

static void test_value_round_trip(void **state)
{
    static const double values[] = {0.1,    1.0 / 3.0,          123456.789012,
                                    2.5e-7, 9007199254740993.0, 0.30000000000000004};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        nn_buf_t b;
        buf_init(&b, *state);
        metrics_write_sample(&b, "v", NULL, 0, values[i]);
        const char *text = text_of(&b);
        assert_true(strtod(text + 2, NULL) == values[i]);
    }
}

/* -------------------------------------------------------- histogram math */

static void test_bucket_index(void **state)
{
    (void)state;
    static const double bounds[] = {0.5, 1, 2.5};
    assert_int_equal(metrics_bucket_index(bounds, 3, -1), 0);
    assert_int_equal(metrics_bucket_index(bounds, 3, 0), 0);
    assert_int_equal(metrics_bucket_index(bounds, 3, 0.5), 0); /* le: a bound is inclusive */
    assert_int_equal(metrics_bucket_index(bounds, 3, 0.50001), 1);
    assert_int_equal(metrics_bucket_index(bounds, 3, 1), 1);
    assert_int_equal(metrics_bucket_index(bounds, 3, 2.5), 2);
    assert_int_equal(metrics_bucket_index(bounds, 3, 2.6), 3);
    assert_int_equal(metrics_bucket_index(bounds, 3, 1e300), 3);
    assert_int_equal(metrics_bucket_index(bounds, 3, NAN), 3);
    assert_int_equal(metrics_bucket_index(bounds, 0, 1), 0);
}

static void test_histogram_cumulative(void **state)
{
    nn_buf_t b;
    buf_init(&b, *state);
    static const double bounds[] = {0.005, 0.25, 1, 10};
    static const uint64_t counts[] = {3, 0, 5, 1, 2}; /* the last: above 10 */
    metrics_label_t labels[] = {{"status", "success"}};
    metrics_write_family(&b, "d_seconds", "histogram", "durations");
    metrics_write_histogram(&b, "d_seconds", labels, 1, bounds, 4, counts, 42.5);
    metrics_write_histogram(&b, "d_seconds", NULL, 0, bounds, 0, counts + 4, 0);
    assert_string_equal(text_of(&b), "# HELP d_seconds durations\n"
                                     "# TYPE d_seconds histogram\n"
                                     "d_seconds_bucket{status=\"success\",le=\"0.005\"} 3\n"
                                     "d_seconds_bucket{status=\"success\",le=\"0.25\"} 3\n"
                                     "d_seconds_bucket{status=\"success\",le=\"1\"} 8\n"
                                     "d_seconds_bucket{status=\"success\",le=\"10\"} 9\n"
                                     "d_seconds_bucket{status=\"success\",le=\"+Inf\"} 11\n"
                                     "d_seconds_sum{status=\"success\"} 42.5\n"
                                     "d_seconds_count{status=\"success\"} 11\n"
                                     "d_seconds_bucket{le=\"+Inf\"} 2\n"
                                     "d_seconds_sum 0\n"
                                     "d_seconds_count 2\n");
    assert_exposition_valid(text_of(&b));
}

/* ---------------------------------------------------------- the table */

static void test_create_refuses_too_many_routes(void **state)
{
    (void)state;
    static char patterns[METRICS_MAX_ROUTES][16];
    static route_t many[METRICS_MAX_ROUTES];
    for (size_t i = 0; i < METRICS_MAX_ROUTES; i++) {
        snprintf(patterns[i], sizeof(patterns[i]), "/r%zu", i);
        many[i] = (route_t){"GET", patterns[i], handler, 0};
    }
    char err[256];
    metrics_t *m = metrics_create(many, METRICS_MAX_ROUTES - 2, err, sizeof(err));
    assert_non_null(m); /* exactly full: the patterns, "unknown", "other" */
    metrics_destroy(m);
    assert_null(metrics_create(many, METRICS_MAX_ROUTES - 1, err, sizeof(err)));
    assert_non_null(strstr(err, "METRICS_MAX_ROUTES"));
}

static void test_observe_and_render(void **state)
{
    char err[256];
    metrics_t *m = metrics_create(routes, NROUTES, err, sizeof(err));
    assert_non_null(m);

    /* The router's own pointer, and an equal string elsewhere. */
    metrics_observe(m, routes[3].pattern, "GET", 200, 0.0004, 0);
    char copy[32];
    snprintf(copy, sizeof(copy), "%s", "/networks/{}");
    metrics_observe(m, copy, "GET", 200, 0.003, 0);
    metrics_observe(m, copy, "GET", 404, 0.01, 0); /* le="0.01" is inclusive */
    metrics_observe(m, routes[2].pattern, "POST", 201, 1.5, 1000);
    metrics_observe(m, routes[2].pattern, "POST", 413, 20, 24);
    metrics_observe(m, "unknown", "GET", 404, 0.0001, 0);
    metrics_observe(m, NULL, NULL, 400, 0.0001, 5);           /* not routed */
    metrics_observe(m, "/nope", "BREW", 418, -1, 0);          /* bounded labels */
    metrics_observe(m, routes[0].pattern, "HEAD", 999, 0, 0); /* no class */
    metrics_count_worker_exit(m);

    nn_buf_t b;
    buf_init(&b, *state);
    assert_true(metrics_render(m, &b));
    const char *t = text_of(&b);
    assert_exposition_valid(t);

    assert_true(sample_value(t, "nnreg_start_time_seconds") > 1.6e9);
    assert_true(sample_value(t, "nnreg_fcgi_worker_exits_total") == 1);
#define REQ(labels) sample_value(t, "nnreg_http_requests_total{" labels "}")
    assert_true(REQ("route=\"/networks/{}\",method=\"GET\",code=\"200\"") == 2);
    assert_true(REQ("route=\"/networks/{}\",method=\"GET\",code=\"404\"") == 1);
    assert_true(REQ("route=\"/networks\",method=\"POST\",code=\"201\"") == 1);
    assert_true(REQ("route=\"/networks\",method=\"POST\",code=\"413\"") == 1);
    assert_true(REQ("route=\"unknown\",method=\"GET\",code=\"404\"") == 1);
    assert_true(REQ("route=\"other\",method=\"other\",code=\"400\"") == 1);
    assert_true(REQ("route=\"other\",method=\"other\",code=\"4xx\"") == 1);
    assert_true(REQ("route=\"/health\",method=\"HEAD\",code=\"other\"") == 1);
    /* Series that never counted are not written. */
    assert_true(REQ("route=\"/networks/{}\",method=\"DELETE\",code=\"200\"") == -1);
    assert_null(strstr(t, "BREW"));
    assert_null(strstr(t, "/nope"));

#define DUR(labels) sample_value(t, "nnreg_http_request_duration_seconds" labels)
    assert_true(DUR("_bucket{route=\"/networks/{}\",method=\"GET\",le=\"0.001\"}") == 1);
    assert_true(DUR("_bucket{route=\"/networks/{}\",method=\"GET\",le=\"0.0025\"}") == 1);
    assert_true(DUR("_bucket{route=\"/networks/{}\",method=\"GET\",le=\"0.005\"}") == 2);
    assert_true(DUR("_bucket{route=\"/networks/{}\",method=\"GET\",le=\"0.01\"}") == 3);
    assert_true(DUR("_bucket{route=\"/networks/{}\",method=\"GET\",le=\"10\"}") == 3);
    assert_true(DUR("_bucket{route=\"/networks/{}\",method=\"GET\",le=\"+Inf\"}") == 3);
    assert_true(DUR("_count{route=\"/networks/{}\",method=\"GET\"}") == 3);
    assert_true(DUR("_sum{route=\"/networks/{}\",method=\"GET\"}") == 0.0134);
    assert_true(DUR("_bucket{route=\"/networks\",method=\"POST\",le=\"1\"}") == 0);
    assert_true(DUR("_bucket{route=\"/networks\",method=\"POST\",le=\"2.5\"}") == 1);
    assert_true(DUR("_bucket{route=\"/networks\",method=\"POST\",le=\"10\"}") == 1);
    assert_true(DUR("_bucket{route=\"/networks\",method=\"POST\",le=\"+Inf\"}") == 2);
    assert_true(DUR("_sum{route=\"/networks\",method=\"POST\"}") == 21.5);
    /* A negative duration (clock stepped back) counts as 0. */
    assert_true(DUR("_bucket{route=\"other\",method=\"other\",le=\"0.001\"}") == 2);
    assert_true(DUR("_count{route=\"/networks\",method=\"GET\"}") == -1);

    assert_true(sample_value(t, "nnreg_http_request_body_bytes_total{route=\"/networks\","
                                "method=\"POST\"}") == 1024);
    assert_true(sample_value(t, "nnreg_http_request_body_bytes_total{route=\"other\","
                                "method=\"other\"}") == 5);
    assert_true(sample_value(t, "nnreg_uploaded_bytes_total") == 1029);

    metrics_observe(NULL, "/health", "GET", 200, 0, 0); /* no table: nothing, no crash */
    metrics_count_worker_exit(NULL);
    metrics_destroy(m);
    metrics_destroy(NULL);
}

static void test_empty_table_renders_valid_text(void **state)
{
    char err[256];
    metrics_t *m = metrics_create(routes, NROUTES, err, sizeof(err));
    assert_non_null(m);
    nn_buf_t b;
    buf_init(&b, *state);
    assert_true(metrics_render(m, &b));
    assert_exposition_valid(text_of(&b));
    assert_true(sample_value(text_of(&b), "nnreg_uploaded_bytes_total") == 0);
    assert_null(strstr(text_of(&b), "nnreg_http_requests_total{"));
    metrics_destroy(m);
}

/* Workers are forked processes: their increments must all land in the one
 * table, none lost to a race, without any lock. */
static void test_concurrent_increments_from_forked_processes(void **state)
{
    enum { NPROCS = 4, PER_PROC = 50000 };
    char err[256];
    metrics_t *m = metrics_create(routes, NROUTES, err, sizeof(err));
    assert_non_null(m);
    pid_t pids[NPROCS];
    for (int i = 0; i < NPROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            for (int j = 0; j < PER_PROC; j++) {
                /* Same cell and same bucket for all: the worst contention. */
                metrics_observe(m, routes[1].pattern, "GET", 200, 0.002, 3);
                if (j % 2)
                    metrics_observe(m, routes[1].pattern, "GET", 404, 0.2, 0);
            }
            metrics_count_worker_exit(m);
            _exit(0);
        }
    }
    for (int i = 0; i < NPROCS; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    nn_buf_t b;
    buf_init(&b, *state);
    assert_true(metrics_render(m, &b));
    const char *t = text_of(&b);
    assert_exposition_valid(t);
    double ok = NPROCS * (double)PER_PROC, missing = NPROCS * (double)(PER_PROC / 2);
    assert_true(sample_value(t, "nnreg_http_requests_total{route=\"/networks\",method=\"GET\","
                                "code=\"200\"}") == ok);
    assert_true(sample_value(t, "nnreg_http_requests_total{route=\"/networks\",method=\"GET\","
                                "code=\"404\"}") == missing);
    const char *h = "nnreg_http_request_duration_seconds";
    char series[256];
    snprintf(series, sizeof(series), "%s_bucket{route=\"/networks\",method=\"GET\",le=\"0.0025\"}",
             h);
    assert_true(sample_value(t, series) == ok);
    snprintf(series, sizeof(series), "%s_bucket{route=\"/networks\",method=\"GET\",le=\"0.25\"}",
             h);
    assert_true(sample_value(t, series) == ok + missing);
    snprintf(series, sizeof(series), "%s_count{route=\"/networks\",method=\"GET\"}", h);
    assert_true(sample_value(t, series) == ok + missing);
    /* Sums kept in whole microseconds: exact. */
    snprintf(series, sizeof(series), "%s_sum{route=\"/networks\",method=\"GET\"}", h);
    assert_true(sample_value(t, series) == (ok * 2000 + missing * 200000) / 1e6);
    assert_true(sample_value(t, "nnreg_uploaded_bytes_total") == ok * 3);
    assert_true(sample_value(t, "nnreg_fcgi_worker_exits_total") == NPROCS);
    metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_family_and_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_round_trip, setup, teardown),
        cmocka_unit_test(test_bucket_index),
        cmocka_unit_test_setup_teardown(test_histogram_cumulative, setup, teardown),
        cmocka_unit_test(test_create_refuses_too_many_routes),
        cmocka_unit_test_setup_teardown(test_observe_and_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_table_renders_valid_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_increments_from_forked_processes, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
