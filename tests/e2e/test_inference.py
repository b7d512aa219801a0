"""POST /v0.7/networks/{id}/inference end to end: nginx, nnreg-fcgi,
nnreg-deployer, nnreg-inferd and PostgreSQL, as `scripts/dev up` runs them.

The fixture networks of tests/fixtures/networks (PoseNet on MobileNetV1, a
MobileNetV2 classifier) are created through the API from their network.json
and files, deployed, and run on input.png; the final and intermediate
tensors of each expected.json entry are compared with the TensorFlow.js
values within the entry's atol/rtol.  Requests are sent both as the
official client sends them (multipart, helpers_infer says how) and as JSON
with base64.  half_plus_two (TF1, variables) and half_plus_two_tf2 (TF2,
function library) run on a 1x1 grey image (their input x is not an image,
but a 1x1 "L" image is a [1, 1, 1, 1] tensor of the pixel value, and
y = 0.5 x + 2 broadcasts over it).

Errors: a network still deploying or whose deployment failed (409), an
unknown tensor (400 with close names), bad base64 and bytes that are not an
image (400), another organization's private network (404), a URL source on
127.0.0.1 (400, refused by default), and no request row left behind.
"""

import base64
import json
import uuid

import pytest
import requests

import helpers_infer as hi
from nnreg_client import assert_error, assert_json

FIXTURE_NETWORKS = ["posenet", "nsfw_mobilenet_v2"]
DEPLOY_TIMEOUT = 300.0


def create_fixture_network(stack, name, api_key=None):
    base = hi.NETWORKS / name
    fields = json.loads((base / "network.json").read_text())
    fields["name"] = "%s-%s" % (fields["name"], uuid.uuid4().hex[:6])
    files = {"saved_model.pb": base / "saved_model.pb"}
    for inp in fields["preprocessing"]["inputs"]:
        mean = inp["image"].get("mean_file")
        if mean:
            files[mean] = base / mean
    resp = stack.create_network(api_key=api_key, files=files, **fields)
    return assert_json(resp, 201)


def wait_deployed(stack, net):
    task = hi.wait_task(stack, net["task_id"], timeout=DEPLOY_TIMEOUT)
    assert task["status"] == "success", task
    return task


@pytest.fixture(scope="module")
def networks(stack):
    """{fixture name: network object}, created and deployed once."""
    nets = {name: create_fixture_network(stack, name) for name in FIXTURE_NETWORKS}
    for net in nets.values():
        wait_deployed(stack, net)
    return nets


@pytest.fixture(scope="module")
def half_plus_two(stack):
    resp = stack.create_network(model="half_plus_two_cpu", name="hp2-" + uuid.uuid4().hex[:6])
    net = assert_json(resp, 201)
    wait_deployed(stack, net)
    return net


def expected_entries(name):
    return json.loads((hi.NETWORKS / name / "expected.json").read_text())


def run_ok(stack, resp, api_key=None):
    body = assert_json(resp, 201)
    assert set(body) == {"task_id"}, body
    task = hi.wait_task(stack, body["task_id"], api_key=api_key)
    assert task["status"] == "success", task
    assert task["error"] is None
    return task


def compare_all(task, name, entries):
    tensors = {t["name"]: t for t in task["data"]["tensors"]}
    assert [t["name"] for t in task["data"]["tensors"]] == [e["tensor"] for e in entries]
    worst = {}
    for e in entries:
        shape, values = hi.read_npy(hi.NETWORKS / name / e["file"])
        worst[e["tensor"]] = hi.check_close(e["tensor"], tensors[e["tensor"]], shape, values,
                                            e["atol"], e["rtol"])
    return worst


def no_request_rows(stack):
    return stack.sql_value("SELECT count(*) FROM inference_requests") == "0" and \
        stack.sql_value("SELECT count(*) FROM inference_inputs") == "0"


# --- the fixture networks -----------------------------------------------------------

@pytest.mark.parametrize("name", FIXTURE_NETWORKS)
def test_fixture_network_like_the_official_client(stack, networks, name):
    """Multipart, as network.inference(inputs=[ImageInput(bytes,
    encoding='binary')], output_tensors=[...]) sends it: every tensor of
    expected.json, final and intermediate, in one request."""
    entries = expected_entries(name)
    png = (hi.NETWORKS / name / "input.png").read_bytes()
    resp = hi.post_inference_like_client(stack, networks[name]["id"], png,
                                         output_tensors=[e["tensor"] for e in entries])
    task = run_ok(stack, resp)
    compare_all(task, name, entries)
    assert no_request_rows(stack)


