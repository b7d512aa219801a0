#!/usr/bin/python3
"""A mixed soak of the whole stack (issue 6): N connections (default 64)
for D seconds (default 300) of reads, lists, patches, creates, deletes and
task polls, while the deployer deploys every create.

Not part of CI (it takes minutes); run it by hand and record the figures
in docs/reliability.md:

    /usr/bin/python3 tests/soak/soak.py [--duration 300] [--connections 64]

It starts its own stack with `scripts/dev up -d` in a temp NNREG_VAR on a
free port (NNREG_BUILD_DIR picks the build) and stops it at the end.
Passes (exit 0) when:
  - no answer was a 5xx (and none was an unexpected status or a
    connection error);
  - the RSS of every FastCGI worker and of the deployer stayed flat: the
    peak of the last minute is within 10 % of the peak of the first minute
    after a 30 s warm-up (VmRSS sampled from /proc every 2 s), and no
    worker was restarted;
  - `nnreg-admin check` at the end finds every blob intact (exit 0).
Prints the figures (requests by kind and status, latency percentiles,
RSS samples) as JSON on the last line.
"""

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import helpers_create  # noqa: E402
import nnreg_client  # noqa: E402

DEV = ROOT / "scripts" / "dev"
WARMUP = 30
WINDOW = 60
SAMPLE_EVERY = 2.0
RSS_TOLERANCE = 0.10

