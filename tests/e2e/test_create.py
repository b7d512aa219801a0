"""POST /v0.7/networks/ end to end, through nginx + nnreg-fcgi + PostgreSQL.

Successful creates (the official client's encoding, a `data` JSON part, a
JSON part at a path, every fixture model), every refused create (each
leaving no row, no blob, no task and no temp file behind), content
addressing, Idempotency-Key, and authentication of the route.
"""

import copy
import hashlib
import json
import threading
import uuid

import pytest
import requests

import helpers_create as hc
import nnreg_client
from nnreg_client import assert_json

# --- shared checks -------------------------------------------------------------


def assert_create_error(resp, status, code, fields=None, exact_fields=True, mentions=()):
    """An error in API.md's shape: JSON {error, error_code[, fields]}.
    fields: paths that must be in body["fields"] (all of them and no other
    when exact_fields); mentions: strings the message must contain."""
    body = assert_json(resp, status)
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"].strip(), body
    assert body.get("error_code") == code, body
    if fields:
        assert isinstance(body.get("fields"), dict), body
        if exact_fields:
            assert set(body["fields"]) == set(fields), body
        else:
            assert set(fields) <= set(body["fields"]), body
        for path in fields:
            assert isinstance(body["fields"][path], str) and body["fields"][path], body
    elif code != "validation_error":
        # Non-validation errors name the culprit in the message; a
        # `fields`, when present, must still be an object.
        assert not isinstance(body.get("fields"), (list, str)), body
    text = json.dumps(body)
    for m in mentions:
        assert m in text, "%r not in %s" % (m, body)
    return body


def refused(stack, send, status, code, fields=None, exact_fields=True, mentions=()):
    """Runs send() (returning a Response) and checks it is the given error
    and that it left nothing behind."""
    before = hc.snapshot(stack)
    resp = send()
    body = assert_create_error(resp, status, code, fields, exact_fields, mentions)
    hc.assert_nothing_left(stack, before)
    return body


def created(resp):
    body = assert_json(resp, 201)
    assert set(body) == hc.NETWORK_KEYS, sorted(body)
    return body


def valid_fields(**kw):
    return hc.create_fields(**kw)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# --- the official client's create ----------------------------------------------


def test_create_as_the_official_client_sends_it(stack):
    """requests.post with the fields flattened by the client's
    dump_json_for_multipart and file parts named by file name, as
    deepomatic-api's Network.create sends them."""
    name = "official client " + uuid.uuid4().hex[:8]
    owner = "owner-" + uuid.uuid4().hex[:6]
    pre = hc.preprocessing("x:0", pixel_scaling=2.0, resize_type="SQUASH", target_size="1x1",
                           color_channels="L", dimension_order="NHWC")
    pre["inputs"][0]["image"].pop("mean_file")  # requests would drop a None anyway
    data = hc.flatten_like_official_client({
        "name": name,
        "description": "created like deepomatic-api does",
        "metadata": {"owner": owner},
        "framework": "tensorflow-1.x",
        "preprocessing": pre,
        "postprocessings": [{"tensors_output": {"tensors": ["y:0"]}}],
    })
    # Exactly the keys and values the client puts on the wire.
    assert data["preprocessing.inputs[0]tensor_name"] == "x:0"
    assert data["preprocessing.inputs[0]image.target_size"] == "1x1"
    assert data["preprocessing.batched_output"] is True  # sent as "True"
    assert data["postprocessings[0]tensors_output.tensors[0]"] == "y:0"
    assert data["metadata.owner"] == owner
    assert data["preprocessing.inputs[0]image.pixel_scaling"] == 2.0  # sent as "2.0"

    paths = {"saved_model.pb": hc.HP2 / "saved_model.pb",
             "variables.index": hc.HP2 / "variables" / "variables.index",
             "variables.data-00000-of-00001": hc.HP2 / "variables" / "variables.data-00000-of-00001"}
    session = requests.Session()
    session.headers.update({"User-Agent": "deepomatic-api-python-client/0.9.0 requests/2.28",
                            "X-API-KEY": stack.api_key, "X-APP-ID": stack.app_id})
    before = hc.snapshot(stack)
    with hc.DeployListener(stack) as listener:
        handles = {part: open(path, "rb") for part, path in paths.items()}
        try:
            resp = session.post(stack.url("networks/"), data=data, files=handles, timeout=600)
        finally:
            for fh in handles.values():
                fh.close()
        body = created(resp)
        notified = listener.payloads()

    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    nid = body["id"]
    assert isinstance(nid, int) and nid > 0
    assert body["name"] == name
    assert body["description"] == "created like deepomatic-api does"
    assert body["metadata"] == {"owner": owner}
    assert body["framework"] == "tensorflow-1.x"
    image = body["preprocessing"]["inputs"][0]["image"]
    assert body["preprocessing"]["inputs"][0]["tensor_name"] == "x:0"
    assert body["preprocessing"]["batched_output"] is True
    assert image == {"dimension_order": "NHWC", "resize_type": "SQUASH", "target_size": "1x1",
                     "color_channels": "L", "pixel_scaling": 2.0, "mean_file": None,
                     "data_type": "FLOAT32"}
    assert isinstance(image["pixel_scaling"], float), image  # a number: 2.0, not "2.0" or 2
    assert body["postprocessings"] == [{"tensors_output": {"tensors": ["y:0"]}}]
    assert body["is_public"] is False and body["slug"] is None
    for key in ("create_date", "update_date"):
        assert hc.ISO_Z.match(body[key]), body[key]
    assert body["create_date"] == body["update_date"]

    # files[]: every part, with its size, SHA-256 and detected type.
    by_name = {f["name"]: f for f in body["files"]}
    assert set(by_name) == set(paths)
    for part, path in paths.items():
        f = by_name[part]
        assert set(f) == {"name", "size", "sha256", "type"}, f
        content = path.read_bytes()
        assert f["size"] == len(content)
        assert f["sha256"] == sha256(content)
        assert isinstance(f["type"], str) and f["type"].strip(), f
        # The blob is in the content-addressed store, byte for byte.
        blob = stack.blob_dir / "sha256" / f["sha256"][:2] / f["sha256"]
        assert blob.read_bytes() == content
    assert "PDP-11" not in by_name["saved_model.pb"]["type"]

    # ETag and Location; the Location answers the same network.
    etag = resp.headers.get("ETag")
    assert etag == '"%d-1"' % nid, resp.headers
    location = resp.headers.get("Location")
    assert location == stack.base_url + "/v0.7/networks/%d/" % nid, resp.headers
    again = requests.get(location, headers={"X-API-KEY": stack.api_key}, timeout=30)
    assert assert_json(again, 200) == body
    assert again.headers.get("ETag") == etag

    # One network, one pending task, the task's NOTIFY, the file rows.
    after = hc.snapshot(stack)
    assert after["rows"]["networks"] == before["rows"]["networks"] + 1
    assert after["rows"]["tasks"] == before["rows"]["tasks"] + 1
    assert after["rows"]["network_files"] == before["rows"]["network_files"] + 3
    assert after["tmp_files"] == set()
    task_id = body["task_id"]
    assert isinstance(task_id, int) and task_id > 0
    row = stack.sql_rows("SELECT t.network_id, t.kind, o.name FROM tasks t "
                         "JOIN organizations o ON o.id = t.org_id WHERE t.id = %d" % task_id)
    assert row == [[str(nid), "deploy", stack.org]], row
    task = assert_json(stack.get("tasks/%d/" % task_id), 200)
    assert set(task) == {"id", "name", "status", "error", "data", "create_date", "update_date"}
    assert task["id"] == task_id
    assert str(nid) in task["name"]
    assert task["error"] is None
    assert hc.ISO_Z.match(task["create_date"]) and hc.ISO_Z.match(task["update_date"])
    # Created pending; when a deployer runs beside the API (nnreg-deployer,
    # started by scripts/dev once built) it may already have deployed this
    # valid model, but it must never have failed it.
    assert task["status"] in ("pending", "success"), task
    if task["status"] == "pending":
        assert task["data"] is None, task  # (a deployer may hold it: still pending)
    else:
        assert isinstance(task["data"], dict), task
    assert notified.count(str(task_id)) == 1, notified
    assert stack.sql_value("SELECT count(*) FROM network_files WHERE network_id = %d" % nid) == "3"


