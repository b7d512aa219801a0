/* Unit tests: URL sources (image/fetch.c).
 *
 * The address classifier on many IPv4 and IPv6 literals; the scheme rules;
 * and real transfers from a tiny HTTP server this test runs on 127.0.0.1
 * (a thread, one connection at a time, every wait bounded): an image
 * fetched with allow_private and refused without it, redirects (followed,
 * to a refused scheme, in a loop), HTTP errors, the size limit with and
 * without a Content-Length, and the timeout. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "image/fetch.h"
#include "image/image.h"
#include "util/config.h"

#ifndef NNREG_FIXTURES
#define NNREG_FIXTURES "tests/fixtures"
#endif

/* ---- the classifier --------------------------------------------------------------- */

static void test_classifier(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        fetch_address_class_t want;
    } cases[] = {
        {"0.0.0.0", FETCH_ADDR_UNSPECIFIED},
        {"0.1.2.3", FETCH_ADDR_UNSPECIFIED},
        {"10.0.0.1", FETCH_ADDR_PRIVATE},
        {"10.255.255.255", FETCH_ADDR_PRIVATE},
        {"11.0.0.1", FETCH_ADDR_PUBLIC},
        {"100.63.255.255", FETCH_ADDR_PUBLIC},
        {"100.64.0.1", FETCH_ADDR_SHARED},
        {"100.127.255.255", FETCH_ADDR_SHARED},
        {"100.128.0.0", FETCH_ADDR_PUBLIC},
        {"127.0.0.1", FETCH_ADDR_LOOPBACK},
        {"127.255.255.254", FETCH_ADDR_LOOPBACK},
        {"169.254.169.254", FETCH_ADDR_LINK_LOCAL}, /* cloud metadata */
        {"169.255.0.1", FETCH_ADDR_PUBLIC},
        {"172.15.255.255", FETCH_ADDR_PUBLIC},
        {"172.16.0.1", FETCH_ADDR_PRIVATE},
        {"172.31.255.255", FETCH_ADDR_PRIVATE},
        {"172.32.0.0", FETCH_ADDR_PUBLIC},
        {"192.0.0.8", FETCH_ADDR_RESERVED},
        {"192.0.2.1", FETCH_ADDR_DOCUMENTATION},
        {"192.88.99.1", FETCH_ADDR_RESERVED},
        {"192.167.255.255", FETCH_ADDR_PUBLIC},
        {"192.168.0.1", FETCH_ADDR_PRIVATE},
        {"192.168.255.255", FETCH_ADDR_PRIVATE},
        {"192.169.0.0", FETCH_ADDR_PUBLIC},
        {"198.18.0.1", FETCH_ADDR_RESERVED},
        {"198.19.255.255", FETCH_ADDR_RESERVED},
        {"198.20.0.0", FETCH_ADDR_PUBLIC},
        {"198.51.100.7", FETCH_ADDR_DOCUMENTATION},
        {"203.0.113.9", FETCH_ADDR_DOCUMENTATION},
        {"224.0.0.1", FETCH_ADDR_MULTICAST},
        {"239.255.255.250", FETCH_ADDR_MULTICAST},
        {"240.0.0.1", FETCH_ADDR_RESERVED},
        {"255.255.255.255", FETCH_ADDR_RESERVED},
        {"8.8.8.8", FETCH_ADDR_PUBLIC},
        {"1.1.1.1", FETCH_ADDR_PUBLIC},
        {"93.184.216.34", FETCH_ADDR_PUBLIC},
        {"223.255.255.255", FETCH_ADDR_PUBLIC},
        {"::", FETCH_ADDR_UNSPECIFIED},
        {"::1", FETCH_ADDR_LOOPBACK},
        {"::2", FETCH_ADDR_UNSPECIFIED}, /* IPv4-compatible 0.0.0.2 */
        {"::ffff:127.0.0.1", FETCH_ADDR_LOOPBACK},
        {"::ffff:10.1.2.3", FETCH_ADDR_PRIVATE},
        {"::ffff:169.254.1.1", FETCH_ADDR_LINK_LOCAL},
        {"::ffff:8.8.8.8", FETCH_ADDR_PUBLIC},
        {"::ffff:0.0.0.0", FETCH_ADDR_UNSPECIFIED},
        {"::127.0.0.1", FETCH_ADDR_LOOPBACK},
        {"64:ff9b::7f00:1", FETCH_ADDR_LOOPBACK},
        {"64:ff9b::808:808", FETCH_ADDR_PUBLIC},
        {"64:ff9b:1::1", FETCH_ADDR_RESERVED},
        {"2002:7f00:1::1", FETCH_ADDR_LOOPBACK},
        {"2002:c0a8:101::1", FETCH_ADDR_PRIVATE},
        {"2002:808:808::1", FETCH_ADDR_PUBLIC},
        {"2001::1", FETCH_ADDR_RESERVED},
        {"2001:db8::1", FETCH_ADDR_DOCUMENTATION},
        {"100::1", FETCH_ADDR_RESERVED},
        {"fe80::1", FETCH_ADDR_LINK_LOCAL},
        {"febf:ffff::1", FETCH_ADDR_LINK_LOCAL},
        {"fec0::1", FETCH_ADDR_PRIVATE},
        {"fc00::1", FETCH_ADDR_UNIQUE_LOCAL},
        {"fd12:3456:789a::1", FETCH_ADDR_UNIQUE_LOCAL},
        {"fbff::1", FETCH_ADDR_PUBLIC},
        {"fe00::1", FETCH_ADDR_PUBLIC},
        {"ff02::1", FETCH_ADDR_MULTICAST},
        {"ff05::1:3", FETCH_ADDR_MULTICAST},
        {"2001:4860:4860::8888", FETCH_ADDR_PUBLIC},
        {"2606:4700:4700::1111", FETCH_ADDR_PUBLIC},
        {"2a00:1450:4001:80b::200e", FETCH_ADDR_PUBLIC},
        {"localhost", FETCH_ADDR_OTHER},
        {"1.2.3", FETCH_ADDR_OTHER},
        {"", FETCH_ADDR_OTHER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fetch_address_class_t got = fetch_classify_literal(cases[i].addr);
        if (got != cases[i].want)
            fail_msg("%s: %s, expected %s", cases[i].addr, fetch_address_class_name(got),
                     fetch_address_class_name(cases[i].want));
    }
}

