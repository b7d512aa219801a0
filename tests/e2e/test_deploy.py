"""Deployments end to end: nnreg-deployer through the real stack (nginx +
nnreg-fcgi + PostgreSQL + the deployer `scripts/dev up` starts, and extra
deployers started here).

- a create's task goes pending -> success with its report, and the network
  is laid out for TensorFlow Serving (binary graph, text graph, no
  variables, a mean file); models.config lists it;
- damaged content ends the task in `error` saying what is wrong: a data
  shard with one byte flipped (accepted at create time, which does not read
  shards), a blob damaged on disk after the create;
- leases: a task held by a dead deployer is taken over once its lease
  expires (simulated by SQL, then a real `kill -9` in the middle of a task);
  the dead deployer's late write is refused; a task that keeps killing its
  deployers ends in error after the maximum number of attempts;
- two deployers and 50 creates: every task done, each claimed exactly once;
- PostgreSQL restarted, or the LISTEN backend terminated: the deployer
  reconnects by itself and the next create still deploys;
- delete: the deployed copy and its models.config entry are gone.

Waits are bounded (poll interval + lease + slack); nothing asserts on time.
The stack's deployer is stopped only inside `StackDeployerStopped` blocks,
which always start it again.  Deployers started here are stopped by their
own pids.
"""

import concurrent.futures
import os
import re
import time
import uuid

import pytest
import requests

import helpers_create as hc
import helpers_deploy as hd
import helpers_faults as hf
from helpers_api import pg_ctl
from nnreg_client import MODELS

HP2 = MODELS / "half_plus_two_cpu"
SHARD = "variables.data-00000-of-00001"
SLACK = 15  # seconds added to every wait that a poll interval or a lease bounds

# Extra deployers: a short lease and poll so that take-overs happen fast.
FAST = {"NNREG_DEPLOY_LEASE_SECONDS": 3, "NNREG_DEPLOY_POLL_SECONDS": 1}


@pytest.fixture
def start_deployer(stack):
    """start_deployer(**NNREG_settings) -> a running hd.Deployer; all are
    stopped (SIGTERM, by pid) at the end of the test."""
    started = []

    def start(**settings):
        name = "nnreg-deployer-test-%s" % uuid.uuid4().hex[:6]
        d = hd.Deployer(stack, name, **settings).start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def stack_poll_seconds(stack):
    """The stack deployer's poll interval, from its start-up line."""
    found = re.findall(r"started \(poll every (\d+)s", stack.log("nnreg-deployer"))
    assert found, "the stack's deployer logged no start-up line"
    return int(found[-1])


def stack_deployer_owner(stack):
    found = re.findall(r"deployer (\S+) started", stack.log("nnreg-deployer"))
    assert found
    return found[-1]


def assert_not_deployed(stack, network_id):
    assert not (hd.deploy_dir(stack) / str(network_id)).exists()
    assert str(network_id) not in hd.models_config(stack)


def set_claim(stack, task_id, owner, attempts, lease):
    """Makes the task look claimed by `owner` (a deployer that is not
    running: the simulation of one that died) for attempt `attempts`, its
    lease ending at now + `lease` (an SQL interval, negative: expired)."""
    n = stack.sql("WITH u AS (UPDATE tasks SET owner = '%s', attempts = %d, "
                  "lease_until = clock_timestamp() + interval '%s' "
                  "WHERE id = %d AND status = 'pending' RETURNING 1) SELECT count(*) FROM u"
                  % (owner, attempts, lease, task_id))
    assert n == "1", "task %d was no longer pending" % task_id


def late_write(stack, task_id, owner, attempts):
    """What a deployer that lost its claim would write at the end: the
    deployer's own finish statement (read from src/db/taskq.h, so that
    its owner/attempt guard is the one tested), run with that deployer's
    owner and attempt.  Returns the number of rows it changed."""
    sql, nparams = hf.taskq_statement("taskq_finish")
    assert nparams == 7
    out = stack.sql("PREPARE nnreg_late_finish AS %s; "
                    "EXECUTE nnreg_late_finish(%d, '%s', %d, 'success', NULL, '{}', 'on')"
                    % (sql, task_id, owner, attempts))
    return len([line for line in out.splitlines() if line.strip().isdigit()])  # the ids RETURNING gave