def test_pixel_scaling_default_is_a_float(stack):
    pre = hc.preprocessing("x:0", pixel_scaling=None)
    body = created(stack.create_network(name="default scaling", preprocessing=pre,
                                        files=hc.unique_files()))
    image = body["preprocessing"]["inputs"][0]["image"]
    assert image["pixel_scaling"] == 255.0 and isinstance(image["pixel_scaling"], float), image


# --- other accepted encodings ----------------------------------------------------


def test_create_with_a_data_json_part(stack):
    fields = nnreg_client.network_fields(name="from a data part",
                                         metadata={"k": [1, 2, {"n": None}]},
                                         postprocessings=[{"tensors_output": ["y:0"]}])
    files = hc.unique_files()
    parts = [("data", json.dumps(fields), None, "application/json")] + hc.file_parts(files)
    resp = hc.post_raw(stack, hc.multipart_body(parts),
                       "multipart/form-data; boundary=nnreg-test-boundary-7f3a")
    body = created(resp)
    assert body["name"] == "from a data part"
    assert body["metadata"] == {"k": [1, 2, {"n": None}]}
    # A bare tensors_output list is normalized.
    assert body["postprocessings"] == [{"tensors_output": {"tensors": ["y:0"]}}]
    assert body["preprocessing"]["inputs"][0]["image"]["pixel_scaling"] == 255.0
    assert {f["name"] for f in body["files"]} == set(files)


def test_create_with_a_data_part_without_content_type(stack):
    """A part named `data` holds JSON whatever its Content-Type."""
    fields = nnreg_client.network_fields(name="data part, no type")
    parts = [("data", json.dumps(fields))] + hc.file_parts(hc.unique_files())
    resp = hc.post_raw(stack, hc.multipart_body(parts),
                       "multipart/form-data; boundary=nnreg-test-boundary-7f3a")
    assert created(resp)["name"] == "data part, no type"


def test_create_with_a_json_part_at_a_path(stack):
    """A part with Content-Type application/json is merged at its path."""
    files = hc.unique_files()
    pre = hc.preprocessing("x:0", target_size="1x1")
    parts = [("name", "json at a path"), ("framework", "tensorflow-1.x"),
             ("preprocessing", json.dumps(pre), None, "application/json"),
             ("postprocessings[0]tensors_output", json.dumps({"tensors": ["y:0"]}), None,
              "application/json; charset=utf-8"),
             ("metadata", json.dumps({"team": "vision", "n": 3}), None, "application/json")]
    parts += hc.file_parts(files)
    resp = hc.post_raw(stack, hc.multipart_body(parts),
                       "multipart/form-data; boundary=nnreg-test-boundary-7f3a")
    body = created(resp)
    assert body["name"] == "json at a path"
    assert body["metadata"] == {"team": "vision", "n": 3}
    assert body["preprocessing"]["inputs"][0]["tensor_name"] == "x:0"
    assert body["postprocessings"] == [{"tensors_output": {"tensors": ["y:0"]}}]


FIXTURES = [
    # model, input tensor, output tensors, files expected
    ("half_plus_two_cpu", "x:0", ["y:0"],
     {"saved_model.pb", "variables.index", "variables.data-00000-of-00001"}),
    ("half_plus_three", "x:0", ["y:0"],
     {"saved_model.pb", "variables.index", "variables.data-00000-of-00001"}),
    ("counter", "delta:0", ["counter:0", "incr_counter_by_op/AssignAdd:0"],
     {"saved_model.pb", "variables.index", "variables.data-00000-of-00001"}),
    ("half_plus_two_tf2_cpu", "serving_default_x:0", ["StatefulPartitionedCall_5:0"],
     {"saved_model.pb", "variables.index", "variables.data-00000-of-00001"}),
    ("half_plus_two_mkl", "x:0", ["y:0", "y3"],
     {"saved_model.pb", "variables.index", "variables.data-00000-of-00001"}),
    ("matrix_half_plus_two", "x:0", ["y:0"], {"saved_model.pb"}),
    ("half_plus_two_pbtxt", "x:0", ["y:0", "Identity:0"], {"saved_model.pbtxt"}),
]