static void test_is_url(void **state)
{
    (void)state;
    assert_true(fetch_is_url("http://example.com/a.jpg"));
    assert_true(fetch_is_url("https://example.com/a.jpg"));
    assert_true(fetch_is_url("HTTPS://EXAMPLE.COM/"));
    assert_true(fetch_is_url("HtTp://x"));
    assert_false(fetch_is_url("ftp://example.com/a.jpg"));
    assert_false(fetch_is_url("file:///etc/passwd"));
    assert_false(fetch_is_url("/9j/4AAQSkZJRgABAQ"));     /* base64 JPEG */
    assert_false(fetch_is_url("iVBORw0KGgoAAAANSUhEUg")); /* base64 PNG */
    assert_false(fetch_is_url("http:/x"));
    assert_false(fetch_is_url(" http://x"));
    assert_false(fetch_is_url(""));
    assert_false(fetch_is_url(NULL));
}

static void assert_url_error(const nn_error_t *err, const char *needle)
{
    assert_int_equal(err->status, 400);
    assert_string_equal(err->code, "invalid_image_url");
    if (needle && !strstr(err->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err->message, needle);
    print_message("    %s\n", err->message);
}

static void test_schemes(void **state)
{
    (void)state;
    const char *bad[] = {"ftp://127.0.0.1/x.png", "file:///etc/passwd",
                         "gopher://x/",           "dict://127.0.0.1:11211/",
                         "javascript:alert(1)",   "data:image/png;base64,AA"};
    fetch_limits_t lim = {
        .max_bytes = 1000, .timeout_ms = 1000, .allow_private = true, .max_redirects = 3};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        arena_t *a = arena_create(0);
        nn_error_t err;
        nn_error_init(&err);
        void *bytes;
        size_t len;
        assert_false(fetch_url(a, bad[i], &lim, &bytes, &len, &err));
        assert_url_error(&err, "http");
        assert_null(bytes);
        arena_destroy(a);
    }
}

