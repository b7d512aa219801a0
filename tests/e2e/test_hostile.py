"""Hostile input, end to end through nginx to the FastCGI workers.

Every case is sent as raw bytes where a client library would normalise
them, and runs inside `bounded()`, which measures the workers around the
request: CPU time (utime + stime from /proc/<pid>/stat), peak RSS (VmHWM,
reset before the request), wall-clock time, and afterwards checks that the
same workers are alive (none crashed and was replaced), that no upload temp
file is left in data/tmp and, for refusals, that no table gained a row and
no blob appeared.  The bounds are sanity bounds against runaway behaviour
(quadratic parsing, unbounded buffering, a hung worker), not performance
assertions: performance figures live in docs/performance.md.  With
NNREG_HOSTILE_FIGURES=FILE each measured block appends its figures (wall
time, worker CPU, peak RSS growth) to FILE as a JSON line.

Harmless hostile input (boundary look-alikes inside a file, SQL
metacharacters, path-like file names) must be stored and returned verbatim.

What is decided for each case is documented in docs/api.md ("Hostile
input") and docs/reliability.md.
"""

import hashlib
import http.client
import json
import os
import re
import socket
import time
import uuid
from contextlib import contextmanager

import pytest
import requests

import helpers_create as hc
import nnreg_client
from helpers_api import REQUEST_ID, raw_http
from nnreg_client import assert_json

RSS_GROWTH_LIMIT_KIB = 32 * 1024   # peak RSS growth of any worker
CPU_LIMIT_S = 15.0                 # worker CPU time for one hostile request
WALL_LIMIT_S = 30.0                # one hostile request, answered
BOUNDARY = "nnreg-hostile-b0undary"
BOUNDARY_TYPE = "multipart/form-data; boundary=" + BOUNDARY
JSON_TYPE = "application/json; charset=utf-8"


# --- the workers, measured ------------------------------------------------------


def supervisor_pid(stack):
    return int((stack.var / "run" / "nnreg-fcgi.pid").read_text().split()[0])


def worker_pids(stack):
    """Live children of the nnreg-fcgi supervisor."""
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


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def reset_hwm(pid):
    """VmHWM := VmRSS now (Linux >= 4.0), so that VmHWM later is the peak
    since this call; False when the kernel does not allow it."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Measure:
    """What bounded() measured; filled when the block ends."""
    wall = cpu = rss_growth_kib = None


@contextmanager
def bounded(stack, refused=True, cpu_limit=CPU_LIMIT_S, wall_limit=WALL_LIMIT_S,
            rss_limit_kib=RSS_GROWTH_LIMIT_KIB):
    """Runs the block (one hostile request) and asserts the workers stayed
    within bounds, survived, and left nothing behind.  refused: the request
    must have changed no table and stored no blob."""
    pids = worker_pids(stack)
    assert pids, "no nnreg-fcgi worker"
    before = hc.snapshot(stack) if refused else None
    resettable = {pid: reset_hwm(pid) for pid in pids}
    rss0 = {pid: vm_kib(pid)["VmRSS"] for pid in pids}
    cpu0 = {pid: cpu_seconds(pid) for pid in pids}
    m = Measure()
    t0 = time.monotonic()
    yield m
    m.wall = time.monotonic() - t0
    alive = worker_pids(stack)
    assert alive == pids, "workers changed (one died and was replaced?): %s -> %s\n%s" % (
        sorted(pids), sorted(alive), stack.log()[-3000:])
    m.cpu = sum(cpu_seconds(pid) - cpu0[pid] for pid in pids)
    growth = {}
    for pid in pids:
        vm = vm_kib(pid)
        peak = vm["VmHWM"] if resettable[pid] else vm["VmRSS"]
        growth[pid] = peak - rss0[pid]
    m.rss_growth_kib = max(growth.values())
    figures = os.environ.get("NNREG_HOSTILE_FIGURES")
    if figures:  # for docs/reliability.md: one JSON line per measured block
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0].split("::")[-1]
        with open(figures, "a") as f:
            f.write(json.dumps({"test": test, "wall_s": round(m.wall, 3),
                                "cpu_s": round(m.cpu, 3),
                                "rss_growth_kib": m.rss_growth_kib}) + "\n")
    assert m.wall < wall_limit, "the request took %.1f s" % m.wall
    assert m.cpu < cpu_limit, "the workers used %.2f s of CPU" % m.cpu
    assert m.rss_growth_kib < rss_limit_kib, "worker peak RSS grew by %s KiB" % growth
    if refused:
        hc.assert_nothing_left(stack, before)
    else:
        assert stack.upload_tmp_files() == set(), stack.upload_tmp_files()


def health_ok(stack):
    r = requests.get(stack.url("health"), timeout=10)
    return r.status_code == 200


# --- raw requests -------------------------------------------------------------------


class Reply:
    """A parsed HTTP response: status, headers (lower-case names; repeated
    ones joined with ", "), raw body, JSON body or None."""

    def __init__(self, status, headers, body, header_list=()):
        self.status = status
        self.headers = headers
        self.header_list = list(header_list)
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.headers.get("content-type"), self.body[:300])


def send(stack, method, target, headers=None, body=b"", chunks=None, content_length=None,
         timeout=WALL_LIMIT_S):
    """One request with http.client, byte for byte: the target is not
    re-quoted, body may be a bytes object or chunks an iterable of bytes
    (streamed with the given content_length, never chunked encoding)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=False, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if chunks is None:
            if body or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body) if content_length is None
                                                     else content_length))
            conn.endheaders()
            if body:
                conn.send(body)
        else:
            conn.putheader("Content-Length", str(content_length))
            conn.endheaders()
            try:
                for chunk in chunks:
                    conn.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered early: read the answer
        resp = conn.getresponse()
        data = resp.read()
        pairs = resp.getheaders()
        headers = {}
        for name, value in pairs:
            key = name.lower()
            headers[key] = headers[key] + ", " + value if key in headers else value
        return Reply(resp.status, headers, data, pairs)
    finally:
        conn.close()


def auth(stack, api_key=None, **extra):
    h = {"X-API-KEY": api_key or stack.api_key}
    h.update(extra)
    return h


def post_multipart(stack, body, content_type=BOUNDARY_TYPE, api_key=None, **kw):
    return send(stack, "POST", "/v0.7/networks/",
                headers=auth(stack, api_key, **{"Content-Type": content_type}), body=body, **kw)


