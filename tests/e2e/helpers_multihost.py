"""Several hosts on one machine, for tests/e2e/test_multihost.py: network
namespaces joined by veth pairs and two bridges, PostgreSQL in one, nginx +
nnreg-fcgi + nnreg-deployer in each app host, and the front nginx load
balancer in the root namespace.  docs/multihost.md shows the configurations
this writes.

        root namespace: front nginx on 127.0.0.1:PORT  ──►  bridge nn<pid>f (10.231.X.1/25)
                                                              │            │
                                          app1 10.231.X.11 ───┘            └─── app2 10.231.X.12
                                          (nginx :8080, nnreg-fcgi,             (the same)
                                           nnreg-deployer)
                                          app1 10.231.X.131 ──┐            ┌─── app2 10.231.X.132
                                                              │            │
                                                   bridge nn<pid>b (no address in root)
                                                              │
                                                     db 10.231.X.130 (PostgreSQL :5432)

Everything made here is named after this process's pid (namespaces
nnreg-<pid>-<host>, links nn<pid><tag>) and uses a /24 of 10.231.0.0/16
nobody uses; every process is started here and stopped here by pid (the
processes of a namespace are listed by `ip netns pids`, which only holds
what we started in it).  Cluster.cleanup() undoes all of it and is safe to
call twice; callers register it with atexit as well as try/finally.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from nnreg_client import REPO

BUILD = Path(os.environ.get("NNREG_BUILD_DIR", str(REPO / "build")))
if not BUILD.is_absolute():
    BUILD = REPO / BUILD

APP_PORT = 8080
PG_PORT = 5432
DB_PASSWORD = "multihost-test-password"
# The networks an installed app host serves /metrics to, read from
# Makefile.am so that the test runs the installed configuration.
METRICS_ALLOW = re.search(r"^METRICS_ALLOW = (.*)$", (REPO / "Makefile.am").read_text(),
                          re.M).group(1)


def run(*argv, check=True, timeout=60, **kw):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s%s" % (" ".join(map(str, argv)), proc.returncode,
                                                  proc.stdout, proc.stderr))
    return proc


def render_template(name, **values):
    """nginx/NAME with its placeholders filled in by nginx/render, the
    renderer scripts/dev and make install use (it refuses a missing or an
    unknown placeholder)."""
    return run(REPO / "nginx" / "render", REPO / "nginx" / name,
               *("%s=%s" % kv for kv in values.items())).stdout


def pg_bindir():
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists():
            return d
    raise RuntimeError("PostgreSQL server binaries not found")


def can_make_namespaces():
    """None when this process can build the hosts, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth pairs, a bridge)"
    if not shutil.which("ip"):
        return "the ip command is missing (Debian package iproute2)"
    return None


def free_subnet():
    """X such that 10.231.X.0/24 is on no interface and in no route here."""
    used = run("ip", "-4", "addr", "show").stdout + run("ip", "-4", "route", "show").stdout
    start = os.getpid() % 250
    for i in range(250):
        x = (start + i) % 250 + 1
        if "10.231.%d." % x not in used:
            return x
    raise RuntimeError("no free 10.231.X.0/24")


def parse_env_file(path):
    """KEY=VALUE lines as systemd's EnvironmentFile reads them (without
    quotes: the files written here never need any)."""
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    return env


class Proc:
    """One process started in a namespace, in its own session."""

    def __init__(self, name, popen, log):
        self.name, self.popen, self.log = name, popen, Path(log)
        self.pid = popen.pid

    def alive(self):
        return self.popen.poll() is None


