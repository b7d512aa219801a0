"""End-to-end harness: the whole stack (nginx + nnreg-fcgi [+ nnreg-deployer]
+ a private PostgreSQL) started exactly as a newcomer starts it, with
`scripts/dev up -d`, in a fresh NNREG_VAR on a free port, and stopped with
`scripts/dev down` at the end whatever happened.

Run with Debian's interpreter:  /usr/bin/python3 -m pytest -q tests/e2e

Environment knobs:
  NNREG_E2E_KEEP=1       keep the temp NNREG_VAR after the run (it is kept
                         anyway when a test failed)
  NNREG_E2E_TMPDIR=DIR   where the temp NNREG_VAR is made (default /tmp; it
                         must be reachable by the postgres and www-data users
                         when running as root, and short: unix socket paths)
  NNREG_BUILD_DIR=DIR    run the binaries of another build (e.g. build-asan)
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nnreg_client  # noqa: E402

REPO = nnreg_client.REPO
DEV = REPO / "scripts" / "dev"
MODELS = nnreg_client.MODELS

UP_TIMEOUT = 1800  # seconds: `up -d` may have to build first
DOWN_TIMEOUT = 180


def free_port():
    """A TCP port free on 127.0.0.1 (and, when there is one, on ::1)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(("::1", port))
        except OSError as e:
            if e.errno == 98:  # EADDRINUSE: try another
                continue
        return port
    raise RuntimeError("no free port")