def assert_error(reply, status, code, fields=(), mentions=()):
    """An error in API.md's shape, JSON, with the given code; fields must
    be named in body["fields"], mentions in the message."""
    assert reply.status == status, reply
    assert reply.headers.get("content-type", "").startswith("application/json"), reply
    body = reply.json
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], reply
    assert body.get("error_code") == code, body
    for path in fields:
        assert path in (body.get("fields") or {}), "field %r not named in %s" % (path, body)
    text = json.dumps(body)
    for m in mentions:
        assert m in text, "%r not in %s" % (m, body)
    return body


def valid_parts(**fields):
    return hc.field_parts(hc.create_fields(**fields))


def create_body(extra=(), files=None, drop=(), boundary=BOUNDARY, closing=True, **fields):
    parts = [p for p in valid_parts(**fields) if p[0] not in drop] + list(extra)
    parts += hc.file_parts(files if files is not None else hc.unique_files())
    return hc.multipart_body(parts, boundary=boundary, closing=closing)


@pytest.fixture(scope="module", autouse=True)
def log_at_start(stack):
    """How much of the workers' log there was before this file's first
    test: other files kill workers on purpose (test_faults.py,
    test_supervisor.py), and only this file's requests are judged here."""
    return len(stack.log())


@pytest.fixture(scope="module")
def net(stack):
    """(tenant, network) owned by a fresh organization, for updates."""
    tenant = stack.new_tenant()
    resp = stack.create_network(api_key=tenant["api_key"], name="hostile target",
                                files=hc.unique_files())
    return tenant, assert_json(resp, 201)


# --- multipart: boundaries ---------------------------------------------------------


@pytest.mark.parametrize("content_type,mention", [
    ('multipart/form-data; boundary=""', "1 to 70"),
    ("multipart/form-data; boundary=", "boundary"),
    ("multipart/form-data; boundary=" + "b" * 300, "1 to 70"),
    ('multipart/form-data; boundary="%s"' % ("q" * 300), "1 to 70"),
    ("multipart/form-data; boundary=" + "b" * 71, "not 71"),
    ("multipart/form-data; boundary=a; boundary=b", "twice"),
], ids=["empty_quoted", "empty", "300_bytes", "300_bytes_quoted", "71_bytes", "twice"])
def test_boundary_outside_rfc2046_limits(stack, content_type, mention):
    """RFC 2046 boundaries are 1 to 70 characters.  The body sent is
    valid for the boundary the header names, so only the limit refuses it."""
    value = content_type.split("boundary=", 1)[1].split(";")[0].strip('"')
    body = create_body(boundary=value or "x")
    with bounded(stack):
        reply = post_multipart(stack, body, content_type=content_type)
    assert_error(reply, 400, "invalid_multipart", mentions=(mention,))


def test_boundary_of_70_characters_is_accepted(stack):
    boundary = ("b0'()+_,-./:=?" * 5)[:70]
    assert len(boundary) == 70
    with bounded(stack, refused=False):
        reply = post_multipart(stack, create_body(boundary=boundary, name="70-char boundary"),
                               content_type='multipart/form-data; boundary="%s"' % boundary)
    assert reply.status == 201, reply
    assert reply.json["name"] == "70-char boundary"


def near_delimiters(boundary):
    """Byte strings that look like the delimiter but are not one: RFC 2046
    only forbids "CRLF--boundary" followed by "--", spaces or CRLF."""
    b = boundary.encode()
    return [
        b"--" + b + b"\r\n",              # no CRLF before it
        b"\r\n--" + b + b"x\r\n",         # longer boundary
        b"\r\n--" + b + b"-x",            # a single dash after it
        b"\r\n--" + b[:-1] + b"\r\n",     # one character short
        b"\r\n-" + b + b"--\r\n",         # one dash short
        b"\r\r\n--" + b + b"Z",           # CR, then a look-alike
        b"\n--" + b + b"--\r\n",          # LF only
        b"\r\n--" + b.upper() + b"--\r\n" if b != b.upper() else b"\r\n--",
    ]


def test_boundary_text_inside_file_content_is_stored_intact(stack):
    """A data shard full of boundary look-alikes, some of them straddling
    any read-chunk edge: the blob's SHA-256 is the one of the bytes sent,
    and the blob on disk is byte for byte what was sent."""
    looks = near_delimiters(BOUNDARY)
    shard = bytearray(hc.unique_data_shard())
    i = 0
    while len(shard) < 700 * 1024:  # crosses the worker's 256 KiB reads
        # Filler without CR or LF: a look-alike after a filler ending in
        # CR would be a real delimiter.
        filler = os.urandom(97 + i % 13).replace(b"\r", b"r").replace(b"\n", b"n")
        shard += looks[i % len(looks)] + filler
        i += 1
    shard = bytes(shard)
    files = hc.unique_files()
    files["variables.data-00000-of-00001"] = ("variables.data-00000-of-00001", shard)
    description = "text -- " + "\r\n".join(x.decode() for x in looks[:4])
    with bounded(stack, refused=False):
        reply = post_multipart(stack, create_body(files=files, name="look-alikes",
                                                  description=description))
    assert reply.status == 201, reply
    assert reply.json["description"] == description
    by_name = {f["name"]: f for f in reply.json["files"]}
    digest = hashlib.sha256(shard).hexdigest()
    entry = by_name["variables.data-00000-of-00001"]
    assert entry["sha256"] == digest and entry["size"] == len(shard), entry
    blob = stack.blob_dir / "sha256" / digest[:2] / digest
    assert blob.read_bytes() == shard
    for part, (_, data) in files.items():
        assert by_name[part]["sha256"] == hashlib.sha256(data).hexdigest(), part


@pytest.mark.parametrize("ending", ["delimiter", "delimiter_dash", "new_part", "part_headers",
                                    "inside_big_file"])
def test_body_ending_without_its_closing_delimiter(stack, ending):
    """Cut at every place a closing delimiter could be missing; the file
    parts already streamed to temp files are removed."""
    files = hc.unique_files()
    b = BOUNDARY.encode()
    if ending == "inside_big_file":
        files["variables.data-00000-of-00001"] = ("d", hc.unique_data_shard() + os.urandom(8 << 20))
    body = create_body(files=files, closing=False)
    assert body.endswith(b"\r\n")
    body = body[:-2]
    body += {
        "delimiter": b"\r\n--" + b,
        "delimiter_dash": b"\r\n--" + b + b"-",
        "new_part": b"\r\n--" + b + b"\r\n",
        "part_headers": b"\r\n--" + b + b"\r\nContent-Disposition: form-data; name=\"x\"\r\n",
        "inside_big_file": b"",
    }[ending]
    with bounded(stack):
        reply = post_multipart(stack, body)
    assert_error(reply, 400, "invalid_multipart", mentions=("closing boundary",))