# --- success: report and layout ----------------------------------------------------


def test_create_deploys_with_a_report_and_the_serving_layout(stack):
    net = hd.create(stack)
    task = hd.wait_task(stack, net["task_id"], timeout=SLACK)
    assert task["status"] == "success", task
    assert task["error"] is None
    assert task["name"] == "deploy network %d" % net["id"]
    report = task["data"]

    checks = report["checks"]
    assert [c["name"] for c in checks] == hd.CHECK_NAMES
    for c in checks:
        # engine_ops is a warning when the graph has ops the inference
        # engine does not run (a TF1 graph's saver ops); never an error.
        assert c["status"] == ("ok" if c["name"] != "engine_ops" else c["status"]), c
        assert c["status"] in ("ok", "warning"), c
        assert isinstance(c["duration_ms"], (int, float)) and c["duration_ms"] >= 0, c
    by_name = {c["name"]: c for c in checks}
    assert isinstance(report["unsupported_ops"], list)
    assert (by_name["engine_ops"]["status"] == "warning") == bool(report["unsupported_ops"])
    assert "SHA-256" in by_name["blobs"]["detail"]
    assert "74 nodes" in by_name["graph"]["detail"]
    assert "5 entries" in by_name["variables"]["detail"]

    variables = {v["name"]: v for v in report["variables"]}
    assert sorted(variables) == ["a", "a2", "b", "c", "c2"]
    for v in variables.values():
        assert v["dtype"] == "float" and v["shape"] == [] and v["bytes"] == 4 and v["shard"] == 0
    assert report["node_count"] == 74
    assert report["op_count"] == len(report["ops"]) > 0
    assert report["ops"]["VariableV2"] == 6 and report["ops"]["Placeholder"] == 1
    assert report["tensorflow_version"] == "1.14.0"
    assert report["outputs_checked"] == ["y:0"]
    inputs = {i["name"]: i for i in report["inputs"]}
    assert inputs["x:0"]["dtype"] == "float" and inputs["x:0"]["shape"] == [-1, 1]
    assert report["network_id"] == net["id"]
    assert isinstance(report["duration_ms"], (int, float))

    base = hd.deploy_dir(stack) / str(net["id"])
    assert os.path.realpath(report["deploy_path"]) == str(base)
    assert hd.deployed_files(stack, net["id"]) == {
        "1/saved_model.pb", "1/variables/variables.index", "1/variables/" + SHARD}
    assert (base / "1/saved_model.pb").read_bytes() == (HP2 / "saved_model.pb").read_bytes()
    for name in ("variables.index", SHARD):
        assert (base / "1/variables" / name).read_bytes() == (HP2 / "variables" / name).read_bytes()
    assert hd.models_config(stack)[str(net["id"])] == str(base)
    # No temp directory left beside the deployed ones.
    assert not [p.name for p in hd.deploy_dir(stack).iterdir() if p.name.startswith(".tmp-")]

    row = hd.task_row(stack, net["task_id"])
    assert row["attempts"] == 1 and row["lease_free"]


def test_text_graph_deploys_as_saved_model_pbtxt(stack):
    net = hd.create(stack, model="half_plus_two_pbtxt",
                    postprocessings=hc.outputs("y:0", "Identity:0"))
    task = hd.wait_task(stack, net["task_id"], timeout=SLACK)
    assert task["status"] == "success", task
    assert task["data"]["outputs_checked"] == ["y:0", "Identity:0"]
    assert task["data"]["node_count"] == 60
    assert hd.deployed_files(stack, net["id"]) == {"1/saved_model.pbtxt"}
    assert str(net["id"]) in hd.models_config(stack)


def test_model_without_variables_deploys(stack):
    net = hd.create(stack, model="matrix_half_plus_two")
    task = hd.wait_task(stack, net["task_id"], timeout=SLACK)
    assert task["status"] == "success", task
    assert task["data"]["variables"] == []
    assert task["data"]["node_count"] == 6
    checks = {c["name"]: c for c in task["data"]["checks"]}
    assert checks["variables"]["status"] == "ok" and "no variables" in checks["variables"]["detail"]
    assert hd.deployed_files(stack, net["id"]) == {"1/saved_model.pb"}
    assert str(net["id"]) in hd.models_config(stack)


