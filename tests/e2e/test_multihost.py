"""Several hosts, one PostgreSQL: two app hosts behind a front nginx load
balancer, proven by killing one and cutting the other off the database.

The hosts are network namespaces built by helpers_multihost.Cluster (see
its docstring for the picture): `db` runs PostgreSQL on its own address;
`app1` and `app2` each run nginx + nnreg-fcgi (unix socket) +
nnreg-deployer against db's address; the front nginx (nginx/front.conf.in)
runs in the root namespace on 127.0.0.1.  The shared volume is one
directory all hosts use.  docs/multihost.md shows these configurations.

One test, in order (each step needs the state the previous left):
  1. requests spread over both app hosts (their access logs);
  2. app1's deployer holds a claim on a task (its first blob read blocks
     on a FIFO, as on a hung network filesystem);
  3. under a load of reads, creates and task polls, app1's FastCGI
     processes freeze and then every process of app1 gets SIGKILL: every
     GET succeeds (retried on app2), a create in flight on app1 fails with
     the front's JSON 502 and, sent again with its Idempotency-Key, makes
     exactly one network; every task, the claimed one included, ends in
     success through app2's deployer once the lease has run out;
  4. app1 started again takes traffic again without anything else done;
  5. app2's link to db goes down: app2 answers 503 JSON within its
     connection bounds, the front sends the traffic to app1; link up, app2
     serves again, same processes;
  6. no network lost, `nnreg-admin check` clean, no task pending.

Needs root (CI runs as root); skipped otherwise.  Bounded: every wait has a
deadline, the load runs for a fixed time; the whole test takes well under
3 minutes.
"""

import atexit
import json
import os
import re
import signal
import socket
import threading
import time
import uuid

import pytest
import requests

import helpers_create as hc
import helpers_multihost as hm
import nnreg_client
from nnreg_client import assert_json

LEASE = 6           # seconds: NNREG_DEPLOY_LEASE_SECONDS on both app hosts
BOUND = 170         # seconds: the whole test, setup included
FRONT_LOG = re.compile(r'"(\S+) (\S+) [^"]*" (\d{3}) up=\[([^\]]*)\] ups=\[([^\]]*)\]')

why_not = hm.can_make_namespaces()
pytestmark = pytest.mark.skipif(why_not is not None, reason=why_not or "")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Overtime(Exception):
    pass


def _overtime(signum, frame):
    raise Overtime("the multihost test ran past its %d s bound" % BOUND)


@pytest.fixture
def cluster(request):
    # The whole test, setup and teardown aside, is bounded: past BOUND
    # seconds it is interrupted (and cleaned up like any failure).
    old = signal.signal(signal.SIGALRM, _overtime)
    signal.alarm(BOUND)
    c = hm.Cluster(lease_seconds=LEASE)
    atexit.register(c.cleanup)
    ok = False
    try:
        c.build_network()
        c.start_db()
        c.admin("migrate")
        c.admin("org", "create", "multihost")
        key = json.loads(c.admin("key", "create", "multihost").stdout.strip().splitlines()[-1])
        c.api_key = key["api_key"]
        for host in ("app1", "app2"):
            c.write_app_host(host)
            c.start_app_host(host)
        c.start_front(free_port())
        failed_before = request.session.testsfailed
        yield c
        ok = request.session.testsfailed == failed_before
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        if not ok:
            c.keep = True
            print("\n" + c.tails(), flush=True)
        c.cleanup()
        atexit.unregister(c.cleanup)
        assert c.leftovers() == [], "namespaces or links left behind: %s" % c.leftovers()


# --- helpers ---------------------------------------------------------------------------------

def headers(c, **extra):
    h = {"X-API-KEY": c.api_key}
    h.update(extra)
    return h


