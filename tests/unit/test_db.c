/* Unit tests: db_open's connection defaults (db/db).  No server is needed:
 * libpq reports the settings a connection was made with (PQconninfo) even
 * when the attempt failed, and a unix socket directory that does not exist
 * fails at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db/db.h"

#define NOWHERE "/nonexistent/nnreg-unit-test"

/* The value libpq used for keyword on conn ("" when unset). */
static char *setting(PGconn *conn, const char *keyword)
{
    static char value[256];
    value[0] = '\0';
    PQconninfoOption *opts = PQconninfo(conn);
    assert_non_null(opts);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, keyword) == 0 && o->val) {
            strncpy(value, o->val, sizeof(value) - 1);
            value[sizeof(value) - 1] = '\0';
        }
    }
    PQconninfoFree(opts);
    return value;
}

static void test_defaults_apply_when_the_string_says_nothing(void **state)
{
    (void)state;
    PGconn *conn = db_open("host=" NOWHERE " dbname=nnreg", "nnreg-unit");
    assert_non_null(conn);
    assert_int_equal(PQstatus(conn), CONNECTION_BAD);
    assert_string_equal(setting(conn, "connect_timeout"), "5");
    assert_string_equal(setting(conn, "keepalives"), "1");
    assert_string_equal(setting(conn, "keepalives_idle"), "10");
    assert_string_equal(setting(conn, "keepalives_interval"), "5");
    assert_string_equal(setting(conn, "keepalives_count"), "3");
    assert_string_equal(setting(conn, "tcp_user_timeout"), "10000");
    assert_string_equal(setting(conn, "fallback_application_name"), "nnreg-unit");
    /* The string itself still counts. */
    assert_string_equal(setting(conn, "host"), NOWHERE);
    assert_string_equal(setting(conn, "dbname"), "nnreg");
    PQfinish(conn);
}

static void test_the_operators_settings_win(void **state)
{
    (void)state;
    PGconn *conn = db_open("host=" NOWHERE " dbname=nnreg connect_timeout=2 keepalives_idle=1 "
                           "keepalives_interval=1 keepalives_count=2 tcp_user_timeout=3000 "
                           "application_name=app1",
                           NULL);
    assert_non_null(conn);
    assert_string_equal(setting(conn, "connect_timeout"), "2");
    assert_string_equal(setting(conn, "keepalives_idle"), "1");
    assert_string_equal(setting(conn, "keepalives_interval"), "1");
    assert_string_equal(setting(conn, "keepalives_count"), "2");
    assert_string_equal(setting(conn, "tcp_user_timeout"), "3000");
    assert_string_equal(setting(conn, "application_name"), "app1");
    PQfinish(conn);

    /* Turning keepalives off is the operator's call too. */
    conn = db_open("host=" NOWHERE " keepalives=0", NULL);
    assert_non_null(conn);
    assert_string_equal(setting(conn, "keepalives"), "0");
    assert_string_equal(setting(conn, "tcp_user_timeout"), "10000");
    PQfinish(conn);
}

static void test_uri_form(void **state)
{
    (void)state;
    PGconn *conn = db_open("postgresql:///nnreg?host=" NOWHERE "&keepalives_count=7", NULL);
    assert_non_null(conn);
    assert_int_equal(PQstatus(conn), CONNECTION_BAD);
    assert_string_equal(setting(conn, "dbname"), "nnreg");
    assert_string_equal(setting(conn, "keepalives_count"), "7");
    assert_string_equal(setting(conn, "keepalives_idle"), "10");
    assert_string_equal(setting(conn, "connect_timeout"), "5");
    PQfinish(conn);
}

static void test_empty_string_uses_the_pg_variables(void **state)
{
    (void)state;
    setenv("PGHOST", NOWHERE, 1);
    setenv("PGCONNECT_TIMEOUT", "7", 1);
    PGconn *conn = db_open("", NULL);
    assert_non_null(conn);
    assert_int_equal(PQstatus(conn), CONNECTION_BAD);
    assert_string_equal(setting(conn, "host"), NOWHERE);
    /* The operator's PGCONNECT_TIMEOUT is not overridden by our default. */
    assert_string_equal(setting(conn, "connect_timeout"), "7");
    assert_string_equal(setting(conn, "tcp_user_timeout"), "10000");
    PQfinish(conn);
    unsetenv("PGHOST");
    unsetenv("PGCONNECT_TIMEOUT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_apply_when_the_string_says_nothing),
        cmocka_unit_test(test_the_operators_settings_win),
        cmocka_unit_test(test_uri_form),
        cmocka_unit_test(test_empty_string_uses_the_pg_variables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
