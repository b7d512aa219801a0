"""Organizations: another organization's private network does not exist for
the caller (404 everywhere, never 403); a public network is readable by
everyone (retrieve, slug, graph, task, lists) and writable only by its owner
(403 for the others)."""

import pytest

from helpers_api import (assert_error, assert_json, call, create, make_private, make_public,
                         unique)


@pytest.fixture(scope="module")
def orgs(stack):
    owner = stack.new_tenant()
    other = stack.new_tenant()
    private, private_resp = create(stack, api_key=owner["api_key"], name=unique("private"))
    public, _ = create(stack, api_key=owner["api_key"], name=unique("public"))
    slug = make_public(stack, public["id"])
    public = assert_json(call(stack, "GET", "networks/%d/" % public["id"], api_key=owner["api_key"]),
                         200)
    assert public["is_public"] is True and public["slug"] == slug
    yield {"owner": owner, "other": other, "private": private,
           "private_etag": private_resp.headers["ETag"], "public": public, "slug": slug}
    make_private(stack, [public["id"]])


def owner_view(stack, orgs, which):
    resp = call(stack, "GET", "networks/%d/" % orgs[which]["id"], api_key=orgs["owner"]["api_key"])
    return assert_json(resp, 200), resp.headers["ETag"]


def test_private_network_of_another_org_is_404_everywhere(stack, orgs):
    key = orgs["other"]["api_key"]
    net = orgs["private"]
    nid = net["id"]
    missing = 2147483600
    before = owner_view(stack, orgs, "private")
    for method, route, body in (("GET", "networks/%d/", None), ("GET", "networks/%d/graph/", None),
                                ("PATCH", "networks/%d/", {"name": "mine now"}),
                                ("PUT", "networks/%d/", {"name": "mine now"}),
                                ("DELETE", "networks/%d/", None)):
        resp = call(stack, method, route % nid, api_key=key, json_body=body)
        err = assert_error(resp, 404, "not_found")
        # Exactly what a network that never existed answers.
        ref = assert_error(call(stack, method, route % missing, api_key=key, json_body=body),
                           404, "not_found")
        assert err["error"].replace(str(nid), "N") == ref["error"].replace(str(missing), "N")
        assert "ETag" not in resp.headers
        # Even with If-Match (stale or current): 404, not 412.
        if method in ("PATCH", "PUT", "DELETE"):
            for tag in (orgs["private_etag"], '"%d-999"' % nid, "*"):
                resp = call(stack, method, route % nid, api_key=key, json_body=body,
                            headers={"If-Match": tag})
                assert_error(resp, 404, "not_found")
    assert_error(call(stack, "GET", "tasks/%d/" % net["task_id"], api_key=key), 404, "not_found")
    page = assert_json(call(stack, "GET", "tasks/?task_ids=%d" % net["task_id"], api_key=key), 200)
    assert page["count"] == 0 and page["results"] == []
    page = assert_json(call(stack, "GET", "networks/?limit=1000", api_key=key), 200)
    assert nid not in {n["id"] for n in page["results"]}
    page = assert_json(call(stack, "GET", "networks/?limit=1000&name=%s" % net["name"], api_key=key),
                       200)
    assert page["count"] == 0
    # Nothing changed for the owner.
    assert owner_view(stack, orgs, "private") == before


def test_owner_sees_its_private_network(stack, orgs):
    key = orgs["owner"]["api_key"]
    net = orgs["private"]
    assert_json(call(stack, "GET", "networks/%d/graph/" % net["id"], api_key=key), 200)
    assert_json(call(stack, "GET", "tasks/%d/" % net["task_id"], api_key=key), 200)
    page = assert_json(call(stack, "GET", "networks/?limit=1000", api_key=key), 200)
    assert net["id"] in {n["id"] for n in page["results"]}


