"""Smoke tests: the stack answers, errors are JSON, requests carry an id.

These also check the harness itself (admin and SQL helpers) and nginx's own
error pages (413, 502), which no application code produces.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from nnreg_client import assert_error, assert_json

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
DEV = Path(__file__).resolve().parents[2] / "scripts" / "dev"


def test_health(stack):
    resp = requests.get(stack.url("health"), timeout=10)
    body = assert_json(resp, 200)
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


def test_health_needs_no_key_and_ignores_a_bad_one(stack):
    resp = requests.get(stack.url("health"), headers={"X-API-KEY": "nope"}, timeout=10)
    assert_json(resp, 200)


def test_no_key_is_401_json(stack):
    resp = requests.get(stack.url("networks/"), timeout=10)
    assert_error(resp, 401)


def test_wrong_key_is_401_json(stack):
    resp = requests.get(stack.url("networks/"), headers={"X-API-KEY": "not-a-key"}, timeout=10)
    assert_error(resp, 401)


def test_demo_key_lists_networks(stack, api):
    body = assert_json(api.get(stack.url("networks/"), timeout=10), 200)
    assert {"count", "next", "previous", "results"} <= set(body)


def test_unknown_route_is_404_json(stack):
    resp = stack.get("no-such-thing/")
    assert_error(resp, 404)
    resp = stack.get("/definitely/not/here.html")
    assert_error(resp, 404)


def test_request_id_header(stack):
    first = requests.get(stack.url("health"), timeout=10)
    second = requests.get(stack.url("health"), timeout=10)
    a, b = first.headers.get("X-Request-Id"), second.headers.get("X-Request-Id")
    assert a and REQUEST_ID.match(a), first.headers
    assert b and REQUEST_ID.match(b) and a != b


def test_request_id_on_errors_and_not_spoofable(stack):
    resp = requests.get(stack.url("networks/"), headers={"X-Request-Id": "spoofed"}, timeout=10)
    assert resp.status_code == 401
    rid = resp.headers.get("X-Request-Id")
    assert rid and REQUEST_ID.match(rid), resp.headers
    assert "spoofed" not in resp.headers.get("X-Request-Id", "")


def test_request_id_in_access_log(stack):
    resp = requests.get(stack.url("health"), timeout=10)
    rid = resp.headers["X-Request-Id"]
    deadline = time.monotonic() + 5
    while "rid=" + rid not in stack.log("nginx-access"):
        assert time.monotonic() < deadline, "request id not in the access log"
        time.sleep(0.1)


def _raw_http(port, data, timeout=10):
    """Sends raw bytes, returns (status, headers dict, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)  # no body follows: nginx need not linger
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


def test_body_over_the_limit_is_413_json(stack):
    # nginx refuses on the Content-Length alone, before any body byte.
    too_big = stack.max_upload + 1
    request = ("POST /v0.7/networks/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "X-API-KEY: %s\r\nContent-Type: multipart/form-data; boundary=x\r\n"
               "Content-Length: %d\r\nConnection: close\r\n\r\n" % (
                   stack.port, stack.api_key, too_big)).encode()
    status, headers, body = _raw_http(stack.port, request)
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert REQUEST_ID.match(headers.get("x-request-id", ""))
    doc = json.loads(body)
    assert doc["error_code"] == "body_too_large"
    assert doc["error"]


def test_admin_and_sql_helpers(stack):
    tenant = stack.new_tenant()
    assert tenant["api_key"] and tenant["app_id"]
    resp = requests.get(stack.url("networks/"), headers={"X-API-KEY": tenant["api_key"]},
                        timeout=10)
    assert_json(resp, 200)
    assert stack.sql("SELECT count(*) FROM organizations WHERE name = '%s'" % tenant["org"]) == "1"
    # The X-APP-ID, when sent, must match the key's.
    resp = requests.get(stack.url("networks/"), timeout=10,
                        headers={"X-API-KEY": tenant["api_key"], "X-APP-ID": stack.app_id})
    assert_error(resp, 401)


def test_nginx_502_is_json_when_the_app_is_down():
    """The shipped nginx config, rendered by scripts/dev for a var dir where
    no nnreg-fcgi listens: nginx's own 502 must be JSON with a request id."""
    var = tempfile.mkdtemp(prefix="nnreg-nginx-", dir=os.environ.get("NNREG_E2E_TMPDIR", "/tmp"))
    os.chmod(var, 0o755)
    proc = None
    try:
        for sub in ("log", "run", "nginx"):
            os.mkdir(os.path.join(var, sub))
            os.chmod(os.path.join(var, sub), 0o755)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, NNREG_VAR=var, NNREG_PORT=str(port))
        conf = subprocess.run([str(DEV), "nginx-conf"], env=env, check=True,
                              capture_output=True, text=True).stdout
        conf = conf.replace("listen [::1]:%d;" % port, "")  # v4 is enough here
        conf_path = os.path.join(var, "nginx", "nnreg.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        cmd = ["/usr/sbin/nginx", "-p", var + "/nginx/", "-c", conf_path,
               "-e", os.path.join(var, "log", "nginx-error.log")]
        subprocess.run(cmd + ["-t", "-q"], check=True)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                resp = requests.get("http://127.0.0.1:%d/v0.7/health" % port, timeout=5)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, "nginx exited"
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.1)
        body = assert_error(resp, 502, "bad_gateway")
        assert REQUEST_ID.match(resp.headers.get("X-Request-Id", ""))
        assert body["request_id"] == resp.headers["X-Request-Id"]
        resp = requests.post("http://127.0.0.1:%d/v0.7/networks/" % port, data=b"x" * 100000,
                             timeout=5)
        assert_error(resp, 502, "bad_gateway")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(var, ignore_errors=True)
