"""nnreg-fcgi's supervisor: a worker that dies is replaced, SIGHUP replaces
every worker without dropping requests, and a worker's database connection
survives being terminated by the server (it reconnects)."""

import os
import signal
import threading
import time

import requests

from nnreg_client import wait_until


def supervisor_pid(stack):
    return int((stack.var / "run" / "nnreg-fcgi.pid").read_text().strip())


def worker_pids(stack):
    sup = supervisor_pid(stack)
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == sup and fields[0] != "Z":
            pids.add(int(entry))
    return pids


def health_ok(stack):
    r = requests.get(stack.url("health"), timeout=10)
    return r.status_code == 200 and r.json() == {"status": "ok", "database": "ok"}


def test_killed_worker_is_replaced_and_service_continues(stack):
    before = wait_until(lambda: worker_pids(stack) or None)
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    after = wait_until(lambda: (lambda p: p if len(p) == len(before) and victim not in p else None)(
        worker_pids(stack)), timeout=15)
    assert victim not in after
    assert supervisor_pid(stack) not in after
    for _ in range(10):
        assert health_ok(stack)
    assert "killed by signal 9" in stack.log()


def test_sighup_replaces_workers_without_failed_requests(stack):
    before = wait_until(lambda: worker_pids(stack) or None)
    failures = []
    stop = threading.Event()

    def load():
        # Bounded: at most 2000 requests, and stopped by the test.
        for _ in range(2000):
            if stop.is_set():
                return
            try:
                r = requests.get(stack.url("networks/"), headers=stack.headers(), timeout=10)
                if r.status_code != 200:
                    failures.append(r.status_code)
            except requests.RequestException as e:
                failures.append(str(e))

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.3)
        os.kill(supervisor_pid(stack), signal.SIGHUP)
        wait_until(lambda: (lambda p: p if p and not (p & before) and len(p) == len(before) else None)(
            worker_pids(stack)), timeout=30)
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(timeout=60)
    assert failures == []
    assert "reloading: replacing workers" in stack.log()


def test_worker_reconnects_after_its_backend_is_terminated(stack):
    assert health_ok(stack)
    # Every backend of the nnreg database except ours (psql's) and the
    # deployer's LISTEN connection is a FastCGI worker's.
    stack.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              "WHERE datname = current_database() AND pid <> pg_backend_pid() "
              "AND application_name NOT LIKE 'nnreg-deployer%' AND backend_type = 'client backend'")
    # The first request on a dead connection is retried on a new one.
    for _ in range(6):
        r = requests.get(stack.url("networks/"), headers=stack.headers(), timeout=10)
        assert r.status_code == 200, r.text
