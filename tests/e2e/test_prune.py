"""`nnreg-admin prune` end to end, against the running stack:

- finished inference tasks (success and error) older than
  --inference-keep-hours go, results and all, and a GET of one is then a
  404; younger ones, pending ones (however old) and deployment tasks stay;
- Idempotency-Key records older than 24 hours go, younger ones stay and
  still answer a retried create;
- a backlog larger than one batch goes entirely, in several batches;
- `--dry-run` counts and changes nothing; a bad option or retention is a
  usage error that changes nothing.

Ages are made with an UPDATE of the rows' dates, never by waiting.
"""

import json
import uuid

import pytest

import helpers_infer as hi
from nnreg_client import assert_error, assert_json

BATCH = 2000  # PRUNE_BATCH in src/admin/prune.h
SUMMARY_KEYS = {"inference_tasks_removed", "idempotency_keys_removed", "inference_keep_hours",
                "dry_run"}


def prune(stack, *args):
    """nnreg-admin [SETTINGS] prune [--dry-run]: its one summary line."""
    proc = stack.admin(*args, check=False)
    assert proc.returncode == 0, "prune exited %d: %s" % (proc.returncode, proc.stderr)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and set(lines[0]) == SUMMARY_KEYS, lines
    assert lines[0]["dry_run"] is ("--dry-run" in args)
    return lines[0]


def age_task(stack, task_id, hours):
    stack.sql("UPDATE tasks SET update_date = clock_timestamp() - interval '%d hours' "
              "WHERE id = %d" % (hours, task_id))


def task_ids(stack, ids):
    return {int(r[0]) for r in stack.sql_rows(
        "SELECT id FROM tasks WHERE id IN (%s)" % ",".join(str(i) for i in ids))}


def infer(stack, network_id, value):
    png = hi.png_bytes(1, 1, [[value]], grey=True)
    body = assert_json(hi.post_inference_like_client(stack, network_id, png), 201)
    task = hi.wait_task(stack, body["task_id"])
    assert task["status"] == "success", task
    return task


@pytest.fixture(scope="module")
def network(stack):
    net = assert_json(stack.create_network(model="half_plus_two_cpu",
                                           name="prune-" + uuid.uuid4().hex[:6]), 201)
    task = hi.wait_task(stack, net["task_id"])
    assert task["status"] == "success", task
    return net


def test_old_finished_inference_tasks_go_the_rest_stays(stack, network):
    old_ok = infer(stack, network["id"], 10)
    old_failed = infer(stack, network["id"], 20)
    young = infer(stack, network["id"], 30)
    assert young["data"]["tensors"][0]["data"] == [pytest.approx(17.0)]
    # An inference that failed: its task ends in error, as nnreg-inferd
    # ends one whose engine refused the input.
    stack.sql("UPDATE tasks SET status = 'error', error = 'made to fail', result = NULL "
              "WHERE id = %d" % old_failed["id"])
    # A pending inference task, however old, is work still to do.  Its lease
    # runs far ahead, so that nnreg-inferd leaves it alone.
    org = stack.sql_value("SELECT org_id FROM tasks WHERE id = %d" % old_ok["id"])
    pending = int(stack.sql_value(
        "INSERT INTO tasks (org_id, network_id, kind, name, owner, lease_until, update_date) "
        "VALUES (%s, %d, 'inference', 'prune test', 'test_prune', "
        "clock_timestamp() + interval '1 hour', clock_timestamp() - interval '900 hours') "
        "RETURNING id" % (org, network["id"])).splitlines()[0])
    try:
        for task_id in (old_ok["id"], old_failed["id"]):
            age_task(stack, task_id, 200)
        age_task(stack, young["id"], 100)  # younger than the default 168 hours
        age_task(stack, network["task_id"], 900)  # a deployment: never pruned
        watched = [old_ok["id"], old_failed["id"], young["id"], pending, network["task_id"]]

        dry = prune(stack, "prune", "--dry-run")
        assert dry["inference_tasks_removed"] >= 2, dry
        assert dry["inference_keep_hours"] == 168
        assert task_ids(stack, watched) == set(watched)

        done = prune(stack, "prune")
        assert done["inference_tasks_removed"] >= 2, done
        assert task_ids(stack, watched) == {young["id"], pending, network["task_id"]}
        body = assert_error(stack.get("tasks/%d/" % old_ok["id"]), 404)
        assert body["error_code"] == "not_found", body
        assert_json(stack.get("tasks/%d/" % young["id"]), 200)
        assert_json(stack.get("networks/%d/" % network["id"]), 200)

        # A shorter retention takes the younger one too; the network still
        # runs inferences.
        short = prune(stack, "--inference-keep-hours=50", "prune")
        assert short["inference_keep_hours"] == 50 and short["inference_tasks_removed"] >= 1
        assert task_ids(stack, watched) == {pending, network["task_id"]}
        infer(stack, network["id"], 40)
    finally:
        stack.sql("DELETE FROM tasks WHERE id = %d" % pending)


