"""The exact count of the network lists comes from per-organization counters
kept by triggers (sql/004_perf_indexes.sql), and pages are read by merging
two index scans: both must agree with plain SQL over the table after every
kind of change (create, publish, unpublish, move to another organization,
bulk insert and delete, delete through the API), for every filter."""

import pytest

from helpers_api import assert_json, call, create, make_private, make_public


def counters_match_table(stack):
    """network_counts holds exactly what count(*) says, per organization."""
    rows = stack.sql_rows(
        "SELECT o.id, COALESCE(c.networks, 0), COALESCE(c.public_networks, 0), "
        "       (SELECT count(*) FROM networks n WHERE n.org_id = o.id), "
        "       (SELECT count(*) FROM networks n WHERE n.org_id = o.id AND n.is_public) "
        "FROM organizations o LEFT JOIN network_counts c ON c.org_id = o.id")
    bad = [r for r in rows if (r[1], r[2]) != (r[3], r[4])]
    assert not bad, "counters (org, networks, public, real networks, real public): %s" % bad


def expected_ids(stack, org_id, is_public=None, name=None, order="n.id DESC"):
    where = ["(n.org_id = %d OR n.is_public)" % org_id]
    if is_public is not None:
        where.append("n.is_public = %s" % ("true" if is_public else "false"))
    if name is not None:
        where.append("n.name ILIKE '%%%s%%'" % name)
    rows = stack.sql_rows("SELECT n.id FROM networks n WHERE %s ORDER BY %s"
                          % (" AND ".join(where), order))
    return [int(r[0]) for r in rows]


def check_lists(stack, key, org_id, name):
    for is_public in (None, True, False):
        for name_filter in (None, name):
            query = "networks/?limit=1000"
            if is_public is not None:
                query += "&is_public=%s" % ("true" if is_public else "false")
            if name_filter:
                query += "&name=%s" % name_filter
            page = assert_json(call(stack, "GET", query, api_key=key), 200)
            want = expected_ids(stack, org_id, is_public, name_filter)
            assert page["count"] == len(want), query
            assert [n["id"] for n in page["results"]] == want[:1000], query
    # The public list counts every public network.
    page = assert_json(call(stack, "GET", "networks/public/?limit=1", api_key=key), 200)
    assert page["count"] == int(stack.sql_value("SELECT count(*) FROM networks WHERE is_public"))


def org_id_of(stack, tenant):
    return int(stack.sql_value("SELECT org_id FROM api_keys WHERE app_id = '%s'" % tenant["app_id"]))


@pytest.fixture
def two(stack):
    a, b = stack.new_tenant(), stack.new_tenant()
    yield a, b


def test_counts_follow_every_change(stack, two):
    a, b = two
    a_org, b_org = org_id_of(stack, a), org_id_of(stack, b)
    name = "cnt%d" % a_org
    a_nets = [create(stack, api_key=a["api_key"], name="%s-a%d" % (name, i))[0] for i in range(3)]
    b_nets = [create(stack, api_key=b["api_key"], name="%s-b%d" % (name, i))[0] for i in range(2)]
    counters_match_table(stack)
    check_lists(stack, a["api_key"], a_org, name)

    # Publish one of each, then unpublish one: both organizations' counts move.
    make_public(stack, a_nets[0]["id"])
    make_public(stack, b_nets[0]["id"])
    counters_match_table(stack)
    check_lists(stack, a["api_key"], a_org, name)
    check_lists(stack, b["api_key"], b_org, name)
    make_private(stack, [b_nets[0]["id"]])
    counters_match_table(stack)
    check_lists(stack, a["api_key"], a_org, name)

    # A PATCH changes neither owner nor visibility: counters untouched.
    assert_json(call(stack, "PATCH", "networks/%d/" % a_nets[1]["id"], api_key=a["api_key"],
                     json_body={"description": "patched"}), 200)
    counters_match_table(stack)

    # A network moved to the other organization (an operator's SQL).
    stack.sql("UPDATE networks SET org_id = %d WHERE id = %d" % (b_org, a_nets[2]["id"]))
    counters_match_table(stack)
    check_lists(stack, a["api_key"], a_org, name)
    check_lists(stack, b["api_key"], b_org, name)

    # Bulk copies in one statement, for both organizations at once, then a
    # bulk delete of some of them.
    stack.sql("INSERT INTO networks (org_id, name, framework, preprocessing, graph, is_public) "
              "SELECT CASE WHEN g %% 2 = 0 THEN %d ELSE %d END, '%s-bulk' || g, framework, "
              "preprocessing, graph, g %% 5 = 0 FROM networks, generate_series(1, 40) g "
              "WHERE id = %d" % (a_org, b_org, name, a_nets[1]["id"]))
    counters_match_table(stack)
    check_lists(stack, a["api_key"], a_org, name)
    stack.sql("DELETE FROM networks WHERE name LIKE '%s-bulk%%' AND (id %% 3 = 0 OR is_public)" % name)
    counters_match_table(stack)
    check_lists(stack, b["api_key"], b_org, name)

    # Deletes through the API.
    resp = call(stack, "DELETE", "networks/%d/" % a_nets[0]["id"], api_key=a["api_key"])
    assert resp.status_code == 204
    counters_match_table(stack)
    check_lists(stack, a["api_key"], a_org, name)
    stack.sql("DELETE FROM networks WHERE name LIKE '%s-%%'" % name)
    counters_match_table(stack)
    check_lists(stack, a["api_key"], a_org, name)


def test_every_ordering_pages_like_sql(stack, two):
    """Pages of every ordering, own and public networks interleaved, match
    the same ORDER BY in SQL, page after page."""
    a, b = two
    a_org = org_id_of(stack, a)
    name = "ord%d" % a_org
    for i, word in enumerate(["pear", "apple", "fig", "kiwi", "date", "lime"]):
        tenant = a if i % 2 == 0 else b
        body, _ = create(stack, api_key=tenant["api_key"], name="%s-%s" % (name, word))
        if tenant is b and word != "kiwi":
            make_public(stack, body["id"])
    orders = {"id": "n.id", "-id": "n.id DESC", "name": "n.name, n.id", "-name": "n.name DESC, n.id DESC",
              "update_date": "n.update_date, n.id", "-update_date": "n.update_date DESC, n.id DESC"}
    try:
        for ordering, sql_order in orders.items():
            want = expected_ids(stack, a_org, order=sql_order)
            got = []
            for offset in range(0, len(want), 2):
                page = assert_json(call(stack, "GET", "networks/?ordering=%s&limit=2&offset=%d"
                                        % (ordering, offset), api_key=a["api_key"]), 200)
                assert page["count"] == len(want)
                got += [n["id"] for n in page["results"]]
            assert got == want, ordering
    finally:
        stack.sql("UPDATE networks SET is_public = false, slug = NULL WHERE name LIKE '%s-%%'" % name)