def test_mean_file_is_checked_and_deployed(stack):
    pre = hc.preprocessing("x:0", mean_file="mean.npy", color_channels="RGB")
    files = hc.unique_files()
    files["mean.npy"] = ("mean.npy", hc.npy_bytes((3,), 0.5))
    net = hd.create(stack, files=files, preprocessing=pre)
    task = hd.wait_task(stack, net["task_id"], timeout=SLACK)
    assert task["status"] == "success", task
    checks = {c["name"]: c for c in task["data"]["checks"]}
    assert checks["mean_files"]["detail"] == "1 mean file(s)"
    assert "1/mean.npy" in hd.deployed_files(stack, net["id"])


# --- damaged content ---------------------------------------------------------------------


def test_flipped_byte_in_a_data_shard_is_an_error_naming_variable_and_shard(stack):
    entries = hd.bundle_entries((HP2 / "variables/variables.index").read_bytes())
    b = entries["b"]
    shard = bytearray((HP2 / "variables" / SHARD).read_bytes())
    shard[b["offset"] + 1] ^= 0x10  # inside b's 4 bytes, and only there
    files = {name: (path.name, path.read_bytes()) for name, path in
             [("saved_model.pb", HP2 / "saved_model.pb"),
              ("variables.index", HP2 / "variables/variables.index")]}
    files[SHARD] = (SHARD, bytes(shard))
    # Create-time checks do not read shards: the create is accepted.
    net = hd.create(stack, files=files)
    task = hd.wait_task(stack, net["task_id"], timeout=SLACK)
    assert task["status"] == "error", task
    assert 'variable "b"' in task["error"], task["error"]
    assert SHARD in task["error"], task["error"]
    assert "CRC-32C" in task["error"]
    checks = task["data"]["checks"]
    assert [c["name"] for c in checks] == ["blobs", "graph", "engine_ops", "tensors", "variables"]
    assert [c["status"] for c in checks if c["name"] != "engine_ops"] == ["ok", "ok", "ok", "error"]
    assert checks[-1]["detail"] == task["error"]
    assert_not_deployed(stack, net["id"])


def test_blob_damaged_on_disk_after_the_create_is_an_error(stack):
    files = hd.unique_files()
    with hd.StackDeployerStopped(stack):
        net = hd.create(stack, files=files)
        pb = next(f for f in net["files"] if f["name"] == "saved_model.pb")
        blob = hd.blob_path(stack, pb["sha256"])
        hd.flip_byte(blob, 100)
    try:
        # The stack's deployer, started again, claims it at once.
        task = hd.wait_task(stack, net["task_id"], timeout=stack_poll_seconds(stack) + SLACK)
        assert task["status"] == "error", task
        assert "damaged" in task["error"] and "SHA-256" in task["error"], task["error"]
        assert '"saved_model.pb"' in task["error"] and pb["sha256"] in task["error"]
        assert [(c["name"], c["status"]) for c in task["data"]["checks"]] == [("blobs", "error")]
        assert_not_deployed(stack, net["id"])
    finally:
        hd.flip_byte(blob, 100)  # leave the store sound for whoever checks it later


# --- leases and attempts -------------------------------------------------------------


def test_task_held_by_a_dead_deployer_is_taken_over_after_its_lease(stack, start_deployer):
    """Simulation: the tasks row is made to look claimed by a deployer that
    is not running (owner, attempt 1, a lease still running), exactly what
    a deployer leaves behind when it dies after its claim committed."""
    dead = "dead-host:%d:0" % (os.getpid() + 100000)
    with hd.StackDeployerStopped(stack):
        held = hd.create(stack, name="held by a dead deployer")
        set_claim(stack, held["task_id"], dead, 1, "1 hour")
        d = start_deployer(**FAST)
        # The live deployer works (a later task is done) but leaves the
        # leased one alone.
        other = hd.create(stack, name="not held")
        assert hd.wait_task(stack, other["task_id"], timeout=SLACK)["status"] == "success"
        assert hd.task_row(stack, held["task_id"]) == {
            "status": "pending", "owner": dead, "attempts": 1, "lease_free": False}
        assert held["task_id"] not in [t for t, _, _ in hd.claims(d.log())]
        # The lease runs out: the next poll claims it.
        stack.sql("UPDATE tasks SET lease_until = clock_timestamp() - interval '1 second' "
                  "WHERE id = %d" % held["task_id"])
        task = hd.wait_task(stack, held["task_id"], timeout=1 + SLACK)
        assert task["status"] == "success", task
        row = hd.task_row(stack, held["task_id"])
        assert row["owner"] == d.owner and row["attempts"] == 2 and row["lease_free"]
        assert (held["task_id"], str(held["id"]), 2) in hd.claims(d.log())
        # The dead deployer's late write is refused by the owner/attempt guard.
        assert late_write(stack, held["task_id"], dead, 1) == 0
        assert hd.get_task(stack, held["task_id"])["data"]["checks"]  # the report stays
        assert hd.deploy_dir(stack).joinpath(str(held["id"]), "1", "saved_model.pb").exists()