@pytest.mark.parametrize("name", FIXTURE_NETWORKS)
def test_fixture_network_json_base64(stack, networks, name):
    entries = expected_entries(name)
    png = (hi.NETWORKS / name / "input.png").read_bytes()
    resp = hi.post_inference_json(stack, networks[name]["id"],
                                  hi.json_body(png, [e["tensor"] for e in entries]))
    task = run_ok(stack, resp)
    compare_all(task, name, entries)


@pytest.mark.parametrize("name", FIXTURE_NETWORKS)
def test_default_outputs_are_the_postprocessing_tensors(stack, networks, name):
    entries = [e for e in expected_entries(name) if e["kind"] == "output"]
    fields = json.loads((hi.NETWORKS / name / "network.json").read_text())
    declared = fields["postprocessings"][0]["tensors_output"]["tensors"]
    png = (hi.NETWORKS / name / "input.png").read_bytes()
    task = run_ok(stack, hi.post_inference_like_client(stack, networks[name]["id"], png))
    assert [t["name"] for t in task["data"]["tensors"]] == declared
    by_tensor = {e["tensor"]: e for e in entries}
    compare_all(task, name, [by_tensor[t] for t in declared])


def test_bbox_changes_the_input(stack, networks):
    """A bbox crops before the resize: the output differs from the whole
    image's, and the same bbox sent as multipart strings and as JSON numbers
    gives the same tensors."""
    net = networks["nsfw_mobilenet_v2"]
    png = (hi.NETWORKS / "nsfw_mobilenet_v2" / "input.png").read_bytes()
    bbox = {"xmin": 0.1, "ymin": 0.2, "xmax": 0.8, "ymax": 0.9}
    whole = run_ok(stack, hi.post_inference_json(stack, net["id"], hi.json_body(png)))
    cropped = run_ok(stack, hi.post_inference_json(stack, net["id"], hi.json_body(png, bbox=bbox)))
    multi = run_ok(stack, hi.post_inference_like_client(
        stack, net["id"], png, bbox={k: str(v) for k, v in bbox.items()}))
    assert cropped["data"] != whole["data"]
    assert multi["data"] == cropped["data"]


# --- half_plus_two: variables (TF1) and a function library (TF2) -------------------

def test_half_plus_two_tf1(stack, half_plus_two):
    """x has no declared shape in the TF1 graph: the [1, 1, 1, 1] image
    tensor is fed as x and y = a x + b comes through the restored
    variables."""
    for value in (0, 7, 200, 255):
        png = hi.png_bytes(1, 1, [[value]], grey=True)
        task = run_ok(stack, hi.post_inference_like_client(stack, half_plus_two["id"], png))
        (y,) = task["data"]["tensors"]
        assert y["name"] == "y:0"
        assert y["shape"] == [1, 1, 1, 1]
        assert y["data"] == [pytest.approx(0.5 * value + 2.0, abs=1e-5)], (value, y)


def test_half_plus_two_tf2(stack):
    """The TF2 fixture declares its input serving_default_x as shape [1];
    the 1x1 grey image is [1, 1, 1, 1], which differs only by size-1
    dimensions, so it is fed as [1] (another layout would be refused:
    tests/unit/test_infer_ops.c), and y = a x + b comes through the
    variables read inside the inlined function library."""
    resp = stack.create_network(model="half_plus_two_tf2_cpu",
                                name="hp2tf2-" + uuid.uuid4().hex[:6],
                                preprocessing=dict(hi.tf2_preprocessing()),
                                postprocessings=[{"tensors_output": {
                                    "tensors": ["StatefulPartitionedCall_5:0"]}}])
    net = assert_json(resp, 201)
    wait_deployed(stack, net)
    for value in (0, 4, 255):
        png = hi.png_bytes(1, 1, [[value]], grey=True)
        task = run_ok(stack, hi.post_inference_like_client(stack, net["id"], png))
        (y,) = task["data"]["tensors"]
        assert y["name"] == "StatefulPartitionedCall_5:0"
        assert y["shape"] == [1]
        assert y["data"] == [pytest.approx(0.5 * value + 2.0, abs=1e-5)], (value, y)


# --- errors ------------------------------------------------------------------------

