"""GET /metrics: Prometheus text format, counters shared by every FastCGI
worker (a scrape sees the whole server), database-derived families read at
scrape time, loopback-only access in nginx, and a scrape that never fails
because PostgreSQL is away.

Every test takes its numbers as deltas between two scrapes: the stack is
shared by the session and other tests' traffic is already counted.  No
other traffic runs while a test runs (the suite is sequential)."""

import http.client
import json
import math
import os
import re
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from helpers_api import assert_error, create, pg_ctl, unique
from nnreg_client import model_files, wait_until

CONTENT_TYPE = "text/plain; version=0.0.4"

# ----------------------------------------------------------- the format

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % _NAME)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _parse_labels(text, line):
    labels = {}
    pos = 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        assert m, "bad label list in %r" % line
        name, value = m.group(1), re.sub(r'\\[\\"n]', lambda e: _UNESCAPE[e.group(0)], m.group(2))
        assert name not in labels, "label %s twice in %r" % (name, line)
        labels[name] = value
        pos = m.end()
    return labels


def _parse_value(text, line):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(text)
    except ValueError:
        raise AssertionError("bad value in %r" % line)


class Scrape:
    """A parsed exposition (text format 0.0.4), checked as Prometheus
    checks it: # HELP and # TYPE before a family's samples, each family
    once, every sample in the family declared last (histograms: _bucket
    with le, _sum, _count), no sample twice, and histogram buckets
    cumulative with +Inf equal to _count."""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.samples = {}  # (name, frozenset of label items) -> value
        family = None
        assert text.endswith("\n"), "the exposition must end with a newline"
        for line in text[:-1].split("\n"):
            if line.startswith("# HELP "):
                family = line.split(" ", 3)[2]
                assert family not in self.types, "family %s declared twice" % family
                self.types[family] = None
                continue
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                assert name == family, "TYPE %s after HELP %s" % (name, family)
                assert kind in ("counter", "gauge", "histogram"), line
                self.types[family] = kind
                continue
            assert not line.startswith("#") and line, "unexpected line %r" % line
            m = _SAMPLE.match(line)
            assert m, "bad sample line %r" % line
            name, labels = m.group(1), _parse_labels(m.group(2) or "", line)
            assert family and self.types.get(family), "sample before its TYPE: %r" % line
            if self.types[family] == "histogram":
                suffix = name[len(family):]
                assert name.startswith(family) and suffix in ("_bucket", "_sum", "_count"), line
                assert ("le" in labels) == (suffix == "_bucket"), line
            else:
                assert name == family, "sample %r outside its family %s" % (line, family)
            key = (name, frozenset(labels.items()))
            assert key not in self.samples, "sample twice: %r" % line
            self.samples[key] = _parse_value(m.group(3), line)
        self._check_histograms()

    def _check_histograms(self):
        for family, kind in self.types.items():
            if kind != "histogram":
                continue
            series = {}
            for (name, labels), value in self.samples.items():
                if name == family + "_bucket":
                    rest = frozenset(kv for kv in labels if kv[0] != "le")
                    le = float(dict(labels)["le"].replace("Inf", "inf"))
                    series.setdefault(rest, []).append((le, value))
            for rest, buckets in series.items():
                buckets.sort()
                assert buckets[-1][0] == math.inf, "%s %s has no +Inf bucket" % (family, rest)
                counts = [v for _, v in buckets]
                assert counts == sorted(counts), "%s %s buckets not cumulative: %s" % (
                    family, dict(rest), buckets)
                assert self.samples[(family + "_count", rest)] == counts[-1]
                assert (family + "_sum", rest) in self.samples

    def value(self, name, default=0.0, **labels):
        """A sample's value; default when the series is absent (series
        that never counted are not written)."""
        return self.samples.get((name, frozenset(labels.items())), default)

    def series(self, name):
        """[(labels dict, value)] of every sample named name."""
        return [(dict(labels), v) for (n, labels), v in self.samples.items() if n == name]


def scrape(stack, path="/metrics"):
    resp = requests.get(stack.url(path), timeout=60)
    assert resp.status_code == 200, resp.text[:2000]
    assert resp.headers["Content-Type"].startswith(CONTENT_TYPE), resp.headers
    return Scrape(resp.text)


def test_parser_refuses_broken_text():
    """The parser is strict enough to catch what it must."""
    for bad in ("x 1\n",                                         # no TYPE
                "# HELP x h\n# TYPE x counter\nx{a=\"b} 1\n",      # unterminated
                "# HELP x h\n# TYPE x counter\nx one\n",          # value
                "# HELP x h\n# TYPE x counter\ny 1\n",            # other family
                "# HELP x h\n# TYPE x histogram\nx_bucket{le=\"1\"} 2\n"
                "x_bucket{le=\"+Inf\"} 1\nx_sum 1\nx_count 1\n"):  # not cumulative
        with pytest.raises(AssertionError):
            Scrape(bad)
    s = Scrape("# HELP x h\n# TYPE x counter\nx{a=\"q\\\"\\\\\\n\"} 1e+20\n")
    assert s.value("x", a='q"\\\n') == 1e20


