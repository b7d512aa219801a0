/* fetch.c - http(s) image sources with libcurl, under API.md's rules.
 *
 * The address rule is enforced in libcurl's open-socket callback: it sees
 * every address libcurl is about to connect to (each DNS answer tried, each
 * redirect hop, each new connection) and refuses a non-public one by not
 * opening the socket.  So the address checked is exactly the one
 * connected, and a DNS answer that changes between a check and the connect
 * (rebinding) changes nothing.  Proxies are disabled (the proxy would be
 * the address checked, not the server).
 *
 * The body is collected in malloc memory with the size limit enforced as
 * bytes arrive (a Content-Length above the limit stops the transfer before
 * any body byte), then handed to the arena. */
#include "image/fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "util/config.h"

bool fetch_is_url(const char *s)
{
    return s && (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0);
}

/* ---- address classes --------------------------------------------------------- */

const char *fetch_address_class_name(fetch_address_class_t c)
{
    switch (c) {
    case FETCH_ADDR_PUBLIC:
        return "public";
    case FETCH_ADDR_UNSPECIFIED:
        return "unspecified";
    case FETCH_ADDR_LOOPBACK:
        return "loopback";
    case FETCH_ADDR_PRIVATE:
        return "private";
    case FETCH_ADDR_SHARED:
        return "shared (carrier-grade NAT)";
    case FETCH_ADDR_LINK_LOCAL:
        return "link-local";
    case FETCH_ADDR_UNIQUE_LOCAL:
        return "unique-local";
    case FETCH_ADDR_MULTICAST:
        return "multicast";
    case FETCH_ADDR_RESERVED:
        return "reserved";
    case FETCH_ADDR_DOCUMENTATION:
        return "documentation";
    case FETCH_ADDR_OTHER:
        return "unsupported address family";
    }
    return "unknown";
}

static fetch_address_class_t classify_v4(uint32_t a)
{
    struct {
        uint32_t net;
        unsigned bits;
        fetch_address_class_t c;
    } const ranges[] = {
        {0x00000000, 8, FETCH_ADDR_UNSPECIFIED},    /* 0/8 "this network" */
        {0x0a000000, 8, FETCH_ADDR_PRIVATE},        /* 10/8 */
        {0x64400000, 10, FETCH_ADDR_SHARED},        /* 100.64/10 */
        {0x7f000000, 8, FETCH_ADDR_LOOPBACK},       /* 127/8 */
        {0xa9fe0000, 16, FETCH_ADDR_LINK_LOCAL},    /* 169.254/16 */
        {0xac100000, 12, FETCH_ADDR_PRIVATE},       /* 172.16/12 */
        {0xc0000000, 24, FETCH_ADDR_RESERVED},      /* 192.0.0/24 IETF assignments */
        {0xc0000200, 24, FETCH_ADDR_DOCUMENTATION}, /* 192.0.2/24 */
        {0xc0586300, 24, FETCH_ADDR_RESERVED},      /* 192.88.99/24 6to4 relays */
        {0xc0a80000, 16, FETCH_ADDR_PRIVATE},       /* 192.168/16 */
        {0xc6120000, 15, FETCH_ADDR_RESERVED},      /* 198.18/15 benchmarking */
        {0xc6336400, 24, FETCH_ADDR_DOCUMENTATION}, /* 198.51.100/24 */
        {0xcb007100, 24, FETCH_ADDR_DOCUMENTATION}, /* 203.0.113/24 */
        {0xe0000000, 4, FETCH_ADDR_MULTICAST},      /* 224/4 */
        {0xf0000000, 4, FETCH_ADDR_RESERVED},       /* 240/4, broadcast included */
    };
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        uint32_t mask = ranges[i].bits ? ~0u << (32 - ranges[i].bits) : 0;
        if ((a & mask) == ranges[i].net)
            return ranges[i].c;
    }
    return FETCH_ADDR_PUBLIC;
}

static uint32_t v4_at(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static bool prefix_is(const unsigned char *b, const unsigned char *p, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(b, p, whole) != 0)
        return false;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (b[whole] & mask) == (p[whole] & mask);
}