def test_network_still_deploying_is_409(stack, half_plus_two):
    """The deploy task held pending by a claim nobody will finish."""
    task_id = half_plus_two["task_id"]
    png = hi.png_bytes(1, 1, [[3]], grey=True)
    stack.sql("UPDATE tasks SET status = 'pending', owner = 'e2e', "
              "lease_until = clock_timestamp() + interval '1 hour' WHERE id = %d" % task_id)
    try:
        body = assert_error(hi.post_inference_like_client(stack, half_plus_two["id"], png), 409,
                            "network_deploying")
        assert "still being deployed" in body["error"]
        stack.sql("UPDATE tasks SET status = 'error', error = 'variables.index is damaged', "
                  "owner = NULL, lease_until = NULL WHERE id = %d" % task_id)
        body = assert_error(hi.post_inference_like_client(stack, half_plus_two["id"], png), 409,
                            "network_not_deployed")
        assert "variables.index is damaged" in body["error"]
    finally:
        stack.sql("UPDATE tasks SET status = 'success', error = NULL, owner = NULL, "
                  "lease_until = NULL WHERE id = %d" % task_id)
    assert no_request_rows(stack)


def test_unknown_tensor_lists_close_names(stack, networks):
    net = networks["posenet"]
    png = (hi.NETWORKS / "posenet" / "input.png").read_bytes()
    resp = hi.post_inference_like_client(stack, net["id"], png,
                                         output_tensors=["MobilenetV1/heatmap_2/BiasAd:0"])
    body = assert_error(resp, 400, "unknown_tensor", fields=["output_tensors[0]"])
    assert "MobilenetV1/heatmap_2/BiasAd:0" in body["error"]
    assert '"MobilenetV1/heatmap_2/BiasAdd:0"' in body["error"]
    assert no_request_rows(stack)


def test_bad_base64_and_not_an_image(stack, half_plus_two):
    nid = half_plus_two["id"]
    body = assert_error(hi.post_inference_json(
        stack, nid, {"inputs": [{"image": {"source": "this is not base64!"}}]}), 400,
        fields=["inputs[0].image.source"])
    assert "base64" in body["fields"]["inputs[0].image.source"]
    text = base64.b64encode(b"just some text, no picture").decode()
    body = assert_error(hi.post_inference_json(
        stack, nid, {"inputs": [{"image": {"source": text}}]}), 400, "invalid_image",
        fields=["inputs[0].image.source"])
    assert "JPEG or PNG" in body["error"]
    # The same bytes as the client's file part.
    assert_error(hi.post_inference_like_client(stack, nid, b"GIF89a\x01\x00\x01\x00"), 400,
                 "invalid_image")
    assert no_request_rows(stack)


def test_request_shape_errors(stack, half_plus_two):
    nid = half_plus_two["id"]
    png = hi.png_bytes(1, 1, [[3]], grey=True)
    src = base64.b64encode(png).decode()
    cases = [
        ({}, "inputs"),
        ({"inputs": []}, "inputs"),
        ({"inputs": [{"image": {"source": src}}, {"image": {"source": src}}]}, "inputs"),
        ({"inputs": [{"video": {}}]}, "inputs[0].video"),
        ({"inputs": [{"image": {"source": src, "bbox": {"xmin": 0.5, "ymin": 0, "xmax": 0.2,
                                                        "ymax": 1}}}]},
         "inputs[0].image.bbox.xmax"),
        ({"inputs": [{"image": {"source": src, "bbox": {"xmin": -1, "ymin": 0, "xmax": 1,
                                                        "ymax": 1}}}]},
         "inputs[0].image.bbox.xmin"),
        ({"inputs": [{"image": {"source": src}}], "output_tensors": []}, "output_tensors"),
        ({"inputs": [{"image": {"source": src}}], "outputs": ["y:0"]}, "outputs"),
        ({"inputs": [{"image": {"source": src, "crop_uniform_background": True}}]},
         "inputs[0].image.crop_uniform_background"),
        # An object is not a source, whatever it holds.
        ({"inputs": [{"image": {"source": {"$file": 1000000}}}]}, "inputs[0].image.source"),
    ]
    for body, field in cases:
        assert_error(hi.post_inference_json(stack, nid, body), 400, fields=[field])
    assert no_request_rows(stack)


def test_other_orgs_private_network_is_404_public_one_runs(stack, tenant, half_plus_two):
    png = hi.png_bytes(1, 1, [[10]], grey=True)
    resp = hi.post_inference_like_client(stack, half_plus_two["id"], png,
                                         api_key=tenant["api_key"])
    assert_error(resp, 404, "not_found")
    stack.sql("UPDATE networks SET is_public = true WHERE id = %d" % half_plus_two["id"])
    try:
        resp = hi.post_inference_like_client(stack, half_plus_two["id"], png,
                                             api_key=tenant["api_key"])
        task = run_ok(stack, resp, api_key=tenant["api_key"])
        assert task["data"]["tensors"][0]["data"] == [pytest.approx(7.0)]
        # The task is the sender's: the network's owner does not see it.
        assert_error(stack.get("tasks/%d/" % task["id"]), 404)
        assert assert_json(stack.get("tasks/?task_ids=%d" % task["id"]), 200)["count"] == 0
    finally:
        stack.sql("UPDATE networks SET is_public = false WHERE id = %d" % half_plus_two["id"])


