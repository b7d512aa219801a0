"""Helpers for the create tests (tests/e2e/test_create.py): state snapshots
taken around a create, raw multipart bodies, unique copies of the fixture
models and files that pose as model files.

Only the standard library and Debian's python3-requests are used.
"""

import copy
import re
import struct
import uuid
import zlib
from pathlib import Path

import requests

import nnreg_client
from nnreg_client import MODELS

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

NETWORK_KEYS = {"id", "name", "description", "metadata", "framework", "preprocessing",
                "postprocessings", "files", "is_public", "slug", "task_id", "create_date",
                "update_date"}

HP2 = MODELS / "half_plus_two_cpu"


# --- state of the stack around a create -------------------------------------

TABLES = ("networks", "tasks", "blobs", "network_files", "idempotency_keys")


def snapshot(stack):
    """Row counts of every table a create writes, the blob files and the
    upload temp files."""
    query = "SELECT " + ", ".join("(SELECT count(*) FROM %s)" % t for t in TABLES)
    counts = stack.sql_rows(query)[0]
    return {
        "rows": dict(zip(TABLES, (int(c) for c in counts))),
        "blob_files": stack.blob_files(),
        "tmp_files": stack.upload_tmp_files(),
    }


def assert_nothing_left(stack, before):
    """After a failed create: no new row in any table, no new blob file,
    and no upload temp file left in data/tmp."""
    after = snapshot(stack)
    assert after["rows"] == before["rows"], "rows changed: %s -> %s" % (
        before["rows"], after["rows"])
    assert after["blob_files"] == before["blob_files"], "new blob files: %s" % (
        after["blob_files"] - before["blob_files"])
    assert after["tmp_files"] == set(), "temp files left in data/tmp: %s" % after["tmp_files"]


# --- unique content ---------------------------------------------------------

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def unique_pb(model="half_plus_two_cpu", name="saved_model.pb"):
    """The model's saved_model.pb with an unknown length-delimited field
    (number 1000) appended: protobuf readers skip it, so the graph is the
    same, but the bytes (and so the blob) are new."""
    data = (MODELS / model / name).read_bytes()
    payload = uuid.uuid4().hex.encode()
    return data + _varint((1000 << 3) | 2) + _varint(len(payload)) + payload


def unique_pbtxt(model="half_plus_two_pbtxt"):
    """The text graph with a unique comment appended."""
    data = (MODELS / model / "saved_model.pbtxt").read_bytes()
    return data + b"# " + uuid.uuid4().hex.encode() + b"\n"


def unique_data_shard(model="half_plus_two_cpu", name="variables.data-00000-of-00001"):
    """A data shard with unique trailing bytes (raw bytes: nothing to
    check at upload time beyond the name)."""
    return (MODELS / model / "variables" / name).read_bytes() + uuid.uuid4().bytes


def unique_files(model="half_plus_two_cpu"):
    """The upload parts of a fixture model, each graph and data shard made
    unique, as {part name: (filename, bytes)}."""
    files = {}
    for part, path in nnreg_client.model_files(model).items():
        if part == "saved_model.pb":
            data = unique_pb(model)
        elif part == "saved_model.pbtxt":
            data = unique_pbtxt(model)
        elif part.startswith("variables.data-"):
            data = unique_data_shard(model, part)
        else:
            data = path.read_bytes()
        files[part] = (path.name, data)
    return files


# --- files posing as model files ---------------------------------------------

def png_bytes():
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"\x00\xff\x00\x00" * 1
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"") + uuid.uuid4().bytes)


def zip_bytes():
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("saved_model.pb", (HP2 / "saved_model.pb").read_bytes())
        z.writestr("nonce.txt", uuid.uuid4().hex)
    return buf.getvalue()


def elf_bytes():
    return Path("/bin/true").read_bytes()


def html_bytes():
    return ("<!DOCTYPE html>\n<html><head><title>Not Found</title></head>"
            "<body><h1>404 %s</h1></body></html>\n" % uuid.uuid4().hex).encode()


# --- requests ------------------------------------------------------------------

def flatten_like_official_client(data):
    """deepomatic-api's HTTPHelper.dump_json_for_multipart, rewritten: `.key`
    descends into an object except right after `]`, `[i]` indexes a list."""
    out = {}

    def walk(prefix, obj, omit_dot=False):
        if isinstance(obj, dict):
            if not omit_dot:
                prefix += "."
            for key, value in obj.items():
                walk(prefix + key, value)
        elif isinstance(obj, list):
            for i, value in enumerate(obj):
                walk(prefix + "[%d]" % i, value, omit_dot=True)
        else:
            assert prefix not in out, "duplicate key " + prefix
            out[prefix] = obj

    walk("", data, omit_dot=True)
    return out