static fetch_address_class_t classify_v6(const unsigned char *b)
{
    static const unsigned char zero[16] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    static const unsigned char nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
    static const unsigned char discard[8] = {0x01, 0x00};
    static const unsigned char teredo[4] = {0x20, 0x01, 0, 0};
    static const unsigned char doc[4] = {0x20, 0x01, 0x0d, 0xb8};
    static const unsigned char six_to_four[2] = {0x20, 0x02};
    static const unsigned char ula[1] = {0xfc};
    static const unsigned char ll[2] = {0xfe, 0x80};
    static const unsigned char site[2] = {0xfe, 0xc0};
    if (memcmp(b, zero, 16) == 0)
        return FETCH_ADDR_UNSPECIFIED;
    if (memcmp(b, zero, 15) == 0 && b[15] == 1)
        return FETCH_ADDR_LOOPBACK;
    /* Forms that carry an IPv4 address reach that address: judge it. */
    if (memcmp(b, mapped, 12) == 0 || prefix_is(b, nat64, 96))
        return classify_v4(v4_at(b + 12));
    if (memcmp(b, zero, 12) == 0) /* ::a.b.c.d, IPv4-compatible (deprecated) */
        return classify_v4(v4_at(b + 12));
    if (prefix_is(b, six_to_four, 16))
        return classify_v4(v4_at(b + 2));
    if (prefix_is(b, nat64_local, 48) || prefix_is(b, discard, 64) || prefix_is(b, teredo, 32))
        return FETCH_ADDR_RESERVED; /* Teredo hides its client address */
    if (prefix_is(b, doc, 32))
        return FETCH_ADDR_DOCUMENTATION;
    if (prefix_is(b, ula, 7))
        return FETCH_ADDR_UNIQUE_LOCAL;
    if (prefix_is(b, ll, 10))
        return FETCH_ADDR_LINK_LOCAL;
    if (prefix_is(b, site, 10))
        return FETCH_ADDR_PRIVATE; /* site-local, deprecated but still private */
    if (b[0] == 0xff)
        return FETCH_ADDR_MULTICAST;
    return FETCH_ADDR_PUBLIC;
}

fetch_address_class_t fetch_classify_address(const struct sockaddr *sa)
{
    if (!sa)
        return FETCH_ADDR_OTHER;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return classify_v4(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return classify_v6(in6->sin6_addr.s6_addr);
    }
    return FETCH_ADDR_OTHER;
}

fetch_address_class_t fetch_classify_literal(const char *text)
{
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    memset(&in, 0, sizeof(in));
    memset(&in6, 0, sizeof(in6));
    if (inet_pton(AF_INET, text, &in.sin_addr) == 1) {
        in.sin_family = AF_INET;
        return fetch_classify_address((const struct sockaddr *)(const void *)&in);
    }
    if (inet_pton(AF_INET6, text, &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        return fetch_classify_address((const struct sockaddr *)(const void *)&in6);
    }
    return FETCH_ADDR_OTHER;
}

/* ---- the transfer -------------------------------------------------------- */

typedef struct fetch_ctx {
    const fetch_limits_t *limits;
    unsigned char *data; /* malloc */
    size_t len, cap;
    bool too_large;
    bool refused; /* an address was refused */
    char refused_addr[INET6_ADDRSTRLEN];
    fetch_address_class_t refused_class;
} fetch_ctx_t;

static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *address)
{
    fetch_ctx_t *ctx = clientp;
    (void)purpose;
    if (address->family != AF_INET && address->family != AF_INET6)
        return CURL_SOCKET_BAD;
    fetch_address_class_t c = fetch_classify_address(&address->addr);
    if (c != FETCH_ADDR_PUBLIC && !ctx->limits->allow_private) {
        ctx->refused = true;
        ctx->refused_class = c;
        const void *a =
            address->family == AF_INET
                ? (const void *)&((const struct sockaddr_in *)(const void *)&address->addr)
                      ->sin_addr
                : (const void *)&((const struct sockaddr_in6 *)(const void *)&address->addr)
                      ->sin6_addr;
        if (!inet_ntop(address->family, a, ctx->refused_addr, sizeof(ctx->refused_addr)))
            strcpy(ctx->refused_addr, "?");
        return CURL_SOCKET_BAD;
    }
    int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* A second look, once connected and before the request is sent: the
 * connection's peer address as libcurl reports it.  The open-socket check
 * already covers every connection libcurl opens; this one holds even if a
 * future libcurl reached a server through a socket that did not pass
 * there. */
static int on_prereq(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    fetch_ctx_t *ctx = clientp;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    if (ctx->limits->allow_private)
        return CURL_PREREQFUNC_OK;
    fetch_address_class_t c = fetch_classify_literal(conn_primary_ip ? conn_primary_ip : "");
    if (c == FETCH_ADDR_PUBLIC)
        return CURL_PREREQFUNC_OK;
    ctx->refused = true;
    ctx->refused_class = c;
    snprintf(ctx->refused_addr, sizeof(ctx->refused_addr), "%s",
             conn_primary_ip ? conn_primary_ip : "?");
    return CURL_PREREQFUNC_ABORT;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    fetch_ctx_t *ctx = userdata;
    size_t n = size * nmemb;
    if (n > ctx->limits->max_bytes - ctx->len) { /* len never exceeds max_bytes */
        ctx->too_large = true;
        return 0; /* aborts the transfer (CURLE_WRITE_ERROR) */
    }
    if (ctx->len + n > ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap : 64 * 1024;
        while (cap < ctx->len + n)
            cap *= 2;
        if (cap > ctx->limits->max_bytes)
            cap = ctx->limits->max_bytes;
        unsigned char *grown = realloc(ctx->data, cap);
        if (!grown)
            return 0;
        ctx->data = grown;
        ctx->cap = cap;
    }
    memcpy(ctx->data + ctx->len, ptr, n);
    ctx->len += n;
    return n;
}

/* The URL as shown in messages: at most 200 bytes, control bytes and
 * quotes replaced, so the message stays one readable line. */
static void shown_url(const char *url, char *buf, size_t size)
{
    size_t n = 0, max = size - 4 < 200 ? size - 4 : 200;
    for (; url[n] && n < max; n++)
        buf[n] = ((unsigned char)url[n] < 0x20 || url[n] == '"' || url[n] == 0x7f) ? '?' : url[n];
    strcpy(buf + n, url[n] ? "..." : "");
}

void fetch_limits_from_config(const struct nn_config *cfg, fetch_limits_t *out)
{
    out->max_bytes = (size_t)cfg->fetch_max_bytes;
    out->timeout_ms = (long)cfg->fetch_timeout_ms;
    out->allow_private = cfg->fetch_allow_private != 0;
    out->max_redirects = FETCH_MAX_REDIRECTS;
}

bool fetch_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

bool fetch_url(arena_t *arena, const char *url, const fetch_limits_t *limits, void **bytes,
               size_t *len, nn_error_t *err)
{
    char shown[256];
    shown_url(url ? url : "", shown, sizeof(shown));
    *bytes = NULL;
    *len = 0;
    if (!fetch_is_url(url))
        return nn_error_set(err, 400, "invalid_image_url",
                            "image URL \"%s\": only http:// and https:// URLs are fetched", shown);
    if (limits->max_bytes == 0)
        return nn_error_set(err, 400, "invalid_image_url",
                            "image URL \"%s\": fetching images is disabled (size limit 0)", shown);

    CURL *curl = curl_easy_init();
    if (!curl)
        return nn_error_internal(err, "libcurl could not be initialised");
    fetch_ctx_t ctx = {.limits = limits};
    char curl_message[CURL_ERROR_SIZE] = "";
    CURLcode rc = CURLE_OK;
    /* A failed setopt means an option our libcurl lacks; that must never
     * silently weaken the rules, so each one is checked. */
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(curl, opt, val);                                                 \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, (long)(limits->max_redirects > 0 ? limits->max_redirects : 0));
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NOPROXY, "*");
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, &ctx);
    SET(CURLOPT_PREREQFUNCTION, on_prereq);
    SET(CURLOPT_PREREQDATA, &ctx);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, &ctx);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)limits->max_bytes);
    SET(CURLOPT_TIMEOUT_MS, limits->timeout_ms > 0 ? limits->timeout_ms : 1L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, curl_message);
    SET(CURLOPT_USERAGENT, "nnreg-fetch/1");
    SET(CURLOPT_ACCEPT_ENCODING, NULL); /* bytes as sent: the limit is on them */