static void test_limits_from_config(void **state)
{
    (void)state;
    nn_config_t cfg;
    fetch_limits_t lim;
    char errbuf[256];
    int first;
    char prog[] = "test", flag[] = "--fetch-timeout-ms=2500";
    char *argv[] = {prog, flag, NULL};
    unsetenv("NNREG_FETCH_ALLOW_PRIVATE");
    unsetenv("NNREG_FETCH_MAX_BYTES");
    unsetenv("NNREG_FETCH_TIMEOUT_MS");
    assert_true(config_load(&cfg, 1, argv, &first, errbuf, sizeof(errbuf)));
    fetch_limits_from_config(&cfg, &lim);
    assert_false(lim.allow_private); /* refused unless the operator says so */
    assert_int_equal(lim.max_bytes, 20971520);
    assert_int_equal(lim.timeout_ms, 10000);
    assert_int_equal(lim.max_redirects, FETCH_MAX_REDIRECTS);

    setenv("NNREG_FETCH_ALLOW_PRIVATE", "1", 1);
    setenv("NNREG_FETCH_MAX_BYTES", "12345", 1);
    assert_true(config_load(&cfg, 2, argv, &first, errbuf, sizeof(errbuf)));
    fetch_limits_from_config(&cfg, &lim);
    assert_true(lim.allow_private);
    assert_int_equal(lim.max_bytes, 12345);
    assert_int_equal(lim.timeout_ms, 2500);

    setenv("NNREG_FETCH_ALLOW_PRIVATE", "yes", 1);
    assert_false(config_load(&cfg, 1, argv, &first, errbuf, sizeof(errbuf)));
    assert_non_null(strstr(errbuf, "NNREG_FETCH_ALLOW_PRIVATE"));
    unsetenv("NNREG_FETCH_ALLOW_PRIVATE");
    unsetenv("NNREG_FETCH_MAX_BYTES");
}

/* ---- the test server ----------------------------------------------------------------- */

typedef struct server {
    int fd;
    int port;
    atomic_bool stop;
    pthread_t thread;
    unsigned char *png;
    size_t png_len;
    atomic_int requests;
} server_t;

static server_t srv;

static void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, const char *status, const char *extra, const void *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                     len, extra ? extra : "");
    send_all(fd, head, (size_t)n);
    if (len)
        send_all(fd, body, len);
}

/* Waits (at most ms) until the client closes the connection. */
static void wait_for_close(int fd, int ms)
{
    char buf[256];
    for (int waited = 0; waited < ms; waited += 50) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) > 0 && recv(fd, buf, sizeof(buf), 0) <= 0)
            return;
    }
}