def test_public_network_is_readable_by_others(stack, orgs):
    key = orgs["other"]["api_key"]
    net = orgs["public"]
    own_body, own_etag = owner_view(stack, orgs, "public")
    resp = call(stack, "GET", "networks/%d/" % net["id"], api_key=key)
    assert assert_json(resp, 200) == own_body
    assert resp.headers["ETag"] == own_etag
    for path in ("networks/public/%s/" % orgs["slug"], "/networks/public/%s" % orgs["slug"]):
        resp = call(stack, "GET", path, api_key=key)
        assert assert_json(resp, 200) == own_body
        assert resp.headers["ETag"] == own_etag
    graph = assert_json(call(stack, "GET", "networks/%d/graph/" % net["id"], api_key=key), 200)
    assert graph["node_count"] == 74
    task = assert_json(call(stack, "GET", "tasks/%d/" % net["task_id"], api_key=key), 200)
    assert task["id"] == net["task_id"]
    page = assert_json(call(stack, "GET", "tasks/?task_ids=%d,%d" % (
        net["task_id"], orgs["private"]["task_id"]), api_key=key), 200)
    assert [t["id"] for t in page["results"]] == [net["task_id"]] and page["count"] == 1
    for route in ("networks/?limit=1000", "networks/?limit=1000&is_public=true",
                  "networks/public/?limit=1000"):
        page = assert_json(call(stack, "GET", route, api_key=key), 200)
        assert net["id"] in {n["id"] for n in page["results"]}, route
    page = assert_json(call(stack, "GET", "networks/?limit=1000&is_public=false", api_key=key), 200)
    assert net["id"] not in {n["id"] for n in page["results"]}


def test_public_network_is_403_to_write_for_others(stack, orgs):
    key = orgs["other"]["api_key"]
    net = orgs["public"]
    before = owner_view(stack, orgs, "public")
    for method, body in (("PATCH", {"name": "hijacked"}), ("PUT", {"name": "hijacked"}),
                         ("DELETE", None)):
        for headers in (None, {"If-Match": before[1]}, {"If-Match": '"%d-999"' % net["id"]},
                        {"If-Match": "*"}):
            resp = call(stack, method, "networks/%d/" % net["id"], api_key=key, json_body=body,
                        headers=headers)
            assert_error(resp, 403, "forbidden")
    assert owner_view(stack, orgs, "public") == before


def test_owner_can_still_change_its_public_network(stack, orgs):
    key = orgs["owner"]["api_key"]
    net = orgs["public"]
    resp = call(stack, "PATCH", "networks/%d/" % net["id"], api_key=key,
                json_body={"description": "by the owner"})
    body = assert_json(resp, 200)
    assert body["description"] == "by the owner"
    assert body["is_public"] is True and body["slug"] == orgs["slug"]
    resp = call(stack, "GET", "networks/public/%s/" % orgs["slug"], api_key=orgs["other"]["api_key"])
    assert assert_json(resp, 200)["description"] == "by the owner"


def test_slug_routes(stack, orgs):
    key = orgs["other"]["api_key"]
    assert_error(call(stack, "GET", "networks/public/%s/" % unique("nope"), api_key=key),
                 404, "not_found")
    # A slug on a private network is not reachable.
    slug = unique("hidden")
    stack.sql("UPDATE networks SET slug = '%s' WHERE id = %d" % (slug, orgs["private"]["id"]))
    try:
        for k in (key, orgs["owner"]["api_key"]):
            assert_error(call(stack, "GET", "networks/public/%s/" % slug, api_key=k), 404, "not_found")
    finally:
        stack.sql("UPDATE networks SET slug = NULL WHERE id = %d" % orgs["private"]["id"])
    # The public slug route is read-only.
    resp = call(stack, "PATCH", "networks/public/%s/" % orgs["slug"], api_key=key, json_body={})
    assert_error(resp, 405, "method_not_allowed")


def test_deleting_a_public_network_hides_it_and_its_task(stack):
    owner = stack.new_tenant()
    other = stack.new_tenant()
    net, _ = create(stack, api_key=owner["api_key"], name=unique("gone"))
    slug = make_public(stack, net["id"])
    assert_json(call(stack, "GET", "tasks/%d/" % net["task_id"], api_key=other["api_key"]), 200)
    assert call(stack, "DELETE", "networks/%d/" % net["id"], api_key=owner["api_key"]).status_code == 204
    assert_error(call(stack, "GET", "networks/public/%s/" % slug, api_key=other["api_key"]), 404)
    assert_error(call(stack, "GET", "networks/%d/" % net["id"], api_key=other["api_key"]), 404)
    # The owner keeps its task; the others no longer see it.
    assert_json(call(stack, "GET", "tasks/%d/" % net["task_id"], api_key=owner["api_key"]), 200)
    assert_error(call(stack, "GET", "tasks/%d/" % net["task_id"], api_key=other["api_key"]), 404)
