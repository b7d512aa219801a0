"""GET /networks/{id}/ and GET /tasks/{id}/ check the API key in the same
statement as their read (one database round trip, ROUTE_AUTH_IN_HANDLER):
every answer must stay what the separate check gave, in every case."""

import pytest

from helpers_api import assert_error, assert_json, call, create, make_private, make_public, unique


@pytest.fixture(scope="module")
def pair(stack):
    a, b = stack.new_tenant(), stack.new_tenant()
    a_net, _ = create(stack, api_key=a["api_key"], name=unique("hot"))
    b_net, _ = create(stack, api_key=b["api_key"], name=unique("hot"))
    yield a, b, a_net, b_net


def paths(net):
    return ["networks/%d/" % net["id"], "tasks/%d/" % net["task_id"]]


def test_own_objects_are_read(stack, pair):
    a, _, a_net, _ = pair
    got = assert_json(call(stack, "GET", "networks/%d/" % a_net["id"], api_key=a["api_key"]), 200)
    assert got["id"] == a_net["id"] and got["files"] == a_net["files"]
    resp = call(stack, "GET", "networks/%d/" % a_net["id"], api_key=a["api_key"])
    assert resp.headers["ETag"].startswith('"%d-' % a_net["id"])
    task = assert_json(call(stack, "GET", "tasks/%d/" % a_net["task_id"], api_key=a["api_key"]), 200)
    assert task["id"] == a_net["task_id"]
    # With the matching app id too.
    for path in paths(a_net):
        assert_json(call(stack, "GET", path, api_key=a["api_key"], headers={"X-APP-ID": a["app_id"]}),
                    200)


def test_keys_are_checked_first(stack, pair):
    a, b, a_net, _ = pair
    for path in paths(a_net) + ["networks/abc/", "tasks/0/", "networks/99999999999/"]:
        assert_error(call(stack, "GET", path, api_key=False), 401, "not_authenticated")
        resp = call(stack, "GET", path, api_key="nope")
        assert_error(resp, 401, "invalid_api_key")
        assert "X-API-KEY" in resp.headers.get("WWW-Authenticate", "")
        assert_error(call(stack, "GET", path, api_key="x" * 300), 401, "invalid_api_key")
        assert_error(call(stack, "GET", path, api_key=a["api_key"], headers={"X-APP-ID": b["app_id"]}),
                     401, "app_id_mismatch")
    assert_error(call(stack, "GET", "networks/abc/", api_key=a["api_key"]), 404, "not_found")
    assert_error(call(stack, "GET", "tasks/0/", api_key=a["api_key"]), 404, "not_found")
    assert_error(call(stack, "GET", "tasks/999999999/", api_key=a["api_key"]), 404, "not_found")


def test_other_organizations_objects(stack, pair):
    a, _, _, b_net = pair
    for path in paths(b_net):
        assert_error(call(stack, "GET", path, api_key=a["api_key"]), 404, "not_found")
    make_public(stack, b_net["id"])
    try:
        for path in paths(b_net):
            assert_json(call(stack, "GET", path, api_key=a["api_key"]), 200)
    finally:
        make_private(stack, [b_net["id"]])
    for path in paths(b_net):
        assert_error(call(stack, "GET", path, api_key=a["api_key"]), 404, "not_found")


def test_revoked_key_is_refused_at_once(stack):
    t = stack.new_tenant()
    net, _ = create(stack, api_key=t["api_key"], name=unique("hot"))
    for _ in range(4):
        for path in paths(net):
            assert_json(call(stack, "GET", path, api_key=t["api_key"]), 200)
    stack.revoke_key(t["app_id"])
    for _ in range(4):
        for path in paths(net):
            assert_error(call(stack, "GET", path, api_key=t["api_key"]), 401, "invalid_api_key")