class Stack:
    """A running nnreg, as `scripts/dev up -d` left it."""

    def __init__(self, var, port, env):
        self.var = Path(var)
        self.port = port
        self.env = env
        self.base_url = "http://127.0.0.1:%d" % port
        self.api_url = self.base_url + "/v0.7/"
        self.data_dir = self.var / "data"
        self.blob_dir = self.data_dir / "blobs"
        self.upload_tmp_dir = self.data_dir / "tmp"
        self.deploy_dir = self.var / "deploy"
        self.log_dir = self.var / "log"
        self.max_upload = int(env.get("NNREG_MAX_UPLOAD_BYTES", 2147483648))
        self.models = MODELS
        self._stopped = False
        demo = json.loads((self.var / "demo-key.json").read_text())
        self.demo = demo
        self.org = demo["org"]
        self.app_id = demo["app_id"]
        self.api_key = demo["api_key"]

    # --- scripts/dev -------------------------------------------------------

    def dev(self, *args, check=True, timeout=300, input=None, env=None):
        """Runs scripts/dev ARGS against this stack (env: variables to add
        or change); returns CompletedProcess (stdout/stderr as text)."""
        proc = subprocess.run([str(DEV), *map(str, args)], env=dict(self.env, **(env or {})),
                              cwd=str(REPO),
                              input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError("scripts/dev %s exited %d\nstdout:\n%s\nstderr:\n%s" % (
                " ".join(map(str, args)), proc.returncode, proc.stdout, proc.stderr))
        return proc

    def admin(self, *args, check=True):
        """nnreg-admin ARGS through scripts/dev admin."""
        return self.dev("admin", *args, check=check)

    def admin_json(self, *args):
        """nnreg-admin ARGS; its last non-empty output line parsed as JSON."""
        out = self.admin(*args).stdout
        lines = [line for line in out.splitlines() if line.strip()]
        assert lines, "nnreg-admin %s printed nothing" % " ".join(args)
        return json.loads(lines[-1])

    def create_org(self, name=None):
        """Creates an organization (a unique name by default); returns
        nnreg-admin's JSON ({"id": ..., "name": ...})."""
        name = name or "org-" + uuid.uuid4().hex[:10]
        return self.admin_json("org", "create", name)

    def create_key(self, org):
        """Creates an API key for org (its name); returns {"org", "app_id",
        "api_key"}."""
        return self.admin_json("key", "create", org)

    def revoke_key(self, app_id):
        return self.admin("key", "revoke", app_id)

    def new_tenant(self, name=None):
        """A fresh organization with one key: {"org", "app_id", "api_key"}."""
        org = self.create_org(name)
        return self.create_key(org.get("name", name))

    def sql(self, query):
        """Runs SQL with psql -At -c; returns stdout without the final newline."""
        return self.dev("psql", "-At", "-v", "ON_ERROR_STOP=1", "-c", query).stdout.rstrip("\n")

    def sql_rows(self, query):
        """Rows of a query as lists of strings (psql -At, fields split on |)."""
        out = self.sql(query)
        return [line.split("|") for line in out.splitlines()] if out else []

    def sql_value(self, query):
        return self.sql(query)

    # --- HTTP --------------------------------------------------------------

    def url(self, path):
        """Absolute URL; path relative to /v0.7/ unless it starts with /."""
        return nnreg_client.api_url(self.base_url, path)

    def headers(self, api_key=None, app_id=None, **extra):
        h = {"X-API-KEY": api_key or self.api_key}
        if app_id:
            h["X-APP-ID"] = app_id
        h.update(extra)
        return h

    def session(self, api_key=None, app_id=None):
        """A requests.Session sending the given key (default: demo key)."""
        s = requests.Session()
        if api_key is not False:
            s.headers.update(self.headers(api_key, app_id))
        return s

    def request(self, method, path, api_key=None, headers=None, timeout=60, **kw):
        """One request with the demo key (api_key=False: no key)."""
        h = {} if api_key is False else self.headers(api_key)
        if headers:
            h.update(headers)
        return requests.request(method, self.url(path), headers=h, timeout=timeout, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def create_network(self, api_key=None, app_id=None, **kw):
        """See nnreg_client.create_network; uses the demo key by default."""
        return nnreg_client.create_network(self.base_url, api_key or self.api_key,
                                           app_id=app_id, **kw)

    # --- files and logs ----------------------------------------------------

    def blob_files(self):
        """Every file in the blob store (relative paths)."""
        if not self.blob_dir.exists():
            return set()
        return {str(p.relative_to(self.blob_dir)) for p in self.blob_dir.rglob("*") if p.is_file()}

    def upload_tmp_files(self):
        if not self.upload_tmp_dir.exists():
            return set()
        return {p.name for p in self.upload_tmp_dir.iterdir()}

    def log(self, name="nnreg-fcgi"):
        path = self.log_dir / ("%s.log" % name)
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tails(self, lines=40):
        out = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append("--- %s ---\n%s" % (path.name, "\n".join(text)))
        return "\n".join(out)

    # --- lifecycle ---------------------------------------------------------

    def down(self):
        if self._stopped:
            return
        self._stopped = True
        try:
            subprocess.run([str(DEV), "down"], env=self.env, cwd=str(REPO),
                           stdin=subprocess.DEVNULL, timeout=DOWN_TIMEOUT)
        except Exception as e:  # never let teardown hide the real failure
            print("scripts/dev down failed: %s" % e, file=sys.stderr)


def _start_stack():
    base = os.environ.get("NNREG_E2E_TMPDIR", "/tmp")
    var = tempfile.mkdtemp(prefix="nnreg-e2e-", dir=base)
    # Made 0700 by mkdtemp; postgres and www-data must reach it when root.
    os.chmod(var, 0o755)
    port = free_port()
    env = dict(os.environ)
    env.update({"NNREG_VAR": var, "NNREG_PORT": str(port), "PYTHONDONTWRITEBYTECODE": "1"})
    # Refused keys per address (nginx): the suites send many bad keys on
    # purpose; test_faults.py checks the limit with these figures.
    env.setdefault("NNREG_AUTH_FAIL_PER_MINUTE", "1200")
    env.setdefault("NNREG_AUTH_FAIL_BURST", "100")
    env.pop("NNREG_DATABASE_URL", None)
    return var, port, env


_LIVE = []


def _emergency_down():
    for stack in _LIVE:
        stack.down()


def _on_signal(signum, frame):
    # The first SIGTERM/SIGHUP interrupts the run as Ctrl-C does, so that
    # pytest tears the stack down through the fixture; a second one stops
    # the stack here and dies.
    signal.signal(signum, _on_second_signal)
    raise KeyboardInterrupt("signal %d" % signum)


def _on_second_signal(signum, frame):
    _emergency_down()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


atexit.register(_emergency_down)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    try:
        signal.signal(_sig, _on_signal)
    except (ValueError, OSError):
        pass


@pytest.fixture(scope="session")
def stack(request):
    """The running stack (see Stack).  Started once per test session."""
    var, port, env = _start_stack()
    up_log = Path(var) / "dev-up.log"
    half_started = Stack.__new__(Stack)  # so that down works even if up fails
    half_started.env, half_started._stopped = env, False
    _LIVE.append(half_started)
    try:
        with open(up_log, "w") as log:
            proc = subprocess.run([str(DEV), "up", "-d"], env=env, cwd=str(REPO),
                                  stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=UP_TIMEOUT)
    except BaseException:
        half_started.down()
        raise
    if proc.returncode != 0:
        half_started.down()
        text = up_log.read_text(errors="replace")
        pytest.fail("scripts/dev up -d failed (exit %d), state kept in %s:\n%s" % (
            proc.returncode, var, text[-6000:]), pytrace=False)
    try:
        st = Stack(var, port, env)
    except Exception:
        half_started.down()
        raise
    _LIVE.remove(half_started)
    _LIVE.append(st)
    try:
        yield st
    finally:
        failed = request.session.testsfailed
        if failed:
            print("\n%s" % st.log_tails(), file=sys.stderr)
        st.down()
        _LIVE.remove(st)
        if failed or os.environ.get("NNREG_E2E_KEEP") == "1":
            print("\nnnreg e2e state kept in %s" % var, file=sys.stderr)
        else:
            shutil.rmtree(var, ignore_errors=True)


@pytest.fixture
def tenant(stack):
    """A fresh organization with its own key, for isolation between tests:
    {"org", "app_id", "api_key"}."""
    return stack.new_tenant()


@pytest.fixture
def api(stack):
    """A requests.Session with the demo key."""
    with stack.session() as s:
        yield s


@pytest.fixture(scope="session")
def models():
    """tests/fixtures/models (a copy of shared/fixtures/models)."""
    return MODELS