def test_100_mb_preamble(stack):
    """100 MB before the first boundary, streamed: refused after the
    64 KiB a preamble may have, and the request is answered (the worker
    reads and discards the rest of the body nginx sends it)."""
    size = 100 * 1024 * 1024
    tail = create_body()
    block = b"preamble " * 7281  # 65529 bytes
    block = block[:65536 - 2] + b"\r\n"

    def chunks():
        left = size
        while left > 0:
            piece = block[:left]
            left -= len(piece)
            yield piece
        yield tail

    with bounded(stack) as m:
        reply = send(stack, "POST", "/v0.7/networks/",
                     headers=auth(stack, **{"Content-Type": BOUNDARY_TYPE}),
                     chunks=chunks(), content_length=size + len(tail))
    assert_error(reply, 400, "invalid_multipart", mentions=("before the first boundary",))
    # The worker read the rest of the body before closing (so that nginx
    # never writes into a closed socket and turns the 400 into a 502).
    rid = reply.headers["x-request-id"]
    dropped = [int(m) for m in re.findall(
        r"req=%s discarded (\d+) request body bytes" % rid, stack.log())]
    assert dropped and sum(dropped) > size - (1 << 20), dropped
    print("\n100 MB preamble: %.1f s, worker CPU %.2f s, RSS +%d KiB" % (
        m.wall, m.cpu, m.rss_growth_kib))
    assert health_ok(stack)


def test_10000_headers_in_one_part(stack):
    headers = b"".join(b"X-Filler-%d: %d\r\n" % (i, i) for i in range(10000))
    body = (b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"name\"\r\n"
            + headers + b"\r\nvalue\r\n") + create_body()
    with bounded(stack):
        reply = post_multipart(stack, body)
    assert_error(reply, 400, "invalid_multipart", mentions=("more than 32 header lines",))


def test_100000_parts(stack):
    b = BOUNDARY.encode()
    parts = b"".join(b"--" + b + b"\r\nContent-Disposition: form-data; name=\"metadata.k%d\"\r\n"
                     b"\r\nv\r\n" % i for i in range(100000))
    body = create_body()
    body = body[:len(body) - len(b) - 6] + parts + b"--" + b + b"--\r\n"
    with bounded(stack):
        reply = post_multipart(stack, body)
    assert_error(reply, 400, "invalid_multipart", mentions=("more than 1000 parts",))


@pytest.mark.parametrize("where", ["value", "name", "filename", "other_header"])
def test_1_mb_header_line(stack, where):
    big = "h" * (1 << 20)
    disposition = {
        "value": 'Content-Disposition: form-data; name="name"; x="%s"' % big,
        "name": 'Content-Disposition: form-data; name="%s"' % big,
        "filename": 'Content-Disposition: form-data; name="saved_model.pb"; filename="%s"' % big,
        "other_header": 'Content-Disposition: form-data; name="name"\r\nX-Big: %s' % big,
    }[where]
    body = (b"--" + BOUNDARY.encode() + b"\r\n" + disposition.encode() + b"\r\n\r\nx\r\n"
            + create_body(drop=("name",)))
    with bounded(stack):
        reply = post_multipart(stack, body)
    assert_error(reply, 400, "invalid_multipart", mentions=("longer than 8192 bytes",))


# --- multipart: file names -------------------------------------------------------------


def files_outside(stack):
    """Every file under NNREG_VAR that a create may not touch: all but the
    blob store, PostgreSQL, logs, nginx's temp files and the deployer's
    directory (written asynchronously by the deployer)."""
    skip = {"pg", "pgsock", "log", "nginx", "deploy", "run"}
    out = set()
    for root, dirs, names in os.walk(stack.var):
        rel = os.path.relpath(root, stack.var)
        top = rel.split(os.sep)[0]
        if top in skip or rel.startswith(os.path.join("data", "blobs")):
            dirs[:] = []
            continue
        for n in names:
            out.add(os.path.join(rel, n))
    return out


def find_name_anywhere(stack, marker):
    """Paths holding marker in their name: the whole NNREG_VAR, the
    directories above it, /tmp and the repository's root."""
    hits = []
    for root, dirs, names in os.walk(stack.var):
        hits += [os.path.join(root, n) for n in names + dirs if marker in n]
    for d in {stack.var.parent, stack.var.parent.parent, "/tmp", "/",
              str(nnreg_client.REPO)}:
        try:
            hits += [os.path.join(str(d), n) for n in os.listdir(d) if marker in n]
        except OSError:
            pass
    return hits


ACCEPTED_FILENAMES = [
    ("dot_dot", 'filename="../../../../../tmp/{m}"'),
    ("absolute", 'filename="/tmp/{m}"'),
    ("percent_encoded", 'filename="%2e%2e%2f%2e%2e%2f{m}"'),
    ("backslashes", 'filename="..\\\\..\\\\{m}"'),
    ("ext_dot_dot", "filename*=UTF-8''..%2F..%2F..%2F{m}"),
    ("ext_double_encoded", "filename*=UTF-8''%252e%252e%252f{m}"),
    ("ext_and_plain", "filename*=utf-8'en'..%2f{m}; filename=\"../{m}\""),
    ("ext_utf8", "filename*=UTF-8''caf%C3%A9-{m}.pb"),
    ("long_4k", 'filename="{m}' + "x" * 4000 + '"'),
]


@pytest.mark.parametrize("disposition", [c[1] for c in ACCEPTED_FILENAMES],
                         ids=[c[0] for c in ACCEPTED_FILENAMES])