def test_kill_9_in_the_middle_of_a_task_then_a_second_deployer_finishes_it(stack,
                                                                          start_deployer):
    """A real kill -9.  To be sure the deployer is in the middle of the task
    when it dies, the blob it reads first is swapped for a FIFO: its read
    blocks (as on a hung network filesystem) right after the claim."""
    files = hd.unique_files()
    with hd.StackDeployerStopped(stack):
        net = hd.create(stack, files=files)
        tid = net["task_id"]
        pb = next(f for f in net["files"] if f["name"] == "saved_model.pb")
        blob = hd.blob_path(stack, pb["sha256"])
        aside = blob.with_name(blob.name + ".test-aside")
        os.rename(blob, aside)
        try:
            os.mkfifo(blob, 0o444)
            first = start_deployer(**FAST)
            first.wait_log(r"task %d: claimed \(network %d, attempt 1\)" % (tid, net["id"]))
            time.sleep(0.2)  # it is now blocked reading the blob
            row = hd.task_row(stack, tid)
            assert row == {"status": "pending", "owner": first.owner, "attempts": 1,
                           "lease_free": False}, row
            first.kill()  # SIGKILL
        finally:
            if blob.exists() or os.path.lexists(blob):
                os.unlink(blob)
            os.rename(aside, blob)
        assert hd.task_row(stack, tid)["status"] == "pending"

        second = start_deployer(**FAST)
        task = hd.wait_task(stack, tid, timeout=3 + 1 + SLACK)
        assert task["status"] == "success", task
        row = hd.task_row(stack, tid)
        assert row["owner"] == second.owner and row["attempts"] == 2 and row["lease_free"]
        assert hd.claims(second.log()).count((tid, str(net["id"]), 2)) == 1
        assert "success" in second.wait_log(r"task %d: success" % tid)
        # What the killed deployer would have written, had it woken up late.
        assert late_write(stack, tid, first.owner, 1) == 0
        assert hd.deployed_files(stack, net["id"]) == {
            "1/saved_model.pb", "1/variables/variables.index", "1/variables/" + SHARD}
        assert str(net["id"]) in hd.models_config(stack)


def test_lease_extended_while_working_is_never_taken_over(stack, start_deployer):
    """A deployment that lasts longer than its lease keeps its claim: the
    lease is extended as the work goes on.  Reading variables.index and then
    the data shard takes 2.5 s each (hd.SlowBlobs): 5 s in all, with a 4 s
    lease, while a second deployer polls every second for claimable tasks."""
    files = hd.unique_files()
    lease = {"NNREG_DEPLOY_LEASE_SECONDS": 4, "NNREG_DEPLOY_POLL_SECONDS": 1}
    with hd.StackDeployerStopped(stack):
        net = hd.create(stack, files=files)
        tid = net["task_id"]
        sha = {f["name"]: f["sha256"] for f in net["files"]}
        slow = [hd.blob_path(stack, sha[name]) for name in ("variables.index", SHARD)]
        with hd.SlowBlobs(slow, delay=2.5) as blobs:
            worker = start_deployer(**lease)
            worker.wait_log(r"task %d: claimed" % tid)
            other = start_deployer(**lease)
            task = hd.wait_task(stack, tid, timeout=5 + SLACK)
            blobs.join()
        assert task["status"] == "success", task
        row = hd.task_row(stack, tid)
        assert row["owner"] == worker.owner and row["attempts"] == 1, row
        assert tid not in [t for t, _, _ in hd.claims(other.log())]
        checks = {c["name"]: c["duration_ms"] for c in task["data"]["checks"]}
        assert checks["blobs"] >= 5000, checks  # it did outlast its first lease
        assert hd.deployed_files(stack, net["id"]) == {
            "1/saved_model.pb", "1/variables/variables.index", "1/variables/" + SHARD}
        for name in ("variables.index", SHARD):
            assert (hd.deploy_dir(stack) / str(net["id"]) / "1/variables" / name).read_bytes() \
                == files[name][1]


