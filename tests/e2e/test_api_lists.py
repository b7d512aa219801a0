"""Lists (GET /v0.7/networks/, /v0.7/networks/public/): exact counts, pages
with absolute next/previous links followed to both ends, X-Forwarded-*
headers, limit/offset validation, every ordering, the name and is_public
filters."""

import json
import random
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from helpers_api import (assert_error, assert_json, call, create, make_private, make_public,
                         raw_http, unique)

NETWORKS = 25
LIMIT = 7
WORDS = ["kiwi", "apple", "mango", "zebra", "lemon", "peach", "grape", "olive", "berry", "melon",
         "cherry", "banana", "fig", "date", "lime", "plum", "pear", "quince", "nectarine",
         "apricot", "guava", "papaya", "durian", "lychee", "yuzu"]


@pytest.fixture(scope="module")
def pager(stack):
    """A fresh organization with NETWORKS networks whose names do not sort
    like their ids, some of them updated after creation (so update_date does
    not sort like id either), and one of them public."""
    tenant = stack.new_tenant()
    words = list(WORDS)
    random.Random(7).shuffle(words)
    nets = []
    for i, word in enumerate(words[:NETWORKS]):
        body, _ = create(stack, api_key=tenant["api_key"], name="%s-%02d" % (word, i))
        nets.append(body)
    # Touch a few old ones: they become the most recently updated.
    for index in (3, 0, 11):
        resp = call(stack, "PATCH", "networks/%d/" % nets[index]["id"], api_key=tenant["api_key"],
                    json_body={"description": "touched"})
        nets[index] = assert_json(resp, 200)
    public = nets[5]
    slug = make_public(stack, public["id"])
    yield {"tenant": tenant, "key": tenant["api_key"], "nets": nets, "public_id": public["id"],
           "slug": slug}
    make_private(stack, [public["id"]])


def visible_ids(stack, org):
    """What the list must show org: its networks and the public ones."""
    rows = stack.sql_rows("SELECT n.id FROM networks n JOIN organizations o ON o.id = n.org_id "
                          "WHERE o.name = '%s' OR n.is_public" % org)
    return {int(r[0]) for r in rows}


def get_page(key, url, **headers):
    resp = requests.get(url, headers=dict(headers, **{"X-API-KEY": key}), timeout=30)
    return assert_json(resp, 200)


def follow(key, url, link="next", **headers):
    pages = []
    while url:
        assert len(pages) < 100, "links loop"
        page = get_page(key, url, **headers)
        pages.append(page)
        url = page[link]
    return pages


def query_of(url):
    return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(urlsplit(url).query).items()}


def test_count_is_exact_and_covers_own_and_public(stack, pager):
    expected = visible_ids(stack, pager["tenant"]["org"])
    page = assert_json(call(stack, "GET", "networks/?limit=1000", api_key=pager["key"]), 200)
    assert page["count"] == len(expected)
    assert {n["id"] for n in page["results"]} == expected
    own = {n["id"] for n in pager["nets"]}
    assert own <= expected
    assert page["next"] is None and page["previous"] is None
    # Default ordering: id descending.
    ids = [n["id"] for n in page["results"]]
    assert ids == sorted(ids, reverse=True)


