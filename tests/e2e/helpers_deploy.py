"""Helpers for the deployment tests (tests/e2e/test_deploy*.py): extra
nnreg-deployer processes, the stack's own deployer stopped and started
again through scripts/dev's functions, task waits, the deploy directory and
its models.config, and a reader of variables.index (LevelDB table +
BundleEntryProto, Snappy included) to find where a variable's bytes lie.

Only the standard library and Debian's python3-requests are used.  Every
process started here is stopped here, by its own pid (never by name).
"""

import errno
import os
import re
import shlex
import signal
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

import nnreg_client
from nnreg_client import REPO, assert_json

DEV = REPO / "scripts" / "dev"

CHECK_NAMES = ["blobs", "graph", "engine_ops", "tensors", "variables", "mean_files", "materialize"]
CLAIMED = re.compile(r"task (\d+): claimed \(network (\S+), attempt (\d+)\)")


def build_dir():
    b = Path(os.environ.get("NNREG_BUILD_DIR", str(REPO / "build")))
    return b if b.is_absolute() else REPO / b


# --- tasks --------------------------------------------------------------------

def get_task(stack, task_id, api_key=None):
    return assert_json(stack.get("tasks/%d/" % task_id, api_key=api_key), 200)


def wait_task(stack, task_id, timeout=20.0, api_key=None, interval=0.05):
    """Polls the task until it is no longer pending; returns it.  Raises
    AssertionError (with the deployer logs' tails) after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        task = get_task(stack, task_id, api_key)
        if task["status"] != "pending":
            return task
        if time.monotonic() > deadline:
            raise AssertionError("task %d still pending after %.0fs: %s\n%s" % (
                task_id, timeout, task, stack.log_tails(15)))
        time.sleep(interval)


def task_row(stack, task_id):
    """status, owner, attempts, lease_until IS NULL of the tasks row."""
    row = stack.sql_rows("SELECT status, coalesce(owner, ''), attempts, lease_until IS NULL "
                         "FROM tasks WHERE id = %d" % task_id)
    assert row, "no task %d" % task_id
    status, owner, attempts, no_lease = row[0]
    return {"status": status, "owner": owner, "attempts": int(attempts),
            "lease_free": no_lease == "t"}


def create(stack, model="half_plus_two_cpu", files=None, api_key=None, **fields):
    """A create through the API (201 expected); returns the network body."""
    fields.setdefault("name", "deploy-" + uuid.uuid4().hex[:8])
    resp = stack.create_network(api_key=api_key, model=model, files=files, **fields)
    return assert_json(resp, 201)


def unique_files(model="half_plus_two_cpu"):
    """The fixture's files, each made unique (new blobs nobody else shares,
    so that a test may damage them)."""
    import helpers_create
    return helpers_create.unique_files(model)


# --- the deploy directory -------------------------------------------------------

def deploy_dir(stack):
    return Path(os.path.realpath(stack.deploy_dir))


def models_config(stack):
    """models.config parsed: {name: base_path}."""
    path = deploy_dir(stack) / "models.config"
    if not path.exists():
        return {}
    text = path.read_text()
    assert text.count("{") == text.count("}"), text
    entries = re.findall(r'config\s*\{\s*name:\s*"([^"]*)"\s*base_path:\s*"([^"]*)"\s*'
                         r'model_platform:\s*"tensorflow"\s*\}', text)
    assert len(entries) == text.count("config {"), "unparsed entries in:\n" + text
    return dict(entries)


def deployed_files(stack, network_id):
    """Relative paths of the files under <deploy>/<id>/ (empty if absent)."""
    base = deploy_dir(stack) / str(network_id)
    if not base.exists():
        return set()
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0fs" % (what, timeout))
        time.sleep(0.05)


# --- blobs ------------------------------------------------------------------------

def blob_path(stack, sha256):
    return stack.blob_dir / "sha256" / sha256[:2] / sha256


def flip_byte(path, offset, mask=0x01):
    """Flips bits of one byte of a file in place (making it writable for the
    time of the write and restoring its mode)."""
    mode = os.stat(path).st_mode & 0o7777
    os.chmod(path, mode | 0o200)
    try:
        with open(path, "r+b") as f:
            f.seek(offset)
            b = f.read(1)
            assert len(b) == 1, "offset %d past the end of %s" % (offset, path)
            f.seek(offset)
            f.write(bytes([b[0] ^ mask]))
            f.flush()
            os.fsync(f.fileno())
    finally:
        os.chmod(path, mode)


class SlowBlobs:
    """Makes the deployer's reads of some blobs slow, as on a slow network
    filesystem: each blob is swapped for a FIFO; a thread then serves each
    to its first reader, in the order they are read, after making it wait
    `delay` seconds.  Before writing, the real file is renamed back over
    the FIFO, so every later open (the graph, the index, the layout's hard
    link) gets the real file; the reader in hand gets the same bytes
    through the FIFO.  Use as a context manager: whatever happens, every
    blob is back in place at the end."""

    def __init__(self, paths, delay, timeout=60):
        self.paths = [Path(p) for p in paths]
        self.delay = delay
        self.timeout = timeout
        self.errors = []
        self.thread = None

    def __enter__(self):
        self.saved = []
        for path in self.paths:
            aside = path.with_name(path.name + ".test-aside")
            os.rename(path, aside)
            self.saved.append((path, aside))
            os.mkfifo(path, 0o444)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def _serve(self):
        deadline = time.monotonic() + self.timeout
        waiting = list(self.saved)
        try:
            while waiting:
                for path, aside in waiting:
                    try:
                        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                        break
                    except OSError as e:  # ENXIO: nobody reads it yet
                        if e.errno != errno.ENXIO:
                            raise
                else:
                    if time.monotonic() > deadline:
                        raise AssertionError("nobody read %s" % [str(p) for p, _ in waiting])
                    time.sleep(0.01)
                    continue
                waiting.remove((path, aside))
                try:
                    data = aside.read_bytes()
                    time.sleep(self.delay)
                    os.rename(aside, path)
                    os.set_blocking(fd, True)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
        except Exception as e:  # reported by join()
            self.errors.append(e)

    def join(self, timeout=30):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the FIFOs were not all read"
        assert not self.errors, self.errors

    def __exit__(self, *exc):
        for path, aside in self.saved:
            if os.path.exists(aside):
                if os.path.lexists(path):
                    os.unlink(path)
                os.rename(aside, path)
        return False


# --- deployers ------------------------------------------------------------------------

def service_env(stack, **settings):
    """The environment nnreg-deployer gets from `scripts/dev env`, plus
    settings given as NNREG_* names (values str()ed)."""
    out = stack.dev("env").stdout
    env = dict(stack.env)
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        for word in shlex.split(line[len("export "):]):
            name, _, value = word.partition("=")
            env[name] = value
    for name, value in settings.items():
        env[name] = str(value)
    return env


class Deployer:
    """An nnreg-deployer started by a test, logging to log/<name>.log in the
    stack's NNREG_VAR.  Stopped by its own pid only."""

    def __init__(self, stack, name, **settings):
        self.stack = stack
        self.name = name
        self.settings = settings
        self.log_path = stack.log_dir / ("%s.log" % name)
        self.proc = None
        self.owner = None

    def start(self, timeout=20):
        env = service_env(self.stack, **self.settings)
        self._log = open(self.log_path, "ab")
        self._offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen([str(build_dir() / "nnreg-deployer")], env=env,
                                     cwd=str(REPO), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        _LIVE.add(self)
        line = self.wait_log(r"deployer (\S+) started", timeout)
        self.owner = re.search(r"deployer (\S+) started", line).group(1)
        self.wait_log(r"listening on nnreg_deploy", timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        """What this run of the deployer logged."""
        with open(self.log_path, "rb") as f:
            f.seek(self._offset)
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout=20):
        """Waits for a line matching pattern (a regex); returns it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log().splitlines():
                if rx.search(line):
                    return line
            if self.proc.poll() is not None:
                raise AssertionError("%s exited (%s) before logging %r:\n%s" % (
                    self.name, self.proc.returncode, pattern, self.log()[-3000:]))
            if time.monotonic() > deadline:
                raise AssertionError("%s did not log %r within %ss:\n%s" % (
                    self.name, pattern, timeout, self.log()[-3000:]))
            time.sleep(0.02)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        if sig == signal.SIGKILL:
            self.proc.wait(timeout=30)

    def stop(self, timeout=30):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        _LIVE.discard(self)
        self._log.close()
        return self.proc.returncode


_LIVE = set()


def stop_all():
    for d in list(_LIVE):
        try:
            d.stop()
        except Exception:
            pass


# --- the stack's own deployer ------------------------------------------------------------

def _dev_functions(stack, script):
    proc = subprocess.run(["bash", "-c", 'source "$1"; resolve_var; set_paths; ' + script,
                           "_", str(DEV)], env=stack.env, cwd=str(REPO), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (script, proc.stdout, proc.stderr)
    return proc


def stack_deployer_pid(stack):
    """The pid of the deployer `scripts/dev up` started (None if stopped)."""
    path = stack.var / "run" / "nnreg-deployer.pid"
    try:
        pid = int(path.read_text().split()[0])
        cmdline = Path("/proc/%d/cmdline" % pid).read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"nnreg-deployer" in cmdline else None


def stop_stack_deployer(stack):
    """SIGTERM to the stack's deployer through scripts/dev's stop_pid (by its
    pid file), waiting until it has exited."""
    _dev_functions(stack, 'stop_pid nnreg-deployer "$RUNDIR/nnreg-deployer.pid" '
                          "nnreg-deployer 30")
    assert stack_deployer_pid(stack) is None


def start_stack_deployer(stack):
    """Starts the stack's deployer again as `scripts/dev up` does."""
    if stack_deployer_pid(stack) is None:
        _dev_functions(stack, "export_service_env; start_deployer")
    pid = stack_deployer_pid(stack)
    assert pid, "the stack's nnreg-deployer did not start:\n" + stack.log("nnreg-deployer")[-2000:]
    return pid


class StackDeployerStopped:
    """with StackDeployerStopped(stack): ... — the stack's deployer is
    stopped inside and always started again afterwards."""

    def __init__(self, stack):
        self.stack = stack

    def __enter__(self):
        stop_stack_deployer(self.stack)
        return self

    def __exit__(self, *exc):
        start_stack_deployer(self.stack)
        return False


def claims(text):
    """[(task id, network, attempt)] of the "claimed" lines in a log text."""
    return [(int(t), n, int(a)) for t, n, a in CLAIMED.findall(text)]


# --- variables.index (LevelDB table of BundleEntryProto) -------------------------------

def _varint(buf, pos):
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def snappy_decompress(data):
    """Raw Snappy (the block format LevelDB uses)."""
    length, pos = _varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            n += 1
            out += data[pos:pos + n]
            pos += n
            continue
        if kind == 1:
            n = 4 + ((tag >> 2) & 7)
            off = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            n = (tag >> 2) + 1
            off = int.from_bytes(data[pos:pos + 2], "little")
            pos += 2
        else:
            n = (tag >> 2) + 1
            off = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        assert 0 < off <= len(out), "bad snappy copy offset"
        for _ in range(n):
            out.append(out[-off])
    assert len(out) == length, "snappy length %d != %d" % (len(out), length)
    return bytes(out)


def _block(data, offset, size):
    contents = data[offset:offset + size]
    kind = data[offset + size]
    if kind == 1:
        contents = snappy_decompress(contents)
    else:
        assert kind == 0, "unknown block type %d" % kind
    return contents


def _block_entries(block):
    nrestarts = struct.unpack("<I", block[-4:])[0]
    end = len(block) - 4 - 4 * nrestarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + vlen]
        pos += vlen


