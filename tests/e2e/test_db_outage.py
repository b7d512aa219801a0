"""PostgreSQL goes away and comes back: the API answers 503 JSON with
Retry-After while it is away, and recovers by itself (the workers reconnect;
nothing of nnreg is restarted).

The stack is shared by the whole session: PostgreSQL is always started
again, and the test waits until the service is healthy before it ends."""

import time
from pathlib import Path

import requests

from helpers_api import REQUEST_ID, assert_error, assert_json, call, create, pg_ctl, unique


def fcgi_pids(stack):
    """The supervisor's pid and its workers' pids, to check that none was
    restarted."""
    pid = (stack.var / "run" / "nnreg-fcgi.pid").read_text().split()[0]
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == pid:
            children.add(entry.name)
    return pid, children


def test_database_outage_is_503_and_recovers_without_restart(stack):
    key = stack.api_key
    net, _ = create(stack, name=unique("outage"))
    before = fcgi_pids(stack)
    assert before[1], "no nnreg-fcgi workers found"
    pg_ctl(stack, "stop_pg")
    try:
        # More requests than workers, so that every worker meets the outage.
        for _ in range(3):
            resp = requests.get(stack.url("health"), timeout=30)
            body = assert_json(resp, 503)
            assert body["status"] == "unavailable" and body["database"] == "unavailable"
            assert body["error_code"] == "database_unavailable" and body["error"]
            assert int(resp.headers["Retry-After"]) > 0
            assert REQUEST_ID.match(resp.headers.get("X-Request-Id", ""))
            assert body.get("request_id") == resp.headers["X-Request-Id"]
            for method, path, payload in (("GET", "networks/", None),
                                          ("GET", "networks/%d/" % net["id"], None),
                                          ("GET", "networks/%d/graph/" % net["id"], None),
                                          ("PATCH", "networks/%d/" % net["id"], {"name": "x"}),
                                          ("DELETE", "networks/%d/" % net["id"], None),
                                          ("GET", "tasks/%d/" % net["task_id"], None),
                                          ("GET", "tasks/?task_ids=%d" % net["task_id"], None)):
                resp = call(stack, method, path, api_key=key, json_body=payload)
                err = assert_error(resp, 503, "database_unavailable")
                assert int(resp.headers["Retry-After"]) > 0
                assert err["request_id"] == resp.headers["X-Request-Id"]
            # Routing does not need the database: 404 and 405 still answer.
            assert_error(call(stack, "GET", "nowhere/"), 404, "not_found")
            assert_error(call(stack, "DELETE", "networks/"), 405, "method_not_allowed")
    finally:
        pg_ctl(stack, "start_pg")

    deadline = time.monotonic() + 30
    while True:
        resp = requests.get(stack.url("health"), timeout=30)
        if resp.status_code == 200:
            break
        assert time.monotonic() < deadline, "not healthy again: %s" % resp.text
        time.sleep(0.2)
    assert resp.json() == {"status": "ok", "database": "ok"}
    # Every worker is back: a run of requests all succeed at once.
    for _ in range(8):
        assert_json(requests.get(stack.url("health"), timeout=30), 200)
        got = assert_json(call(stack, "GET", "networks/%d/" % net["id"], api_key=key), 200)
        assert got["name"] == net["name"]  # the PATCH and DELETE during the outage did nothing
    resp = call(stack, "PATCH", "networks/%d/" % net["id"], api_key=key,
                json_body={"description": "after the outage"})
    assert assert_json(resp, 200)["description"] == "after the outage"
    created, _ = create(stack, name=unique("after"))
    assert created["id"] > net["id"]
    # Same supervisor, same workers: nothing was restarted.
    assert fcgi_pids(stack) == before