@pytest.mark.parametrize("model,tensor,outs,expected", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_every_fixture_model_creates(stack, model, tensor, outs, expected):
    resp = stack.create_network(model=model, name="fixture " + model,
                                preprocessing=hc.preprocessing(tensor),
                                postprocessings=hc.outputs(*outs))
    body = created(resp)
    files = {f["name"]: f for f in body["files"]}
    assert set(files) == expected
    for part, path in nnreg_client.model_files(model).items():
        assert files[part]["sha256"] == sha256(path.read_bytes())
        assert files[part]["size"] == path.stat().st_size
    graph = assert_json(stack.get("networks/%d/graph/" % body["id"]), 200)
    assert any(i["name"] == tensor for i in graph["inputs"]) or model == "half_plus_two_tf2_cpu"
    assert graph["node_count"] > 0


def test_both_graph_formats_sent_together(stack):
    files = hc.unique_files()
    files["saved_model.pbtxt"] = ("saved_model.pbtxt", hc.unique_pbtxt())
    body = created(stack.create_network(name="pb and pbtxt", files=files))
    assert {f["name"] for f in body["files"]} == set(files)


def test_create_with_a_mean_file(stack):
    pre = hc.preprocessing("x:0", mean_file="mean.npy", color_channels="RGB")
    files = hc.unique_files()
    files["mean.npy"] = ("mean.npy", hc.npy_bytes((3,)))
    body = created(stack.create_network(name="with mean", preprocessing=pre, files=files))
    assert body["preprocessing"]["inputs"][0]["image"]["mean_file"] == "mean.npy"
    assert "mean.npy" in {f["name"] for f in body["files"]}


def test_network_form_target_size(stack):
    pre = hc.preprocessing("x:0", resize_type="NETWORK", target_size="512")
    body = created(stack.create_network(name="network resize", preprocessing=pre,
                                        files=hc.unique_files()))
    assert body["preprocessing"]["inputs"][0]["image"]["target_size"] == "512"


# --- refused: encodings ------------------------------------------------------------


def test_json_create_is_files_required(stack):
    body = json.dumps(nnreg_client.network_fields())
    refused(stack, lambda: requests.post(
        stack.url("networks/"), data=body, timeout=30,
        headers={"X-API-KEY": stack.api_key, "Content-Type": "application/json"}),
        400, "files_required", mentions=("multipart/form-data",))


def test_text_plain_create_is_415(stack):
    refused(stack, lambda: requests.post(
        stack.url("networks/"), data="name=x", timeout=30,
        headers={"X-API-KEY": stack.api_key, "Content-Type": "text/plain"}),
        415, "unsupported_media_type")


def test_form_urlencoded_create_is_415(stack):
    refused(stack, lambda: requests.post(
        stack.url("networks/"), data=valid_fields(), timeout=30,
        headers={"X-API-KEY": stack.api_key}), 415, "unsupported_media_type")


def test_multipart_without_boundary(stack):
    body = hc.multipart_body(hc.field_parts(valid_fields()))
    refused(stack, lambda: hc.post_raw(stack, body, "multipart/form-data"),
            400, "invalid_multipart", mentions=("boundary",))


def test_multipart_without_closing_boundary(stack):
    files = hc.unique_files()
    parts = hc.field_parts(valid_fields()) + hc.file_parts(files)
    body = hc.multipart_body(parts, closing=False)
    refused(stack, lambda: hc.post_raw(
        stack, body, "multipart/form-data; boundary=nnreg-test-boundary-7f3a"),
        400, "invalid_multipart")


def test_multipart_cut_inside_a_file(stack):
    files = hc.unique_files()
    parts = hc.field_parts(valid_fields()) + hc.file_parts(files)
    body = hc.multipart_body(parts)
    cut = body.index(files["saved_model.pb"][1]) + 1000
    refused(stack, lambda: hc.post_raw(
        stack, body[:cut], "multipart/form-data; boundary=nnreg-test-boundary-7f3a"),
        400, "invalid_multipart")


def test_part_without_a_name(stack):
    body = (b"--b0\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b0--\r\n")
    refused(stack, lambda: hc.post_raw(stack, body, "multipart/form-data; boundary=b0"),
            400, "invalid_multipart")


@pytest.mark.parametrize("key", ["preprocessing..inputs", "preprocessing.inputs[x]tensor_name",
                                 "preprocessing.inputs[0", "[0]name"])
def test_invalid_form_key(stack, key):
    fields = valid_fields()
    fields[key] = "1"
    files = hc.unique_files()
    refused(stack, lambda: hc.post_create(stack, data=fields, files=files),
            400, "invalid_form_key", mentions=(key,))


def test_conflicting_form_keys(stack):
    fields = valid_fields()
    fields["name.first"] = "x"  # name is a string already
    refused(stack, lambda: hc.post_create(stack, data=fields, files=hc.unique_files()),
            400, "invalid_form_key", mentions=("name.first",))


def test_invalid_json_in_data_part(stack):
    parts = [("data", '{"name": "x",', None, "application/json")] + hc.file_parts(hc.unique_files())
    refused(stack, lambda: hc.post_raw(stack, hc.multipart_body(parts),
                                       "multipart/form-data; boundary=nnreg-test-boundary-7f3a"),
            400, "invalid_json", mentions=("data",))


def test_data_part_not_an_object(stack):
    parts = [("data", "[1, 2]", None, "application/json")] + hc.file_parts(hc.unique_files())
    refused(stack, lambda: hc.post_raw(stack, hc.multipart_body(parts),
                                       "multipart/form-data; boundary=nnreg-test-boundary-7f3a"),
            400, "invalid_body", mentions=("data",))


# --- refused: the file set ------------------------------------------------------------


def test_no_file_at_all(stack):
    body = hc.multipart_body(hc.field_parts(valid_fields()))
    refused(stack, lambda: hc.post_raw(
        stack, body, "multipart/form-data; boundary=nnreg-test-boundary-7f3a"),
        400, "missing_graph", mentions=("saved_model.pb",))


def test_no_graph_file(stack):
    files = hc.unique_files()
    del files["saved_model.pb"]
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "missing_graph", mentions=("saved_model.pb",))


@pytest.mark.parametrize("name", ["model.pb", "saved_model.pb.bak", "saved_model.PB",
                                  "variables.data-00001-of-00001", "variables.data-0-of-1",
                                  "../saved_model.pb", "assets/foo.txt"])
def test_unexpected_file_name(stack, name):
    files = hc.unique_files()
    files[name] = ("x.bin", hc.unique_pb())
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "unexpected_file", mentions=(json.dumps(name)[1:-1],))


def test_duplicate_file_part(stack):
    files = hc.file_parts(hc.unique_files())
    files.append(("saved_model.pb", hc.unique_pb(), "saved_model.pb", None))
    body = hc.multipart_body(hc.field_parts(valid_fields()) + files)
    refused(stack, lambda: hc.post_raw(
        stack, body, "multipart/form-data; boundary=nnreg-test-boundary-7f3a"),
        400, "duplicate_file", mentions=("saved_model.pb",))


def test_index_without_data(stack):
    files = hc.unique_files()
    del files["variables.data-00000-of-00001"]
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "missing_variables_data", mentions=("variables.index",))


def test_data_without_index(stack):
    files = hc.unique_files()
    del files["variables.index"]
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "missing_variables_index", mentions=("variables.index",))


def test_missing_shard(stack):
    files = hc.unique_files()
    del files["variables.data-00000-of-00001"]
    files["variables.data-00000-of-00002"] = ("d0", hc.unique_data_shard())
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "missing_variables_shard", mentions=("variables.data-00001-of-00002",))


def test_shards_of_different_counts(stack):
    files = hc.unique_files()
    files["variables.data-00000-of-00002"] = ("d0", hc.unique_data_shard())
    files["variables.data-00001-of-00002"] = ("d1", hc.unique_data_shard())
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "inconsistent_shards")


def test_two_shards_create(stack):
    files = hc.unique_files()
    del files["variables.data-00000-of-00001"]
    files["variables.data-00000-of-00002"] = ("d0", hc.unique_data_shard())
    files["variables.data-00001-of-00002"] = ("d1", hc.unique_data_shard())
    body = created(stack.create_network(name="two shards", files=files))
    assert {f["name"] for f in body["files"]} == set(files)


# --- refused: file contents -------------------------------------------------------------


@pytest.mark.parametrize("part", ["saved_model.pb", "variables.index",
                                  "variables.data-00000-of-00001"])
def test_empty_file(stack, part):
    files = hc.unique_files()
    files[part] = (part, b"")
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "empty_file", mentions=(part,))


def test_empty_pbtxt(stack):
    files = {"saved_model.pbtxt": ("saved_model.pbtxt", b"")}
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "empty_file", mentions=("saved_model.pbtxt",))


IMPOSTORS = [
    ("png", hc.png_bytes, "PNG"),
    ("zip", hc.zip_bytes, "Zip"),
    ("elf", hc.elf_bytes, "ELF"),
    ("html", hc.html_bytes, "HTML"),
]


@pytest.mark.parametrize("kind,make,looks_like", IMPOSTORS, ids=[i[0] for i in IMPOSTORS])
def test_impostor_saved_model(stack, kind, make, looks_like):
    files = hc.unique_files()
    files["saved_model.pb"] = ("saved_model.pb", make())
    body = refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
                   400, "file_type_mismatch", mentions=("saved_model.pb",))
    assert looks_like.lower() in body["error"].lower(), body


