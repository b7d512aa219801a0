"""Helpers for the end-to-end tests: talk to nnreg the way its clients do.

Only Debian's python3-requests is needed.  Nothing here starts services; see
conftest.py for the stack.
"""

import json
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
MODELS = FIXTURES / "models"

JSON_TYPE = "application/json; charset=utf-8"

# A preprocessing that matches the half_plus_two / half_plus_three fixtures
# (serving_default: x:0 -> y:0).
DEFAULT_PREPROCESSING = {
    "inputs": [
        {
            "tensor_name": "x:0",
            "image": {
                "dimension_order": "NHWC",
                "resize_type": "SQUASH",
                "target_size": "1x1",
                "color_channels": "L",
                "pixel_scaling": 255.0,
                "mean_file": None,
            },
        }
    ],
    "batched_output": True,
}
DEFAULT_POSTPROCESSINGS = [{"tensors_output": {"tensors": ["y:0"]}}]


def flatten_for_multipart(data):
    """Flattens nested data into form fields as the official Python client
    (deepomatic-api, http_helper.dump_json_for_multipart) does, Django-REST
    style: `.key` descends into an object, except right after `]`; `[i]`
    indexes an array.  Scalars are kept as they are: requests then sends
    str(value) (True, 2.0, 255) and drops None."""
    out = {}

    def walk(prefix, value, after_index):
        if isinstance(value, dict):
            sep = "" if (after_index or prefix == "") else "."
            for key, sub in value.items():
                walk(prefix + sep + key, sub, False)
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                walk("%s[%d]" % (prefix, i), sub, True)
        else:
            if prefix in out:
                raise ValueError("duplicate key " + prefix)
            out[prefix] = value

    walk("", data, True)
    return out


def model_files(model="half_plus_two_cpu", root=MODELS):
    """The upload parts of a fixture model: {part name: path}, named as the
    API expects (saved_model.pb or saved_model.pbtxt, variables.index,
    variables.data-SSSSS-of-NNNNN).  Assets are not part of an upload."""
    base = Path(root) / model
    files = {}
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        if (base / name).is_file():
            files[name] = base / name
    variables = base / "variables"
    if variables.is_dir():
        for f in sorted(variables.iterdir()):
            if f.name == "variables.index" or f.name.startswith("variables.data-"):
                files[f.name] = f
    if not files:
        raise FileNotFoundError("no model files in %s" % base)
    return files


def network_fields(name="test network", framework="tensorflow-1.x",
                   preprocessing=None, postprocessings=None, **extra):
    """The non-file fields of a create, as a nested dict."""
    data = {
        "name": name,
        "framework": framework,
        "preprocessing": DEFAULT_PREPROCESSING if preprocessing is None else preprocessing,
    }
    if postprocessings is not False:
        data["postprocessings"] = (DEFAULT_POSTPROCESSINGS if postprocessings is None
                                   else postprocessings)
    data.update(extra)
    return data


def create_network(base_url, api_key, app_id=None, model="half_plus_two_cpu",
                   files=None, headers=None, timeout=600, **fields):
    """POSTs a create exactly as the official client sends it: multipart,
    flattened fields first, then one file part per file, named by its API
    name, filename the local file's basename.

    files: {part name: path | bytes | (filename, bytes-or-file[, type])}.
    Defaults to model_files(model).  Returns the requests.Response."""
    if files is None:
        files = model_files(model)
    data = flatten_for_multipart(network_fields(**fields))
    opened = []
    parts = {}
    try:
        for part, value in files.items():
            if isinstance(value, (str, Path)):
                fh = open(value, "rb")
                opened.append(fh)
                parts[part] = fh
            else:
                parts[part] = value
        hdrs = {"X-API-KEY": api_key}
        if app_id:
            hdrs["X-APP-ID"] = app_id
        if headers:
            hdrs.update(headers)
        return requests.post(api_url(base_url, "networks/"), data=data, files=parts,
                             headers=hdrs, timeout=timeout)
    finally:
        for fh in opened:
            fh.close()


def api_url(base_url, path):
    """base_url is http://host:port; path is relative to /v0.7/ unless it
    starts with a slash."""
    if path.startswith("http://") or path.startswith("https://"):
        return path
    if path.startswith("/"):
        return base_url.rstrip("/") + path
    return base_url.rstrip("/") + "/v0.7/" + path


def assert_json(resp, status=None):
    """Checks status and JSON content type; returns the decoded body."""
    if status is not None:
        assert resp.status_code == status, "expected %s, got %s: %s" % (
            status, resp.status_code, resp.text[:2000])
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), "not JSON (%r): %s" % (ctype, resp.text[:500])
    return resp.json()


def assert_error(resp, status, error_code=None, fields=None):
    """Checks an error response in API.md's shape; returns its body.
    fields: an iterable of paths that must appear in body["fields"]."""
    body = assert_json(resp, status)
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("error_code"), str) and body["error_code"], body
    if error_code is not None:
        assert body["error_code"] == error_code, body
    if fields:
        assert isinstance(body.get("fields"), dict), body
        for path in fields:
            assert path in body["fields"], "field %r not in %s" % (path, body["fields"])
    return body


def iter_pages(session, url, limit=1000):
    """Follows `next` links from url; yields every page body.  Stops after
    `limit` pages to never loop forever."""
    for _ in range(limit):
        resp = session.get(url, timeout=60)
        body = assert_json(resp, 200)
        yield body
        url = body.get("next")
        if not url:
            return
    raise AssertionError("more than %d pages" % limit)


def pretty(obj):
    return json.dumps(obj, indent=2, sort_keys=True)


def wait_until(predicate, timeout=30.0, interval=0.2):
    """Polls predicate() until it returns a truthy value; returns it, or
    raises AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %.0fs" % timeout)
        time.sleep(interval)