def preprocessing(tensor="x:0", **image):
    """DEFAULT_PREPROCESSING with the input's tensor name and image fields
    replaced (an image value of None removes the key)."""
    pre = copy.deepcopy(nnreg_client.DEFAULT_PREPROCESSING)
    pre["inputs"][0]["tensor_name"] = tensor
    for key, value in image.items():
        if value is None:
            pre["inputs"][0]["image"].pop(key, None)
        else:
            pre["inputs"][0]["image"][key] = value
    return pre


def outputs(*names):
    return [{"tensors_output": {"tensors": list(names)}}]


def post_create(stack, data=None, files=None, api_key=None, app_id=None, headers=None,
                timeout=120):
    """POST /v0.7/networks/ with requests' own multipart encoding: data is a
    dict of form fields (or a list of pairs), files {part: (filename, bytes
    [, content type])}."""
    h = {"X-API-KEY": api_key or stack.api_key}
    if app_id:
        h["X-APP-ID"] = app_id
    if headers:
        h.update(headers)
    return requests.post(stack.url("networks/"), data=data, files=files, headers=h,
                         timeout=timeout)


def create_fields(**kw):
    """network_fields (nnreg_client) flattened as the official client does."""
    return flatten_like_official_client(nnreg_client.network_fields(**kw))


def multipart_body(parts, boundary="nnreg-test-boundary-7f3a", closing=True):
    """A raw multipart/form-data body.  parts: list of (name, value) for
    fields, or (name, value, filename, content_type) where filename or
    content_type may be None; value str or bytes."""
    out = bytearray()
    for part in parts:
        name, value = part[0], part[1]
        filename = part[2] if len(part) > 2 else None
        ctype = part[3] if len(part) > 3 else None
        out += b"--" + boundary.encode() + b"\r\n"
        disp = 'Content-Disposition: form-data; name="%s"' % name
        if filename is not None:
            disp += '; filename="%s"' % filename
        out += disp.encode() + b"\r\n"
        if ctype:
            out += b"Content-Type: " + ctype.encode() + b"\r\n"
        out += b"\r\n"
        out += value if isinstance(value, bytes) else value.encode()
        out += b"\r\n"
    if closing:
        out += b"--" + boundary.encode() + b"--\r\n"
    return bytes(out)


def post_raw(stack, body, content_type, api_key=None, headers=None, timeout=120):
    h = {"X-API-KEY": api_key or stack.api_key, "Content-Type": content_type}
    if headers:
        h.update(headers)
    return requests.post(stack.url("networks/"), data=body, headers=h, timeout=timeout)


def field_parts(fields):
    """Form fields (a dict) as multipart_body parts, values as str() like
    requests sends them."""
    return [(k, str(v)) for k, v in fields.items() if v is not None]


def file_parts(files):
    """{part: (filename, bytes)} as multipart_body parts."""
    return [(part, value[1], value[0], "application/octet-stream")
            for part, value in files.items()]



def npy_bytes(shape=(3,), value=0.5):
    """A NumPy .npy file (format 1.0, little-endian float32)."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (
        "(%d,)" % shape[0] if len(shape) == 1 else "(%s)" % ", ".join(map(str, shape)))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    count = 1
    for n in shape:
        count *= n
    return (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
            + struct.pack("<%df" % count, *([value] * count)))


class DeployListener:
    """LISTEN nnreg_deploy through `scripts/dev psql` (no psycopg2 needed):
    psql prints the notifications it received after the next command it
    runs, so notifications() sends two marker queries and collects what
    came in before the second marker."""

    def __init__(self, stack, channel="nnreg_deploy"):
        self.stack = stack
        self.channel = channel
        self.proc = None

    def __enter__(self):
        import subprocess
        self.proc = subprocess.Popen(
            [str(nnreg_client.REPO / "scripts" / "dev"), "psql", "-At", "-v", "ON_ERROR_STOP=1"],
            env=self.stack.env, cwd=str(nnreg_client.REPO), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._send("LISTEN %s;\nSELECT 'nnreg-listening';\n" % self.channel)
        self._read_until("nnreg-listening")
        return self

    def _send(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def _read_until(self, marker):
        lines = []
        while True:
            line = self.proc.stdout.readline()
            assert line, "psql ended before %r; got %s" % (marker, lines)
            if line.strip() == marker:
                return lines
            lines.append(line.strip())

    def payloads(self):
        """The payloads of the notifications received on the channel so far."""
        self._send("SELECT 'nnreg-poll-1';\nSELECT 'nnreg-poll-2';\n")
        lines = self._read_until("nnreg-poll-1") + self._read_until("nnreg-poll-2")
        pat = re.compile(r'^Asynchronous notification "%s" with payload "([^"]*)" received'
                         % re.escape(self.channel))
        return [m.group(1) for m in map(pat.match, lines) if m]

    def __exit__(self, *exc):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        return False