def test_path_like_file_names_are_never_paths(stack, disposition):
    """The file name a client sends is never used: blobs are named by
    their SHA-256 and files[].name is the part's (validated) name."""
    marker = "nnreg-escape-" + uuid.uuid4().hex[:12]
    files = hc.unique_files()
    graph = files.pop("saved_model.pb")[1]
    b = BOUNDARY.encode()
    part = (b"--" + b + b"\r\nContent-Disposition: form-data; name=\"saved_model.pb\"; "
            + disposition.format(m=marker).encode() + b"\r\nContent-Type: application/octet-stream"
            b"\r\n\r\n" + graph + b"\r\n")
    outside = files_outside(stack)
    with bounded(stack, refused=False):
        reply = post_multipart(stack, part + create_body(files=files))
    assert reply.status == 201, reply
    names = {f["name"] for f in reply.json["files"]}
    assert names == {"saved_model.pb", "variables.index", "variables.data-00000-of-00001"}
    digest = hashlib.sha256(graph).hexdigest()
    assert (stack.blob_dir / "sha256" / digest[:2] / digest).read_bytes() == graph
    assert files_outside(stack) == outside
    assert find_name_anywhere(stack, marker) == []
    stored = stack.sql_rows("SELECT name FROM network_files WHERE network_id = %d ORDER BY name"
                            % reply.json["id"])
    assert {r[0] for r in stored} == names


REFUSED_FILENAMES = [
    ("nul_byte", b'filename="a\x00b.pb"', "control character"),
    ("ext_nul", b"filename*=UTF-8''a%00b.pb", "%00"),
    ("ext_latin1", b"filename*=ISO-8859-1''caf%E9.pb", "only UTF-8"),
    ("ext_bad_escape", b"filename*=UTF-8''a%zz.pb", "two hex digits"),
    ("ext_invalid_utf8", b"filename*=UTF-8''caf%E9.pb", "not valid UTF-8"),
    ("ext_no_quotes", b"filename*=a.pb", "filename*=UTF-8''"),
    ("raw_latin1", b'filename="caf\xe9.pb"', "not valid UTF-8"),
    ("length_10k", b'filename="' + b"n" * 10240 + b'"', "longer than 8192 bytes"),
    ("two_filenames", b'filename="a"; filename="b"', "two filename"),
    ("unterminated", b'filename="a.pb', "malformed Content-Disposition"),
]


@pytest.mark.parametrize("disposition,mention", [c[1:] for c in REFUSED_FILENAMES],
                         ids=[c[0] for c in REFUSED_FILENAMES])
def test_malformed_file_names_are_refused(stack, disposition, mention):
    files = hc.unique_files()
    graph = files.pop("saved_model.pb")[1]
    b = BOUNDARY.encode()
    part = (b"--" + b + b"\r\nContent-Disposition: form-data; name=\"saved_model.pb\"; "
            + disposition + b"\r\n\r\n" + graph + b"\r\n")
    with bounded(stack):
        reply = post_multipart(stack, part + create_body(files=files))
    assert_error(reply, 400, "invalid_multipart", mentions=(mention,))


@pytest.mark.parametrize("name", ["%2e%2e%2fsaved_model.pb", "..%2Fvariables.index",
                                  "saved_model.pb\\..\\x", "/saved_model.pb",
                                  "variables/variables.index"])
def test_path_like_part_names_are_unexpected_files(stack, name):
    files = hc.unique_files()
    files[name] = ("f", hc.unique_pb())
    with bounded(stack):
        reply = post_multipart(stack, create_body(files=files))
    # A backslash in a quoted-string escapes the next character (RFC 9110
    # 5.6.4): the name the server reads has none.
    assert_error(reply, 400, "unexpected_file",
                 mentions=(json.dumps(name.replace("\\", ""))[1:-1],))


# --- Content-Length against the body ------------------------------------------------


def test_content_length_shorter_than_the_body(stack):
    """nginx reads Content-Length bytes as the body: the create is cut
    before its closing delimiter (400), and the rest of the bytes is read
    as a next request, which nginx refuses itself with a JSON 400."""
    body = create_body()
    head = ("POST /v0.7/networks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: %s\r\n"
            "Content-Type: %s\r\nContent-Length: %d\r\n\r\n" % (
                stack.api_key, BOUNDARY_TYPE, len(body) - 40)).encode()
    with bounded(stack):
        with socket.create_connection(("127.0.0.1", stack.port), timeout=WALL_LIMIT_S) as s:
            # No half-close (nginx would take it for a client gone away,
            # 499); a blank line after the leftover bytes ends them as a
            # request of their own, which nginx refuses and closes on.
            s.sendall(head + body + b"\r\n\r\n")
            raw = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:  # nginx closes after its 400
                    break
                if not chunk:
                    break
                raw += chunk
    responses = [r for r in re.split(rb"(?=HTTP/1\.1 \d{3} )", raw) if r]
    assert responses, raw
    first = responses[0]
    assert first.startswith(b"HTTP/1.1 400 "), first[:300]
    head_part, _, first_body = first.partition(b"\r\n\r\n")
    assert b"application/json" in head_part.lower()
    doc = json.loads(first_body[:int(re.search(rb"(?i)content-length: (\d+)", head_part)
                                      .group(1))])
    assert doc["error_code"] == "invalid_multipart", doc
    for extra in responses[1:]:  # the leftover bytes as a request: nginx's JSON 400
        assert extra.startswith(b"HTTP/1.1 400 "), extra[:300]
        assert b"application/json" in extra.lower()
    assert health_ok(stack)


@pytest.mark.parametrize("missing", [1, 5000, 10 << 20])
def test_content_length_longer_than_the_body(stack, missing):
    """The client promises more bytes than it sends and closes its side:
    nginx never hands the incomplete body to a worker; the connection
    ends with a JSON 400 or with no answer at all, never a hang."""
    body = create_body()
    head = ("POST /v0.7/networks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: %s\r\n"
            "Content-Type: %s\r\nContent-Length: %d\r\n\r\n" % (
                stack.api_key, BOUNDARY_TYPE, len(body) + missing)).encode()
    log_before = stack.log().count(" POST /v0.7/networks/ ")
    with bounded(stack):
        with socket.create_connection(("127.0.0.1", stack.port), timeout=WALL_LIMIT_S) as s:
            s.sendall(head + body)
            s.shutdown(socket.SHUT_WR)
            raw = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                raw += chunk
    if raw:
        assert raw.startswith(b"HTTP/1.1 400 "), raw[:300]
        assert b"application/json" in raw.lower()
    assert stack.log().count(" POST /v0.7/networks/ ") == log_before, \
        "an incomplete body reached a worker"
    assert health_ok(stack)


def raw_exchange(stack, data):
    """Sends raw bytes on one connection (no half-close: nginx would take
    it for a client gone away) and reads until nginx closes it; returns
    the HTTP responses found, each as (status, head bytes, body bytes)."""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=WALL_LIMIT_S) as s:
        s.sendall(data)
        raw = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            raw += chunk
    out = []
    for r in re.split(rb"(?=HTTP/1\.1 \d{3} )", raw):
        if not r:
            continue
        head, _, rest = r.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)content-length: (\d+)", head)
        out.append((int(r[9:12]), head, rest[:int(m.group(1))] if m else rest))
    return out