def test_url_on_loopback_is_refused(stack, half_plus_two):
    for url in ("http://127.0.0.1:%d/health" % stack.port, "http://[::1]/x.png",
                "http://10.0.0.1/x.png"):
        body = assert_error(hi.post_inference_json(
            stack, half_plus_two["id"], {"inputs": [{"image": {"source": url}}]}), 400,
            "invalid_image_url")
        assert url.split("/")[2].strip("[]").split(":")[0] in body["error"] or "address" in body["error"]
    body = assert_error(hi.post_inference_json(
        stack, half_plus_two["id"], {"inputs": [{"image": {"source": "ftp://example.com/a.png"}}]}),
        400)
    assert no_request_rows(stack)


def test_unsupported_op_is_a_400_naming_it(stack, half_plus_two):
    """The TF1 saver's SaveV2 is not an op the engine runs: asking for a
    tensor that needs it is refused at once, and the deployment report
    listed it."""
    report = hi.wait_task(stack, half_plus_two["task_id"])["data"]
    unsupported = {u["op"] for u in report["unsupported_ops"]}
    assert "SaveV2" in unsupported, report["unsupported_ops"]
    png = hi.png_bytes(1, 1, [[3]], grey=True)
    body = assert_error(hi.post_inference_like_client(stack, half_plus_two["id"], png,
                                                      output_tensors=["save/SaveV2"]),
                        400, "unsupported_op")
    assert "SaveV2" in body["error"]


def test_unexpected_file_part_and_unsupported_body(stack, half_plus_two):
    png = hi.png_bytes(1, 1, [[3]], grey=True)
    resp = requests.post(stack.url("networks/%d/inference" % half_plus_two["id"]),
                         files={"inputs[0]image.source": ("a.png", png),
                                "saved_model.pb": ("saved_model.pb", b"x")},
                         headers={"X-API-KEY": stack.api_key}, timeout=60)
    assert_error(resp, 400, "unexpected_file")
    resp = requests.post(stack.url("networks/%d/inference" % half_plus_two["id"]),
                         data=b"inputs=x", timeout=60,
                         headers={"X-API-KEY": stack.api_key,
                                  "Content-Type": "application/x-www-form-urlencoded"})
    assert_error(resp, 415, "unsupported_media_type")
    assert no_request_rows(stack)


def test_body_over_the_limit_is_413(stack, half_plus_two):
    """NNREG_INFER_MAX_REQUEST_BYTES (32 MiB by default), from Content-Length."""
    body = b"{" + b" " * (33 * 1024 * 1024) + b"}"
    resp = requests.post(stack.url("networks/%d/inference" % half_plus_two["id"]), data=body,
                         headers={"X-API-KEY": stack.api_key,
                                  "Content-Type": "application/json"}, timeout=120)
    assert_error(resp, 413, "body_too_large")
    assert no_request_rows(stack)


def test_pending_cap_is_429(stack, tenant, half_plus_two):
    """NNREG_INFER_MAX_PENDING (256) pending inference tasks of one
    organization: the next request is refused with Retry-After, and other
    organizations are not affected.  The pending tasks are held by a claim
    nobody will finish, so that nnreg-inferd leaves them alone."""
    stack.sql("UPDATE networks SET is_public = true WHERE id = %d" % half_plus_two["id"])
    org = stack.sql_value("SELECT org_id FROM api_keys WHERE app_id = '%s'" % tenant["app_id"])
    try:
        stack.sql("INSERT INTO tasks (org_id, network_id, kind, name, owner, lease_until) "
                  "SELECT %s, %d, 'inference', 'held by e2e', 'e2e', "
                  "clock_timestamp() + interval '1 hour' FROM generate_series(1, 256)"
                  % (org, half_plus_two["id"]))
        png = hi.png_bytes(1, 1, [[3]], grey=True)
        resp = hi.post_inference_like_client(stack, half_plus_two["id"], png,
                                             api_key=tenant["api_key"])
        body = assert_error(resp, 429, "too_many_pending")
        assert resp.headers.get("Retry-After") == "5"
        assert "256" in body["error"]
        run_ok(stack, hi.post_inference_like_client(stack, half_plus_two["id"], png))
    finally:
        stack.sql("DELETE FROM tasks WHERE name = 'held by e2e' AND org_id = %s" % org)
        stack.sql("UPDATE networks SET is_public = false WHERE id = %d" % half_plus_two["id"])
    assert no_request_rows(stack)