def create(c, key=None, name=None, files=None, timeout=60):
    """A create through the front, with an Idempotency-Key."""
    key = key or uuid.uuid4().hex
    return nnreg_client.create_network(
        "http://127.0.0.1:%d" % c.front_port, c.api_key, name=name or key,
        files=files or hc.unique_files(), headers={"Idempotency-Key": key}, timeout=timeout)


def app_hits(c, host):
    """Requests app host's nginx logged (its access log has one line per
    request it answered)."""
    path = c.base / host / "log" / "nginx-access.log"
    return len(path.read_text().splitlines()) if path.exists() else 0


def front_lines(c):
    """The front's access log as (method, uri, status, [upstreams], [statuses])."""
    path = c.base / "root" / "log" / "front-access.log"
    out = []
    for line in path.read_text().splitlines():
        m = FRONT_LOG.search(line)
        if m:
            ups = [u.strip() for u in m.group(4).split(",") if u.strip() and u.strip() != "-"]
            sts = [s.strip() for s in m.group(5).split(",") if s.strip() and s.strip() != "-"]
            out.append((m.group(1), m.group(2), int(m.group(3)), ups, sts))
    return out


def task_rows(c, ids):
    rows = c.sql("SELECT id, status, coalesce(owner, ''), attempts FROM tasks WHERE id IN (%s)"
                 % ",".join(str(i) for i in ids))
    return {int(r[0]): {"status": r[1], "owner": r[2], "attempts": int(r[3])} for r in rows}


def wait_tasks_done(c, ids, timeout):
    deadline = time.monotonic() + timeout
    while True:
        rows = task_rows(c, ids)
        if len(rows) == len(set(ids)) and all(r["status"] != "pending" for r in rows.values()):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError("tasks still pending after %ds: %s\n%s" % (
                timeout, {i: r for i, r in rows.items() if r["status"] == "pending"},
                c.tails(15)))
        time.sleep(0.2)


def wchan(pid):
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def direct_get(c, host, path, timeout=30):
    """GET to one app host's nginx, not through the front."""
    url = "http://%s:%d/v0.7/%s" % (c.addr[(host, "front")], hm.APP_PORT, path)
    return requests.get(url, headers=headers(c), timeout=timeout)


def rejoined(c, host):
    """Requests through the front reach host again once the front's
    fail_timeout for it has run out (3 s, counted by nginx in whole
    seconds), and from then on it takes its share of the traffic.  Judged
    from the front's own log (which host answered each request), since a
    host's log also holds the requests sent to it directly."""
    addr = "%s:%d" % (c.addr[(host, "front")], hm.APP_PORT)

    def answered_by_host(lines):
        return sum(1 for ln in lines if ln[2] == 200 and ln[3] and ln[3][-1] == addr)

    deadline = time.monotonic() + 15
    seen = len(front_lines(c))
    while not answered_by_host(front_lines(c)[seen:]):
        assert time.monotonic() < deadline, "%s gets no traffic from the front" % host
        assert_json(requests.get(c.front_url("networks/"), headers=headers(c), timeout=30), 200)
        time.sleep(0.1)
    time.sleep(0.2)  # nginx logs a request just after answering it
    seen = len(front_lines(c))
    for _ in range(20):
        assert_json(requests.get(c.front_url("networks/"), headers=headers(c), timeout=30), 200)
    time.sleep(0.2)
    lines = front_lines(c)[seen:]
    assert len(lines) == 20, lines
    assert answered_by_host(lines) >= 8, lines