def _fields(msg):
    """{field number: last value} of a protobuf message (varint, fixed32,
    fixed64 and length-delimited fields)."""
    out, pos = {}, 0
    while pos < len(msg):
        key, pos = _varint(msg, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            out[num], pos = _varint(msg, pos)
        elif wt == 1:
            out[num] = msg[pos:pos + 8]
            pos += 8
        elif wt == 2:
            n, pos = _varint(msg, pos)
            out[num] = msg[pos:pos + n]
            pos += n
        elif wt == 5:
            out[num] = msg[pos:pos + 4]
            pos += 4
        else:
            raise AssertionError("wire type %d" % wt)
    return out


def bundle_entries(index_bytes):
    """{variable name: {"shard", "offset", "size"}} from a variables.index."""
    data = index_bytes
    footer = data[-48:]
    assert footer[-8:] == bytes.fromhex("57fb808b247547db"), "not a LevelDB table"
    _, p = _varint(footer, 0)
    _, p = _varint(footer, p)           # metaindex handle
    ioff, p = _varint(footer, p)
    isize, p = _varint(footer, p)       # index handle
    entries = {}
    for _, handle in _block_entries(_block(data, ioff, isize)):
        boff, q = _varint(handle, 0)
        bsize, _ = _varint(handle, q)
        for key, value in _block_entries(_block(data, boff, bsize)):
            if key == b"":
                continue  # the BundleHeaderProto
            f = _fields(value)
            entries[key.decode()] = {"shard": f.get(3, 0), "offset": f.get(4, 0),
                                     "size": f.get(5, 0)}
    return entries


def model_path(model, name):
    base = nnreg_client.MODELS / model
    return base / name if not name.startswith("variables.") else base / "variables" / name