static void serve_one(int fd)
{
    char req[4096];
    size_t got = 0;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (got < sizeof(req) - 1) {
        ssize_t n = recv(fd, req + got, sizeof(req) - 1 - got, 0);
        if (n <= 0)
            return;
        got += (size_t)n;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char path[256] = "";
    if (sscanf(req, "GET %255s HTTP/1.1", path) != 1)
        return;
    atomic_fetch_add(&srv.requests, 1);
    char loc[512];
    if (strcmp(path, "/img.png") == 0) {
        respond(fd, "200 OK", "Content-Type: image/png\r\n", srv.png, srv.png_len);
    } else if (strcmp(path, "/redirect") == 0) {
        snprintf(loc, sizeof(loc), "Location: http://127.0.0.1:%d/img.png\r\n", srv.port);
        respond(fd, "302 Found", loc, NULL, 0);
    } else if (strcmp(path, "/redirect-ftp") == 0) {
        snprintf(loc, sizeof(loc), "Location: ftp://127.0.0.1:%d/img.png\r\n", srv.port);
        respond(fd, "302 Found", loc, NULL, 0);
    } else if (strcmp(path, "/loop") == 0) {
        respond(fd, "302 Found", "Location: /loop\r\n", NULL, 0);
    } else if (strcmp(path, "/big") == 0) {
        /* Declares 10 MB and starts sending: stopped by the declared size. */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n";
        send_all(fd, h, strlen(h));
        char zeros[4096] = {0};
        send_all(fd, zeros, sizeof(zeros));
    } else if (strcmp(path, "/big-chunked") == 0) {
        /* No length: the limit must be enforced as bytes arrive. */
        const char *h =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        send_all(fd, h, strlen(h));
        char chunk[1024 + 16];
        int n = snprintf(chunk, sizeof(chunk), "400\r\n");
        memset(chunk + n, 'x', 1024);
        memcpy(chunk + n + 1024, "\r\n", 2);
        for (int i = 0; i < 4096; i++) { /* at most 4 MiB, until the client hangs up */
            ssize_t s = send(fd, chunk, (size_t)n + 1026, MSG_NOSIGNAL);
            if (s <= 0)
                break;
        }
    } else if (strcmp(path, "/slow") == 0) {
        /* Headers, then nothing: the client's timeout must end it. */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nabc";
        send_all(fd, h, strlen(h));
        wait_for_close(fd, 5000);
    } else if (strcmp(path, "/empty") == 0) {
        respond(fd, "200 OK", NULL, NULL, 0);
    } else {
        respond(fd, "404 Not Found", NULL, "no", 2);
    }
}

static void *server_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&srv.stop)) {
        struct pollfd p = {.fd = srv.fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(c);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

static int server_start(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof(srv));
    char path[1024];
    snprintf(path, sizeof(path), "%s/preprocessing/images/grey_alpha_97x61.png", NNREG_FIXTURES);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    srv.png_len = (size_t)ftell(f);
    rewind(f);
    srv.png = malloc(srv.png_len);
    if (!srv.png || fread(srv.png, 1, srv.png_len, f) != srv.png_len) {
        fclose(f);
        return -1;
    }
    fclose(f);
    srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(srv.fd, 16) != 0 || getsockname(srv.fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    srv.port = ntohs(sa.sin_port);
    if (!fetch_global_init())
        return -1;
    return pthread_create(&srv.thread, NULL, server_main, NULL) == 0 ? 0 : -1;
}

static int server_stop(void **state)
{
    (void)state;
    atomic_store(&srv.stop, true);
    pthread_join(srv.thread, NULL);
    close(srv.fd);
    free(srv.png);
    return 0;
}

static bool get(const char *path_or_url, fetch_limits_t lim, void **bytes, size_t *len,
                nn_error_t *err, arena_t *a)
{
    char url[512];
    if (strstr(path_or_url, "://"))
        snprintf(url, sizeof(url), "%s", path_or_url);
    else
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, path_or_url);
    nn_error_init(err);
    return fetch_url(a, url, &lim, bytes, len, err);
}

static const fetch_limits_t open_limits = {
    .max_bytes = 1 << 20, .timeout_ms = 5000, .allow_private = true, .max_redirects = 3};

static void test_fetch_ok(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_error_t err;
    void *bytes;
    size_t len;
    if (!get("/img.png", open_limits, &bytes, &len, &err, a))
        fail_msg("%s", err.message);
    assert_int_equal(len, srv.png_len);
    assert_memory_equal(bytes, srv.png, len);
    image_rgb_t img;
    assert_true(image_decode(a, bytes, len, &img, &err));
    assert_int_equal(img.width, 97);

    /* A redirect is followed. */
    if (!get("/redirect", open_limits, &bytes, &len, &err, a))
        fail_msg("%s", err.message);
    assert_int_equal(len, srv.png_len);

    /* "localhost" resolves, and is allowed here. */
    char url[128];
    snprintf(url, sizeof(url), "http://localhost:%d/img.png", srv.port);
    if (!get(url, open_limits, &bytes, &len, &err, a))
        fail_msg("%s", err.message);
    assert_int_equal(len, srv.png_len);
    arena_destroy(a);
}

static void test_fetch_refused_address(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_error_t err;
    void *bytes;
    size_t len;
    fetch_limits_t closed = open_limits;
    closed.allow_private = false;
    int before = atomic_load(&srv.requests);
    assert_false(get("/img.png", closed, &bytes, &len, &err, a));
    assert_url_error(&err, "127.0.0.1 is loopback");
    assert_null(bytes);

    char url[128];
    snprintf(url, sizeof(url), "http://localhost:%d/img.png", srv.port);
    assert_false(get(url, closed, &bytes, &len, &err, a));
    assert_url_error(&err, "loopback");
    snprintf(url, sizeof(url), "http://[::1]:%d/img.png", srv.port);
    assert_false(get(url, closed, &bytes, &len, &err, a));
    assert_url_error(&err, "::1 is loopback");
    snprintf(url, sizeof(url), "http://[::ffff:127.0.0.1]:%d/img.png", srv.port);
    assert_false(get(url, closed, &bytes, &len, &err, a));
    assert_url_error(&err, "loopback");
    /* 0x7f.1 is 127.0.0.1 spelled for inet_aton. */
    snprintf(url, sizeof(url), "http://0x7f.1:%d/img.png", srv.port);
    assert_false(get(url, closed, &bytes, &len, &err, a));
    assert_url_error(&err, NULL);
    assert_false(get("http://169.254.169.254/latest/meta-data/", closed, &bytes, &len, &err, a));
    assert_url_error(&err, "link-local");
    assert_false(get("http://10.0.0.1/", closed, &bytes, &len, &err, a));
    assert_url_error(&err, "private");
    assert_false(get("http://0.0.0.0/", closed, &bytes, &len, &err, a));
    assert_url_error(&err, "unspecified");
    /* The server never saw a request: refused before connecting. */
    assert_int_equal(atomic_load(&srv.requests), before);
    arena_destroy(a);
}

static void test_fetch_errors(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_error_t err;
    void *bytes;
    size_t len;

    assert_false(get("/missing", open_limits, &bytes, &len, &err, a));
    assert_url_error(&err, "HTTP 404");
    assert_false(get("/empty", open_limits, &bytes, &len, &err, a));
    assert_url_error(&err, "empty");
    assert_false(get("/redirect-ftp", open_limits, &bytes, &len, &err, a));
    assert_url_error(&err, "http");
    assert_false(get("/loop", open_limits, &bytes, &len, &err, a));
    assert_url_error(&err, "redirects");

    /* Size limit: one byte short of the image, then a declared 10 MB, then
     * an endless chunked body. */
    fetch_limits_t small = open_limits;
    small.max_bytes = srv.png_len - 1;
    assert_false(get("/img.png", small, &bytes, &len, &err, a));
    assert_url_error(&err, "larger than");
    small.max_bytes = srv.png_len;
    assert_true(get("/img.png", small, &bytes, &len, &err, a));
    small.max_bytes = 100000;
    assert_false(get("/big", small, &bytes, &len, &err, a));
    assert_url_error(&err, "larger than the 100000 bytes");
    assert_false(get("/big-chunked", small, &bytes, &len, &err, a));
    assert_url_error(&err, "larger than the 100000 bytes");

    /* Timeout: the server stalls after 3 body bytes. */
    fetch_limits_t quick = open_limits;
    quick.timeout_ms = 300;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_false(get("/slow", quick, &bytes, &len, &err, a));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_url_error(&err, "within 300 ms");
    double took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(took < 3.0); /* bounded by the timeout, not the server */
    arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classifier),   cmocka_unit_test(test_is_url),
        cmocka_unit_test(test_schemes),      cmocka_unit_test(test_limits_from_config),
        cmocka_unit_test(test_fetch_ok),     cmocka_unit_test(test_fetch_refused_address),
        cmocka_unit_test(test_fetch_errors),
    };
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
