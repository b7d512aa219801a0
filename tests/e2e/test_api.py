"""The Networks and Tasks API of API.md through nginx + nnreg-fcgi + PostgreSQL:
health, authentication, routing (404, 405, prefixes, trailing slashes),
retrieve with ETag, PATCH / PUT / DELETE with If-Match, tasks, graph,
request ids and the size limits.  Lists are in test_api_lists.py, tenancy
in test_api_tenancy.py, the create's validation in test_create*.py."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from helpers_api import (AUTH_ROUTES, ETAG, ISO_DATE, REQUEST_ID, allow_set, assert_error,
                         assert_json, call, create, json_hdrs, raw_http, raw_request, unique)
from helpers_deploy import wait_task

JSON_TYPE = "application/json; charset=utf-8"


@pytest.fixture
def net(stack, tenant):
    """A fresh network of a fresh organization: (tenant, network body, ETag)."""
    body, resp = create(stack, api_key=tenant["api_key"], name=unique("net"))
    return tenant, body, resp.headers["ETag"]


# --------------------------------------------------------------- health


@pytest.mark.parametrize("path", ["health", "health/", "/health", "/health/"])
def test_health_is_ok_without_a_key(stack, path):
    resp = requests.get(stack.url(path), timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == JSON_TYPE
    assert resp.json() == {"status": "ok", "database": "ok"}
    assert REQUEST_ID.match(resp.headers.get("X-Request-Id", ""))


# ------------------------------------------------------- authentication


def _route_path(route, nid, task_id):
    return route.format(id=nid, task=task_id, slug="some-slug")


@pytest.mark.parametrize("method,route", AUTH_ROUTES)
def test_no_key_is_401_on_every_route(stack, net, method, route):
    _, body, _ = net
    path = _route_path(route, body["id"], body["task_id"])
    resp = call(stack, method, path, api_key=False, json_body={} if method in ("PATCH", "PUT") else None)
    err = assert_error(resp, 401, "not_authenticated")
    assert "X-API-KEY" in err["error"]
    assert "X-API-KEY" in resp.headers.get("WWW-Authenticate", "")
    # An empty header is no key either.
    resp = call(stack, method, path, api_key=False, headers={"X-API-KEY": ""})
    assert_error(resp, 401, "not_authenticated")


@pytest.mark.parametrize("method,route", AUTH_ROUTES)
def test_wrong_key_is_401_on_every_route(stack, net, method, route):
    tenant, body, _ = net
    path = _route_path(route, body["id"], body["task_id"])
    for bad in ("not-a-key", tenant["api_key"][:-1], tenant["api_key"] + "0", "x" * 300,
                tenant["app_id"]):
        resp = call(stack, method, path, api_key=bad)
        assert_error(resp, 401, "invalid_api_key")
        assert "X-API-KEY" in resp.headers.get("WWW-Authenticate", "")


def test_a_401_does_not_leak_existence(stack, net):
    _, body, _ = net
    a = call(stack, "GET", "networks/%d/" % body["id"], api_key="nope")
    b = call(stack, "GET", "networks/%d/" % (body["id"] + 10 ** 9), api_key="nope")
    assert assert_error(a, 401) == assert_error(b, 401)


def test_revoked_key_is_refused_at_once(stack):
    tenant = stack.new_tenant()
    key = tenant["api_key"]
    # Several requests, so that every worker has used the key.
    for _ in range(4):
        assert_json(call(stack, "GET", "networks/", api_key=key), 200)
    stack.revoke_key(tenant["app_id"])
    for _ in range(6):
        assert_error(call(stack, "GET", "networks/", api_key=key), 401, "invalid_api_key")
    # A new key of the same organization works.
    fresh = stack.create_key(tenant["org"])
    assert_json(call(stack, "GET", "networks/", api_key=fresh["api_key"]), 200)


def test_app_id_must_match_when_sent(stack, tenant):
    other = stack.new_tenant()
    key = tenant["api_key"]
    ok = call(stack, "GET", "networks/", api_key=key, headers={"X-APP-ID": tenant["app_id"]})
    assert_json(ok, 200)
    for wrong in (other["app_id"], tenant["app_id"] + "x", tenant["app_id"].upper() + "Z", "zzz"):
        resp = call(stack, "GET", "networks/", api_key=key, headers={"X-APP-ID": wrong})
        assert_error(resp, 401, "app_id_mismatch")
    # The right app id with the wrong key is still a wrong key.
    resp = call(stack, "GET", "networks/", api_key="nope", headers={"X-APP-ID": tenant["app_id"]})
    assert_error(resp, 401, "invalid_api_key")
    # The matching app id works on a write too.
    body, _ = create(stack, api_key=key, name=unique("app"))
    resp = call(stack, "PATCH", "networks/%d/" % body["id"], api_key=key,
                headers={"X-APP-ID": tenant["app_id"]}, json_body={"description": "d"})
    assert assert_json(resp, 200)["description"] == "d"
    resp = call(stack, "PATCH", "networks/%d/" % body["id"], api_key=key,
                headers={"X-APP-ID": other["app_id"]}, json_body={"description": "e"})
    assert_error(resp, 401, "app_id_mismatch")
    assert assert_json(call(stack, "GET", "networks/%d/" % body["id"], api_key=key),
                       200)["description"] == "d"


# ------------------------------------------------------------- routing


@pytest.mark.parametrize("path", [
    "/v0.7/", "/v0.7", "/", "/v0.7/networkss/", "/v0.7/network/", "/v0.7/networks/1/graph/x/",
    "/v0.7/networks/1/files/", "/v0.7/tasks/1/2/", "/v0.6/networks/", "/v0.7networks/",
    "/V0.7/networks/", "/v0.7/v0.7/networks/", "/index.html", "/v0.7/metricsx",
])
def test_unknown_route_is_404_json(stack, path):
    for key in (None, False):
        resp = call(stack, "GET", path, api_key=key)
        err = assert_error(resp, 404, "not_found")
        assert "fields" not in err
        assert resp.headers["Content-Type"] == JSON_TYPE


@pytest.mark.parametrize("route", ["networks/abc/", "networks/0/", "networks/-1/", "networks/1.5/",
                                   "networks/99999999999999999999999/", "networks/%20/",
                                   "networks/abc/graph/", "tasks/abc/", "tasks/0/",
                                   "tasks/99999999999999999999/"])
def test_malformed_ids_are_404(stack, route):
    assert_error(call(stack, "GET", route), 404, "not_found")


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/v0.7/networks/", {"GET", "POST"}),
    ("PUT", "/v0.7/networks", {"GET", "POST"}),
    ("PATCH", "/networks/", {"GET", "POST"}),
    ("POST", "/v0.7/networks/1/", {"GET", "PATCH", "PUT", "DELETE"}),
    ("POST", "/networks/1", {"GET", "PATCH", "PUT", "DELETE"}),
    ("DELETE", "/v0.7/networks/1/graph/", {"GET"}),
    ("POST", "/v0.7/tasks/", {"GET"}),
    ("DELETE", "/v0.7/tasks/1/", {"GET"}),
    ("POST", "/v0.7/health", {"GET"}),
    ("DELETE", "/v0.7/networks/public/", {"GET"}),
    ("POST", "/v0.7/networks/public/some-slug/", {"GET"}),
])
def test_wrong_method_is_405_with_allow(stack, method, path, allowed):
    resp = call(stack, method, path, data=b"{}", headers={"Content-Type": "application/json"})
    err = assert_error(resp, 405, "method_not_allowed")
    assert allow_set(resp) == allowed, resp.headers
    assert method in err["error"]
    # The method check comes before authentication: no key, same answer.
    resp = call(stack, method, path, api_key=False)
    assert_error(resp, 405, "method_not_allowed")
    assert allow_set(resp) == allowed


def test_options_lists_the_methods(stack):
    resp = call(stack, "OPTIONS", "networks/1/", api_key=False)
    assert resp.status_code == 204
    assert allow_set(resp) == {"GET", "PATCH", "PUT", "DELETE"}


def _variants(route):
    """/v0.7/x/ , /v0.7/x , /x/ , /x for route "x/"."""
    bare = route.rstrip("/")
    return ["/v0.7/" + bare + "/", "/v0.7/" + bare, "/" + bare + "/", "/" + bare]


def test_routes_with_and_without_prefix_and_trailing_slash(stack, net):
    tenant, body, etag = net
    key = tenant["api_key"]
    nid, tid = body["id"], body["task_id"]
    # The task changes when its deployment ends: compare once it has.
    wait_task(stack, tid, api_key=key)
    for route in ("networks/%d/" % nid, "networks/%d/graph/" % nid, "tasks/%d/" % tid):
        answers = []
        for path in _variants(route):
            resp = call(stack, "GET", path, api_key=key)
            answers.append(assert_json(resp, 200))
        assert all(a == answers[0] for a in answers), route
    for path in _variants("networks/"):
        page = assert_json(call(stack, "GET", path + "?is_public=false", api_key=key), 200)
        assert [n["id"] for n in page["results"]] == [nid]
    for path in _variants("tasks/"):
        page = assert_json(call(stack, "GET", path + "?task_ids=%d" % tid, api_key=key), 200)
        assert [t["id"] for t in page["results"]] == [tid]
    # Writes without the slash or the prefix: no redirect, the change is made.
    for i, path in enumerate(_variants("networks/%d/" % nid)):
        resp = call(stack, "PATCH", path, api_key=key, json_body={"description": "v%d" % i})
        assert assert_json(resp, 200)["description"] == "v%d" % i
        resp = call(stack, "PUT", path, api_key=key, json_body={"name": "put %d" % i})
        assert assert_json(resp, 200)["name"] == "put %d" % i
    resp = call(stack, "DELETE", "/networks/%d" % nid, api_key=key)
    assert resp.status_code == 204


# --------------------------------------------------------- retrieve


def test_retrieve_by_id_with_etag(stack, net):
    tenant, created, create_etag = net
    key = tenant["api_key"]
    resp = call(stack, "GET", "networks/%d/" % created["id"], api_key=key)
    body = assert_json(resp, 200)
    assert resp.headers["Content-Type"] == JSON_TYPE
    assert body == created
    etag = resp.headers.get("ETag")
    m = ETAG.match(etag or "")
    assert m, resp.headers
    assert int(m.group(1)) == created["id"]
    assert etag == create_etag
    # A second read gives the same tag: it changes only with the network.
    assert call(stack, "GET", "networks/%d/" % created["id"], api_key=key).headers["ETag"] == etag
    expected_keys = {"id", "name", "description", "metadata", "framework", "preprocessing",
                     "postprocessings", "files", "is_public", "slug", "task_id", "create_date",
                     "update_date"}
    assert set(body) == expected_keys
    assert body["framework"] == "tensorflow-1.x"
    assert body["is_public"] is False and body["slug"] is None
    assert body["description"] == "" and body["metadata"] == {}
    assert isinstance(body["task_id"], int)
    assert ISO_DATE.match(body["create_date"]) and ISO_DATE.match(body["update_date"])
    assert {f["name"] for f in body["files"]} == {
        "saved_model.pb", "variables.index", "variables.data-00000-of-00001"}
    for f in body["files"]:
        assert f["size"] > 0 and len(f["sha256"]) == 64 and f["type"]
    # HEAD: the same headers, no body.
    head = call(stack, "HEAD", "networks/%d/" % created["id"], api_key=key)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["ETag"] == etag


def test_missing_network_is_404(stack):
    resp = call(stack, "GET", "networks/2147483600/")
    err = assert_error(resp, 404, "not_found")
    assert "ETag" not in resp.headers
    assert "2147483600" in err["error"]


# -------------------------------------------------------------- PATCH


def test_patch_name_description_metadata(stack, net):
    tenant, created, etag = net
    key = tenant["api_key"]
    url = "networks/%d/" % created["id"]
    seen_tags = {etag}
    prev = created
    changes = [{"name": "  renamed network  "}, {"description": "what it does"},
               {"metadata": {"owner": "me", "nested": {"a": [1, 2.5, None, True]}}},
               {"name": "again", "description": "", "metadata": {}}]
    for change in changes:
        resp = call(stack, "PATCH", url, api_key=key, json_body=change)
        body = assert_json(resp, 200)
        new_tag = resp.headers.get("ETag")
        assert ETAG.match(new_tag or ""), resp.headers
        assert new_tag not in seen_tags, "ETag did not change"
        seen_tags.add(new_tag)
        for field, value in change.items():
            assert body[field] == (value.strip() if field == "name" else value)
        for field in set(created) - set(change) - {"update_date"}:
            assert body[field] == prev[field], field
        assert body["update_date"] > prev["update_date"]
        assert body["create_date"] == created["create_date"]
        got = call(stack, "GET", url, api_key=key)
        assert assert_json(got, 200) == body
        assert got.headers["ETag"] == new_tag
        prev = body


@pytest.mark.parametrize("field,value", [
    ("framework", "tensorflow-1.x"),
    ("preprocessing", {"inputs": []}),
    ("postprocessings", []),
])
@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_immutable_fields_are_400_naming_them(stack, net, method, field, value):
    tenant, created, etag = net
    url = "networks/%d/" % created["id"]
    resp = call(stack, method, url, api_key=tenant["api_key"],
                json_body={"name": "x", field: value})
    err = assert_error(resp, 400, "validation_error", fields=[field])
    assert set(err["fields"]) == {field}
    got = call(stack, "GET", url, api_key=tenant["api_key"])
    assert assert_json(got, 200) == created and got.headers["ETag"] == etag


@pytest.mark.parametrize("field,value", [
    ("id", 1), ("task_id", 1), ("files", []), ("is_public", True), ("slug", "mine"),
    ("create_date", "2020-01-01T00:00:00.000000Z"), ("update_date", "2020-01-01T00:00:00.000000Z"),
])
@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_read_only_fields_are_400_naming_them(stack, net, method, field, value):
    tenant, created, etag = net
    url = "networks/%d/" % created["id"]
    resp = call(stack, method, url, api_key=tenant["api_key"], json_body={"name": "x", field: value})
    err = assert_error(resp, 400, "validation_error", fields=[field])
    assert set(err["fields"]) == {field}
    got = call(stack, "GET", url, api_key=tenant["api_key"])
    assert got.headers["ETag"] == etag


def test_patch_names_every_bad_field(stack, net):
    tenant, created, _ = net
    resp = call(stack, "PATCH", "networks/%d/" % created["id"], api_key=tenant["api_key"],
                json_body={"framework": "x", "slug": "s", "nmae": "typo", "metadata": []})
    err = assert_error(resp, 400, "validation_error")
    assert {"framework", "slug", "nmae", "metadata"} <= set(err["fields"])


@pytest.mark.parametrize("change,field", [
    ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": None}, "name"),
    ({"name": 12}, "name"), ({"name": "x" * 256}, "name"),
    ({"description": 5}, "description"), ({"description": None}, "description"),
    ({"description": "d" * 65537}, "description"),
    ({"metadata": []}, "metadata"), ({"metadata": "text"}, "metadata"),
    ({"metadata": None}, "metadata"), ({"metadata": {"big": "m" * 70000}}, "metadata"),
    ({"nmae": "typo"}, "nmae"),
])
def test_patch_validation_errors(stack, net, change, field):
    tenant, created, etag = net
    url = "networks/%d/" % created["id"]
    resp = call(stack, "PATCH", url, api_key=tenant["api_key"], json_body=change)
    assert_error(resp, 400, "validation_error", fields=[field])
    assert call(stack, "GET", url, api_key=tenant["api_key"]).headers["ETag"] == etag


def test_patch_limits_are_inclusive(stack, net):
    tenant, created, _ = net
    change = {"name": "n" * 255, "description": "d" * 65536}
    resp = call(stack, "PATCH", "networks/%d/" % created["id"], api_key=tenant["api_key"],
                json_body=change)
    body = assert_json(resp, 200)
    assert body["name"] == change["name"] and body["description"] == change["description"]


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/jsonx",
                                   "application/json-seq", "text/json"])
@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_that_is_not_json_is_415(stack, net, method, ctype):
    tenant, created, etag = net
    url = "networks/%d/" % created["id"]
    headers = {"Content-Type": ctype} if ctype else {}
    resp = requests.request(method, stack.url(url), data=b'{"name": "x"}', timeout=30,
                            headers=dict(headers, **{"X-API-KEY": tenant["api_key"]}))
    if ctype is None:  # requests sends no Content-Type for bytes
        assert "Content-Type" not in resp.request.headers
    assert_error(resp, 415, "unsupported_media_type")
    assert call(stack, "GET", url, api_key=tenant["api_key"]).headers["ETag"] == etag


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8",
                                   "Application/JSON", "application/json;charset=UTF-8"])
def test_json_content_types_are_accepted(stack, net, ctype):
    tenant, created, _ = net
    resp = requests.patch(stack.url("networks/%d/" % created["id"]), timeout=30,
                          data=b'{"description": "ok"}',
                          headers={"X-API-KEY": tenant["api_key"], "Content-Type": ctype})
    assert assert_json(resp, 200)["description"] == "ok"


@pytest.mark.parametrize("data", [b"", b"{", b'{"name": "x"', b"{'name': 'x'}", b'{"name": "x"}}',
                                  b"nul", b'{"name": "\xff"}'])
def test_update_with_invalid_json_is_400(stack, net, data):
    tenant, created, etag = net
    url = "networks/%d/" % created["id"]
    resp = requests.patch(stack.url(url), data=data, timeout=30,
                          headers=json_hdrs(tenant["api_key"]))
    assert_error(resp, 400, "invalid_json")
    assert call(stack, "GET", url, api_key=tenant["api_key"]).headers["ETag"] == etag


@pytest.mark.parametrize("data", [b"[]", b'"name"', b"42", b"null", b"true"])
def test_update_with_a_json_non_object_is_400(stack, net, data):
    tenant, created, _ = net
    resp = requests.put(stack.url("networks/%d/" % created["id"]), data=data, timeout=30,
                        headers=json_hdrs(tenant["api_key"]))
    assert_error(resp, 400, "invalid_body")


def test_patch_of_a_missing_network_is_404(stack):
    for method in ("PATCH", "PUT"):
        resp = call(stack, method, "networks/2147483600/", json_body={"name": "x"})
        assert_error(resp, 404, "not_found")
    assert_error(call(stack, "DELETE", "networks/2147483600/"), 404, "not_found")


# ---------------------------------------------------------------- PUT


def test_put_requires_name_and_resets_the_rest(stack, net):
    tenant, created, etag = net
    key = tenant["api_key"]
    url = "networks/%d/" % created["id"]
    resp = call(stack, "PATCH", url, api_key=key,
                json_body={"description": "long text", "metadata": {"k": "v"}})
    assert assert_json(resp, 200)["metadata"] == {"k": "v"}
    for body in ({}, {"description": "only"}, {"metadata": {"a": 1}}):
        resp = call(stack, "PUT", url, api_key=key, json_body=body)
        assert_error(resp, 400, "validation_error", fields=["name"])
    before = call(stack, "GET", url, api_key=key)
    resp = call(stack, "PUT", url, api_key=key, json_body={"name": "replaced"})
    body = assert_json(resp, 200)
    assert body["name"] == "replaced"
    assert body["description"] == "" and body["metadata"] == {}
    assert body["framework"] == created["framework"]
    assert body["preprocessing"] == created["preprocessing"]
    assert body["postprocessings"] == created["postprocessings"]
    assert body["files"] == created["files"]
    assert resp.headers["ETag"] not in (etag, before.headers["ETag"])
    resp = call(stack, "PUT", url, api_key=key,
                json_body={"name": "full", "description": "d", "metadata": {"m": [1]}})
    body = assert_json(resp, 200)
    assert (body["name"], body["description"], body["metadata"]) == ("full", "d", {"m": [1]})
    assert assert_json(call(stack, "GET", url, api_key=key), 200) == body


# ----------------------------------------------------------- If-Match


def test_if_match_on_patch_and_put(stack, net):
    tenant, created, etag = net
    key = tenant["api_key"]
    url = "networks/%d/" % created["id"]
    resp = call(stack, "PATCH", url, api_key=key, headers={"If-Match": etag},
                json_body={"description": "first"})
    assert assert_json(resp, 200)["description"] == "first"
    current = resp.headers["ETag"]
    assert current != etag
    # The old tag is stale now: 412, nothing changes.
    for method, change in (("PATCH", {"description": "lost"}), ("PUT", {"name": "lost"})):
        resp = call(stack, method, url, api_key=key, headers={"If-Match": etag}, json_body=change)
        err = assert_error(resp, 412, "precondition_failed")
        assert current in err["error"]
    got = call(stack, "GET", url, api_key=key)
    assert got.headers["ETag"] == current
    assert assert_json(got, 200)["description"] == "first"
    # A tag of another network, or garbage, never matches.
    for tag in ('"%d-%s"' % (created["id"] + 1, current.split("-")[1].rstrip('"')), '"junk"',
                "not-quoted", '""'):
        resp = call(stack, "PATCH", url, api_key=key, headers={"If-Match": tag},
                    json_body={"description": "lost"})
        assert_error(resp, 412, "precondition_failed")
    # A weak tag never matches (If-Match compares strongly, RFC 9110 13.1.1).
    resp = call(stack, "PATCH", url, api_key=key, headers={"If-Match": "W/" + current},
                json_body={"description": "lost"})
    assert_error(resp, 412, "precondition_failed")
    # A list that holds the current tag matches; so does "*".
    resp = call(stack, "PUT", url, api_key=key, headers={"If-Match": '%s, %s' % (etag, current)},
                json_body={"name": "second"})
    assert assert_json(resp, 200)["name"] == "second"
    current = resp.headers["ETag"]
    resp = call(stack, "PATCH", url, api_key=key, headers={"If-Match": "*"},
                json_body={"description": "third"})
    assert assert_json(resp, 200)["description"] == "third"
    newest = resp.headers["ETag"]
    assert newest != current
    # The tag a PATCH answered with is the one to send next.
    resp = call(stack, "PATCH", url, api_key=key, headers={"If-Match": newest},
                json_body={"description": "fourth"})
    assert_json(resp, 200)
    assert assert_json(call(stack, "GET", url, api_key=key), 200)["description"] == "fourth"


def test_if_match_lets_one_of_two_concurrent_editors_win(stack, net):
    tenant, created, etag = net
    key = tenant["api_key"]
    url = stack.url("networks/%d/" % created["id"])
    editors = 8

    def edit(i):
        return requests.patch(url, json={"description": "editor %d" % i}, timeout=60,
                              headers={"X-API-KEY": key, "If-Match": etag})

    with ThreadPoolExecutor(editors) as pool:
        results = list(pool.map(edit, range(editors)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [412] * (editors - 1), [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200)
    got = call(stack, "GET", "networks/%d/" % created["id"], api_key=key)
    assert assert_json(got, 200)["description"] == winner.json()["description"]
    assert got.headers["ETag"] == winner.headers["ETag"]
    # Without If-Match, concurrent edits all apply and each bumps the version.
    with ThreadPoolExecutor(editors) as pool:
        results = list(pool.map(
            lambda i: requests.patch(url, json={"metadata": {"i": i}}, timeout=60,
                                     headers={"X-API-KEY": key}), range(editors)))
    assert all(r.status_code == 200 for r in results)
    versions = sorted(int(ETAG.match(r.headers["ETag"]).group(2)) for r in results)
    first = int(ETAG.match(winner.headers["ETag"]).group(2))
    assert versions == list(range(first + 1, first + 1 + editors))


def test_if_match_on_delete(stack, net):
    tenant, created, etag = net
    key = tenant["api_key"]
    url = "networks/%d/" % created["id"]
    current = call(stack, "PATCH", url, api_key=key, json_body={"description": "x"}).headers["ETag"]
    resp = call(stack, "DELETE", url, api_key=key, headers={"If-Match": etag})
    assert_error(resp, 412, "precondition_failed")
    assert_json(call(stack, "GET", url, api_key=key), 200)
    resp = call(stack, "DELETE", url, api_key=key, headers={"If-Match": current})
    assert resp.status_code == 204, resp.text
    assert_error(call(stack, "GET", url, api_key=key), 404, "not_found")
    # Deleting again: gone, whatever the tag says.
    resp = call(stack, "DELETE", url, api_key=key, headers={"If-Match": current})
    assert_error(resp, 404, "not_found")
    resp = call(stack, "DELETE", url, api_key=key, headers={"If-Match": "*"})
    assert_error(resp, 404, "not_found")


def test_if_match_star_on_delete(stack, net):
    tenant, created, _ = net
    resp = call(stack, "DELETE", "networks/%d/" % created["id"], api_key=tenant["api_key"],
                headers={"If-Match": "*"})
    assert resp.status_code == 204


# -------------------------------------------------------------- DELETE


def test_delete_then_404_and_its_task_stays(stack, net):
    tenant, created, _ = net
    key = tenant["api_key"]
    nid, tid = created["id"], created["task_id"]
    resp = call(stack, "DELETE", "networks/%d/" % nid, api_key=key)
    assert resp.status_code == 204
    assert resp.content == b""
    assert REQUEST_ID.match(resp.headers.get("X-Request-Id", ""))
    for method, route in (("GET", "networks/%d/"), ("GET", "networks/%d/graph/"),
                          ("PATCH", "networks/%d/"), ("PUT", "networks/%d/"),
                          ("DELETE", "networks/%d/")):
        resp = call(stack, method, route % nid, api_key=key, json_body={"name": "x"}
                    if method in ("PATCH", "PUT") else None)
        assert_error(resp, 404, "not_found")
    page = assert_json(call(stack, "GET", "networks/?is_public=false", api_key=key), 200)
    assert page["count"] == 0 and page["results"] == []
    task = assert_json(call(stack, "GET", "tasks/%d/" % tid, api_key=key), 200)
    assert task["id"] == tid and task["status"] in ("pending", "success", "error")
    page = assert_json(call(stack, "GET", "tasks/?task_ids=%d" % tid, api_key=key), 200)
    assert [t["id"] for t in page["results"]] == [tid]
    assert stack.sql_value("SELECT count(*) FROM networks WHERE id = %d" % nid) == "0"
    assert stack.sql_value("SELECT count(*) FROM network_files WHERE network_id = %d" % nid) == "0"


def test_delete_leaves_other_networks_alone(stack, tenant):
    key = tenant["api_key"]
    a, _ = create(stack, api_key=key, name=unique("a"))
    b, _ = create(stack, api_key=key, name=unique("b"))
    assert call(stack, "DELETE", "networks/%d/" % a["id"], api_key=key).status_code == 204
    assert assert_json(call(stack, "GET", "networks/%d/" % b["id"], api_key=key), 200) == b


# --------------------------------------------------------------- tasks


def test_task_get(stack, net):
    tenant, created, _ = net
    resp = call(stack, "GET", "tasks/%d/" % created["task_id"], api_key=tenant["api_key"])
    task = assert_json(resp, 200)
    assert set(task) == {"id", "name", "status", "error", "data", "create_date", "update_date"}
    assert task["id"] == created["task_id"]
    assert task["status"] in ("pending", "success", "error")
    assert str(created["id"]) in task["name"]
    assert ISO_DATE.match(task["create_date"]) and ISO_DATE.match(task["update_date"])
    if task["status"] == "pending":
        assert task["error"] is None


def test_missing_task_is_404(stack):
    assert_error(call(stack, "GET", "tasks/2147483600/"), 404, "not_found")


def test_task_list_forms(stack, tenant):
    key = tenant["api_key"]
    tids = sorted(create(stack, api_key=key, name=unique("t"))[0]["task_id"] for _ in range(3))
    a, b, c = tids
    missing = 2147483600
    singles = {t: assert_json(call(stack, "GET", "tasks/%d/" % t, api_key=key), 200) for t in tids}
    cases = {
        "task_ids=%d&task_ids=%d" % (a, b): [a, b],
        "task_ids=%d,%d" % (b, a): [a, b],
        "task_ids=%d,%d&task_ids=%d" % (c, a, b): [a, b, c],
        "task_ids=%d&task_ids=%d&task_ids=%d" % (a, missing, c): [a, c],
        "task_ids=%d,%d" % (missing, missing + 1): [],
        "task_ids=%d,%d,%d" % (b, b, b): [b],
        "task_ids=%d," % c: [c],
        "task_ids=%d&limit=2&offset=1" % a: [],
    }
    for query, expected in cases.items():
        page = assert_json(call(stack, "GET", "tasks/?" + query, api_key=key), 200)
        assert [t["id"] for t in page["results"]] == expected, query
        if "limit" not in query:
            assert page["count"] == len(expected), query
            assert page["next"] is None and page["previous"] is None
        for t in page["results"]:  # the same objects as one by one
            for k in ("id", "name", "create_date"):
                assert t[k] == singles[t["id"]][k]
            assert set(t) == set(singles[t["id"]])
    # Paged: count is every match, the page holds limit of them.
    page = assert_json(call(stack, "GET", "tasks/?task_ids=%d,%d,%d&limit=2" % (a, b, c),
                            api_key=key), 200)
    assert page["count"] == 3 and [t["id"] for t in page["results"]] == [a, b]
    assert page["next"] and "offset=2" in page["next"]
    page = assert_json(requests.get(page["next"], headers={"X-API-KEY": key}, timeout=30), 200)
    assert [t["id"] for t in page["results"]] == [c] and page["next"] is None


@pytest.mark.parametrize("query", ["", "?", "?task_ids=", "?taskids=1", "?task_ids=abc",
                                   "?task_ids=1,abc", "?task_ids=0", "?task_ids=-1",
                                   "?task_ids=1,,2", "?task_ids=1.5", "?task_ids=%201",
                                   "?task_ids=99999999999999999999",
                                   "?task_ids=" + ",".join(str(i) for i in range(1, 1002))])
def test_task_list_bad_ids_are_400(stack, query):
    resp = call(stack, "GET", "tasks/" + query)
    assert_error(resp, 400, "validation_error", fields=["task_ids"])


def test_task_list_bad_page_is_400(stack):
    assert_error(call(stack, "GET", "tasks/?task_ids=1&limit=0"), 400, fields=["limit"])
    assert_error(call(stack, "GET", "tasks/?task_ids=1&offset=x"), 400, fields=["offset"])


# --------------------------------------------------------------- graph


def test_graph_of_half_plus_two(stack, net):
    tenant, created, _ = net
    resp = call(stack, "GET", "networks/%d/graph/" % created["id"], api_key=tenant["api_key"])
    graph = assert_json(resp, 200)
    assert graph["node_count"] == 74
    assert sum(graph["ops"].values()) == 74
    assert graph["ops"]["Placeholder"] >= 1 and graph["ops"]["Add"] == 3
    inputs = {i["name"]: i for i in graph["inputs"]}
    assert inputs["x:0"] == {"name": "x:0", "dtype": "float", "shape": [-1, 1]}
    outputs = [o["name"] if isinstance(o, dict) else o for o in graph["outputs"]]
    assert "y:0" in outputs
    assert graph["tensorflow_version"] == "1.14.0"
    assert graph["tags"] == ["serve"]
    sig = graph["signatures"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert sig["inputs"]["x"]["name"] == "x:0"
    assert sig["outputs"]["y"]["name"] == "y:0"
    assert graph["function_count"] == 0


def test_graph_of_a_missing_network_is_404(stack):
    assert_error(call(stack, "GET", "networks/2147483600/graph/"), 404, "not_found")


# ---------------------------------------------------------- request id


def test_every_response_carries_a_request_id(stack, net):
    tenant, created, etag = net
    key = tenant["api_key"]
    url = "networks/%d/" % created["id"]
    responses = [
        call(stack, "GET", "health", api_key=False),                        # 200 no key
        call(stack, "GET", url, api_key=key),                               # 200
        call(stack, "GET", "networks/", api_key=False),                     # 401
        call(stack, "GET", "nowhere/"),                                     # 404
        call(stack, "DELETE", "networks/"),                                 # 405
        call(stack, "PATCH", url, api_key=key, data=b"x"),                  # 415
        call(stack, "PATCH", url, api_key=key, json_body={"id": 1}),        # 400
        call(stack, "PATCH", url, api_key=key, json_body={"name": "r"}),    # 200
        call(stack, "PATCH", url, api_key=key, headers={"If-Match": etag},
             json_body={"name": "s"}),                                      # 412
        call(stack, "DELETE", url, api_key=key),                            # 204
    ]
    assert [r.status_code for r in responses] == [200, 200, 401, 404, 405, 415, 400, 200, 412, 204]
    ids = [r.headers.get("X-Request-Id", "") for r in responses]
    for resp, rid in zip(responses, ids):
        assert REQUEST_ID.match(rid), (resp.status_code, resp.headers)
    assert len(set(ids)) == len(ids)


# ---------------------------------------------------------- size limits


def test_body_over_the_upload_limit_is_413_json_from_nginx(stack, net):
    tenant, created, etag = net
    for method, target, ctype in (
            ("PATCH", "/v0.7/networks/%d/" % created["id"], "application/json"),
            ("POST", "/v0.7/networks/", "multipart/form-data; boundary=x")):
        request = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-API-KEY: %s\r\n"
                   "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (
                       method, target, stack.port, tenant["api_key"], ctype,
                       stack.max_upload + 1)).encode()
        status, headers, body = raw_http(stack.port, request)
        assert status == 413
        assert headers["content-type"].startswith("application/json")
        assert REQUEST_ID.match(headers.get("x-request-id", ""))
        doc = json.loads(body)
        assert doc["error_code"] == "body_too_large" and doc["error"]
        assert doc["request_id"] == headers["x-request-id"]
    got = call(stack, "GET", "networks/%d/" % created["id"], api_key=tenant["api_key"])
    assert got.headers["ETag"] == etag


def test_json_update_body_over_its_limit_is_413_json(stack, net):
    tenant, created, etag = net
    big = json.dumps({"description": "d" * (1024 * 1024 + 10)}).encode()
    resp = requests.patch(stack.url("networks/%d/" % created["id"]), data=big, timeout=60,
                          headers=json_hdrs(tenant["api_key"]))
    assert_error(resp, 413, "body_too_large")
    assert call(stack, "GET", "networks/%d/" % created["id"],
                api_key=tenant["api_key"]).headers["ETag"] == etag


# --------------------------------------------------------- query strings


@pytest.mark.parametrize("target", ["/v0.7/networks/?name=%zz", "/v0.7/networks/?limit=%G1",
                                    "/v0.7/networks/?name=%00", "/v0.7/networks/?name=%ff",
                                    "/v0.7/tasks/?task_ids=1&x=%2"])
def test_malformed_query_is_400(stack, target):
    status, headers, doc = raw_request(stack, "GET", target, {"X-API-KEY": stack.api_key})
    assert status == 400, doc
    assert headers["content-type"] == JSON_TYPE
    assert doc["error_code"] == "invalid_query" and doc["error"]


# ------------------------------------- known bugs in files this suite does not own


@pytest.mark.parametrize("request_line", [
    b"GET /v0.7/networks/?name=" + b"a" * 20000 + b" HTTP/1.1",
    b"GET /v0.7/net works/ HTTP/1.1",
    b"GARBAGE",
])
def test_nginx_request_line_errors_are_json(stack, request_line):
    status, headers, body = raw_http(stack.port, request_line + b"\r\nHost: x\r\n\r\n")
    assert status in (400, 414)
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error_code"]


def test_nginx_own_405_has_allow(stack):
    resp = call(stack, "TRACE", "networks/")
    assert_error(resp, 405, "method_not_allowed")
    assert allow_set(resp)


def test_lone_surrogate_in_json_is_400(stack, net):
    tenant, created, _ = net
    resp = requests.patch(stack.url("networks/%d/" % created["id"]), data=b'{"name": "a\\ud800b"}',
                          headers=json_hdrs(tenant["api_key"]), timeout=30)
    assert_error(resp, 400, "invalid_json")