class Load:
    """Reads, creates and task polls through the front from a few threads,
    for a bounded time and number of requests.  Every answer is recorded.

    Each thread paces itself and has room for far more requests than the
    test's few seconds need: the load must still be running when app1
    freezes and dies.  (With 40 creates per creator and no pause, a fast
    machine finished them all within the first second, before the freeze,
    and no create was ever in flight on app1.)  `finish` stops them."""

    def __init__(self, c, known_networks, known_tasks, readers=2, pollers=2, creators=3):
        self.c = c
        self.networks = list(known_networks)
        self.tasks = list(known_tasks)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.gets = []       # (path, status, json body or None, error)
        self.creates = []    # (key, status, body or None, error)
        self.in_flight = {}  # creator index -> (key, start time)
        self.threads = [threading.Thread(target=self.reader, args=(i,)) for i in range(readers)]
        self.threads += [threading.Thread(target=self.poller) for _ in range(pollers)]
        self.threads += [threading.Thread(target=self.creator, args=(i,))
                         for i in range(creators)]
        self.ncreators = creators

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self, timeout):
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "load threads did not finish"

    def get(self, path):
        try:
            r = requests.get(self.c.front_url(path), headers=headers(self.c), timeout=60)
            try:
                body = r.json()
            except ValueError:
                body = None
            with self.lock:
                self.gets.append((path, r.status_code, body, None))
        except requests.RequestException as e:
            with self.lock:
                self.gets.append((path, None, None, str(e)))

    def reader(self, i):
        for n in range(4000):
            if self.stop.is_set():
                return
            time.sleep(0.005)
            if n % 2 == 0:
                self.get("networks/?page_size=5")
            else:
                with self.lock:
                    net = self.networks[(n + i) % len(self.networks)]
                self.get("networks/%d/" % net)

    def poller(self):
        for n in range(2000):
            if self.stop.is_set():
                return
            with self.lock:
                ids = self.tasks[-5:]
            self.get("tasks/?task_ids=%s" % ",".join(str(t) for t in ids))
            time.sleep(0.02)

    def creator(self, i):
        for _ in range(1000):
            if self.stop.is_set():
                return
            time.sleep(0.02)
            key = uuid.uuid4().hex
            files = hc.unique_files()
            with self.lock:
                self.in_flight[i] = (key, time.monotonic())
            try:
                r = create(self.c, key=key, files=files)
                try:
                    body = r.json()
                except ValueError:
                    body = None
                rec = (key, r.status_code, body, None, r.headers.get("Content-Type", ""))
            except requests.RequestException as e:
                rec = (key, None, None, str(e), "")
            with self.lock:
                self.in_flight.pop(i, None)
                self.creates.append(rec)
                if rec[1] == 201:
                    self.networks.append(rec[2]["id"])
                    self.tasks.append(rec[2]["task_id"])


# --- the test --------------------------------------------------------------------------------