class Cluster:
    def __init__(self, lease_seconds=6):
        self.pid = os.getpid()
        self.x = free_subnet()
        self.front_net = "10.231.%d" % self.x
        self.ns = {h: "nnreg-%d-%s" % (self.pid, h) for h in ("db", "app1", "app2")}
        self.bridge = {"front": "nn%df" % self.pid, "back": "nn%db" % self.pid}
        # Root-side ends of the veth pairs.
        self.veth = {(h, side): "nn%d%s%s" % (self.pid, h, side[0])
                     for h in ("db", "app1", "app2") for side in ("front", "back")
                     if not (h == "db" and side == "front")}
        self.addr = {"root": "%s.1" % self.front_net,
                     ("app1", "front"): "%s.11" % self.front_net,
                     ("app2", "front"): "%s.12" % self.front_net,
                     ("db", "back"): "%s.130" % self.front_net,
                     ("app1", "back"): "%s.131" % self.front_net,
                     ("app2", "back"): "%s.132" % self.front_net}
        self.lease_seconds = lease_seconds
        base = os.environ.get("NNREG_E2E_TMPDIR", "/tmp")
        self.base = Path(tempfile.mkdtemp(prefix="nnreg-mh-%d-" % self.pid, dir=base))
        os.chmod(self.base, 0o755)
        self.shared = self.base / "shared"
        self.pgdata = self.base / "db" / "pg"
        self.pgsock = self.base / "db" / "sock"
        self.procs = {}          # (host, name) -> Proc
        self.made_ns, self.made_links = [], []
        self.front_port = None
        self.keep = False
        self._cleaned = False
        (self.base / "cluster.json").write_text(json.dumps({
            "namespaces": list(self.ns.values()), "bridges": list(self.bridge.values()),
            "veths": list(self.veth.values()), "subnet": self.front_net + ".0/24",
            "test_pid": self.pid}, indent=1))

    # --- network ---------------------------------------------------------

    def build_network(self):
        for h, ns in self.ns.items():
            run("ip", "netns", "add", ns)
            self.made_ns.append(ns)
            self.nsexec(h, "ip", "link", "set", "lo", "up")
        for side, br in self.bridge.items():
            run("ip", "link", "add", br, "type", "bridge")
            self.made_links.append(br)
            run("ip", "link", "set", br, "up")
        run("ip", "addr", "add", self.addr["root"] + "/25", "dev", self.bridge["front"])
        for (h, side), veth in self.veth.items():
            # The namespace's end is called "front" or "back" there.
            run("ip", "link", "add", veth, "type", "veth", "peer", "name", side,
                "netns", self.ns[h])
            self.made_links.append(veth)
            run("ip", "link", "set", veth, "master", self.bridge[side], "up")
            self.nsexec(h, "ip", "addr", "add", self.addr[(h, side)] + "/25", "dev", side)
            self.nsexec(h, "ip", "link", "set", side, "up")

    def nsexec(self, host, *argv, **kw):
        return run("ip", "netns", "exec", self.ns[host], *argv, **kw)

    def link(self, host, side, up):
        """Sets the root-side end of host's link down (the host's own end
        loses its carrier: packets vanish, as with a pulled cable) or up."""
        run("ip", "link", "set", self.veth[(host, side)], "up" if up else "down")

    # --- processes -------------------------------------------------------

    def spawn(self, host, name, argv, env, cwd=None):
        """Starts argv in host's namespace (the root one for host "root"),
        in its own session, output to <host>/log/<name>.log, pid in
        <host>/run/<name>.pid."""
        hostdir = self.base / host
        (hostdir / "log").mkdir(parents=True, exist_ok=True)
        (hostdir / "run").mkdir(parents=True, exist_ok=True)
        log = hostdir / "log" / ("%s.log" % name)
        prefix = [] if host == "root" else ["ip", "netns", "exec", self.ns[host]]
        with open(log, "ab") as out:
            popen = subprocess.Popen(prefix + [str(a) for a in argv], env=env, cwd=cwd or "/",
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        (hostdir / "run" / ("%s.pid" % name)).write_text("%d\n" % popen.pid)
        p = Proc(name, popen, log)
        self.procs[(host, name)] = p
        return p

    def ns_pids(self, host):
        out = run("ip", "netns", "pids", self.ns[host], check=False).stdout
        return [int(p) for p in out.split()]

    def kill_host(self, host, sig=signal.SIGKILL):
        """Sends sig to every process in host's namespace; with SIGKILL,
        waits until none is left."""
        for _ in range(50):
            pids = self.ns_pids(host)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if sig != signal.SIGKILL:
                break
            time.sleep(0.1)
        for (h, _), p in self.procs.items():
            if h == host:
                try:
                    p.popen.wait(timeout=5 if sig == signal.SIGKILL else 0)
                except subprocess.TimeoutExpired:
                    pass

    # --- PostgreSQL on db ------------------------------------------------

    def start_db(self):
        bindir = pg_bindir()
        for d in (self.pgdata, self.pgsock):
            d.mkdir(parents=True)
            shutil.chown(d, "postgres")
            os.chmod(d, 0o700)
        as_pg = ["runuser", "-u", "postgres", "--"]
        run(*as_pg, bindir / "initdb", "-D", self.pgdata, "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", cwd="/", timeout=120)
        back = self.front_net + ".128/25"
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write("\n# nnreg multihost test: db's own address only\n"
                       "listen_addresses = '%s'\nport = %d\n"
                       "unix_socket_directories = '%s'\n"
                       "password_encryption = 'scram-sha-256'\n"
                       "synchronous_commit = off\nmax_connections = 60\n"
                       % (self.addr[("db", "back")], PG_PORT, self.pgsock))
        # Local socket: trust (the test's own psql and nnreg-admin, and
        # only root and postgres reach the 0700 directory).  TCP: the app
        # hosts' subnet only, with a password.
        (self.pgdata / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host nnreg nnreg %s scram-sha-256\n" % back)
        log = self.base / "db" / "postgres.log"
        log.touch()
        shutil.chown(log, "postgres")
        self.nsexec("db", *as_pg, bindir / "pg_ctl", "start", "-D", self.pgdata, "-w", "-t",
                    "60", "-l", log, cwd="/", timeout=90)
        self.psql_super("CREATE ROLE nnreg LOGIN CREATEROLE PASSWORD '%s'" % DB_PASSWORD)
        self.psql_super("CREATE DATABASE nnreg OWNER nnreg")
        # The password, for the app hosts (libpq's passfile).
        self.pgpass = self.base / "pgpass"
        self.pgpass.write_text("%s:%d:nnreg:nnreg:%s\n" % (self.addr[("db", "back")], PG_PORT,
                                                          DB_PASSWORD))
        os.chmod(self.pgpass, 0o600)

    def stop_db(self):
        if (self.pgdata / "postmaster.pid").exists():
            run("runuser", "-u", "postgres", "--", pg_bindir() / "pg_ctl", "stop", "-D",
                self.pgdata, "-m", "immediate", "-w", "-t", "30", check=False, cwd="/")

    def psql_super(self, sql):
        return run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.pgsock, "-p",
                   PG_PORT, "-U", "postgres", "-d", "postgres", "-c", sql).stdout

    def sql(self, sql):
        """psql -At as nnreg on the local socket; rows as lists of str."""
        out = run("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.pgsock, "-p",
                  PG_PORT, "-U", "nnreg", "-d", "nnreg", "-c", sql).stdout
        return [line.split("|") for line in out.splitlines() if line]

    def admin_env(self):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "NNREG_DATABASE_URL": "host=%s port=%d dbname=nnreg user=nnreg" % (
                   self.pgsock, PG_PORT),
               "NNREG_DATA_DIR": str(self.shared / "data"),
               "NNREG_DEPLOY_DIR": str(self.shared / "deploy"),
               "NNREG_MAGIC_FILE": str(BUILD / "nnreg.magic.mgc"),
               "NNREG_SQL_DIR": str(REPO / "sql")}
        return env

    def admin(self, *args, check=True):
        return run(BUILD / "nnreg-admin", *args, env=self.admin_env(), check=check,
                   timeout=120)

    # --- app hosts -------------------------------------------------------

    def database_url(self, host):
        """What an app host's environment file says: a URI to db's address
        with bounds on every wait (see db_open in src/db/db.h), shorter
        than the defaults so the test is quick."""
        return ("postgresql://nnreg@%s:%d/nnreg?connect_timeout=2&keepalives=1"
                "&keepalives_idle=2&keepalives_interval=1&keepalives_count=2"
                "&tcp_user_timeout=3000&application_name=nnreg-%s&passfile=%s"
                % (self.addr[("db", "back")], PG_PORT, host, self.pgpass))

    def write_app_host(self, host):
        """The environment file and nginx configuration of an app host."""
        hostdir = self.base / host
        for sub in ("log", "run", "nginx"):
            (hostdir / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(hostdir / sub, 0o755)
        os.chmod(hostdir, 0o755)
        env_lines = [
            "# %s: nnreg-fcgi and nnreg-deployer (written by tests/e2e/helpers_multihost.py)"
            % host,
            "NNREG_DATABASE_URL=%s" % self.database_url(host),
            "NNREG_DATA_DIR=%s" % (self.shared / "data"),
            "NNREG_DEPLOY_DIR=%s" % (self.shared / "deploy"),
            "NNREG_LISTEN=%s" % (hostdir / "run" / "nnreg-fcgi.sock"),
            "NNREG_SOCKET_GROUP=www-data",
            "NNREG_SOCKET_MODE=0660",
            "NNREG_WORKERS=2",
            "NNREG_MAX_UPLOAD_BYTES=67108864",
            "NNREG_MAGIC_FILE=%s" % (BUILD / "nnreg.magic.mgc"),
            "NNREG_SQL_DIR=%s" % (REPO / "sql"),
            "NNREG_DEPLOY_POLL_SECONDS=1",
            "NNREG_DEPLOY_LEASE_SECONDS=%d" % self.lease_seconds,
            "NNREG_DEPLOY_MAX_ATTEMPTS=3",
            "NNREG_LOG_LEVEL=info",
        ]
        (hostdir / "nnreg.env").write_text("\n".join(env_lines) + "\n")
        conf = render_template(
            "nnreg.conf.in", USER_LINE="user www-data;", STATE_DIR=hostdir / "nginx",
            LOG_DIR=hostdir / "log", PORT=APP_PORT, LISTEN6="",
            LISTEN_HOST="listen %s:%d;" % (self.addr[(host, "front")], APP_PORT),
            SOCKET=hostdir / "run" / "nnreg-fcgi.sock", MAX_BODY=67108864, WORKERS=1,
            AUTH_FAIL_RATE=1200, AUTH_FAIL_BURST=100, AUTH_FAIL_RETRY=1,
            # As make install renders it (Makefile.am).
            METRICS_ALLOW=METRICS_ALLOW)
        (hostdir / "nginx" / "nnreg.conf").write_text(conf)

    def start_app_host(self, host):
        """nnreg-fcgi, nnreg-deployer and nginx in host's namespace, each
        started with the environment file, as their systemd units do."""
        hostdir = self.base / host
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update(parse_env_file(hostdir / "nnreg.env"))
        sock = hostdir / "run" / "nnreg-fcgi.sock"
        self.spawn(host, "nnreg-fcgi", [BUILD / "nnreg-fcgi"], env)
        self.spawn(host, "nnreg-deployer", [BUILD / "nnreg-deployer"], env)
        deadline = time.monotonic() + 30
        while not sock.exists():
            if time.monotonic() > deadline or not self.procs[(host, "nnreg-fcgi")].alive():
                raise RuntimeError("%s: nnreg-fcgi did not open its socket\n%s" % (
                    host, self.tail(host, "nnreg-fcgi")))
            time.sleep(0.05)
        nginx = ["/usr/sbin/nginx", "-p", hostdir / "nginx", "-c", hostdir / "nginx" / "nnreg.conf",
                 "-e", hostdir / "log" / "nginx-error.log"]
        self.nsexec(host, *nginx, "-t", "-q")
        self.spawn(host, "nginx", nginx, {"PATH": env["PATH"]})
        self.wait_health("http://%s:%d/v0.7/health" % (self.addr[(host, "front")], APP_PORT))

    # --- the front -------------------------------------------------------

    def start_front(self, port):
        self.front_port = port
        front = self.base / "root"
        (front / "log").mkdir(parents=True, exist_ok=True)
        os.chmod(front, 0o755)
        servers = "\n        ".join(
            "server %s:%d max_fails=1 fail_timeout=3s;" % (self.addr[(h, "front")], APP_PORT)
            for h in ("app1", "app2"))
        conf = render_template("front.conf.in", USER_LINE="user www-data;", VAR=front,
                               LISTEN="127.0.0.1:%d" % port, SERVERS=servers,
                               MAX_BODY=67108864, WORKERS=1)
        (front / "front.conf").write_text(conf)
        nginx = ["/usr/sbin/nginx", "-p", str(front) + "/", "-c", front / "front.conf", "-e",
                 front / "log" / "front-error.log"]
        run(*nginx, "-t", "-q")
        self.spawn("root", "front-nginx", nginx, {"PATH": os.environ.get("PATH", "/usr/bin")})
        self.wait_health(self.front_url("health"))

    def front_url(self, path):
        return "http://127.0.0.1:%d/v0.7/%s" % (self.front_port, path)

    def wait_health(self, url, timeout=40):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                r = requests.get(url, timeout=5)
                if r.status_code == 200:
                    return r
                last = "%d %s" % (r.status_code, r.text[:200])
            except requests.RequestException as e:
                last = str(e)
            time.sleep(0.1)
        raise RuntimeError("%s not healthy in %ds (last: %s)\n%s" % (url, timeout, last,
                                                                     self.tails()))

    # --- logs ------------------------------------------------------------

    def log_text(self, host, name):
        p = self.base / host / "log" / ("%s.log" % name)
        return p.read_text(errors="replace") if p.exists() else ""

    def tail(self, host, name, n=30):
        return "\n".join(self.log_text(host, name).splitlines()[-n:])

    def tails(self, n=25):
        out = []
        for p in sorted(self.base.glob("*/log/*.log")) + [self.base / "db" / "postgres.log"]:
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-n:]
                out.append("--- %s ---\n%s" % (p.relative_to(self.base), "\n".join(lines)))
        return "\n".join(out)

    # --- teardown --------------------------------------------------------

    def cleanup(self):
        """Every process, namespace, link and (unless kept) file made here."""
        if self._cleaned:
            return
        self._cleaned = True
        try:
            self.stop_db()
        except Exception as e:  # keep going: the rest must go too
            print("multihost cleanup: pg_ctl stop: %s" % e, file=sys.stderr)
        for host in ("app1", "app2", "db"):
            if self.ns[host] in self.made_ns:
                self.kill_host(host)
        for (host, _), p in self.procs.items():
            if p.alive():
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    p.popen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    print("multihost cleanup: pid %d did not die" % p.pid, file=sys.stderr)
        for ns in self.made_ns:
            run("ip", "netns", "del", ns, check=False)
        for link in reversed(self.made_links):
            if run("ip", "link", "show", link, check=False).returncode == 0:
                run("ip", "link", "del", link, check=False)
        if self.keep or os.environ.get("NNREG_E2E_KEEP") == "1":
            print("\nmultihost state kept in %s" % self.base, file=sys.stderr)
        else:
            shutil.rmtree(self.base, ignore_errors=True)

    def leftovers(self):
        """Namespaces and links of this run that still exist (for the test
        of the cleanup itself)."""
        names = run("ip", "netns", "list", check=False).stdout
        links = run("ip", "-o", "link", "show", check=False).stdout
        left = [ns for ns in self.ns.values() if ns in names]
        left += [l for l in list(self.bridge.values()) + list(self.veth.values())
                 if (" %s:" % l) in links or (" %s@" % l) in links]
        return left