# ------------------------------------------------------------ the route


def test_scrape_format_and_families(stack):
    for path in ("/metrics", "/metrics/", "/v0.7/metrics", "/v0.7/metrics/"):
        s = scrape(stack, path)
        assert s.types["nnreg_http_requests_total"] == "counter"
        assert s.types["nnreg_http_request_duration_seconds"] == "histogram"
        assert s.types["nnreg_http_request_body_bytes_total"] == "counter"
        assert s.types["nnreg_uploaded_bytes_total"] == "counter"
        assert s.types["nnreg_fcgi_worker_exits_total"] == "counter"
        assert s.types["nnreg_start_time_seconds"] == "gauge"
        assert s.types["nnreg_database_up"] == "gauge"
        assert s.types["nnreg_tasks"] == "gauge"
        assert s.types["nnreg_tasks_oldest_pending_age_seconds"] == "gauge"
        assert s.types["nnreg_deploy_duration_seconds"] == "histogram"
        assert s.value("nnreg_database_up", None) == 1
        for status in ("pending", "success", "error"):
            assert s.value("nnreg_tasks", None, kind="deploy", status=status) is not None
        for status in ("success", "error"):
            assert s.value("nnreg_deploy_duration_seconds_count", None, status=status) is not None
        assert time.time() - 86400 * 7 < s.value("nnreg_start_time_seconds") <= time.time()
        # Bounded labels only: patterns of the route table, never a raw path.
        for labels, _ in s.series("nnreg_http_requests_total"):
            assert re.match(r"^(/[a-z/{}]*|unknown|other)$", labels["route"]), labels
            assert labels["method"] in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                        "OPTIONS", "other"), labels
            assert re.match(r"^(\d{3}|[1-5]xx|other)$", labels["code"]), labels
    # HEAD has the headers and no body; other methods are the app's JSON 405.
    head = requests.head(stack.url("/metrics"), timeout=30)
    assert head.status_code == 200 and head.headers["Content-Type"].startswith(CONTENT_TYPE)
    assert head.text == ""
    resp = requests.post(stack.url("/metrics"), data=b"", timeout=30)
    assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


def _log_pids(stack, request_ids):
    """pid of the worker that served each request id, from nnreg-fcgi's
    one line per request ("nnreg-fcgi[PID] req=ID GET ...")."""
    found = {}
    for m in re.finditer(r"nnreg-fcgi\[(\d+)\] req=([0-9a-f]{32}) [A-Z]+ ", stack.log()):
        if m.group(2) in request_ids:
            found[m.group(2)] = int(m.group(1))
    return found


def _worker_pids(stack):
    sup = (stack.var / "run" / "nnreg-fcgi.pid").read_text().split()[0]
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == sup and fields[0] != "Z":
            pids.add(int(entry.name))
    return pids