def test_task_that_keeps_killing_deployers_ends_in_error(stack, start_deployer):
    """Simulation by SQL of a task whose deployers all died: one at the last
    attempt allowed still runs; one past it ends in error."""
    dead = "dead-host:%d:0" % (os.getpid() + 200000)
    with hd.StackDeployerStopped(stack):
        last = hd.create(stack, name="last attempt")
        over = hd.create(stack, name="too many attempts")
        set_claim(stack, last["task_id"], dead, 2, "-1 second")
        set_claim(stack, over["task_id"], dead, 3, "-1 second")
        d = start_deployer(NNREG_DEPLOY_MAX_ATTEMPTS=3, **FAST)
        task = hd.wait_task(stack, last["task_id"], timeout=SLACK)
        assert task["status"] == "success", task
        assert hd.task_row(stack, last["task_id"])["attempts"] == 3

        task = hd.wait_task(stack, over["task_id"], timeout=SLACK)
        assert task["status"] == "error", task
        assert "started 3 times and never finished" in task["error"], task["error"]
        assert "create the network again" in task["error"]
        row = hd.task_row(stack, over["task_id"])
        assert row["attempts"] == 4 and row["owner"] == d.owner and row["lease_free"]
        assert_not_deployed(stack, over["id"])


def test_leftovers_of_an_interrupted_install_are_swept(stack, start_deployer):
    """A deployer killed while it installs leaves a .tmp-<id>-<pid> tree (or a
    models.config temp file); the next deployer to connect removes those
    older than an hour, and never a younger one (another host's deployer
    may be at work in it)."""
    base = hd.deploy_dir(stack)
    old_tree = base / ".tmp-999999-4242"
    (old_tree / "1" / "variables").mkdir(parents=True)
    (old_tree / "1" / "saved_model.pb").write_bytes(b"half written")
    old_config = base / ".models.config.4242"
    old_config.write_text("model_config_list {\n")
    young_tree = base / ".tmp-999998-4243"
    young_tree.mkdir()
    two_hours_ago = time.time() - 7200
    for p in (old_tree, old_config):
        os.utime(p, (two_hours_ago, two_hours_ago))
    others = {p.name for p in base.iterdir()} - {old_tree.name, old_config.name}
    try:
        d = start_deployer(**FAST)
        hd.wait_until(lambda: not old_tree.exists() and not old_config.exists(), SLACK,
                      "leftovers removed")
        assert "left by an interrupted deployment" in d.wait_log(r"removed .*\.tmp-999999-4242")
        assert young_tree.is_dir()
        # Nothing else was touched (deployed networks, models.config, its lock).
        assert others <= {p.name for p in base.iterdir()}
    finally:
        young_tree.rmdir()


# --- several deployers ---------------------------------------------------------------------


def test_two_deployers_and_50_creates_every_task_claimed_exactly_once(stack, start_deployer):
    stack_log_start = len(stack.log("nnreg-deployer"))
    stack_owner = stack_deployer_owner(stack)
    mine = start_deployer(NNREG_DEPLOY_POLL_SECONDS=1)

    def one(i):
        return hd.create(stack, name="fifty-%02d-%s" % (i, uuid.uuid4().hex[:6]))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        nets = list(pool.map(one, range(50)))
    tids = {n["task_id"] for n in nets}
    assert len(tids) == 50
    for n in nets:
        task = hd.wait_task(stack, n["task_id"], timeout=stack_poll_seconds(stack) + SLACK)
        assert task["status"] == "success", task

    claims = (hd.claims(stack.log("nnreg-deployer")[stack_log_start:]) + hd.claims(mine.log()))
    per_task = {}
    for tid, _, attempt in claims:
        if tid in tids:
            per_task.setdefault(tid, []).append(attempt)
    assert set(per_task) == tids
    assert {tid: a for tid, a in per_task.items() if a != [1]} == {}
    rows = stack.sql_rows("SELECT id, owner, attempts, status FROM tasks WHERE id IN (%s)"
                          % ",".join(map(str, sorted(tids))))
    assert len(rows) == 50
    owners = {}
    for _, owner, attempts, status in rows:
        assert attempts == "1" and status == "success"
        assert owner in (stack_owner, mine.owner), owner
        owners[owner] = owners.get(owner, 0) + 1
    print("tasks per deployer: %s" % owners)
    config = hd.models_config(stack)
    assert all(str(n["id"]) in config for n in nets)


