"""Helpers for tests/e2e/test_faults.py: the processes of the stack (the
FastCGI supervisor and its workers, who holds an upload's temp file open),
a large shard on disk, a create sent with curl in the background, the
stack's PostgreSQL restarted with `pg_ctl restart -m immediate`, and a
tmpfs mounted over the data directory.

Every process started here is stopped here by its own pid; a mount made
here is always unmounted (see DataDirOnTmpfs)."""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from nnreg_client import REPO

DEV = REPO / "scripts" / "dev"
SHARD = "variables.data-00000-of-00001"


# --- processes ------------------------------------------------------------------

def _stat_fields(pid):
    with open("/proc/%s/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def supervisor_pid(stack):
    return int((stack.var / "run" / "nnreg-fcgi.pid").read_text().split()[0])


def worker_pids(stack):
    """The live (not zombie) children of the FastCGI supervisor."""
    sup = supervisor_pid(stack)
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(entry)
        except OSError:
            continue
        if int(fields[1]) == sup and fields[0] != "Z":
            pids.add(int(entry))
    return pids


def alive(pid):
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def holders_of(directory):
    """{pid: [paths]} of the processes with a file under directory open."""
    directory = os.path.realpath(directory) + "/"
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fd_dir = "/proc/%s/fd" % entry
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink("%s/%s" % (fd_dir, fd))
            except OSError:
                continue
            if target.startswith(directory):
                out.setdefault(int(entry), []).append(target)
    return out


def wait_for(predicate, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0fs" % (what, timeout))
        time.sleep(interval)


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# --- uploads --------------------------------------------------------------------------

def make_shard(path, original, size):
    """size bytes at path: the fixture's own shard (so the variables stay
    valid), a random block (so the content is new), then zeros written as
    a hole (cheap to make; still size bytes on the wire)."""
    head = Path(original).read_bytes() + os.urandom(1 << 16)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


FORM_FIELDS = {
    "framework": "tensorflow-1.x",
    "preprocessing.inputs[0]tensor_name": "x:0",
    "preprocessing.inputs[0]image.dimension_order": "NHWC",
    "preprocessing.inputs[0]image.resize_type": "SQUASH",
    "preprocessing.inputs[0]image.target_size": "1x1",
    "preprocessing.inputs[0]image.color_channels": "L",
    "preprocessing.batched_output": "True",
    "postprocessings[0]tensors_output.tensors[0]": "y:0",
}


class CurlCreate:
    """A create sent by curl in the background, streamed from disk (the
    shard at shard_path); wait() returns (status, parsed body or text)."""

    def __init__(self, stack, name, shard_path, api_key=None, limit_rate=None):
        self.out = stack.var / ("curl-%s.json" % name)
        model = stack.models / "half_plus_two_cpu"
        cmd = ["curl", "-sS", "--max-time", "300", "-o", str(self.out), "-w", "%{http_code}",
               "-H", "X-API-KEY: " + (api_key or stack.api_key), "-H", "Expect:"]
        if limit_rate:
            cmd += ["--limit-rate", str(limit_rate)]
        for key, value in dict(FORM_FIELDS, name=name).items():
            cmd += ["--form-string", "%s=%s" % (key, value)]
        cmd += ["-F", "saved_model.pb=@%s" % (model / "saved_model.pb"),
                "-F", "variables.index=@%s" % (model / "variables" / "variables.index"),
                "-F", "%s=@%s;filename=%s" % (SHARD, shard_path, SHARD),
                stack.url("networks/")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)

    def wait(self, timeout=300):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        text = self.out.read_text(errors="replace") if self.out.exists() else ""
        self.out.unlink(missing_ok=True)
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return int((out or "0").strip() or 0), body

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.out.unlink(missing_ok=True)


# --- PostgreSQL ----------------------------------------------------------------------

def dev_functions(stack, script, timeout=120):
    """Runs bash with scripts/dev sourced (its functions, not its main)."""
    proc = subprocess.run(["bash", "-c", 'source "$1"; resolve_var; set_paths; ' + script, "_",
                           str(DEV)], env=stack.env, cwd=str(REPO), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (script, proc.stdout, proc.stderr)
    return proc


def pg_restart_immediate(stack):
    """pg_ctl restart -m immediate (as the cluster's owner): every backend
    dies at once with no clean shutdown; the server comes back after crash
    recovery."""
    dev_functions(stack, 'bin=$(pg_bindir); as_pg "$bin/pg_ctl" restart -D "$PGDATA" -m immediate '
                         '-w -t 60 -l "$LOGDIR/postgres.log" >/dev/null; '
                         'head -n1 "$PGDATA/postmaster.pid" >"$RUNDIR/postgres.pid"')


# --- a small filesystem as the data directory --------------------------------------

class DataDirOnTmpfs:
    """with DataDirOnTmpfs(stack, size_mb) as mnt: the stack's data
    directory is a tmpfs of size_mb MiB while inside (mounted over it: what
    was there is hidden, not touched).  On the way out, blobs created on the
    tmpfs are moved to the real data directory (the rows that reference
    them stay valid), then it is unmounted whatever happened."""

    def __init__(self, stack, size_mb):
        self.stack = stack
        self.size_mb = size_mb
        self.path = Path(os.path.realpath(stack.data_dir))
        self.mounted = False

    def __enter__(self):
        mode = "%o" % (os.stat(self.path).st_mode & 0o7777)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=%s" % (self.size_mb, mode),
                        "nnreg-e2e-full", str(self.path)], check=True, timeout=30)
        self.mounted = True
        return self

    def blobs(self):
        base = self.path / "blobs"
        return [p for p in base.rglob("*") if p.is_file()] if base.exists() else []

    def __exit__(self, *exc):
        saved = self.stack.var / "tmpfs-blobs"
        try:
            if saved.exists():
                shutil.rmtree(saved)
            for blob in self.blobs():
                rel = blob.relative_to(self.path)
                dest = saved / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(blob, dest)
        finally:
            for _ in range(50):
                if subprocess.run(["umount", str(self.path)], timeout=30).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                subprocess.run(["umount", "-l", str(self.path)], timeout=30)
            self.mounted = False
        if saved.exists():
            for blob in [p for p in saved.rglob("*") if p.is_file()]:
                dest = self.path / blob.relative_to(saved)
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.exists():
                    shutil.copy2(blob, dest)
            shutil.rmtree(saved)
        return False


# --- the task queue's own statements -------------------------------------------------

def taskq_statement(name):
    """The SQL of one of the task queue's prepared statements (nnreg-deployer
    and nnreg-inferd), read from src/db/taskq.h (so that a test runs exactly
    what they run), and its number of parameters."""
    src = (REPO / "src" / "db" / "taskq.h").read_text().replace("\\\n", "\n")
    m = re.search(r'\{"%s",\s*((?:"(?:[^"\\]|\\.)*"\s*)+),\s*(\d+)' % re.escape(name), src)
    assert m, "statement %s not found in taskq.h" % name
    sql = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))
    return sql.replace('\\"', '"'), int(m.group(2))