def test_known_traffic_is_counted_exactly_across_workers(stack):
    net, _ = create(stack, name=unique("metrics"))
    files = model_files()
    file_bytes = sum(Path(p).stat().st_size for p in files.values())
    workers = len(_worker_pids(stack))
    assert workers >= 1

    before = scrape(stack)

    # One create of known size.
    created = stack.create_network(name=unique("metrics-create"))
    assert created.status_code == 201, created.text
    sent_bytes = int(created.request.headers["Content-Length"])

    # N GETs of a network, concurrent so that every worker serves some
    # (checked in the workers' logs): more batches until two of them did.
    url = stack.url("networks/%d/" % net["id"])
    headers = stack.headers()

    def get(_):
        r = requests.get(url, headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        return r.headers["X-Request-Id"]

    request_ids = set()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):
            request_ids.update(pool.map(get, range(24)))
            if workers < 2:
                break
            pids = wait_until(lambda: (lambda f: f if len(f) == len(request_ids) else None)(
                _log_pids(stack, request_ids)), timeout=10)
            if len(set(pids.values())) >= 2:
                break
    n_gets = len(request_ids)
    if workers >= 2:
        served_by = set(_log_pids(stack, request_ids).values())
        assert len(served_by) >= 2, "all %d GETs went to one worker" % n_gets

    # M 404s on a known route, K on no route at all.
    m_404 = 7
    for _ in range(m_404):
        r = requests.get(stack.url("networks/999999999/"), headers=headers, timeout=30)
        assert r.status_code == 404
    k_unknown = 3
    for _ in range(k_unknown):
        r = requests.get(stack.url("no-such-thing/"), headers=headers, timeout=30)
        assert r.status_code == 404

    after = scrape(stack)

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    req = "nnreg_http_requests_total"
    assert delta(req, route="/networks/{}", method="GET", code="200") == n_gets
    assert delta(req, route="/networks/{}", method="GET", code="404") == m_404
    assert delta(req, route="unknown", method="GET", code="404") == k_unknown
    assert delta(req, route="/networks", method="POST", code="201") == 1
    # The first scrape was counted once it was answered; this one is not yet.
    assert delta(req, route="/metrics", method="GET", code="200") == 1
    total = sum(v for _, v in after.series(req)) - sum(v for _, v in before.series(req))
    assert total == n_gets + m_404 + k_unknown + 1 + 1, "unexpected other traffic"

    hist = "nnreg_http_request_duration_seconds"
    labels = dict(route="/networks/{}", method="GET")
    assert delta(hist + "_count", **labels) == n_gets + m_404
    assert delta(hist + "_bucket", le="+Inf", **labels) == n_gets + m_404
    assert delta(hist + "_sum", **labels) > 0
    # Every request took less than the 10 s bound.
    assert delta(hist + "_bucket", le="10", **labels) == n_gets + m_404
    assert delta(hist + "_count", route="/networks", method="POST") == 1

    # Bytes uploaded: the create's body, all of its files at least; only it
    # had a body in the window.
    body_bytes = delta("nnreg_http_request_body_bytes_total", route="/networks", method="POST")
    assert file_bytes <= body_bytes <= sent_bytes, (file_bytes, body_bytes, sent_bytes)
    assert delta("nnreg_uploaded_bytes_total") == body_bytes


def _task_counts(stack):
    rows = stack.sql_rows("SELECT kind, status, count(*) FROM tasks GROUP BY kind, status")
    return {(k, s): int(n) for k, s, n in rows}


def test_tasks_by_status_and_deploy_durations_match_the_database(stack):
    net, _ = create(stack, name=unique("metrics-deploy"))
    task_url = stack.url("tasks/%d/" % net["task_id"])

    def finished():
        r = requests.get(task_url, headers=stack.headers(), timeout=30)
        return r.status_code == 200 and r.json()["status"] != "pending" and r.json()["status"]

    final = wait_until(finished, timeout=120, interval=0.2)

    # The deployer may still be finishing earlier tests' tasks: compare a
    # scrape with the database until both saw the same state.
    def agree():
        db = _task_counts(stack)
        s = scrape(stack)
        got = {(l["kind"], l["status"]): v for l, v in s.series("nnreg_tasks") if v}
        return (s, db) if got == db else None

    s, db = wait_until(agree, timeout=60, interval=0.5)
    assert db[("deploy", final)] >= 1
    assert s.value("nnreg_tasks", kind="deploy", status=final) == db[("deploy", final)]

    rows = stack.sql_rows(
        "SELECT status, count(*), COALESCE(sum(extract(epoch FROM update_date - create_date)), 0), "
        "count(*) FILTER (WHERE update_date - create_date <= interval '10 seconds') "
        "FROM tasks WHERE kind = 'deploy' AND status <> 'pending' GROUP BY status")
    for status, count, secs, within_10s in rows:
        h = "nnreg_deploy_duration_seconds"
        assert s.value(h + "_count", status=status) == int(count)
        assert s.value(h + "_bucket", status=status, le="+Inf") == int(count)
        assert s.value(h + "_bucket", status=status, le="10") == int(within_10s)
        assert s.value(h + "_sum", status=status) == pytest.approx(float(secs), rel=1e-6, abs=1e-6)
    age = s.value("nnreg_tasks_oldest_pending_age_seconds", None)
    if any(status == "pending" for _, status in db):
        assert age > 0
    else:
        assert age == 0


def test_counters_survive_a_worker_restart(stack):
    """A worker the supervisor restarts maps the same table: nothing is lost
    and nothing restarts from zero."""
    scrape(stack)
    before = scrape(stack)
    victims = _worker_pids(stack)
    assert victims
    victim = sorted(victims)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: (lambda p: victim not in p and len(p) == len(victims))(_worker_pids(stack)),
               timeout=30)
    # Enough scrapes that the new worker answers some of them.
    for _ in range(6):
        after = scrape(stack)
        assert after.value("nnreg_start_time_seconds") == before.value("nnreg_start_time_seconds")
        assert (after.value("nnreg_fcgi_worker_exits_total")
                == before.value("nnreg_fcgi_worker_exits_total") + 1)
        for (name, labels), value in before.samples.items():
            if before.types.get(name) == "counter" or name.startswith(
                    "nnreg_http_request_duration_seconds"):
                assert after.samples.get((name, labels), 0) >= value, (name, dict(labels))