def test_a_backlog_larger_than_a_batch_goes_entirely(stack, network):
    template = infer(stack, network["id"], 50)
    n = 2 * BATCH + 7
    stack.sql("INSERT INTO tasks (org_id, network_id, kind, name, status, result, update_date) "
              "SELECT org_id, network_id, kind, name, 'success', result, "
              "clock_timestamp() - interval '300 hours' "
              "FROM tasks t, generate_series(1, %d) WHERE t.id = %d" % (n, template["id"]))
    old = "kind = 'inference' AND status <> 'pending' AND update_date < " \
          "clock_timestamp() - interval '168 hours'"
    assert int(stack.sql_value("SELECT count(*) FROM tasks WHERE " + old)) >= n
    done = prune(stack, "prune")
    assert done["inference_tasks_removed"] >= n, done
    assert stack.sql_value("SELECT count(*) FROM tasks WHERE " + old) == "0"
    assert task_ids(stack, [template["id"]]) == {template["id"]}


def test_expired_idempotency_records_go_fresh_ones_answer(stack):
    old_key, fresh_key = "prune-old-" + uuid.uuid4().hex, "prune-fresh-" + uuid.uuid4().hex
    first = {}
    for key in (old_key, fresh_key):
        first[key] = assert_json(stack.create_network(
            name=key, headers={"Idempotency-Key": key}), 201)
    stack.sql("UPDATE idempotency_keys SET create_date = clock_timestamp() - interval '25 hours' "
              "WHERE key = '%s'" % old_key)
    keys = "SELECT key FROM idempotency_keys WHERE key IN ('%s', '%s') ORDER BY key" % (
        old_key, fresh_key)

    dry = prune(stack, "prune", "--dry-run")
    assert dry["idempotency_keys_removed"] >= 1, dry
    assert len(stack.sql_rows(keys)) == 2

    done = prune(stack, "prune")
    assert done["idempotency_keys_removed"] >= 1, done
    assert [r[0] for r in stack.sql_rows(keys)] == [fresh_key]
    # The fresh key still answers with the first create's network.
    again = assert_json(stack.create_network(name=fresh_key,
                                             headers={"Idempotency-Key": fresh_key}), 201)
    assert again["id"] == first[fresh_key]["id"]
    for net in first.values():
        assert stack.request("DELETE", "networks/%d/" % net["id"]).status_code == 204


@pytest.mark.parametrize("args, message", [
    (("prune", "--force"), "--dry-run"),
    (("prune", "now"), "--dry-run"),
    (("--inference-keep-hours=0", "prune"), "inference-keep-hours"),
    (("--inference-keep-hours=soon", "prune"), "inference-keep-hours"),
])
def test_bad_arguments_change_nothing(stack, args, message):
    before = stack.sql_value("SELECT count(*) FROM tasks")
    proc = stack.admin(*args, check=False)
    assert proc.returncode in (1, 2), (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout.strip() == "" and message in proc.stderr, proc.stderr
    assert stack.sql_value("SELECT count(*) FROM tasks") == before