def chunked(body, size=1000):
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def test_chunked_create_is_accepted(stack):
    """Transfer-Encoding: chunked (no Content-Length): nginx reassembles
    the body before the worker sees it."""
    body = create_body(name="chunked create")
    head = ("POST /v0.7/networks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: %s\r\n"
            "Content-Type: %s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            % (stack.api_key, BOUNDARY_TYPE)).encode()
    with bounded(stack, refused=False):
        responses = raw_exchange(stack, head + chunked(body))
    assert [r[0] for r in responses] == [201], responses
    assert json.loads(responses[0][2])["name"] == "chunked create"


@pytest.mark.parametrize("framing", ["bad_chunk_size", "both_lengths", "two_lengths",
                                     "negative_length"])
def test_ambiguous_body_framing(stack, framing):
    """Framings a smuggling attempt would use: refused by nginx with its
    JSON 400, or read one way only (chunked wins over Content-Length, RFC
    9112 6.3) and then refused as a truncated multipart body; never a
    second request hidden in the body."""
    body = create_body(closing=False)
    base = ("POST /v0.7/networks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: %s\r\n"
            "Content-Type: %s\r\n" % (stack.api_key, BOUNDARY_TYPE)).encode()
    smuggled = b"GET /v0.7/networks/ HTTP/1.1\r\nHost: x\r\n\r\n"
    data = {
        "bad_chunk_size": base + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body,
        "both_lengths": base + b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n"
        % len(body) + chunked(body) + smuggled,
        "two_lengths": base + b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n" % len(body)
        + body,
        "negative_length": base + b"Content-Length: -1\r\n\r\n" + body,
    }[framing]
    with bounded(stack):
        responses = raw_exchange(stack, data + b"\r\n\r\n")
    assert responses, framing
    for status, head, payload in responses:
        assert status == 400, (status, head, payload[:300])
        assert b"application/json" in head.lower()
        assert json.loads(payload)["error_code"] in ("bad_request", "invalid_multipart")
    assert health_ok(stack)


def test_request_headers_too_large(stack):
    """200 headers of 1 KiB: nginx's header buffers (8 x 16 KiB) overflow;
    its 494 is answered as a JSON 400."""
    headers = "".join("X-Filler-%d: %s\r\n" % (i, "f" * 1024) for i in range(200))
    with bounded(stack):
        responses = raw_exchange(stack, ("GET /v0.7/health HTTP/1.1\r\nHost: x\r\n%s"
                                         "Connection: close\r\n\r\n" % headers).encode())
    assert [r[0] for r in responses] == [400], responses
    assert json.loads(responses[0][2])["error_code"] == "headers_too_large"


# --- JSON -------------------------------------------------------------------------------


def patch(stack, tenant, network, body, method="PATCH"):
    return send(stack, method, "/v0.7/networks/%d/" % network["id"],
                headers=auth(stack, tenant["api_key"], **{"Content-Type": "application/json"}),
                body=body)


def etag_of(stack, tenant, network):
    return requests.get(stack.url("networks/%d/" % network["id"]), timeout=30,
                        headers={"X-API-KEY": tenant["api_key"]}).headers["ETag"]


DEEP = {
    "arrays": b'{"metadata": {"a": ' + b"[" * 10000 + b"]" * 10000 + b"}}",
    "objects": b'{"metadata": ' + b'{"a": ' * 10000 + b"1" + b"}" * 10000 + b"}",
    "unclosed": b"[" * 10000,
}


@pytest.mark.parametrize("kind", sorted(DEEP))
def test_json_nested_10000_deep_in_an_update(stack, net, kind):
    tenant, network = net
    etag = etag_of(stack, tenant, network)
    with bounded(stack):
        reply = patch(stack, tenant, network, DEEP[kind])
    assert_error(reply, 400, "invalid_json", mentions=("deeper than 64 levels",))
    assert etag_of(stack, tenant, network) == etag


@pytest.mark.parametrize("how", ["data_part", "json_part_at_a_path", "form_value"])
def test_json_nested_10000_deep_in_a_create(stack, how):
    deep = b'{"a": ' * 10000 + b"1" + b"}" * 10000
    if how == "data_part":
        fields = nnreg_client.network_fields(name="deep")
        text = json.dumps(fields).encode()
        extra = [("data", text[:-1] + b', "metadata": ' + deep + b"}", None, "application/json")]
        drop = {k for k in hc.create_fields()}
        body = create_body(extra=extra, drop=drop)
        expect = ("invalid_json", "deeper than 64 levels")
    elif how == "json_part_at_a_path":
        body = create_body(extra=[("metadata", deep, None, "application/json")])
        expect = ("invalid_json", "deeper than 64 levels")
    else:
        # A form value is JSON text only if it parses: this one does not,
        # so it stays a string, which metadata may not be.
        body = create_body(extra=[("metadata", deep)])
        expect = ("validation_error", "metadata")
    with bounded(stack):
        reply = post_multipart(stack, body)
    assert_error(reply, 400, expect[0], mentions=(expect[1],))


DUPLICATES = [
    ("top_level", b'{"name": "a", "name": "b"}', "name"),
    ("nested", b'{"metadata": {"k": 1, "j": 2, "k": 3}}', "metadata.k"),
    ("in_array", b'{"metadata": {"l": [{"x": 1}, {"x": 1, "x": 2}]}}', "metadata.l[1].x"),
    ("same_value", b'{"description": "d", "description": "d"}', "description"),
    ("many_keys", b'{"metadata": {' + b", ".join(b'"k%d": %d' % (i, i) for i in range(5000))
     + b', "k4999": 0}}', "metadata.k4999"),
]


@pytest.mark.parametrize("body,path", [c[1:] for c in DUPLICATES], ids=[c[0] for c in DUPLICATES])
def test_duplicate_json_keys_in_an_update_are_refused(stack, net, body, path):
    """JSON does not say which of two values for one key wins, and parsers
    disagree (first, last, error): refused, naming the key."""
    tenant, network = net
    etag = etag_of(stack, tenant, network)
    with bounded(stack):
        reply = patch(stack, tenant, network, body)
    doc = assert_error(reply, 400, "invalid_json", fields=(path,))
    assert json.dumps(path.rsplit(".", 1)[-1].split("[")[0]) in doc["error"], doc
    assert etag_of(stack, tenant, network) == etag


@pytest.mark.parametrize("part,text,path", [
    ("data", b'{"name": "x", "framework": "tensorflow-1.x", "name": "y"}', "name"),
    ("metadata", b'{"owner": "a", "owner": "b"}', "metadata.owner"),
    ("preprocessing.inputs[0]image", b'{"resize_type": "SQUASH", "resize_type": "CROP"}',
     "preprocessing.inputs[0].image.resize_type"),
], ids=["data_part", "json_part", "json_part_at_an_index"])
def test_duplicate_json_keys_in_a_create_are_refused(stack, part, text, path):
    drop = {"name", "framework"} if part == "data" else set()
    if part.startswith("preprocessing"):
        drop = {k for k in hc.create_fields() if k.startswith("preprocessing.inputs[0]image")}
        text = (text[:-1] + b', "dimension_order": "NHWC", "target_size": "1x1", '
                b'"color_channels": "L"}')
    body = create_body(extra=[(part, text, None, "application/json")], drop=drop)
    with bounded(stack):
        reply = post_multipart(stack, body)
    assert_error(reply, 400, "invalid_json", fields=(path,))


INVALID_UTF8 = [
    ("value", b'{"description": "caf\xe9"}', "description"),
    ("nested_value", b'{"metadata": {"a": ["ok", "\xc3"]}}', "metadata.a[1]"),
    ("overlong", b'{"name": "\xc0\xaf"}', "name"),
    ("surrogate", b'{"name": "\xed\xa0\x80"}', "name"),
    ("beyond_u10ffff", b'{"metadata": {"k": "\xf4\x90\x80\x80"}}', "metadata.k"),
    ("in_a_key", b'{"metadata": {"ok": 1, "k\xff": 2}}', "metadata"),
    ("nul_escape", b'{"description": "a\\u0000b"}', "description"),
]


@pytest.mark.parametrize("body,path", [c[1:] for c in INVALID_UTF8],
                         ids=[c[0] for c in INVALID_UTF8])
def test_invalid_utf8_in_an_update_names_the_field(stack, net, body, path):
    tenant, network = net
    etag = etag_of(stack, tenant, network)
    with bounded(stack):
        reply = patch(stack, tenant, network, body)
    assert_error(reply, 400, "invalid_json", fields=(path,))
    # The error body itself is valid UTF-8 JSON.
    reply.body.decode("utf-8")
    assert etag_of(stack, tenant, network) == etag


@pytest.mark.parametrize("part,text,path", [
    ("data", b'{"name": "x", "framework": "tensorflow-1.x", "description": "\xff"}',
     "description"),
    ("metadata", b'{"owner": ["\xe2\x82"]}', "metadata.owner[0]"),
], ids=["data_part", "json_part"])
def test_invalid_utf8_in_a_create_json_part_names_the_field(stack, part, text, path):
    drop = {"name", "framework"} if part == "data" else set()
    body = create_body(extra=[(part, text, None, "application/json")], drop=drop)
    with bounded(stack):
        reply = post_multipart(stack, body)
    assert_error(reply, 400, "invalid_json", fields=(path,))


# --- SQL metacharacters -------------------------------------------------------------------


SQL_META = [
    "'; DROP TABLE networks; --",
    "' OR '1'='1",
    "\"; DELETE FROM tasks; --",
    "$1",
    "$$; DROP TABLE blobs; $$",
    "\\",
    "\\'",
    "%",
    "_",
    "%_\\%",
    "E'\\x00'",
    ":name ? $2::text",
    "); SELECT pg_sleep(10); --",
    "caf\u00e9 \U0001F600 \u202e",
]


def tables_intact(stack):
    names = ("networks", "tasks", "blobs", "network_files", "idempotency_keys",
             "organizations", "api_keys")
    found = stack.sql_rows("SELECT " + ", ".join(
        "to_regclass('%s') IS NOT NULL" % t for t in names))[0]
    return all(v == "t" for v in found)


@pytest.mark.parametrize("meta", SQL_META, ids=["m%d" % i for i in range(len(SQL_META))])
def test_sql_metacharacters_are_stored_verbatim_on_create(stack, meta):
    tenant = stack.new_tenant()
    name = "n " + meta
    metadata = {meta: meta, "list": [meta, {"k": meta}]}
    fields = dict(hc.create_fields(name=name, description=meta))
    parts = hc.field_parts(fields)
    parts.append(("metadata", json.dumps(metadata), None, "application/json"))
    body = hc.multipart_body(parts + hc.file_parts(hc.unique_files()), boundary=BOUNDARY)
    with bounded(stack, refused=False):
        reply = post_multipart(stack, body, api_key=tenant["api_key"],
                               )
    assert reply.status == 201, reply
    doc = reply.json
    assert (doc["name"], doc["description"], doc["metadata"]) == (name.strip(), meta, metadata)
    got = requests.get(stack.url("networks/%d/" % doc["id"]), timeout=30,
                       headers={"X-API-KEY": tenant["api_key"]}).json()
    assert (got["name"], got["description"], got["metadata"]) == (name.strip(), meta, metadata)
    # PostgreSQL holds the very text.
    row = stack.sql_rows("SELECT json_build_array(name, description, metadata)::text "
                         "FROM networks WHERE id = %d" % doc["id"])
    assert json.loads(row[0][0]) == [name.strip(), meta, metadata]
    assert tables_intact(stack)


@pytest.mark.parametrize("meta", SQL_META, ids=["m%d" % i for i in range(len(SQL_META))])
def test_sql_metacharacters_are_stored_verbatim_on_update(stack, net, meta):
    tenant, network = net
    change = {"name": "u " + meta, "description": meta, "metadata": {meta: [meta]}}
    with bounded(stack, refused=False):
        reply = patch(stack, tenant, network, json.dumps(change).encode())
    assert reply.status == 200, reply
    assert {k: reply.json[k] for k in change} == change
    with bounded(stack, refused=False):
        reply = patch(stack, tenant, network, json.dumps(change).encode(), method="PUT")
    assert reply.status == 200, reply
    assert {k: reply.json[k] for k in change} == change
    assert tables_intact(stack)


def list_names(stack, tenant, query):
    reply = send(stack, "GET", "/v0.7/networks/?" + query + "&limit=1000",
                 headers=auth(stack, tenant["api_key"]))
    assert reply.status == 200, reply
    return sorted(r["name"] for r in reply.json["results"] if not r["is_public"])


def test_name_search_does_not_interpret_like_wildcards(stack):
    """name= matches a substring, case-insensitively; %, _ and \\ in it
    are literal characters, not LIKE patterns."""
    tenant = stack.new_tenant()
    names = ["plain", "50% off", "a_b", "back\\slash", "'; DROP TABLE networks; --",
             "AxB", "100 percent"]
    for n in names:
        resp = stack.create_network(api_key=tenant["api_key"], name=n, files=hc.unique_files())
        assert_json(resp, 201)
    q = requests.utils.quote
    cases = {
        "%": ["50% off"],
        "_": ["a_b"],
        "\\": ["back\\slash"],
        "a_b": ["a_b"],
        "%_%": [],
        "'; DROP TABLE networks; --": ["'; DROP TABLE networks; --"],
        "' OR '1'='1": [],
        "$1": [],
        "x": ["AxB"],
    }
    for needle, expected in cases.items():
        with bounded(stack, refused=False):
            got = list_names(stack, tenant, "name=" + q(needle, safe=""))
        assert got == sorted(expected), (needle, got)
    assert len(list_names(stack, tenant, "")) == len(names)
    assert tables_intact(stack)


@pytest.mark.parametrize("target,field", [
    ("/v0.7/networks/?ordering={m}", "ordering"),
    ("/v0.7/networks/?is_public={m}", "is_public"),
    ("/v0.7/networks/?limit={m}", "limit"),
    ("/v0.7/networks/?offset={m}", "offset"),
    ("/v0.7/networks/public/?limit={m}", "limit"),
    ("/v0.7/tasks/?task_ids={m}", "task_ids"),
    ("/v0.7/tasks/?task_ids=1&task_ids={m}", "task_ids"),
])
@pytest.mark.parametrize("meta", ["'; DROP TABLE networks; --", "1 OR 1=1", "$1", "1;--", "%25"])
def test_sql_metacharacters_in_query_parameters_are_400_naming_them(stack, target, field, meta):
    q = requests.utils.quote(meta, safe="")
    with bounded(stack):
        reply = send(stack, "GET", target.format(m=q), headers=auth(stack))
    assert_error(reply, 400, "validation_error", fields=(field,))
    assert tables_intact(stack)


@pytest.mark.parametrize("target", [
    "/v0.7/networks/'%3B%20DROP%20TABLE%20networks%3B--/",
    "/v0.7/networks/1%20OR%201=1/",
    "/v0.7/networks/1;DELETE/graph/",
    "/v0.7/networks/public/'%3B%20DROP%20TABLE%20networks%3B--/",
    "/v0.7/networks/public/%25/",
    "/v0.7/networks/public/_/",
    "/v0.7/tasks/$1/",
    "/v0.7/tasks/1'--/",
])
def test_sql_metacharacters_in_route_parameters_are_404(stack, target):
    with bounded(stack):
        reply = send(stack, "GET", target, headers=auth(stack))
    assert_error(reply, 404, "not_found")
    assert tables_intact(stack)


def test_sql_metacharacters_in_headers(stack):
    """An API key or an Idempotency-Key made of SQL is just an opaque
    string: a 401 for the key, a replayable create for the other."""
    for key in ("' OR '1'='1", "'; DROP TABLE api_keys; --", "\\"):
        with bounded(stack):
            reply = send(stack, "GET", "/v0.7/networks/", headers={"X-API-KEY": key})
        assert_error(reply, 401, "invalid_api_key")
    idem = "'; DROP TABLE idempotency_keys; -- " + uuid.uuid4().hex
    body = create_body(name="idem sql")
    with bounded(stack, refused=False):
        first = post_multipart(stack, body, **{})
    assert first.status == 201
    h = auth(stack, **{"Content-Type": BOUNDARY_TYPE, "Idempotency-Key": idem})
    one = send(stack, "POST", "/v0.7/networks/", headers=h, body=create_body(name="idem a"))
    two = send(stack, "POST", "/v0.7/networks/", headers=h, body=create_body(name="idem b"))
    assert one.status == two.status == 201, (one, two)
    assert two.json == one.json and two.headers.get("idempotent-replayed") == "true"
    assert tables_intact(stack)


# --- X-Request-Id -----------------------------------------------------------------------


@pytest.mark.parametrize("target,method,status", [
    ("/v0.7/health", "GET", 200),
    ("/v0.7/networks/2147483000/", "GET", 404),   # the app's error
    ("/v0.7/networks/", "TRACE", 405),            # nginx's own error
])
def test_client_request_id_is_replaced_by_nginx(stack, target, method, status):
    client_id = "client-" + uuid.uuid4().hex
    log_before = len(stack.log())
    access_before = len(stack.log("nginx-access"))
    with bounded(stack):
        reply = send(stack, method, target,
                     headers=auth(stack, **{"X-Request-Id": client_id}))
    assert reply.status == status, reply
    ids = [v for k, v in reply.header_list if k.lower() == "x-request-id"]
    assert len(ids) == 1 and REQUEST_ID.match(ids[0]) and ids[0] != client_id, ids
    if reply.json and "request_id" in reply.json:
        assert reply.json["request_id"] == ids[0]
    access = stack.log("nginx-access")[access_before:]
    assert "rid=" + ids[0] in access and client_id not in access
    worker_log = stack.log()[log_before:]
    assert client_id not in worker_log
    if method != "TRACE":  # nginx answers TRACE without a worker
        assert "req=" + ids[0] in worker_log, worker_log[-2000:]


# --- many query parameters ------------------------------------------------------------


def test_10000_query_parameters_are_refused_by_nginx(stack):
    """10 000 parameters do not fit nginx's 16 KiB request line buffer:
    its JSON 414, and no worker ever sees them."""
    query = "&".join("p%d=1" % i for i in range(10000))
    with bounded(stack):
        status, headers, body = raw_http(
            stack.port, ("GET /v0.7/networks/?%s HTTP/1.1\r\nHost: x\r\nX-API-KEY: %s\r\n\r\n"
                         % (query, stack.api_key)).encode(), timeout=WALL_LIMIT_S)
    assert status == 414
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error_code"] == "uri_too_long"


@pytest.mark.parametrize("target,status", [
    ("/v0.7/networks/?", 400),
    ("/v0.7/networks/public/?", 400),
    ("/v0.7/tasks/?task_ids=1&", 400),
    ("/v0.7/health?", 200),
])
def test_7000_query_parameters_that_fit_the_request_line(stack, target, status):
    """As many parameters as the request line holds (7000 one-letter
    ones, 14 KB): the routes that read the query refuse more than 1000
    parameters with a 400 that says so; the others ignore it."""
    query = "&".join("a" for _ in range(7000))
    with bounded(stack):
        reply = send(stack, "GET", target + query, headers=auth(stack))
    if status == 400:
        assert_error(reply, 400, "invalid_query", mentions=("at most 1000",))
    else:
        assert reply.status == 200, reply


def test_2000_task_ids_in_one_parameter(stack):
    query = "task_ids=" + ",".join(str(i) for i in range(1, 2001))
    with bounded(stack):
        reply = send(stack, "GET", "/v0.7/tasks/?" + query, headers=auth(stack))
    assert_error(reply, 400, "validation_error", fields=("task_ids",), mentions=("1000",))


# --- every route, every method --------------------------------------------------------


METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "FROB"]
ROUTES = ["/v0.7/health", "/health/", "/metrics", "/v0.7/metrics/", "/v0.7/networks/",
          "/networks", "/v0.7/networks/public/", "/v0.7/networks/public/{slug}/",
          "/v0.7/networks/{id}/", "/networks/{id}", "/v0.7/networks/{id}/graph/",
          "/v0.7/tasks/?task_ids={task}", "/v0.7/tasks/{task}/", "/v0.7/nowhere/", "/",
          "/v0.7/"]


