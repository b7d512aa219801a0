"""Helpers for the inference tests (tests/e2e/test_inference.py): requests
sent the way the official Python client sends them, .npy and PNG files
without numpy or PIL, tolerance checks.

Only the standard library and Debian's python3-requests are used.  The
official client (deepomatic-api on PyPI) is not installable here (no PyPI,
no Debian package), so its requests are rebuilt from its source,
github.com/Deepomatic/deepomatic-client-python:

- deepomatic/api/inference.py InferenceResource.inference: pops `inputs`,
  formats them with inputs.format_inputs, POSTs to <network>/inference with
  the remaining keyword arguments as data, then waits for the task.
- deepomatic/api/inputs.py: an ImageInput whose source is a file object or
  raw bytes needs multipart (base64 given by the caller is decoded first
  and sent as binary); a URL goes in JSON.  Each input is
  {"image": {"source": ..., "crop_uniform_background": False[, "bbox": ...]}}.
- deepomatic/api/http_helper.py make_request: for multipart, data and files
  are both flattened by dump_json_for_multipart (`inputs[0]image.source`);
  file values that are file objects or bytes are sent as files, every other
  value as a (None, value, 'application/json') part, which requests writes
  with str() (so False arrives as "False").
"""

import base64
import json
import struct
import zlib

import requests

import helpers_deploy
from nnreg_client import REPO

NETWORKS = REPO / "tests" / "fixtures" / "networks"


# --- the official client's requests --------------------------------------------

def dump_json_for_multipart(data):
    """http_helper.dump_json_for_multipart, rewritten: `.key` descends into an
    object except right after `]`, `[i]` indexes a list."""
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


def tf2_preprocessing():
    """One 1x1 grey image input fed to the TF2 half_plus_two's
    serving_default_x."""
    return {"inputs": [{"tensor_name": "serving_default_x:0",
                        "image": {"dimension_order": "NHWC", "resize_type": "SQUASH",
                                  "target_size": "1x1", "color_channels": "L",
                                  "pixel_scaling": 255.0, "mean_file": None}}]}


def client_inputs(source, bbox=None):
    image = {"source": source, "crop_uniform_background": False}
    if bbox is not None:
        image["bbox"] = bbox
    return [{"image": image}]


def post_inference_like_client(stack, network_id, image_bytes, api_key=None, bbox=None,
                               **kwargs):
    """network.inference(inputs=[ImageInput(image_bytes, encoding='binary')],
    **kwargs) as the client sends it: multipart, the image as a file part."""
    data = dump_json_for_multipart(kwargs)
    files = dump_json_for_multipart({"inputs": client_inputs(image_bytes, bbox)})
    parts = {}
    for key, value in files.items():
        if hasattr(value, "read") or isinstance(value, bytes):
            parts[key] = value
        else:
            parts[key] = (None, value, "application/json")
    headers = {"X-API-KEY": api_key or stack.api_key,
               "User-Agent": "deepomatic-api-python-client/0.9.0 requests/%s" % requests.__version__}
    return requests.post(stack.url("networks/%d/inference" % network_id), data=data,
                         files=parts, headers=headers, timeout=60)


def post_inference_json(stack, network_id, body, api_key=None):
    return requests.post(stack.url("networks/%d/inference" % network_id),
                         data=json.dumps(body),
                         headers={"X-API-KEY": api_key or stack.api_key,
                                  "Content-Type": "application/json"},
                         timeout=60)


def json_body(image_bytes, output_tensors=None, bbox=None):
    body = {"inputs": [{"image": {"source": base64.b64encode(image_bytes).decode()}}]}
    if bbox is not None:
        body["inputs"][0]["image"]["bbox"] = bbox
    if output_tensors is not None:
        body["output_tensors"] = output_tensors
    return body


def wait_task(stack, task_id, api_key=None, timeout=180.0):
    """Polls the task until it leaves pending (bounded); returns it."""
    return helpers_deploy.wait_task(stack, task_id, timeout=timeout, api_key=api_key,
                                    interval=0.02)


# --- files ---------------------------------------------------------------------

def read_npy(path):
    """(shape, values) of a little-endian float32 .npy file (v1/v2/v3)."""
    raw = path.read_bytes()
    assert raw[:6] == b"\x93NUMPY", path
    major = raw[6]
    if major == 1:
        hlen = struct.unpack_from("<H", raw, 8)[0]
        start = 10
    else:
        hlen = struct.unpack_from("<I", raw, 8)[0]
        start = 12
    header = raw[start:start + hlen].decode("latin1")
    d = eval(header, {"__builtins__": {}}, {"True": True, "False": False})  # a dict literal
    assert d["descr"] == "<f4" and not d["fortran_order"], (path, d)
    shape = list(d["shape"])
    n = 1
    for s in shape:
        n *= s
    values = struct.unpack_from("<%df" % n, raw, start + hlen)
    return shape, values


def png_bytes(width, height, pixels, grey=False):
    """A PNG (8-bit RGB, or grey) from rows of pixel tuples or ints."""
    rows = b""
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            p = pixels[y][x]
            row += bytes([p]) if grey else bytes(p)
        rows += bytes(row)

    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0 if grey else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def check_close(name, got, expected_shape, expected, atol, rtol):
    """Every |got - expected| <= atol + rtol * |expected|; returns the worst
    difference."""
    assert got["shape"] == expected_shape, (name, got["shape"], expected_shape)
    assert got["dims"] == got["shape"], name
    data = got["data"]
    assert len(data) == len(expected), (name, len(data), len(expected))
    worst = 0.0
    bad = []
    for i, (g, e) in enumerate(zip(data, expected)):
        assert g is not None, "%s[%d] is not finite" % (name, i)
        diff = abs(g - e)
        worst = max(worst, diff)
        if diff > atol + rtol * abs(e) and len(bad) < 5:
            bad.append((i, g, e))
    assert not bad, "%s: values outside tolerance (index, got, expected): %s" % (name, bad)
    return worst