# Operation mix (weights).  Creates are the heavy ones (a multipart upload
# of files made unique, so new blobs each time, a graph parse, then a
# deployment); deletes leave unreferenced blobs behind for gc.
MIX = [("read", 30), ("list", 20), ("patch", 15), ("task", 15), ("create", 10), ("delete", 10)]
EXPECTED = {"read": {200}, "list": {200}, "patch": {200}, "task": {200}, "create": {201},
            "delete": {204}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(entry))
    return sorted(kids)


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Soak:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.counts = {}      # (kind, status) -> n
        self.latency = {}     # kind -> [seconds]
        self.failures = []    # unexpected answers (first 50)
        self.samples = []     # (t, {pid: kB}, deployer kB)
        self.stop = threading.Event()

    # --- the stack -----------------------------------------------------------

    def up(self):
        base = os.environ.get("NNREG_E2E_TMPDIR", "/tmp")
        self.var = Path(tempfile.mkdtemp(prefix="nnreg-soak-", dir=base))
        os.chmod(self.var, 0o755)
        self.port = free_port()
        self.env = dict(os.environ, NNREG_VAR=str(self.var), NNREG_PORT=str(self.port))
        self.env.pop("NNREG_DATABASE_URL", None)
        with open(self.var / "dev-up.log", "w") as log:
            rc = subprocess.run([str(DEV), "up", "-d"], env=self.env, cwd=str(ROOT),
                                stdout=log, stderr=subprocess.STDOUT, timeout=1800).returncode
        if rc != 0:
            self.down()
            raise SystemExit("scripts/dev up -d failed; see %s/dev-up.log" % self.var)
        demo = json.loads((self.var / "demo-key.json").read_text())
        self.key = demo["api_key"]
        self.base = "http://127.0.0.1:%d" % self.port
        self.supervisor = int((self.var / "run" / "nnreg-fcgi.pid").read_text().split()[0])
        self.deployer = int((self.var / "run" / "nnreg-deployer.pid").read_text().split()[0])
        self.workers = children(self.supervisor)

    def down(self):
        subprocess.run([str(DEV), "down"], env=self.env, cwd=str(ROOT), timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # --- load ------------------------------------------------------------------

    def record(self, kind, status, seconds, detail=None):
        with self.lock:
            self.counts[(kind, status)] = self.counts.get((kind, status), 0) + 1
            self.latency.setdefault(kind, []).append(seconds)
            if status not in EXPECTED[kind] and len(self.failures) < 50:
                self.failures.append((kind, status, (detail or "")[:300]))

    def client(self, n, deadline):
        rnd = random.Random(n)
        session = requests.Session()
        session.headers["X-API-KEY"] = self.key
        mine = []  # (network id, task id) created by this connection
        kinds = [k for k, w in MIX for _ in range(w)]
        url = lambda p: nnreg_client.api_url(self.base, p)  # noqa: E731
        while time.monotonic() < deadline and not self.stop.is_set():
            kind = rnd.choice(kinds)
            if kind in ("read", "patch", "delete", "task") and not mine:
                kind = "create"
            if kind == "create" and len(mine) >= 20:
                kind = "delete"
            t0 = time.monotonic()
            try:
                if kind == "read":
                    r = session.get(url("networks/%d/" % rnd.choice(mine)[0]), timeout=120)
                elif kind == "list":
                    r = session.get(url("networks/?limit=%d&offset=%d" % (
                        rnd.choice((5, 20, 100)), rnd.randrange(0, 50))), timeout=120)
                elif kind == "patch":
                    r = session.patch(url("networks/%d/" % rnd.choice(mine)[0]),
                                      json={"description": "soak %s" % uuid.uuid4().hex},
                                      timeout=120)
                elif kind == "task":
                    ids = ",".join(str(t) for _, t in mine[-5:])
                    path = ("tasks/%d/" % mine[-1][1]) if rnd.random() < 0.5 else \
                        "tasks/?task_ids=%s" % ids
                    r = session.get(url(path), timeout=120)
                elif kind == "delete":
                    net = mine.pop(rnd.randrange(len(mine)))
                    r = session.delete(url("networks/%d/" % net[0]), timeout=120)
                else:
                    # Files made unique: every create stores new blobs.
                    r = nnreg_client.create_network(self.base, self.key, timeout=300,
                                                    files=helpers_create.unique_files(),
                                                    name="soak-%d-%s" % (n, uuid.uuid4().hex[:8]))
                    if r.status_code == 201:
                        body = r.json()
                        mine.append((body["id"], body["task_id"]))
                self.record(kind, r.status_code, time.monotonic() - t0, r.text)
            except requests.RequestException as e:
                self.record(kind, "error", time.monotonic() - t0, str(e))

    def sampler(self, start):
        while not self.stop.wait(SAMPLE_EVERY):
            workers = {pid: rss_kib(pid) for pid in children(self.supervisor)}
            self.samples.append((time.monotonic() - start, workers, rss_kib(self.deployer)))

    # --- the verdict ---------------------------------------------------------------

    def rss_verdict(self, duration):
        first = [s for s in self.samples if WARMUP <= s[0] < WARMUP + WINDOW]
        last = [s for s in self.samples if s[0] >= duration - WINDOW]
        out, ok = {}, True
        names = {pid: "worker %d" % pid for pid in self.workers}
        names["deployer"] = "deployer %d" % self.deployer
        for key, name in names.items():
            def peak(samples):
                vals = [(s[2] if key == "deployer" else s[1].get(key)) for s in samples]
                vals = [v for v in vals if v]
                return max(vals) if vals else None
            a, b = peak(first), peak(last)
            growth = (b - a) / a if a and b else None
            flat = growth is not None and growth <= RSS_TOLERANCE
            ok = ok and flat
            out[name] = {"first_minute_peak_kib": a, "last_minute_peak_kib": b,
                         "growth": None if growth is None else round(growth, 4), "flat": flat}
        return ok, out

    def run(self):
        d = self.args.duration
        start = time.monotonic()
        deadline = start + d
        sampler = threading.Thread(target=self.sampler, args=(start,), daemon=True)
        sampler.start()
        threads = [threading.Thread(target=self.client, args=(i, deadline))
                   for i in range(self.args.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(d + 600)
        self.stop.set()
        sampler.join(10)
        elapsed = time.monotonic() - start

        total = sum(self.counts.values())
        fivexx = sum(n for (k, s), n in self.counts.items() if isinstance(s, int) and s >= 500)
        errors = sum(n for (k, s), n in self.counts.items() if s == "error")
        unexpected = sum(n for (k, s), n in self.counts.items() if s not in EXPECTED[k])
        restarted = children(self.supervisor) != self.workers
        rss_ok, rss = self.rss_verdict(d)
        check = subprocess.run([str(DEV), "admin", "check"], env=self.env, cwd=str(ROOT),
                               capture_output=True, text=True, timeout=1800)
        pending = subprocess.run([str(DEV), "psql", "-At", "-c",
                                  "SELECT status, count(*) FROM tasks GROUP BY status"],
                                 env=self.env, cwd=str(ROOT), capture_output=True, text=True,
                                 timeout=60).stdout.split()
        lat = {}
        for kind, vals in self.latency.items():
            vals = sorted(vals)
            lat[kind] = {"n": len(vals), "p50_ms": round(statistics.median(vals) * 1000, 1),
                         "p99_ms": round(vals[int(len(vals) * 0.99) - 1] * 1000, 1),
                         "max_ms": round(vals[-1] * 1000, 1)}
        # Every 30 s: each worker's and the deployer's VmRSS (kB).
        series = [{"t": round(t), "workers": sorted(w.values(), key=lambda v: v or 0),
                   "deployer": dep} for t, w, dep in self.samples if int(t) % 30 < SAMPLE_EVERY]
        summary = {
            "duration_s": round(elapsed, 1), "connections": self.args.connections,
            "workers": len(self.workers), "requests": total,
            "requests_per_s": round(total / elapsed, 1),
            "by_kind_status": {"%s %s" % k: n for k, n in sorted(self.counts.items(), key=str)},
            "5xx": fivexx, "connection_errors": errors, "unexpected": unexpected,
            "failures": self.failures[:10], "worker_restarted": restarted,
            "rss": rss, "rss_flat": rss_ok, "rss_every_30s": series, "latency": lat, "tasks": pending,
            "check_exit": check.returncode, "check_last_line": (check.stdout.strip()
                                                                .splitlines() or [""])[-1][:2000],
        }
        ok = (fivexx == 0 and errors == 0 and unexpected == 0 and not restarted and rss_ok
              and check.returncode == 0)
        summary["passed"] = ok
        return ok, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=300)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--keep", action="store_true", help="keep the temp NNREG_VAR")
    args = ap.parse_args()
    if args.duration < WARMUP + 2 * WINDOW:
        ap.error("--duration must be at least %d s (warm-up and two RSS windows)"
                 % (WARMUP + 2 * WINDOW))
    soak = Soak(args)
    soak.up()
    ok = False
    try:
        ok, summary = soak.run()
        print(json.dumps(summary, indent=1))
        print(json.dumps(summary))
    finally:
        soak.down()
        if ok and not args.keep:
            shutil.rmtree(soak.var, ignore_errors=True)
        else:
            print("state kept in %s" % soak.var, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