def test_every_route_with_every_method(stack):
    """Every route with every method, with a key and a JSON body: the
    route's answer, or a 405 with Allow (not naming the method sent); a
    JSON body for every status but 204 (HEAD: the headers of one);
    never a 5xx, never HTML.  DELETE is last on each route, so the
    network is deleted by the first one and 404 for the rest."""
    tenant = stack.new_tenant()
    created = assert_json(stack.create_network(api_key=tenant["api_key"], name="matrix",
                                               files=hc.unique_files()), 201)
    slug = "matrix-" + uuid.uuid4().hex[:8]
    stack.sql("UPDATE networks SET is_public = true, slug = '%s' WHERE id = %d"
              % (slug, created["id"]))
    outcomes = {}
    with bounded(stack, refused=False, cpu_limit=60, wall_limit=120):
        for route in ROUTES:
            target = route.format(id=created["id"], task=created["task_id"], slug=slug)
            for method in [m for m in METHODS if m != "DELETE"] + ["DELETE"]:
                body = b'{"description": "matrix"}' if method in ("POST", "PUT", "PATCH") else b""
                reply = send(stack, method, target, body=body,
                             headers=auth(stack, tenant["api_key"],
                                          **{"Content-Type": "application/json"}))
                what = "%s %s -> %r" % (method, target, reply)
                outcomes[(method, route)] = reply.status
                assert reply.status < 500, what
                ctype = reply.headers.get("content-type", "")
                assert "html" not in ctype.lower() and b"<html" not in reply.body.lower(), what
                # /metrics answers in Prometheus' text format, by design.
                metrics = route.strip("/").endswith("metrics") and reply.status == 200
                if reply.status != 204 and not metrics:
                    assert ctype.startswith("application/json"), what
                if method != "HEAD" and reply.status != 204 and not metrics:
                    assert isinstance(reply.json, dict), what
                if reply.status >= 400 and method != "HEAD":
                    assert reply.json.get("error_code"), what
                if reply.status == 405:
                    allow = {m.strip() for m in reply.headers.get("allow", "").split(",")}
                    assert allow and allow != {""}, what
                    assert method not in allow, what
                if method == "OPTIONS" and reply.status == 204:
                    assert reply.headers.get("allow"), what
    # Spot checks of the expected answers.
    assert outcomes[("GET", "/v0.7/networks/{id}/")] == 200
    assert outcomes[("HEAD", "/v0.7/networks/{id}/")] == 200
    assert outcomes[("PATCH", "/v0.7/networks/{id}/")] == 200
    assert outcomes[("DELETE", "/v0.7/networks/{id}/")] == 204
    assert outcomes[("DELETE", "/networks/{id}")] == 404
    assert outcomes[("POST", "/v0.7/networks/")] == 400  # JSON: files are required
    assert outcomes[("FROB", "/v0.7/networks/")] == 405
    assert outcomes[("TRACE", "/v0.7/health")] == 405
    assert outcomes[("GET", "/v0.7/nowhere/")] == 404
    assert outcomes[("OPTIONS", "/v0.7/tasks/{task}/")] == 204
    assert health_ok(stack)