@pytest.mark.parametrize("kind,make,looks_like", IMPOSTORS, ids=[i[0] for i in IMPOSTORS])
def test_impostor_variables_index(stack, kind, make, looks_like):
    files = hc.unique_files()
    files["variables.index"] = ("variables.index", make())
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "file_type_mismatch", mentions=("variables.index",))


@pytest.mark.parametrize("kind,make,looks_like", IMPOSTORS, ids=[i[0] for i in IMPOSTORS])
def test_impostor_data_shard(stack, kind, make, looks_like):
    files = hc.unique_files()
    files["variables.data-00000-of-00001"] = ("variables.data-00000-of-00001", make())
    body = refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
                   400, "file_type_mismatch", mentions=("variables.data-00000-of-00001",))
    assert looks_like.lower() in body["error"].lower(), body


@pytest.mark.parametrize("kind,make,looks_like", IMPOSTORS, ids=[i[0] for i in IMPOSTORS])
def test_impostor_pbtxt(stack, kind, make, looks_like):
    files = {"saved_model.pbtxt": ("saved_model.pbtxt", make())}
    body = refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
                   400, "file_type_mismatch", mentions=("saved_model.pbtxt",))
    assert looks_like.lower() in body["error"].lower(), body


def test_gzipped_saved_model(stack):
    import gzip
    files = hc.unique_files()
    files["saved_model.pb"] = ("saved_model.pb", gzip.compress(hc.unique_pb()))
    body = refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
                   400, "file_type_mismatch", mentions=("saved_model.pb",))
    assert "gzip" in body["error"].lower(), body


def test_protobuf_that_is_not_a_saved_model(stack):
    """A well-formed protobuf (schema version 1, then an unknown varint
    field) with no meta graph in it."""
    data = b"\x08\x01\x18" + hc._varint(uuid.uuid4().int % 10 ** 9)
    files = {"saved_model.pb": ("saved_model.pb", data)}
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "invalid_graph", mentions=("saved_model.pb",))


def test_pbtxt_with_invalid_utf8(stack):
    text = hc.unique_pbtxt()
    cut = text.index(b"tensorflow_version")
    bad = text[:cut] + b"# caf\xe9 \xff\xfe\n" + text[cut:]
    files = {"saved_model.pbtxt": ("saved_model.pbtxt", bad)}
    body = refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
                   400, "file_type_mismatch", mentions=("saved_model.pbtxt",))
    assert "utf-8" in body["error"].lower(), body


def test_binary_graph_sent_as_pbtxt(stack):
    files = {"saved_model.pbtxt": ("saved_model.pbtxt", hc.unique_pb())}
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "file_type_mismatch", mentions=("saved_model.pbtxt",))


def test_text_graph_sent_as_pb(stack):
    files = {"saved_model.pb": ("saved_model.pb", hc.unique_pbtxt())}
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "file_type_mismatch", mentions=("saved_model.pb",))