def test_scrape_succeeds_while_the_database_is_away(stack):
    pg_ctl(stack, "stop_pg")
    try:
        for _ in range(3):  # more scrapes than workers: each meets the outage
            s = scrape(stack)
            assert s.value("nnreg_database_up", None) == 0
            assert "nnreg_tasks" not in s.types
            assert "nnreg_deploy_duration_seconds" not in s.types
            assert s.types["nnreg_http_requests_total"] == "counter"
            assert s.value("nnreg_http_requests_total", route="/metrics", method="GET",
                           code="200") >= 1
    finally:
        pg_ctl(stack, "start_pg")
    wait_until(lambda: all(scrape(stack).value("nnreg_database_up") == 1 for _ in range(3)),
               timeout=60, interval=0.5)


# ------------------------------------------------------------- loopback


def test_nginx_config_serves_metrics_to_loopback_only(stack):
    conf = stack.dev("nginx-conf").stdout
    m = re.search(r"location ~ \^\(/v0\\\.7\)\?/metrics/\*\$ \{(.*?)\}", conf, re.S)
    assert m, "no /metrics location in the rendered nginx configuration"
    directives = [line.strip() for line in m.group(1).splitlines()
                  if line.strip() and not line.strip().startswith("#")]
    assert directives[:3] == ["allow 127.0.0.1;", "allow ::1;", "deny all;"], directives
    assert "fastcgi_pass nnreg;" in directives
    assert "error_page 403 /_nnreg_errors/403.json;" in conf
    assert "location = /_nnreg_errors/403.json" in conf


def test_metrics_allow_adds_networks_and_refuses_junk(stack):
    """NNREG_METRICS_ALLOW opens /metrics to more networks (API.md's "local
    network"); anything but addresses and CIDR blocks is refused before it
    could reach nginx's configuration."""
    out = stack.dev("nginx-conf",
                    env={"NNREG_METRICS_ALLOW": "10.0.0.0/8 fd00::/8 192.168.1.7"}).stdout
    m = re.search(r"location ~ \^\(/v0\\\.7\)\?/metrics/\*\$ \{(.*?)\}", out, re.S)
    directives = [d.strip() + ";" for d in m.group(1).split(";") if d.strip()
                  and not d.strip().startswith("#")]
    assert directives[:6] == ["allow 127.0.0.1;", "allow ::1;", "allow 10.0.0.0/8;",
                              "allow fd00::/8;", "allow 192.168.1.7;", "deny all;"], directives
    for junk in ("10.0.0.0/8;deny", "all", "10.0.0.1 $(id)"):
        proc = stack.dev("nginx-conf", env={"NNREG_METRICS_ALLOW": junk}, check=False)
        assert proc.returncode != 0 and "NNREG_METRICS_ALLOW" in proc.stderr, (junk, proc)


def _request_from(source, port, target, family=socket.AF_INET, host="127.0.0.1"):
    """GET target from a chosen local source address; (status, headers, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=30, source_address=(source, 0))
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# Every spelling the app routes to /metrics.
SPELLINGS = ["/metrics", "/metrics/", "/metrics//", "/v0.7/metrics", "/v0.7/metrics/",
             "/v0.7//metrics", "//metrics", "/%6detrics", "/v0.7/./metrics", "/x/../metrics",
             "/metrics?x=1"]


def test_non_loopback_client_gets_403_json(stack):
    """127.0.0.2 is on the loopback interface but is not 127.0.0.1: nginx
    sees another client address, exactly as it would see a remote one."""
    for target in SPELLINGS:
        status, headers, body = _request_from("127.0.0.1", stack.port, target)
        assert status == 200, (target, status, body[:300])
        assert headers["content-type"].startswith(CONTENT_TYPE)
        status, headers, body = _request_from("127.0.0.2", stack.port, target)
        assert status == 403, (target, status, body[:300])
        assert headers["content-type"].startswith("application/json")
        doc = json.loads(body)
        assert doc["error_code"] == "forbidden" and doc["error"], doc
        assert doc["request_id"] == headers["x-request-id"]
    # Only /metrics: the API itself is open to every address.
    status, _, _ = _request_from("127.0.0.2", stack.port, "/v0.7/health")
    assert status == 200


def test_ipv6_loopback_is_allowed(stack):
    try:
        socket.create_connection(("::1", stack.port), timeout=5).close()
    except OSError:
        pytest.skip("nginx does not listen on ::1 here")
    status, headers, _ = _request_from("::1", stack.port, "/metrics", host="::1")
    assert status == 200 and headers["content-type"].startswith(CONTENT_TYPE)
