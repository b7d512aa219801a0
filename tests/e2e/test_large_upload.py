"""A 1 GiB create through the whole stack (nginx -> nnreg-fcgi -> blob store).

The variables shard of half_plus_two_cpu is grown to 1 GiB with random
bytes (its own 20 bytes first) and sent with curl, which streams it from
disk.  The create must answer 201 with the right size and SHA-256, the
blob must be on disk at its content address, and the worker that served the
request must have kept its peak RSS under 64 MiB: a worker's memory must not
grow with the upload.

Nothing here is timed (figures are for tests/bench/upload_rss.sh and
docs/performance.md).  It takes a few seconds and 3 GiB of disk in the
stack's temp dir (the source, nginx's body temp file, the blob); set
NNREG_E2E_SKIP_LARGE=1 to skip it.
"""

import hashlib
import json
import os
import re
import subprocess
import threading

import pytest

SIZE = 1 << 30  # 1 GiB
RSS_LIMIT_KIB = 64 * 1024
SHARD = "variables.data-00000-of-00001"
SAMPLE_INTERVAL = 0.05
UPLOAD_TIMEOUT = 1800  # a bound on a hung upload, not an assertion on time

pytestmark = pytest.mark.skipif(os.environ.get("NNREG_E2E_SKIP_LARGE") == "1",
                                reason="NNREG_E2E_SKIP_LARGE=1")


def _vm_kib(pid):
    """{"VmRSS": kB, "VmHWM": kB} of a live process, {} once it is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return out


def _children(pid):
    """Pids of pid's children (the supervisor's workers)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def _reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0), so that VmHWM read
    later is the peak since now.  False when not allowed."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _Sampler(threading.Thread):
    """Every 50 ms, each worker's VmRSS and VmHWM; keeps the peaks per pid."""

    def __init__(self, supervisor):
        super().__init__(daemon=True)
        self.supervisor = supervisor
        self.peaks = {}  # pid -> {"VmRSS": kB, "VmHWM": kB}
        self.samples = 0
        self.stop = threading.Event()

    def run(self):
        pids = _children(self.supervisor)
        n = 0
        while not self.stop.wait(SAMPLE_INTERVAL):
            n += 1
            if n % 20 == 0:  # a restarted worker would be a new pid
                pids = _children(self.supervisor)
            for pid in pids:
                vm = _vm_kib(pid)
                peak = self.peaks.setdefault(pid, {"VmRSS": 0, "VmHWM": 0})
                for key, value in vm.items():
                    peak[key] = max(peak[key], value)
            self.samples += 1