@pytest.mark.parametrize("prefix", ["/v0.7/networks/", "/networks/", "/v0.7/networks", "/networks"])
def test_pages_followed_to_the_end_and_back(stack, pager, prefix):
    key = pager["key"]
    expected = visible_ids(stack, pager["tenant"]["org"])
    assert len(expected) >= NETWORKS
    first_url = stack.base_url + prefix + "?limit=%d" % LIMIT
    pages = follow(key, first_url)
    assert len(pages) == -(-len(expected) // LIMIT)
    collected = []
    for i, page in enumerate(pages):
        assert page["count"] == len(expected)
        assert set(page) == {"count", "next", "previous", "results"}
        if i < len(pages) - 1:
            assert len(page["results"]) == LIMIT
            nxt = page["next"]
            # Absolute, on the same path as asked, keeping the limit.
            assert nxt.startswith(stack.base_url + prefix + "?"), nxt
            assert query_of(nxt) == {"limit": str(LIMIT), "offset": str(LIMIT * (i + 1))}
        else:
            assert page["next"] is None
            assert 1 <= len(page["results"]) <= LIMIT
        if i == 0:
            assert page["previous"] is None
        else:
            assert page["previous"].startswith(stack.base_url + prefix + "?")
            assert query_of(page["previous"]) == {"limit": str(LIMIT),
                                                  "offset": str(LIMIT * (i - 1))}
        collected.extend(n["id"] for n in page["results"])
    assert len(collected) == len(set(collected)), "duplicates across pages"
    assert set(collected) == expected
    assert collected == sorted(collected, reverse=True)
    # And back: previous links from the last page give the same pages.
    back = follow(key, pages[-1]["previous"], link="previous")
    assert [[n["id"] for n in p["results"]] for p in back] == \
        [[n["id"] for n in p["results"]] for p in reversed(pages[:-1])]


def test_links_keep_filters_and_ordering(stack, pager):
    key = pager["key"]
    own = {n["id"]: n for n in pager["nets"]}
    url = stack.url("networks/?ordering=name&is_public=false&limit=4&name=-")
    pages = follow(key, url)
    for page in pages[:-1]:
        q = query_of(page["next"])
        assert q["ordering"] == "name" and q["is_public"] == "false" and q["name"] == "-"
        assert q["limit"] == "4"
    names = [n["name"] for p in pages for n in p["results"]]
    ids = [n["id"] for p in pages for n in p["results"]]
    expected = sorted((n for i, n in own.items() if i != pager["public_id"]),
                      key=lambda n: (n["name"], n["id"]))
    assert ids == [n["id"] for n in expected]
    assert names == sorted(names)


def test_offset_past_the_end(stack, pager):
    key = pager["key"]
    page = assert_json(call(stack, "GET", "networks/?is_public=false&limit=10&offset=1000",
                            api_key=key), 200)
    assert page["count"] == NETWORKS - 1
    assert page["results"] == [] and page["next"] is None
    assert query_of(page["previous"]) == {"is_public": "false", "limit": "10", "offset": "990"}
    page = assert_json(call(stack, "GET", "networks/?is_public=false&limit=10&offset=3",
                            api_key=key), 200)
    assert query_of(page["previous"]) == {"is_public": "false", "limit": "10", "offset": "0"}
    assert query_of(page["next"])["offset"] == "13"


def test_limit_bounds_are_accepted(stack, pager):
    key = pager["key"]
    page = assert_json(call(stack, "GET", "networks/?is_public=false&limit=1", api_key=key), 200)
    assert len(page["results"]) == 1 and page["count"] == NETWORKS - 1
    page = assert_json(call(stack, "GET", "networks/?is_public=false&limit=1000", api_key=key), 200)
    assert len(page["results"]) == NETWORKS - 1 and page["next"] is None
    # Default limit: 100.
    page = assert_json(call(stack, "GET", "networks/?is_public=false&offset=2", api_key=key), 200)
    assert len(page["results"]) == NETWORKS - 3
    assert query_of(page["previous"]) == {"is_public": "false", "limit": "100", "offset": "0"}


def test_forwarded_proto_and_host_build_the_links(stack, pager):
    key = pager["key"]
    url = stack.url("networks/?limit=2&offset=2")
    page = get_page(key, url, **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"})
    assert page["next"].startswith("https://api.example.com/v0.7/networks/?")
    assert page["previous"].startswith("https://api.example.com/v0.7/networks/?")
    page = get_page(key, url, **{"X-Forwarded-Proto": "https"})
    assert page["next"].startswith("https://127.0.0.1:%d/v0.7/networks/?" % stack.port)
    page = get_page(key, url, **{"X-Forwarded-Host": "api.example.com:8443"})
    assert page["next"].startswith("http://api.example.com:8443/v0.7/networks/?")
    # A chain of proxies: the first (the client-facing one) counts.
    page = get_page(key, url, **{"X-Forwarded-Proto": "https, http",
                                 "X-Forwarded-Host": "api.example.com, inner.local"})
    assert page["next"].startswith("https://api.example.com/v0.7/networks/?")
    # Nonsense is ignored: the request's own scheme and Host are used.
    page = get_page(key, url, **{"X-Forwarded-Proto": "ftp",
                                 "X-Forwarded-Host": "evil.example/phish?x="})
    assert page["next"].startswith("http://127.0.0.1:%d/v0.7/networks/?" % stack.port)
    page = get_page(key, url)
    assert page["next"].startswith("http://127.0.0.1:%d/v0.7/networks/?" % stack.port)
    assert requests.get(page["next"], headers={"X-API-KEY": key}, timeout=30).status_code == 200
    # HTTP/1.0 without a Host header: the address the request came in on.
    status, _, body = raw_http(stack.port, (
        "GET /v0.7/networks/?limit=2&offset=2 HTTP/1.0\r\nX-API-KEY: %s\r\n\r\n" % key).encode(),
        half_close=False)
    assert status == 200
    page = json.loads(body)
    assert page["next"].startswith("http://127.0.0.1:%d/v0.7/networks/?" % stack.port)


@pytest.mark.parametrize("query,field", [
    ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"),
    ("limit=1.5", "limit"), ("limit=", "limit"), ("limit=+5", "limit"), ("limit=%205", "limit"),
    ("limit=1e2", "limit"), ("limit=99999999999999999999", "limit"),
    ("offset=-1", "offset"), ("offset=abc", "offset"), ("offset=1.0", "offset"),
    ("ordering=foo", "ordering"), ("ordering=ID", "ordering"), ("ordering=-", "ordering"),
    ("ordering=name,id", "ordering"), ("ordering=%2Bid", "ordering"), ("ordering=create_date", "ordering"),
    ("is_public=maybe", "is_public"), ("is_public=", "is_public"), ("is_public=yes", "is_public"),
])
@pytest.mark.parametrize("route", ["networks/", "networks/public/"])
def test_bad_list_parameters_are_400_naming_the_field(stack, route, query, field):
    resp = call(stack, "GET", route + "?" + query)
    err = assert_error(resp, 400, "validation_error", fields=[field])
    assert field in err["error"]


ORDERINGS = {
    "id": (lambda n: (n["id"],), False),
    "-id": (lambda n: (n["id"],), True),
    "name": (lambda n: (n["name"], n["id"]), False),
    "-name": (lambda n: (n["name"], n["id"]), True),
    "update_date": (lambda n: (n["update_date"], n["id"]), False),
    "-update_date": (lambda n: (n["update_date"], n["id"]), True),
}


@pytest.mark.parametrize("ordering", sorted(ORDERINGS))
def test_ordering(stack, pager, ordering):
    key = pager["key"]
    sort_key, reverse = ORDERINGS[ordering]
    own = [n for n in pager["nets"] if n["id"] != pager["public_id"]]
    expected = [n["id"] for n in sorted(own, key=sort_key, reverse=reverse)]
    # Not a trivial check: this order is not the id order (nor its reverse).
    if ordering not in ("id", "-id"):
        by_id = sorted(expected)
        assert expected not in (by_id, by_id[::-1])
    page = assert_json(call(stack, "GET", "networks/?is_public=false&limit=1000&ordering=" + ordering,
                            api_key=key), 200)
    assert [n["id"] for n in page["results"]] == expected
    results = page["results"]
    assert results == sorted(results, key=sort_key, reverse=reverse)
    # The order holds across pages too.
    pages = follow(key, stack.url("networks/?is_public=false&limit=%d&ordering=%s" % (LIMIT, ordering)))
    assert [n["id"] for p in pages for n in p["results"]] == expected


def test_update_moves_a_network_in_update_date_order(stack, pager):
    key = pager["key"]
    url = "networks/?is_public=false&limit=1&ordering=-update_date"
    target = pager["nets"][7]
    page = assert_json(call(stack, "GET", url, api_key=key), 200)
    assert page["results"][0]["id"] != target["id"]
    assert_json(call(stack, "PATCH", "networks/%d/" % target["id"], api_key=key,
                     json_body={"metadata": {"bumped": True}}), 200)
    page = assert_json(call(stack, "GET", url, api_key=key), 200)
    assert page["results"][0]["id"] == target["id"]
    pager["nets"][7] = page["results"][0]


@pytest.fixture(scope="module")
def named(stack):
    tenant = stack.new_tenant()
    names = ["Alpha 50% Off", "alpha_beta", "alphaXbeta", "BETA gamma", "back\\slash", "plain",
             "Ünïcode café"]
    ids = {}
    for name in names:
        body, _ = create(stack, api_key=tenant["api_key"], name=name)
        ids[name] = body["id"]
    return tenant["api_key"], ids


@pytest.mark.parametrize("needle,expected", [
    ("alpha", ["Alpha 50% Off", "alpha_beta", "alphaXbeta"]),
    ("ALPHA", ["Alpha 50% Off", "alpha_beta", "alphaXbeta"]),
    ("%", ["Alpha 50% Off"]),
    ("50%", ["Alpha 50% Off"]),
    ("%%", []),
    ("_", ["alpha_beta"]),
    ("a_b", ["alpha_beta"]),
    ("A_B", ["alpha_beta"]),
    ("\\", ["back\\slash"]),
    ("k\\s", ["back\\slash"]),
    ("beta", ["alpha_beta", "alphaXbeta", "BETA gamma"]),
    ("a g", ["BETA gamma"]),
    ("café", ["Ünïcode café"]),
    ("zzz", []),
    ("", ["Alpha 50% Off", "alpha_beta", "alphaXbeta", "BETA gamma", "back\\slash", "plain",
          "Ünïcode café"]),
])
def test_name_filter(stack, named, needle, expected):
    key, ids = named
    resp = requests.get(stack.url("networks/"), timeout=30, headers={"X-API-KEY": key},
                        params={"name": needle, "is_public": "false", "ordering": "id"})
    page = assert_json(resp, 200)
    assert page["count"] == len(expected)
    assert [n["id"] for n in page["results"]] == sorted(ids[name] for name in expected)
    # Without is_public the own matches are there too (plus public ones).
    resp = requests.get(stack.url("networks/"), timeout=30, headers={"X-API-KEY": key},
                        params={"name": needle, "limit": 1000})
    page = assert_json(resp, 200)
    got = {n["id"] for n in page["results"]}
    assert {ids[name] for name in expected} <= got
    for n in page["results"]:
        assert n["id"] in ids.values() or n["is_public"]
        assert needle.lower() in n["name"].lower()


def test_is_public_filter(stack, pager):
    key = pager["key"]
    public_count = int(stack.sql_value("SELECT count(*) FROM networks WHERE is_public"))
    assert public_count >= 1
    for value in ("true", "True", "1"):
        page = assert_json(call(stack, "GET", "networks/?limit=1000&is_public=" + value,
                                api_key=key), 200)
        assert page["count"] == public_count
        assert all(n["is_public"] for n in page["results"])
        assert pager["public_id"] in {n["id"] for n in page["results"]}
    for value in ("false", "False", "0"):
        page = assert_json(call(stack, "GET", "networks/?limit=1000&is_public=" + value,
                                api_key=key), 200)
        assert page["count"] == NETWORKS - 1
        assert not any(n["is_public"] for n in page["results"])
        assert {n["id"] for n in page["results"]} == \
            {n["id"] for n in pager["nets"]} - {pager["public_id"]}


def test_public_list(stack, pager):
    public = {int(r[0]) for r in stack.sql_rows("SELECT id FROM networks WHERE is_public")}
    other = stack.new_tenant()
    for key in (pager["key"], other["api_key"]):
        pages = follow(key, stack.url("networks/public/?limit=2"))
        ids = [n["id"] for p in pages for n in p["results"]]
        assert len(ids) == len(set(ids)) and set(ids) == public
        assert all(p["count"] == len(public) for p in pages)
        if len(pages) > 1:
            assert pages[0]["next"].startswith(stack.base_url + "/v0.7/networks/public/?")
        assert all(n["is_public"] for p in pages for n in p["results"])
    page = assert_json(call(stack, "GET", "networks/public/?is_public=true", api_key=other["api_key"]),
                       200)
    assert page["count"] == len(public)
    page = assert_json(call(stack, "GET", "networks/public/?name=%s" % unique("none"),
                            api_key=other["api_key"]), 200)
    assert page["count"] == 0 and page["results"] == []
    # is_public=false cannot narrow the public list.
    assert_error(call(stack, "GET", "networks/public/?is_public=false"), 400, fields=["is_public"])
