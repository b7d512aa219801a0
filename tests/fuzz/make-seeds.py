#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<harness>/ from the model
fixtures and from the inputs the unit tests use.

The unit tests build their inputs with macros ("--bnd" CRLF CD("name") ...),
so their string literals are taken from the preprocessor's output (cpp -E),
adjacent literals joined as C joins them.  Run from the repository root:

    /usr/bin/python3 tests/fuzz/make-seeds.py

It rewrites the seed-* files only; inputs saved by hand (crash-*,
regression-*) are kept.
"""
import ast
import glob
import hashlib
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")

CFLAGS = ["-I" + os.path.join(ROOT, "src"), "-DNNREG_FIXTURES=\"tests/fixtures\""]
for pkg in ("yajl", "libpq", "snappy", "cmocka"):
    try:
        CFLAGS += subprocess.run(["pkg-config", "--cflags", pkg], capture_output=True, text=True,
                                 check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pass

LITERAL = re.compile(rb'"((?:[^"\\\n]|\\.)*)"')
ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"0": b"\0", b"\\": b"\\", b'"': b'"',
           b"'": b"'", b"a": b"\a", b"b": b"\b", b"f": b"\f", b"v": b"\v", b"?": b"?"}


def unescape(body):
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i:i + 1]
        if c != b"\\":
            out += c
            i += 1
            continue
        n = body[i + 1:i + 2]
        if n == b"x":
            j = i + 2
            while j < len(body) and body[j:j + 1] in b"0123456789abcdefABCDEF" and body[j:j + 1]:
                j += 1
            out.append(int(body[i + 2:j], 16) & 0xFF)
            i = j
        elif n in b"01234567" and n:
            j = i + 1
            while j < i + 4 and j < len(body) and body[j:j + 1] in b"01234567":
                j += 1
            out.append(int(body[i + 1:j], 8) & 0xFF)
            i = j
        else:
            out += ESCAPES.get(n, n)
            i += 2
    return bytes(out)


def test_literals(test):
    """Joined string literals of tests/unit/<test>.c, after preprocessing."""
    src = os.path.join(ROOT, "tests", "unit", test + ".c")
    # Keep only what came from the test file itself (line markers name it).
    mine, keep = [], False
    for line in subprocess.run(["cpp", *CFLAGS, src], capture_output=True, check=True).stdout.split(b"\n"):
        if line.startswith(b"# "):
            keep = src.encode() in line
            continue
        if keep:
            mine.append(line)
    text = b"\n".join(mine)
    groups, cur, last_end = [], [], None
    for m in LITERAL.finditer(text):
        gap = text[last_end:m.start()] if last_end is not None else b"x"
        if cur and gap.strip() == b"":
            cur.append(m.group(1))
        else:
            if cur:
                groups.append(unescape(b"".join(cur)))
            cur = [m.group(1)]
        last_end = m.end()
    if cur:
        groups.append(unescape(b"".join(cur)))
    seen, out = set(), []
    for g in groups:
        if g not in seen:
            seen.add(g)
            out.append(g)
    return out


def write(name, seeds):
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(os.path.join(d, "seed-*")):
        os.remove(f)
    n = 0
    for label, data in seeds:
        if not data or len(data) > 65536:
            continue
        h = hashlib.sha1(data).hexdigest()[:12]
        with open(os.path.join(d, "seed-%s-%s" % (label, h)), "wb") as f:
            f.write(data)
        n += 1
    print("%-13s %4d seeds" % (name, n))


def fixtures(pattern):
    out = []
    for f in sorted(glob.glob(os.path.join(MODELS, pattern))):
        rel = os.path.relpath(f, MODELS).split(os.sep)[0]
        with open(f, "rb") as fh:
            out.append((rel, fh.read()))
    return out


def npy(major, header, data=b""):
    prefix = 10 if major == 1 else 12
    hlen = len(header) + 1
    while (prefix + hlen) % 64:
        hlen += 1
    head = header + b" " * (hlen - len(header) - 1) + b"\n"
    size = struct.pack("<H", hlen) if major == 1 else struct.pack("<I", hlen)
    return b"\x93NUMPY" + bytes([major, 0]) + size + head + data


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def blobproto(shape, count, legacy):
    b = bytearray()
    if legacy:
        for field, dim in zip((1, 2, 3, 4), shape):
            b += varint(field << 3) + varint(dim)
    else:
        dims = b"".join(varint(d) for d in shape)
        shp = varint(1 << 3 | 2) + varint(len(dims)) + dims  # BlobShape.dim, packed
        b += varint(7 << 3 | 2) + varint(len(shp)) + shp
    floats = struct.pack("<%df" % count, *[float(i) for i in range(count)])
    b += varint(5 << 3 | 2) + varint(len(floats)) + floats
    return bytes(b)


def main():
    graphs_pb = fixtures("*/saved_model.pb")
    graphs_txt = fixtures("*/saved_model.pbtxt")
    indexes = fixtures("*/variables/variables.index")
    write("graph_binary", [(l, d) for l, d in graphs_pb])
    write("graph_text", [(l, d) for l, d in graphs_txt] +
          [("graph", d) for d in test_literals("test_graph") if b"node" in d or b"meta_graphs" in d])
    write("bundle", [(l, d) for l, d in indexes])
    write("pbwire", [(l, d) for l, d in graphs_pb + indexes] +
          [("blob", blobproto((1, 3, 2, 2), 12, True))])

    npys = []
    for f in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "means", "*.npy"))):
        with open(f, "rb") as fh:
            npys.append((os.path.basename(f)[:-4], fh.read()))
    for d in test_literals("test_npy"):
        if d.startswith(b"{") and b"descr" in d:
            npys.append(("test", npy(1, d, bytes(48))))
    npys += [("v2", npy(2, b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 2), }",
                        bytes(48))),
             ("v3", npy(3, b"{'descr': '<f8', 'fortran_order': True, 'shape': (2,), }", bytes(16))),
             ("blob-legacy", blobproto((1, 3, 2, 2), 12, True)),
             ("blob-shape", blobproto((1, 3, 2, 2), 12, False))]
    write("npy", npys)

    def split_first(d):
        return bytes([len(d) // 2 & 0xFF]) + d

    mp = []
    for d in test_literals("test_multipart"):
        if b"--" in d and b"Content-Disposition" in d:
            mp.append(("test", split_first(d.replace(b"bnd", b"XyZ"))))
    write("multipart", mp)

    write("formkey", [("test", d) for d in test_literals("test_formkey")
                      if 0 < len(d) < 200 and b"%" not in d] +
          [("keys", b"\0".join(d for d in test_literals("test_formkey") if 0 < len(d) < 60))])

    bodies = [d for d in test_literals("test_validate") if d.startswith(b"{")]
    jv = bodies + [d for d in test_literals("test_jv") if d[:1] in (b"{", b"[", b'"') or
                   d[:1].isdigit()]
    write("jv", [("test", d) for d in jv])
    forms = [b"name=n\nframework=tensorflow-1.x\npreprocessing.inputs[0].tensor_name=x:0\n"
             b"preprocessing.inputs[0].image.dimension_order=NHWC\n"
             b"preprocessing.inputs[0].image.resize_type=CROP\n"
             b"preprocessing.inputs[0].image.target_size=299x299\n"
             b"preprocessing.inputs[0].image.color_channels=BGR\n"
             b"preprocessing.inputs[0].image.pixel_scaling=255\n"
             b"preprocessing.inputs[0].image.mean_file=mean.npy\n"
             b"postprocessings[0].tensors_output.tensors[0]=y:0\nmetadata={\"a\": 1}\n",
             b"name=n\nframework=tensorflow-1.x\n"
             b"preprocessing={\"inputs\": [{\"tensor_name\": \"x:0\"}]}\n"
             b"postprocessings=[{\"standard_output\": {\"boxes_tensor\": \"b\"}}]\n"]
    write("validate", [("create", b"\0" + d) for d in bodies] +
          [("patch", b"\1" + d) for d in bodies[:20]] +
          [("put", b"\2" + d) for d in bodies[:20]] +
          [("form", b"\3" + d) for d in forms])

    write("query", [("test", d) for d in test_literals("test_query") if len(d) < 500])

    def env(method, uri, query=b"", extra=()):
        items = [b"REQUEST_METHOD=" + method, b"REQUEST_URI=" + uri + (b"?" + query if query else b""),
                 b"QUERY_STRING=" + query, b"HTTP_HOST=localhost:8080", b"HTTP_X_API_KEY=k"]
        return b"\0".join(items + list(extra))

    routes = [env(b"GET", b"/v0.7/networks/", b"limit=10&offset=20&q=%C3%A9"),
              env(b"GET", b"/v0.7/networks/42/graph"),
              env(b"PATCH", b"/v0.7/networks/42"),
              env(b"DELETE", b"/v0.7/networks/9223372036854775807"),
              env(b"GET", b"/v0.7/networks/public/some-slug"),
              env(b"OPTIONS", b"/v0.7/networks/"),
              env(b"POST", b"/v0.7/tasks/7"),
              env(b"GET", b"/v0.7/tasks", b"limit=abc"),
              env(b"HEAD", b"/v0.7/health"),
              env(b"GET", b"/v0.7/networks/%2e%2e%2f", b"",
                  [b"HTTP_X_FORWARDED_PROTO=https, http", b"HTTP_X_FORWARDED_HOST=a.example:443"]),
              env(b"GET", b"/nothing", b"", [b"DOCUMENT_URI=/v0.7/networks/1/"])]
    write("route", [("env", d) for d in routes])


if __name__ == "__main__":
    sys.exit(main())