#undef SET
    if (rc != CURLE_OK) {
        curl_easy_cleanup(curl);
        return nn_error_set(err, 500, "internal_error",
                            "internal error: libcurl refused an option (%s)",
                            curl_easy_strerror(rc));
    }
    rc = curl_easy_perform(curl);
    long status = 0;
    (void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);

    bool ok = false;
    if (ctx.refused && rc != CURLE_OK)
        nn_error_set(err, 400, "invalid_image_url",
                     "image URL \"%s\": the server's address %s is %s, which images are not "
                     "fetched from (give a public URL, or send the image bytes)",
                     shown, ctx.refused_addr, fetch_address_class_name(ctx.refused_class));
    else if (ctx.too_large || rc == CURLE_FILESIZE_EXCEEDED)
        nn_error_set(err, 400, "invalid_image_url",
                     "image URL \"%s\": the image is larger than the %zu bytes accepted", shown,
                     limits->max_bytes);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        nn_error_set(err, 400, "invalid_image_url",
                     "image URL \"%s\": no complete answer within %ld ms", shown,
                     limits->timeout_ms);
    else if (rc == CURLE_UNSUPPORTED_PROTOCOL)
        nn_error_set(err, 400, "invalid_image_url",
                     "image URL \"%s\": only http and https are fetched (also for redirects)",
                     shown);
    else if (rc == CURLE_TOO_MANY_REDIRECTS)
        nn_error_set(err, 400, "invalid_image_url", "image URL \"%s\": more than %d redirects",
                     shown, limits->max_redirects);
    else if (rc != CURLE_OK)
        nn_error_set(err, 400, "invalid_image_url", "image URL \"%s\": %s", shown,
                     curl_message[0] ? curl_message : curl_easy_strerror(rc));
    else if (status < 200 || status > 299)
        nn_error_set(err, 400, "invalid_image_url",
                     "image URL \"%s\": the server answered HTTP %ld", shown, status);
    else if (ctx.len == 0)
        nn_error_set(err, 400, "invalid_image_url", "image URL \"%s\": the answer is empty", shown);
    else
        ok = true;
    if (ok) {
        unsigned char *copy = arena_alloc(arena, ctx.len);
        if (!copy)
            ok = nn_error_oom(err);
        else {
            memcpy(copy, ctx.data, ctx.len);
            *bytes = copy;
            *len = ctx.len;
        }
    }
    free(ctx.data);
    return ok;
}