@pytest.mark.parametrize("request_line", [
    b"get /v0.7/health HTTP/1.1",
    b"G\x00T /v0.7/health HTTP/1.1",
    b"GET /v0.7/health HTTP/9.9",
    b"GET /v0.7/health\x00 HTTP/1.1",
    b"GET /v0.7/../../etc/passwd HTTP/1.1",
    b"GET /v0.7/networks/%2e%2e/%2e%2e/health HTTP/1.1",
    b"A" * 5000 + b" /v0.7/health HTTP/1.1",
    b"GET /v0.7/health HTTP/2.0",
    b"GET /v0.7/health HTTP/1.1\r\nHost: a b",
    b"GET /v0.7/health HTTP/1.1\r\nExpect: 200-ok",
    b"GET /v0.7/health HTTP/1.1\r\nX-Bad\x00Header: 1",
    b"GET /v0.7/health HTTP/1.1\r\n Folded: header",
])
def test_malformed_request_lines(stack, request_line):
    """Request lines nginx refuses (or normalises): a JSON answer, never
    HTML, never a 5xx."""
    with bounded(stack):
        status, headers, body = raw_http(stack.port, request_line + b"\r\nHost: x\r\n"
                                         b"Connection: close\r\nX-API-KEY: "
                                         + stack.api_key.encode() + b"\r\n\r\n",
                                         timeout=WALL_LIMIT_S, half_close=False)
    # 505 is the one 5xx that is right here: the client's HTTP version.
    assert status < 500 or (status == 505 and re.search(rb"HTTP/[29]\.", request_line)), (
        status, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), (status, body[:300])
    if status >= 400:
        assert json.loads(body)["error_code"]


def test_workers_survived_the_whole_file(stack, log_at_start):
    """Last: no worker died while this file ran, and nothing of the hostile
    requests is left in data/tmp."""
    log = stack.log()[log_at_start:]
    assert "killed by signal" not in log
    assert "exited with status" not in log
    assert stack.upload_tmp_files() == set()
    assert health_ok(stack)