def _make_shard(path, original):
    """SIZE bytes into path: the model's own shard (what its variables.index
    points into, so the shard stays valid for a create that checks it), then
    random bytes.  Returns their SHA-256 (hex)."""
    digest = hashlib.sha256()
    head = original.read_bytes()
    chunk = 1 << 20
    with open(path, "wb") as f:
        digest.update(head)
        f.write(head)
        left = SIZE - len(head)
        while left > 0:
            block = os.urandom(min(chunk, left))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def _curl_create(stack, api_key, shard, out_dir):
    """The create as curl -F sends it (streamed from disk); returns
    (status, headers dict with lower-case names, parsed body or text)."""
    model = stack.models / "half_plus_two_cpu"
    body, head = out_dir / "large-create.json", out_dir / "large-create.headers"
    fields = {
        "name": "large upload",
        "framework": "tensorflow-1.x",
        "preprocessing.inputs[0]tensor_name": "x:0",
        "preprocessing.inputs[0]image.dimension_order": "NHWC",
        "preprocessing.inputs[0]image.resize_type": "SQUASH",
        "preprocessing.inputs[0]image.target_size": "1x1",
        "preprocessing.inputs[0]image.color_channels": "L",
        "preprocessing.batched_output": "True",
        "postprocessings[0]tensors_output.tensors[0]": "y:0",
    }
    cmd = ["curl", "-sS", "--max-time", str(UPLOAD_TIMEOUT), "-o", str(body), "-D", str(head),
           "-w", "%{http_code}", "-H", "X-API-KEY: " + api_key, "-H", "Expect:"]
    for key, value in fields.items():
        cmd += ["--form-string", "%s=%s" % (key, value)]
    cmd += ["-F", "saved_model.pb=@%s" % (model / "saved_model.pb"),
            "-F", "variables.index=@%s" % (model / "variables" / "variables.index"),
            "-F", "%s=@%s;filename=%s" % (SHARD, shard, SHARD),
            stack.url("networks/")]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=UPLOAD_TIMEOUT + 60)
        assert proc.returncode == 0, "curl exited %d: %s" % (proc.returncode, proc.stderr)
        headers = {}
        for line in head.read_text(errors="replace").splitlines():
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        text = body.read_text(errors="replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return int(proc.stdout.strip() or 0), headers, parsed
    finally:
        body.unlink(missing_ok=True)
        head.unlink(missing_ok=True)


def _serving_worker(stack, request_id):
    """Pid of the worker whose log line carries this request id."""
    pattern = re.compile(r"nnreg-fcgi\[(\d+)\] req=%s POST " % re.escape(request_id))
    for line in reversed(stack.log("nnreg-fcgi").splitlines()):
        m = pattern.search(line)
        if m:
            return int(m.group(1))
    return None


def test_one_gib_upload_streams_with_flat_worker_memory(stack, tenant):
    shard = stack.var / "large-shard.bin"
    try:
        sha = _make_shard(shard, stack.models / "half_plus_two_cpu" / "variables" / SHARD)
        supervisor = int((stack.var / "run" / "nnreg-fcgi.pid").read_text().split()[0])
        workers = _children(supervisor)
        assert workers, "no nnreg-fcgi worker under supervisor %d" % supervisor
        reset = {pid: _reset_hwm(pid) for pid in workers}
        tmp_before = stack.upload_tmp_files()

        sampler = _Sampler(supervisor)
        sampler.start()
        try:
            status, headers, body = _curl_create(stack, tenant["api_key"], shard, stack.var)
        finally:
            sampler.stop.set()
            sampler.join(10)

        # The answer.
        assert status == 201, "create answered %d: %s" % (status, str(body)[:2000])
        entries = [f for f in body["files"] if f["name"] == SHARD]
        assert len(entries) == 1, body["files"]
        assert entries[0]["size"] == SIZE == 1073741824
        assert entries[0]["sha256"] == sha

        # The blob, at its content address, complete; no temp file left.
        blob = stack.blob_dir / "sha256" / sha[:2] / sha
        assert blob.is_file(), "blob %s is missing" % blob
        assert blob.stat().st_size == SIZE
        assert stack.upload_tmp_files() <= tmp_before

        # The worker's memory.
        rid = headers.get("x-request-id")
        assert rid, headers
        pid = _serving_worker(stack, rid)
        assert pid, "no nnreg-fcgi log line for request %s" % rid
        sampled = sampler.peaks.get(pid, {})
        hwm_now = _vm_kib(pid).get("VmHWM")
        what = "worker %d (%d samples): sampled peak VmRSS %s kB, VmHWM %s kB; VmHWM now %s kB" % (
            pid, sampler.samples, sampled.get("VmRSS"), sampled.get("VmHWM"), hwm_now)
        assert sampled.get("VmRSS"), "the serving worker was never sampled: " + what
        assert sampled["VmRSS"] < RSS_LIMIT_KIB, what
        if reset.get(pid):
            # VmHWM counts every page since the reset, even between samples.
            assert hwm_now is not None and hwm_now < RSS_LIMIT_KIB, what
        print("\n" + what)

        # Tidy up the tenant's network (the blob goes with the stack's dir).
        stack.request("DELETE", "networks/%s/" % body["id"], api_key=tenant["api_key"])
    finally:
        shard.unlink(missing_ok=True)