def test_two_app_hosts_one_database_survive_a_killed_host_and_a_cut_link(cluster):
    c = cluster
    t0 = time.monotonic()

    # 1. Spread: round robin over both hosts.
    before = {h: app_hits(c, h) for h in ("app1", "app2")}
    first = []
    for _ in range(4):
        r = create(c)
        first.append(assert_json(r, 201))
    for _ in range(20):
        assert_json(requests.get(c.front_url("networks/"), headers=headers(c), timeout=30), 200)
    spread = {h: app_hits(c, h) - before[h] for h in ("app1", "app2")}
    assert spread["app1"] >= 8 and spread["app2"] >= 8, spread
    # Both hosts' metrics saw them too: scraped on each host's loopback, and
    # from the root namespace over the hosts' network, a scraper on the
    # local network (10.231.X.1: private, allowed by the installed config).
    for host in ("app1", "app2"):
        remote = requests.get("http://%s:%d/metrics" % (c.addr[(host, "front")], hm.APP_PORT),
                              timeout=30)
        assert remote.status_code == 200, (host, remote.status_code, remote.text[:300])
        out = c.nsexec(host, "curl", "-s", "http://127.0.0.1:%d/metrics" % hm.APP_PORT).stdout
        served = sum(float(m) for m in re.findall(
            r'^nnreg_http_requests_total\{route="/networks",method="GET",code="200"\} (\S+)$',
            out, re.M))
        assert served >= 8, (host, out[:2000])
    rows = wait_tasks_done(c, [n["task_id"] for n in first], timeout=30)
    assert all(r["status"] == "success" for r in rows.values()), rows

    # 2. app1's deployer claims a task and hangs on it.
    deployers = {h: c.procs[(h, "nnreg-deployer")] for h in ("app1", "app2")}
    for d in deployers.values():
        os.kill(d.pid, signal.SIGSTOP)
    try:
        files = hc.unique_files()
        held = assert_json(create(c, files=files), 201)
        pb = next(f for f in held["files"] if f["name"] == "saved_model.pb")
        blob = c.shared / "data" / "blobs" / "sha256" / pb["sha256"][:2] / pb["sha256"]
        aside = blob.with_name(blob.name + ".aside")
        os.rename(blob, aside)
        os.mkfifo(blob, 0o444)
        before_claim = time.monotonic()
        os.kill(deployers["app1"].pid, signal.SIGCONT)
        owner_pid = ":%d:" % deployers["app1"].pid
        deadline = time.monotonic() + 15
        while not task_rows(c, [held["task_id"]])[held["task_id"]]["owner"].count(owner_pid):
            assert time.monotonic() < deadline, c.tail("app1", "nnreg-deployer")
            time.sleep(0.05)
        # Blocked opening the FIFO (no writer will ever come): then the real
        # blob goes back, for whoever takes the task over.
        deadline = time.monotonic() + 5
        while not re.search("partner|fifo", wchan(deployers["app1"].pid)) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert re.search("partner|fifo|0", wchan(deployers["app1"].pid)), \
            wchan(deployers["app1"].pid)
        time.sleep(0.2)
        os.unlink(blob)
        os.rename(aside, blob)
    finally:
        for d in deployers.values():
            if d.alive():
                os.kill(d.pid, signal.SIGCONT)
    claimed = task_rows(c, [held["task_id"]])[held["task_id"]]
    assert claimed["status"] == "pending" and claimed["attempts"] == 1, claimed

    # 3. Load, freeze app1's FastCGI, kill every process of app1.
    load = Load(c, [n["id"] for n in first] + [held["id"]],
                [n["task_id"] for n in first] + [held["task_id"]])
    load.start()
    try:
        time.sleep(1.0)
        os.killpg(c.procs[("app1", "nnreg-fcgi")].pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        # Requests now pile up on app1: each thread is stuck there as soon
        # as the round robin sends it one of its requests.  Wait until
        # every creator has a create in flight for a while (app2 answers one
        # in a fraction of a second), at most 8 s.
        while time.monotonic() - frozen_at < 8:
            with load.lock:
                stuck = [k for k, t in load.in_flight.values() if time.monotonic() - t > 2]
            if len(stuck) == load.ncreators:
                break
            time.sleep(0.05)
        app1_pids = c.ns_pids("app1")
        assert len(app1_pids) >= 5, app1_pids  # nginx x2, fcgi x3, deployer
        c.kill_host("app1", signal.SIGKILL)
        assert c.ns_pids("app1") == []
        time.sleep(3)
    finally:
        load.finish(timeout=90)

    # Every GET succeeded: the ones in flight on app1 were answered by app2.
    bad = [g for g in load.gets if g[1] != 200 or g[2] is None]
    assert not bad, bad[:5]
    assert len(load.gets) >= 20
    lines = front_lines(c)
    app1_addr = "%s:%d" % (c.addr[("app1", "front")], hm.APP_PORT)
    app2_addr = "%s:%d" % (c.addr[("app2", "front")], hm.APP_PORT)
    retried = [ln for ln in lines if ln[0] == "GET" and ln[2] == 200 and ln[3] == [app1_addr,
                                                                                   app2_addr]]
    assert retried, "no GET was retried from app1 on app2:\n%s" % "\n".join(map(str, lines[-30:]))

    # Creates: 201, or the front's JSON 502 for those in flight on app1.
    statuses = [cr[1] for cr in load.creates]
    assert set(statuses) <= {201, 502}, load.creates
    failed = [cr for cr in load.creates if cr[1] == 502]
    assert failed, "no create was in flight on app1 when it died: %s" % statuses
    for key, status, body, err, ctype in failed:
        assert ctype.startswith("application/json"), ctype
        # The front's 502, or app1's own nginx's when it outlived its
        # nnreg-fcgi by a moment: both tell a create to come again with
        # its key.
        assert body["error_code"] == "bad_gateway" and "Idempotency-Key" in body["error"], body
    post_502 = [ln for ln in lines if ln[0] == "POST" and ln[2] == 502]
    assert post_502 and all(ln[3] == [app1_addr] for ln in post_502), post_502
    # Sent again with the same key: exactly one network each.
    networks, tasks = [held["id"]] + [n["id"] for n in first], [held["task_id"]]
    tasks += [n["task_id"] for n in first]
    for key, status, body, err, ctype in load.creates:
        if status == 201:
            networks.append(body["id"])
            tasks.append(body["task_id"])
    for key, _, _, _, _ in failed:
        again = create(c, key=key)
        body = assert_json(again, 201)
        assert body["name"] == key
        count = c.sql("SELECT count(*) FROM networks WHERE name = '%s'" % key)[0][0]
        assert count == "1", (key, count)
        again2 = create(c, key=key)
        assert assert_json(again2, 201)["id"] == body["id"]
        assert again2.headers.get("Idempotent-Replayed") == "true"
        networks.append(body["id"])
        tasks.append(body["task_id"])

    # Every task ends in success, the held one through app2 after the lease.
    rows = wait_tasks_done(c, tasks, timeout=LEASE + 30)
    assert all(r["status"] == "success" for r in rows.values()), \
        {i: r for i, r in rows.items() if r["status"] != "success"}
    h = rows[held["task_id"]]
    assert h["attempts"] == 2 and (":%d:" % deployers["app2"].pid) in h["owner"], h
    took_over = re.search(r"task %d: claimed \(network %d, attempt 2\)" % (
        held["task_id"], held["id"]), c.log_text("app2", "nnreg-deployer"))
    assert took_over
    # Taken over only once the lease had run out (the claim came after
    # before_claim).
    assert time.monotonic() - before_claim >= LEASE

    # 4. app1 comes back and takes traffic again: nothing else is done.
    c.start_app_host("app1")
    rejoined(c, "app1")
    # A reload on app2 (as systemctl reload does) keeps it serving.
    os.kill(c.procs[("app2", "nnreg-fcgi")].pid, signal.SIGHUP)
    os.kill(c.procs[("app2", "nnreg-deployer")].pid, signal.SIGHUP)
    hm_deadline = time.monotonic() + 10
    while "reloaded" not in c.log_text("app2", "nnreg-deployer"):
        assert time.monotonic() < hm_deadline, c.tail("app2", "nnreg-deployer")
        time.sleep(0.1)

    # 5. app2 loses db.  First every process of app2 holds an established
    # connection (2 workers, the deployer's two): the cut then meets
    # connections that go silent, not just new ones that cannot connect.
    app2_fcgi = c.procs[("app2", "nnreg-fcgi")]
    deadline = time.monotonic() + 20
    while True:
        threads = [threading.Thread(target=direct_get, args=(c, "app2", "networks/"))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        conns = int(c.sql("SELECT count(*) FROM pg_stat_activity "
                          "WHERE application_name = 'nnreg-app2'")[0][0])
        if conns >= 4:
            break
        assert time.monotonic() < deadline, "app2 holds %d connections" % conns
    app2_before = set(c.ns_pids("app2"))
    deployer_log_at = len(c.log_text("app2", "nnreg-deployer"))
    c.link("app2", "back", up=False)
    try:
        # tcp_user_timeout=3000 and connect_timeout=2 in app2's URL: a
        # worker whose connection went silent answers within about 5 s
        # (3 s for the statement, 2 s for the reconnect), later requests
        # within the connect timeout.
        took = []
        for _ in range(4):
            start = time.monotonic()
            r = direct_get(c, "app2", "networks/", timeout=30)
            took.append(round(time.monotonic() - start, 2))
            body = assert_json(r, 503)
            assert body["error_code"] == "database_unavailable", body
            assert int(r.headers["Retry-After"]) > 0
        print("\napp2 cut off from db: 503 after %s s" % took)
        assert max(took) < 12, took
        # The deployer's connections go too (keepalives on the idle LISTEN
        # one, tcp_user_timeout on the other): it says so, and keeps trying.
        deadline = time.monotonic() + 15
        while "listen connection lost" not in c.log_text("app2", "nnreg-deployer")[
                deployer_log_at:]:
            assert time.monotonic() < deadline, c.tail("app2", "nnreg-deployer")
            time.sleep(0.2)
        assert c.procs[("app2", "nnreg-deployer")].alive()
        time.sleep(0.2)  # nginx logs a request just after answering it
        before = {h: app_hits(c, h) for h in ("app1", "app2")}
        seen = len(front_lines(c))
        for _ in range(20):
            r = requests.get(c.front_url("networks/"), headers=headers(c), timeout=30)
            assert_json(r, 200)
        time.sleep(0.3)
        moved = {h: app_hits(c, h) - before[h] for h in ("app1", "app2")}
        # app1 answered all 20; app2 only saw the front's probes once its
        # fail_timeout ran out, and each was answered 503 and sent on.
        assert moved["app1"] == 20 and moved["app2"] < 10, moved
        lines = front_lines(c)[seen:]
        assert len(lines) == 20, lines
        for ln in lines:
            assert ln[2] == 200 and ln[3][-1] == app1_addr, ln
            assert ln[3] == [app1_addr] or (ln[3] == [app2_addr, app1_addr] and
                                            ln[4] == ["503", "200"]), ln
        # A create the front sent to app2 gets its 503 (never resent by the
        # front); the client sends it again with the same key.
        key = uuid.uuid4().hex
        files = hc.unique_files()
        for attempt in range(5):
            r = create(c, key=key, files=files)
            if r.status_code == 201:
                break
            assert_json(r, 503)
            time.sleep(0.5)
        outage_net = assert_json(r, 201)
        networks.append(outage_net["id"])
        tasks.append(outage_net["task_id"])
    finally:
        c.link("app2", "back", up=True)

    # Link back: app2 serves again, the same processes; its deployer
    # listens again.
    deadline = time.monotonic() + 30
    while True:
        r = direct_get(c, "app2", "networks/")
        if r.status_code == 200:
            break
        assert time.monotonic() < deadline, (r.status_code, r.text)
        time.sleep(0.3)
    assert app2_fcgi.alive() and set(c.ns_pids("app2")) == app2_before
    deadline = time.monotonic() + 15
    while "listening on" not in c.log_text("app2", "nnreg-deployer")[deployer_log_at:].split(
            "listen connection lost", 1)[1]:
        assert time.monotonic() < deadline, c.tail("app2", "nnreg-deployer")
        time.sleep(0.2)
    rejoined(c, "app2")

    # 6. Nothing lost, nothing damaged, nothing pending.
    rows = wait_tasks_done(c, tasks, timeout=30)
    assert all(r["status"] == "success" for r in rows.values()), rows
    for net in set(networks):
        assert_json(requests.get(c.front_url("networks/%d/" % net), headers=headers(c),
                                 timeout=30), 200)
    assert c.sql("SELECT count(*) FROM tasks WHERE status = 'pending'") == [["0"]]
    total = int(c.sql("SELECT count(*) FROM networks")[0][0])
    assert total == len(set(networks)), (total, len(set(networks)))
    check = c.admin("check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    # Each network deployed once, in the shared deploy directory.
    config = (c.shared / "deploy" / "models.config").read_text()
    for net in set(networks):
        assert 'name: "%d"' % net in config
    print("multihost test: %.0f s" % (time.monotonic() - t0))
