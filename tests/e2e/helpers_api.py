"""Helpers for the API end-to-end tests (test_api*.py, test_db_outage.py).

conftest.py and nnreg_client.py belong to the harness; what only these
tests need lives here.
"""

import http.client
import json
import re
import socket
import subprocess
import uuid

import requests

from nnreg_client import REPO, assert_error, assert_json  # noqa: F401

DEV = REPO / "scripts" / "dev"

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
ETAG = re.compile(r'^"(\d+)-(\d+)"$')
ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

# Every route the foundation serves, with a path template; {id} is a network
# id, {task} a task id, {slug} a public slug.
AUTH_ROUTES = [
    ("GET", "networks/"),
    ("GET", "networks/public/"),
    ("GET", "networks/public/{slug}/"),
    ("GET", "networks/{id}/"),
    ("PATCH", "networks/{id}/"),
    ("PUT", "networks/{id}/"),
    ("DELETE", "networks/{id}/"),
    ("GET", "networks/{id}/graph/"),
    ("GET", "tasks/{task}/"),
    ("GET", "tasks/?task_ids={task}"),
    ("POST", "networks/"),
]


def unique(prefix="n"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def create(stack, api_key=None, **fields):
    """Creates a half_plus_two_cpu network; returns (body, response)."""
    resp = stack.create_network(api_key=api_key, **fields)
    body = assert_json(resp, 201)
    return body, resp


def hdrs(api_key, **extra):
    h = {"X-API-KEY": api_key}
    for name, value in extra.items():
        h[name.replace("_", "-")] = value
    return h


def json_hdrs(api_key, **extra):
    return hdrs(api_key, Content_Type="application/json", **extra)


def call(stack, method, path, api_key=None, headers=None, json_body=None, data=None,
         allow_redirects=False):
    """One request; api_key None means the demo key, False no key."""
    h = {}
    if api_key is not False:
        h["X-API-KEY"] = api_key or stack.api_key
    if json_body is not None:
        h["Content-Type"] = "application/json"
        data = json.dumps(json_body).encode()
    if headers:
        h.update(headers)
    return requests.request(method, stack.url(path), headers=h, data=data, timeout=60,
                            allow_redirects=allow_redirects)


def make_public(stack, network_id, slug=None):
    """Publishes a network the way an operator does, with
    `nnreg-admin publish ID SLUG`; returns its slug."""
    slug = slug or unique("slug")
    assert re.match(r"^[a-z0-9-]+$", slug)
    stack.admin("publish", str(int(network_id)), slug)
    return slug


def make_private(stack, network_ids):
    """`nnreg-admin unpublish ID` for each network that is public."""
    for network_id in network_ids:
        public = stack.sql_value("SELECT is_public FROM networks WHERE id = %d" % int(network_id))
        if public in ("t", True):
            stack.admin("unpublish", str(int(network_id)))


def raw_request(stack, method, target, headers=None, body=b""):
    """A request sent byte for byte (http.client does not re-quote the
    target as requests does).  Returns (status, headers dict with lower-case
    names, decoded JSON body or raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        data = resp.read()
        h = {k.lower(): v for k, v in resp.getheaders()}
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data
        return resp.status, h, doc
    finally:
        conn.close()


def raw_http(port, data, timeout=10, half_close=True):
    """Sends raw bytes, returns (status, headers, body bytes) once the server
    closes.  half_close: shut our side down after sending (nginx may then
    take a request that waits for the application as abandoned: 499)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def allow_set(resp):
    return {m.strip() for m in resp.headers.get("Allow", "").split(",") if m.strip()}


def pg_ctl(stack, action):
    """Stops or starts the stack's private PostgreSQL with scripts/dev's own
    functions (the script defines them without running when sourced)."""
    assert action in ("stop_pg", "start_pg")
    script = 'source "$1"; resolve_var; set_paths; %s' % action
    proc = subprocess.run(["bash", "-c", script, "_", str(DEV)], env=stack.env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (action, proc.stdout, proc.stderr)
    return proc