def test_pbtxt_that_does_not_parse(stack):
    text = hc.unique_pbtxt()
    files = {"saved_model.pbtxt": ("saved_model.pbtxt", text[: len(text) // 2])}
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "invalid_graph", mentions=("saved_model.pbtxt",))


@pytest.mark.parametrize("keep", [3, 100, 6000, 12000])
def test_truncated_saved_model(stack, keep):
    files = hc.unique_files()
    files["saved_model.pb"] = ("saved_model.pb", (hc.HP2 / "saved_model.pb").read_bytes()[:keep])
    body = assert_create_error_any(stack, files, ("invalid_graph", "file_type_mismatch"))
    assert "saved_model.pb" in body["error"]


def assert_create_error_any(stack, files, codes, fields=None):
    before = hc.snapshot(stack)
    resp = hc.post_create(stack, data=valid_fields(**(fields or {})), files=files)
    body = assert_json(resp, 400)
    assert body.get("error_code") in codes, body
    assert isinstance(body.get("error"), str) and body["error"], body
    hc.assert_nothing_left(stack, before)
    return body


def test_bit_flipped_length(stack):
    """A flipped bit in the meta_graphs length: the protobuf no longer
    walks; refused as not being the binary SavedModel it claims to be."""
    data = bytearray((hc.HP2 / "saved_model.pb").read_bytes())
    assert data[:3] == b"\x08\x01\x12"
    data[3] ^= 0x40
    files = hc.unique_files()
    files["saved_model.pb"] = ("saved_model.pb", bytes(data))
    body = assert_create_error_any(stack, files, ("invalid_graph", "file_type_mismatch"))
    assert "saved_model.pb" in body["error"]


def test_bit_flipped_node_name_is_invalid_graph(stack):
    """A flipped high bit in a node name: the protobuf still walks, but the
    name is no longer UTF-8, so the graph is refused as invalid."""
    data = bytearray((hc.HP2 / "saved_model.pb").read_bytes())
    pos = data.index(b"tf_example")
    data[pos] ^= 0x80
    files = hc.unique_files()
    files["saved_model.pb"] = ("saved_model.pb", bytes(data))
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "invalid_graph", mentions=("saved_model.pb",))


def test_bit_flips_never_crash_the_create(stack):
    """Single bit flips all over the graph: each create is either refused
    with a 400 that leaves nothing behind, or succeeds; never a 5xx."""
    import random
    rng = random.Random(20261128)
    original = (hc.HP2 / "saved_model.pb").read_bytes()
    outcomes = set()
    for _ in range(24):
        data = bytearray(original)
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
        files = hc.unique_files()
        files["saved_model.pb"] = ("saved_model.pb", bytes(data))
        before = hc.snapshot(stack)
        resp = hc.post_create(stack, data=valid_fields(name="flip %d" % pos), files=files)
        assert resp.status_code in (201, 400), (pos, resp.status_code, resp.text)
        assert_json(resp)
        if resp.status_code == 400:
            hc.assert_nothing_left(stack, before)
        outcomes.add(resp.status_code)
    assert 400 in outcomes


# --- refused: field rules -----------------------------------------------------------------


FIELD_CASES = [
    # id, fields passed to network_fields (dicts replace), expected field paths
    ("name_empty", {"name": "   "}, ["name"]),
    ("name_too_long", {"name": "n" * 256}, ["name"]),
    ("framework_wrong", {"framework": "pytorch"}, ["framework"]),
    ("framework_old_name", {"framework": "tensorflow"}, ["framework"]),
    ("description_too_long", {"description": "d" * 65537}, ["description"]),
    ("unknown_top_level", {"nmae": "typo"}, ["nmae"]),
    ("read_only_id", {"id": "7"}, ["id"]),
    ("batched_output_false", {"preprocessing": dict(hc.preprocessing(), batched_output=False)},
     ["preprocessing.batched_output"]),
    ("bad_resize_type", {"preprocessing": hc.preprocessing(resize_type="STRETCH")},
     ["preprocessing.inputs[0].image.resize_type"]),
    ("bad_dimension_order", {"preprocessing": hc.preprocessing(dimension_order="HWC")},
     ["preprocessing.inputs[0].image.dimension_order"]),
    ("bad_color_channels", {"preprocessing": hc.preprocessing(color_channels="RGBA")},
     ["preprocessing.inputs[0].image.color_channels"]),
    ("bad_data_type", {"preprocessing": hc.preprocessing(data_type="FLOAT64")},
     ["preprocessing.inputs[0].image.data_type"]),
    ("target_size_n_for_squash", {"preprocessing": hc.preprocessing(target_size="299")},
     ["preprocessing.inputs[0].image.target_size"]),
    ("target_size_wxh_for_network",
     {"preprocessing": hc.preprocessing(resize_type="NETWORK", target_size="299x299")},
     ["preprocessing.inputs[0].image.target_size"]),
    ("target_size_zero", {"preprocessing": hc.preprocessing(target_size="0x10")},
     ["preprocessing.inputs[0].image.target_size"]),
    ("target_size_too_big", {"preprocessing": hc.preprocessing(target_size="16385x1")},
     ["preprocessing.inputs[0].image.target_size"]),
    ("target_size_half", {"preprocessing": hc.preprocessing(target_size="299x")},
     ["preprocessing.inputs[0].image.target_size"]),
    ("target_size_letters", {"preprocessing": hc.preprocessing(target_size="axb")},
     ["preprocessing.inputs[0].image.target_size"]),
    ("target_size_signed", {"preprocessing": hc.preprocessing(target_size="+2x2")},
     ["preprocessing.inputs[0].image.target_size"]),
    ("target_size_spaces", {"preprocessing": hc.preprocessing(target_size="2 x 2")},
     ["preprocessing.inputs[0].image.target_size"]),
    ("target_size_network_zero",
     {"preprocessing": hc.preprocessing(resize_type="NETWORK", target_size="0")},
     ["preprocessing.inputs[0].image.target_size"]),
    ("target_size_missing", {"preprocessing": hc.preprocessing(target_size=None)},
     ["preprocessing.inputs[0].image.target_size"]),
    ("pixel_scaling_zero", {"preprocessing": hc.preprocessing(pixel_scaling=0)},
     ["preprocessing.inputs[0].image.pixel_scaling"]),
    ("pixel_scaling_negative", {"preprocessing": hc.preprocessing(pixel_scaling=-1.5)},
     ["preprocessing.inputs[0].image.pixel_scaling"]),
    ("pixel_scaling_text", {"preprocessing": hc.preprocessing(pixel_scaling="lots")},
     ["preprocessing.inputs[0].image.pixel_scaling"]),
    ("pixel_scaling_hex", {"preprocessing": hc.preprocessing(pixel_scaling="0x10")},
     ["preprocessing.inputs[0].image.pixel_scaling"]),
    ("pixel_scaling_space", {"preprocessing": hc.preprocessing(pixel_scaling=" 2")},
     ["preprocessing.inputs[0].image.pixel_scaling"]),
    ("pixel_scaling_overflow", {"preprocessing": hc.preprocessing(pixel_scaling="1e999")},
     ["preprocessing.inputs[0].image.pixel_scaling"]),
    ("pixel_scaling_nan", {"preprocessing": hc.preprocessing(pixel_scaling="nan")},
     ["preprocessing.inputs[0].image.pixel_scaling"]),
    ("pixel_scaling_inf", {"preprocessing": hc.preprocessing(pixel_scaling="inf")},
     ["preprocessing.inputs[0].image.pixel_scaling"]),
    ("mean_file_not_uploaded", {"preprocessing": hc.preprocessing(mean_file="mean.npy")},
     ["preprocessing.inputs[0].image.mean_file"]),
    ("mean_file_bad_extension", {"preprocessing": hc.preprocessing(mean_file="mean.txt")},
     ["preprocessing.inputs[0].image.mean_file"]),
    ("unknown_key_in_preprocessing",
     {"preprocessing": dict(hc.preprocessing(), normalize=True)},
     ["preprocessing.normalize"]),
    ("unknown_key_in_input",
     {"preprocessing": {"inputs": [dict(hc.preprocessing()["inputs"][0], shape="1x1")]}},
     ["preprocessing.inputs[0].shape"]),
    ("unknown_key_in_image", {"preprocessing": hc.preprocessing(resize="SQUASH")},
     ["preprocessing.inputs[0].image.resize"]),
    ("unknown_key_in_postprocessing",
     {"postprocessings": [{"tensors_output": {"tensors": ["y:0"]}, "thresholds": "0.5"}]},
     ["postprocessings[0].thresholds"]),
    ("unknown_key_in_tensors_output",
     {"postprocessings": [{"tensors_output": {"tensors": ["y:0"], "names": "a"}}]},
     ["postprocessings[0].tensors_output.names"]),
    ("unknown_key_in_standard_output",
     {"postprocessings": [{"standard_output": {"boxes_tensor": "y:0", "scores_tensor": "y:0",
                                               "classes_tensor": "y:0"}}]},
     ["postprocessings[0].standard_output.classes_tensor"]),
    ("standard_output_missing_scores",
     {"postprocessings": [{"standard_output": {"boxes_tensor": "y:0"}}]},
     ["postprocessings[0].standard_output.scores_tensor"]),
    ("both_outputs",
     {"postprocessings": [{"standard_output": {"boxes_tensor": "y:0", "scores_tensor": "y:0"},
                           "tensors_output": {"tensors": ["y:0"]}}]},
     ["postprocessings[0]"]),
    ("tensor_name_empty", {"preprocessing": hc.preprocessing("")},
     ["preprocessing.inputs[0].tensor_name"]),
    ("output_name_empty", {"postprocessings": hc.outputs("y:0", "")},
     ["postprocessings[0].tensors_output.tensors[1]"]),
    ("image_missing", {"preprocessing": {"inputs": [{"tensor_name": "x:0"}]}},
     ["preprocessing.inputs[0].image"]),
]


@pytest.mark.parametrize("fields,paths", [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES])
def test_field_rule(stack, fields, paths):
    data = valid_fields(**fields)
    refused(stack, lambda: hc.post_create(stack, data=data, files=hc.unique_files()),
            400, "validation_error", fields=paths)


def test_preprocessing_missing(stack):
    data = {k: v for k, v in valid_fields().items() if not k.startswith("preprocessing")}
    refused(stack, lambda: hc.post_create(stack, data=data, files=hc.unique_files()),
            400, "validation_error", fields=["preprocessing"])


def test_name_and_framework_missing(stack):
    data = {k: v for k, v in valid_fields().items() if k not in ("name", "framework")}
    refused(stack, lambda: hc.post_create(stack, data=data, files=hc.unique_files()),
            400, "validation_error", fields=["name", "framework"])


def test_inputs_empty_list(stack):
    fields = nnreg_client.network_fields(preprocessing={"inputs": []})
    parts = [("data", json.dumps(fields), None, "application/json")] + hc.file_parts(hc.unique_files())
    refused(stack, lambda: hc.post_raw(stack, hc.multipart_body(parts),
                                       "multipart/form-data; boundary=nnreg-test-boundary-7f3a"),
            400, "validation_error", fields=["preprocessing.inputs"])


def test_tensors_output_empty_in_json(stack):
    fields = nnreg_client.network_fields(postprocessings=[{"tensors_output": {"tensors": []}}])
    parts = [("data", json.dumps(fields), None, "application/json")] + hc.file_parts(hc.unique_files())
    refused(stack, lambda: hc.post_raw(stack, hc.multipart_body(parts),
                                       "multipart/form-data; boundary=nnreg-test-boundary-7f3a"),
            400, "validation_error", fields=["postprocessings[0].tensors_output.tensors"])


def test_tensors_output_empty_as_form_json_text(stack):
    data = valid_fields(postprocessings=False)
    data["postprocessings[0]tensors_output"] = "[]"
    refused(stack, lambda: hc.post_create(stack, data=data, files=hc.unique_files()),
            400, "validation_error", fields=["postprocessings[0].tensors_output"],
            exact_fields=False)


def test_every_violation_is_named_at_once(stack):
    pre = hc.preprocessing("x:0", resize_type="BAD", pixel_scaling=0, color_channels="CMYK")
    data = valid_fields(name="", framework="caffe", preprocessing=pre)
    refused(stack, lambda: hc.post_create(stack, data=data, files=hc.unique_files()),
            400, "validation_error",
            fields=["name", "framework", "preprocessing.inputs[0].image.resize_type",
                    "preprocessing.inputs[0].image.pixel_scaling",
                    "preprocessing.inputs[0].image.color_channels"])


def test_mean_file_uploaded_but_not_named(stack):
    files = hc.unique_files()
    files["mean.npy"] = ("mean.npy", hc.npy_bytes((3,), 0.25))
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=files),
            400, "unexpected_file", mentions=("mean.npy",))


