"""Every cell of the tenancy matrix, one test per cell:

    {own network, another org's private network, another org's public network}
  x {list, retrieve, graph, patch, put, delete, task}

Each cell gets networks of its own (a delete must not disturb the others) and
checks both the answer and that nothing changed when the answer is a
refusal.  Networks are published the way an operator does it, with
`nnreg-admin publish` (helpers_api.make_public)."""

import pytest

from helpers_api import assert_error, assert_json, call, create, make_public, unique

WHOSE = ("own", "other_private", "other_public")
ACTIONS = ("list", "retrieve", "graph", "patch", "put", "delete", "task")

# What the caller gets: a status for single-resource actions, and for list
# whether the network appears in the caller's list.
EXPECTED = {
    "own": {"list": True, "retrieve": 200, "graph": 200, "patch": 200, "put": 200,
            "delete": 204, "task": 200},
    "other_private": {"list": False, "retrieve": 404, "graph": 404, "patch": 404, "put": 404,
                      "delete": 404, "task": 404},
    "other_public": {"list": True, "retrieve": 200, "graph": 200, "patch": 403, "put": 403,
                     "delete": 403, "task": 200},
}
ERROR_CODES = {403: "forbidden", 404: "not_found"}


@pytest.fixture(scope="module")
def tenants(stack):
    return {"owner": stack.new_tenant(), "caller": stack.new_tenant()}


def network_for(stack, tenants, whose):
    """A fresh network the cell acts on, and the key the cell acts with."""
    if whose == "own":
        net, _ = create(stack, api_key=tenants["caller"]["api_key"], name=unique("own"))
        return net, tenants["caller"]["api_key"]
    net, _ = create(stack, api_key=tenants["owner"]["api_key"], name=unique(whose))
    if whose == "other_public":
        make_public(stack, net["id"])
    return net, tenants["caller"]["api_key"]


def owner_state(stack, tenants, whose, net):
    owner_key = tenants["caller" if whose == "own" else "owner"]["api_key"]
    resp = call(stack, "GET", "networks/%d/" % net["id"], api_key=owner_key)
    return resp.status_code, resp.text


def act(stack, action, net, key):
    nid = net["id"]
    if action == "list":
        return call(stack, "GET", "networks/?limit=1000", api_key=key)
    if action == "retrieve":
        return call(stack, "GET", "networks/%d/" % nid, api_key=key)
    if action == "graph":
        return call(stack, "GET", "networks/%d/graph/" % nid, api_key=key)
    if action == "patch":
        return call(stack, "PATCH", "networks/%d/" % nid, api_key=key,
                    json_body={"description": "patched by the caller"})
    if action == "put":
        return call(stack, "PUT", "networks/%d/" % nid, api_key=key,
                    json_body={"name": "put by the caller"})
    if action == "delete":
        return call(stack, "DELETE", "networks/%d/" % nid, api_key=key)
    if action == "task":
        return call(stack, "GET", "tasks/%d/" % net["task_id"], api_key=key)
    raise AssertionError(action)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("whose", WHOSE)
def test_cell(stack, tenants, whose, action):
    net, key = network_for(stack, tenants, whose)
    before = owner_state(stack, tenants, whose, net)
    resp = act(stack, action, net, key)
    expected = EXPECTED[whose][action]

    if action == "list":
        page = assert_json(resp, 200)
        listed = net["id"] in {n["id"] for n in page["results"]}
        assert listed is expected, (whose, page["count"])
        return

    if expected in ERROR_CODES:
        assert_error(resp, expected, ERROR_CODES[expected])
        assert "ETag" not in resp.headers
        # A refusal changes nothing the owner can see.
        assert owner_state(stack, tenants, whose, net) == before
        return

    assert resp.status_code == expected, resp.text
    if action == "delete":
        gone = call(stack, "GET", "networks/%d/" % net["id"], api_key=key)
        assert_error(gone, 404, "not_found")
        return
    body = resp.json()
    if action in ("retrieve", "patch", "put"):
        assert body["id"] == net["id"]
    if action == "patch":
        assert body["description"] == "patched by the caller"
    if action == "put":
        assert body["name"] == "put by the caller" and body["description"] == ""
    if action == "graph":
        assert body["node_count"] > 0
    if action == "task":
        assert body["id"] == net["task_id"]
    if whose == "other_public" and action == "retrieve":
        assert body["is_public"] is True and body["slug"]