# --- the database goes away ------------------------------------------------------------------


def wait_healthy(stack, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(stack.url("health"), timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "not healthy again within %ds" % timeout
        time.sleep(0.2)


def test_postgres_restart_the_deployer_reconnects_and_deploys(stack):
    pid = hd.stack_deployer_pid(stack)
    assert pid
    listens = stack.log("nnreg-deployer").count("listening on nnreg_deploy")
    pg_ctl(stack, "stop_pg")
    try:
        time.sleep(1.5)  # the deployer meets the outage (and retries)
    finally:
        pg_ctl(stack, "start_pg")
    wait_healthy(stack)
    net = hd.create(stack, name="after the restart")
    task = hd.wait_task(stack, net["task_id"], timeout=stack_poll_seconds(stack) + SLACK)
    assert task["status"] == "success", task
    assert hd.stack_deployer_pid(stack) == pid  # not restarted: it reconnected
    log = stack.log("nnreg-deployer")
    assert log.count("listening on nnreg_deploy") > listens
    assert "listen connection lost" in log[-20000:] or "listen connection failed" in log[-20000:]


LISTEN_BACKENDS = ("SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                   "AND query = 'LISTEN nnreg_deploy; LISTEN nnreg_undeploy'")


def test_listen_backend_terminated_the_next_create_still_deploys(stack):
    before = hd.wait_until(lambda: stack.sql_rows(LISTEN_BACKENDS), 10, "a LISTEN backend")
    assert len(before) == 1, "only the stack's deployer should be listening: %s" % before
    assert stack.sql("SELECT pg_terminate_backend(%s)" % before[0][0]) == "t"
    net = hd.create(stack, name="after pg_terminate_backend")
    poll = stack_poll_seconds(stack)
    task = hd.wait_task(stack, net["task_id"], timeout=poll + 5)
    assert task["status"] == "success", task
    after = hd.wait_until(lambda: stack.sql_rows(LISTEN_BACKENDS), 10, "a new LISTEN backend")
    assert after != before
    assert "listen connection lost" in stack.log("nnreg-deployer")[-20000:]


# --- delete -------------------------------------------------------------------------------------


def test_delete_removes_the_deployed_copy_and_its_config_entry(stack):
    net = hd.create(stack, name="to delete")
    assert hd.wait_task(stack, net["task_id"], timeout=SLACK)["status"] == "success"
    assert hd.deployed_files(stack, net["id"])
    assert str(net["id"]) in hd.models_config(stack)
    resp = stack.request("DELETE", "networks/%d/" % net["id"])
    assert resp.status_code == 204, resp.text
    hd.wait_until(lambda: not (hd.deploy_dir(stack) / str(net["id"])).exists(), SLACK,
                  "deployed directory removed")
    hd.wait_until(lambda: str(net["id"]) not in hd.models_config(stack), SLACK,
                  "models.config entry removed")
    # The other deployed networks stay.
    assert all((hd.deploy_dir(stack) / name).is_dir() for name in hd.models_config(stack))


def test_network_deleted_before_its_deployment(stack):
    with hd.StackDeployerStopped(stack):
        net = hd.create(stack, name="deleted while pending")
        assert stack.request("DELETE", "networks/%d/" % net["id"]).status_code == 204
    hd.wait_until(lambda: hd.task_row(stack, net["task_id"])["status"] != "pending",
                  stack_poll_seconds(stack) + SLACK, "task finished")
    row = stack.sql_rows("SELECT status, error FROM tasks WHERE id = %d" % net["task_id"])[0]
    assert row[0] == "error" and "deleted" in row[1], row
    assert_not_deployed(stack, net["id"])