def test_mean_file_that_is_not_npy(stack):
    pre = hc.preprocessing("x:0", mean_file="mean.npy")
    files = hc.unique_files()
    files["mean.npy"] = ("mean.npy", hc.png_bytes())
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(preprocessing=pre),
                                          files=files),
            400, "file_type_mismatch", mentions=("mean.npy",))


BOUNDARY_TYPE = "multipart/form-data; boundary=nnreg-test-boundary-7f3a"


def raw_create(stack, extra, drop=(), files=None, headers=None):
    """A raw multipart create: the valid fields minus `drop`, then `extra`
    parts (name, bytes-or-str[, filename, type]), then the files."""
    parts = [p for p in hc.field_parts(valid_fields()) if p[0] not in drop] + list(extra)
    parts += hc.file_parts(files if files is not None else hc.unique_files())
    return hc.post_raw(stack, hc.multipart_body(parts), BOUNDARY_TYPE, headers=headers)


TEXT_CASES = [
    ("name_latin1", "name", b"caf\xe9", "name"),
    ("name_nul", "name", b"a\x00b", "name"),
    ("description_invalid", "description", b"\xff\xfe", "description"),
    ("metadata_invalid", "metadata.owner", b"\xc3\x28", "metadata.owner"),
    ("metadata_nul", "metadata.notes[0]", b"x\x00", "metadata.notes[0]"),
    ("tensor_invalid", "preprocessing.inputs[0]tensor_name", b"x\xff:0",
     "preprocessing.inputs[0].tensor_name"),
    ("surrogate", "name", b"\xed\xa0\x80", "name"),
    ("overlong", "name", b"\xc0\xaf", "name"),
]


@pytest.mark.parametrize("key,value,path", [c[1:] for c in TEXT_CASES],
                         ids=[c[0] for c in TEXT_CASES])
def test_form_value_that_is_not_text(stack, key, value, path):
    """Raw bytes PostgreSQL cannot store (invalid UTF-8, NUL) are a 400
    naming the field, never a 500 or a silently truncated value."""
    refused(stack, lambda: raw_create(stack, [(key, value)], drop=(key,)),
            400, "validation_error", fields=[path])


def test_name_length_counts_characters(stack):
    body = created(hc.post_create(stack, data=valid_fields(name="\u00e9" * 255),
                                  files=hc.unique_files()))
    assert body["name"] == "\u00e9" * 255
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(name="\u00e9" * 256),
                                          files=hc.unique_files()),
            400, "validation_error", fields=["name"])


def test_name_is_trimmed(stack):
    body = created(hc.post_create(stack, data=valid_fields(name="  padded\t"),
                                  files=hc.unique_files()))
    assert body["name"] == "padded"


def test_batched_output_default_is_stored(stack):
    pre = hc.preprocessing("x:0")
    del pre["batched_output"]
    body = created(hc.post_create(stack, data=valid_fields(preprocessing=pre),
                                  files=hc.unique_files()))
    assert body["preprocessing"]["batched_output"] is True


def test_name_given_twice(stack):
    refused(stack, lambda: raw_create(stack, [("name", "again")]),
            400, "invalid_form_key", mentions=("name",))


@pytest.mark.parametrize("data_first", [True, False], ids=["data_first", "data_last"])
def test_data_part_and_field_for_the_same_value(stack, data_first):
    data = ("data", json.dumps({"name": "from data"}), None, "application/json")
    extra = [data, ("name", "from a field")] if data_first else [("name", "from a field"), data]
    refused(stack, lambda: raw_create(stack, extra, drop=("name",)),
            400, "invalid_form_key", mentions=("name",))


@pytest.mark.parametrize("data_first", [True, False], ids=["data_first", "data_last"])
def test_data_part_merges_with_fields(stack, data_first):
    fields = copy.deepcopy(nnreg_client.network_fields(name="merged " + str(data_first)))
    pre = fields.pop("preprocessing")
    image = pre["inputs"][0].pop("image")
    data = ("data", json.dumps(fields), None, "application/json")
    flat = hc.field_parts(hc.flatten_like_official_client({"preprocessing": pre}))
    flat += hc.field_parts(hc.flatten_like_official_client(
        {"preprocessing": {"inputs": [{"image": image}]}}))
    flat.append(("metadata.owner", "flat"))
    extra = [data] + flat if data_first else flat + [data]
    parts = extra + hc.file_parts(hc.unique_files())
    body = created(hc.post_raw(stack, hc.multipart_body(parts), BOUNDARY_TYPE))
    assert body["name"] == "merged " + str(data_first)
    assert body["metadata"] == {"owner": "flat"}
    assert body["preprocessing"]["inputs"][0]["image"]["target_size"] == "1x1"
    assert body["preprocessing"]["inputs"][0]["tensor_name"] == "x:0"


def test_data_part_sent_as_a_file(stack):
    """curl -F 'data=@fields.json;type=application/json' sends a filename."""
    fields = nnreg_client.network_fields(name="data from a file")
    parts = [("data", json.dumps(fields), "fields.json", "application/json")]
    parts += hc.file_parts(hc.unique_files())
    body = created(hc.post_raw(stack, hc.multipart_body(parts), BOUNDARY_TYPE))
    assert body["name"] == "data from a file"
    assert "data" not in {f["name"] for f in body["files"]}


def test_model_file_part_without_filename(stack):
    """curl -F 'saved_model.pb=<file' sends the bytes without a filename:
    the part's name still says which file it is."""
    files = hc.unique_files()
    graph = files.pop("saved_model.pb")[1]
    body = created(raw_create(stack, [("saved_model.pb", graph)], files=files))
    by_name = {f["name"]: f for f in body["files"]}
    assert by_name["saved_model.pb"]["sha256"] == sha256(graph)


def test_field_too_large(stack):
    refused(stack, lambda: raw_create(stack, [("description", "d" * (512 * 1024 + 1))]),
            400, "field_too_large", mentions=("description",))


def test_fields_too_large(stack):
    extra = [("metadata.k%d" % i, "v" * 300000) for i in range(4)]
    refused(stack, lambda: raw_create(stack, extra), 400, "fields_too_large")


def test_too_many_files(stack):
    """257 file parts, each opened as a temp file: refused, and every temp
    file is removed."""
    shards = [("variables.data-%05d-of-00300" % i, uuid.uuid4().bytes, "s", None)
              for i in range(257)]
    refused(stack, lambda: raw_create(stack, shards), 400, "too_many_files")


def test_quoted_boundary_and_type_case(stack):
    parts = hc.field_parts(valid_fields(name="quoted")) + hc.file_parts(hc.unique_files())
    body = hc.multipart_body(parts, boundary="a b:c")
    created(hc.post_raw(stack, body, 'Multipart/Form-Data; charset=utf-8; boundary="a b:c"'))


def test_no_content_type_is_415(stack):
    refused(stack, lambda: requests.post(stack.url("networks/"), data=b"", timeout=30,
                                         headers={"X-API-KEY": stack.api_key}),
            415, "unsupported_media_type")


def long_name(prefix):
    # 1400+ bytes of 2-byte characters: with the two prefixes, a cut at
    # any byte offset splits a character for one of them.
    return prefix + "\u00e9" * 700


ECHO_CASES = [
    ("unexpected_file", lambda n: [(n + ".bin", b"x", "f.bin", None)], (),
     "unexpected_file", None),
    ("unknown_key", lambda n: [(n, "x")], (), "validation_error", None),
    ("input_tensor", lambda n: [("preprocessing.inputs[0]tensor_name", n)],
     ("preprocessing.inputs[0]tensor_name",), "validation_error",
     "preprocessing.inputs[0].tensor_name"),
    ("output_tensor", lambda n: [("postprocessings[0]tensors_output.tensors[0]", n)],
     ("postprocessings[0]tensors_output.tensors[0]",), "validation_error",
     "postprocessings[0].tensors_output.tensors[0]"),
    ("mean_file", lambda n: [("preprocessing.inputs[0]image.mean_file", n + ".npy")], (),
     "validation_error", "preprocessing.inputs[0].image.mean_file"),
    ("field_too_large", lambda n: [(n, "x" * (512 * 1024 + 1))], (), "field_too_large", None),
    ("json_part", lambda n: [(n, "{bad", None, "application/json")], (), "invalid_json", None),
]


@pytest.mark.parametrize("prefix", ["a", "ab"])
@pytest.mark.parametrize("extra,drop,code,path", [c[1:] for c in ECHO_CASES],
                         ids=[c[0] for c in ECHO_CASES])
def test_long_names_in_errors_stay_valid_json(stack, extra, drop, code, path, prefix):
    """Error messages that repeat a long non-ASCII name the user sent are
    shortened between characters: the body stays UTF-8 JSON."""
    before = hc.snapshot(stack)
    resp = raw_create(stack, extra(long_name(prefix)), drop=drop)
    assert resp.status_code == 400, resp.content[:300]
    text = resp.content.decode("utf-8")  # raises on a character cut in two
    body = json.loads(text)
    assert body["error_code"] == code, body
    assert "\u00e9\u00e9\u00e9" in body["error"]
    if path:
        assert path in body["fields"], body
    for key, message in (body.get("fields") or {}).items():
        assert isinstance(key, str) and isinstance(message, str)
    hc.assert_nothing_left(stack, before)


# --- refused: tensors not in the graph -------------------------------------------------


def test_input_tensor_not_in_graph(stack):
    pre = hc.preprocessing("images:0")
    body = refused(stack, lambda: hc.post_create(stack, data=valid_fields(preprocessing=pre),
                                                 files=hc.unique_files()),
                   400, "validation_error", fields=["preprocessing.inputs[0].tensor_name"])
    message = body["fields"]["preprocessing.inputs[0].tensor_name"]
    assert '"images:0"' in message, message
    assert '"x:0"' in message, message  # the placeholder the graph has
    assert "y:0" not in message, message  # an output is no input candidate


def test_output_tensor_not_in_graph(stack):
    data = valid_fields(postprocessings=hc.outputs("y:0", "yy:0"))
    with hc.DeployListener(stack) as listener:
        body = refused(stack, lambda: hc.post_create(stack, data=data, files=hc.unique_files()),
                       400, "validation_error",
                       fields=["postprocessings[0].tensors_output.tensors[1]"])
        assert listener.payloads() == []  # no task, no NOTIFY
    message = body["fields"]["postprocessings[0].tensors_output.tensors[1]"]
    assert '"yy:0"' in message, message
    assert '"y:0"' in message, message  # the closest name


def test_output_index_out_of_node(stack):
    data = valid_fields(postprocessings=hc.outputs("y:x"))
    refused(stack, lambda: hc.post_create(stack, data=data, files=hc.unique_files()),
            400, "validation_error", fields=["postprocessings[0].tensors_output.tensors[0]"])


def test_standard_output_tensors_not_in_graph(stack):
    posts = [{"standard_output": {"boxes_tensor": "boxes:0", "scores_tensor": "y:0"}}]
    data = valid_fields(postprocessings=posts)
    refused(stack, lambda: hc.post_create(stack, data=data, files=hc.unique_files()),
            400, "validation_error", fields=["postprocessings[0].standard_output.boxes_tensor"])


def test_input_not_in_pbtxt_graph(stack):
    files = {"saved_model.pbtxt": ("saved_model.pbtxt", hc.unique_pbtxt())}
    pre = hc.preprocessing("input:0")
    body = refused(stack, lambda: hc.post_create(stack, data=valid_fields(preprocessing=pre),
                                                 files=files),
                   400, "validation_error", fields=["preprocessing.inputs[0].tensor_name"])
    assert '"x:0"' in body["fields"]["preprocessing.inputs[0].tensor_name"]


# --- content addressing ------------------------------------------------------------------


def test_same_content_is_stored_once(stack):
    files = hc.unique_files()
    before = hc.snapshot(stack)
    first = created(stack.create_network(name="stored once A", files=files))
    middle = hc.snapshot(stack)
    second = created(stack.create_network(name="stored once B", files=files))
    after = hc.snapshot(stack)

    new_files = middle["blob_files"] - before["blob_files"]
    # The unique graph and shard are new; the index may be known already.
    graph_sha = sha256(files["saved_model.pb"][1])
    shard_sha = sha256(files["variables.data-00000-of-00001"][1])
    assert "sha256/%s/%s" % (graph_sha[:2], graph_sha) in new_files
    assert "sha256/%s/%s" % (shard_sha[:2], shard_sha) in new_files
    assert after["blob_files"] == middle["blob_files"], "the second upload stored a copy"
    assert after["rows"]["blobs"] == middle["rows"]["blobs"]
    assert after["tmp_files"] == set()
    assert first["id"] != second["id"] and first["task_id"] != second["task_id"]
    assert ([(f["name"], f["sha256"]) for f in first["files"]]
            == [(f["name"], f["sha256"]) for f in second["files"]])
    refs = stack.sql_value("SELECT count(DISTINCT network_id) FROM network_files "
                           "WHERE sha256 = '%s'" % graph_sha)
    assert refs == "2"


def test_same_bytes_under_two_names_stored_once(stack):
    """Content addressing is by bytes, not by part name."""
    shard = hc.unique_data_shard()
    files = hc.unique_files()
    del files["variables.data-00000-of-00001"]
    files["variables.data-00000-of-00002"] = ("a", shard)
    files["variables.data-00001-of-00002"] = ("b", shard)
    before = hc.snapshot(stack)
    body = created(stack.create_network(name="two names one blob", files=files))
    after = hc.snapshot(stack)
    digest = sha256(shard)
    assert [f["sha256"] for f in body["files"] if f["name"].startswith("variables.data")] == [
        digest, digest]
    assert len(after["blob_files"] - before["blob_files"]) == 2  # graph + shard


# --- Idempotency-Key ------------------------------------------------------------------


def test_idempotent_replay(stack):
    key = "idem-" + uuid.uuid4().hex
    files = hc.unique_files()
    first = stack.create_network(name="idempotent", files=files,
                                 headers={"Idempotency-Key": key})
    body = created(first)
    mid = hc.snapshot(stack)
    with hc.DeployListener(stack) as listener:
        second = stack.create_network(name="idempotent", files=files,
                                      headers={"Idempotency-Key": key})
        assert listener.payloads() == []  # a replay starts no deployment
    assert second.status_code == first.status_code == 201
    assert second.content == first.content
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers.get("Location") == first.headers.get("Location")
    assert second.headers.get("ETag") == first.headers.get("ETag")
    hc.assert_nothing_left(stack, mid)
    # Even a retry whose content differs creates nothing: the key wins.
    third = stack.create_network(name="something else", files=hc.unique_files(),
                                 headers={"Idempotency-Key": key})
    assert third.status_code == 201 and third.content == first.content
    hc.assert_nothing_left(stack, mid)
    assert stack.sql_value("SELECT count(*) FROM networks WHERE id = %d" % body["id"]) == "1"


def test_idempotent_concurrent_same_key(stack):
    key = "race-" + uuid.uuid4().hex
    name = "race " + key
    files = hc.unique_files()
    barrier = threading.Barrier(2)
    results = [None, None]

    def run(i):
        barrier.wait()
        results[i] = stack.create_network(name=name, files=files,
                                          headers={"Idempotency-Key": key})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None for r in results)
    for r in results:
        assert r.status_code == 201, r.text
    assert results[0].json()["id"] == results[1].json()["id"]
    assert results[0].content == results[1].content
    assert stack.sql_value("SELECT count(*) FROM networks WHERE name = '%s'" % name) == "1"
    assert stack.sql_value("SELECT count(*) FROM tasks t JOIN networks n ON n.id = t.network_id "
                           "WHERE n.name = '%s'" % name) == "1"
    assert stack.upload_tmp_files() == set()


def test_different_keys_create_two(stack):
    files = hc.unique_files()
    a = created(stack.create_network(name="key a", files=files,
                                     headers={"Idempotency-Key": uuid.uuid4().hex}))
    b = created(stack.create_network(name="key a", files=files,
                                     headers={"Idempotency-Key": uuid.uuid4().hex}))
    assert a["id"] != b["id"]


def test_same_key_in_another_org_is_independent(stack):
    tenant = stack.new_tenant()
    key = "shared-" + uuid.uuid4().hex
    mine = created(stack.create_network(name="org one", files=hc.unique_files(),
                                        headers={"Idempotency-Key": key}))
    theirs = created(stack.create_network(api_key=tenant["api_key"], name="org two",
                                          files=hc.unique_files(),
                                          headers={"Idempotency-Key": key}))
    assert theirs["id"] != mine["id"] and theirs["name"] == "org two"
    # Each org's replay answers its own network.
    again = stack.create_network(name="org one", files=hc.unique_files(),
                                 headers={"Idempotency-Key": key})
    assert assert_json(again, 201)["id"] == mine["id"]
    again = stack.create_network(api_key=tenant["api_key"], name="x", files=hc.unique_files(),
                                 headers={"Idempotency-Key": key})
    assert assert_json(again, 201)["id"] == theirs["id"]
    # The other org's network stays invisible to us.
    assert_create_error(stack.get("networks/%d/" % theirs["id"]), 404, "not_found")


def test_failed_create_does_not_burn_the_key(stack):
    key = "retry-" + uuid.uuid4().hex
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(framework="caffe"),
                                          files=hc.unique_files(),
                                          headers={"Idempotency-Key": key}),
            400, "validation_error", fields=["framework"])
    body = created(stack.create_network(name="after a refusal", files=hc.unique_files(),
                                        headers={"Idempotency-Key": key}))
    assert body["name"] == "after a refusal"


@pytest.mark.parametrize("key", ["k" * 256, "caf\xe9", "tab\there"],
                         ids=["too_long", "latin1", "control"])
def test_invalid_idempotency_key(stack, key):
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=hc.unique_files(),
                                          headers={"Idempotency-Key": key}),
            400, "invalid_idempotency_key")


def test_longest_idempotency_key(stack):
    key = "k" * 223 + uuid.uuid4().hex
    first = created(hc.post_create(stack, data=valid_fields(), files=hc.unique_files(),
                                   headers={"Idempotency-Key": key}))
    again = hc.post_create(stack, data=valid_fields(), files=hc.unique_files(),
                           headers={"Idempotency-Key": key})
    assert assert_json(again, 201)["id"] == first["id"]


# --- authentication ------------------------------------------------------------------------


def test_app_id_mismatch_is_401(stack):
    tenant = stack.new_tenant()
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=hc.unique_files(),
                                          api_key=tenant["api_key"], app_id=stack.app_id),
            401, "app_id_mismatch")


def test_matching_app_id_is_accepted(stack):
    tenant = stack.new_tenant()
    body = created(hc.post_create(stack, data=valid_fields(name="with app id"),
                                  files=hc.unique_files(), api_key=tenant["api_key"],
                                  app_id=tenant["app_id"]))
    owner = stack.sql_value("SELECT o.name FROM networks n JOIN organizations o "
                            "ON o.id = n.org_id WHERE n.id = %d" % body["id"])
    assert owner == tenant["org"]


def test_no_key_is_401(stack):
    files = hc.unique_files()
    refused(stack, lambda: requests.post(stack.url("networks/"), data=valid_fields(),
                                         files=files, timeout=30),
            401, "not_authenticated")


def test_wrong_key_is_401(stack):
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=hc.unique_files(),
                                          api_key="0" * 64),
            401, "invalid_api_key")


def test_revoked_key_is_401(stack):
    tenant = stack.new_tenant()
    stack.revoke_key(tenant["app_id"])
    refused(stack, lambda: hc.post_create(stack, data=valid_fields(), files=hc.unique_files(),
                                          api_key=tenant["api_key"]),
            401, "invalid_api_key")


# --- routes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v0.7/networks", "/networks/", "/networks"])
def test_create_on_every_spelling_of_the_route(stack, path):
    resp = requests.post(stack.url(path), data=valid_fields(name="route " + path),
                         files=hc.unique_files(), timeout=60,
                         headers={"X-API-KEY": stack.api_key})
    body = created(resp)
    assert body["name"] == "route " + path
