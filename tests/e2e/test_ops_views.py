"""The dashboard views of sql/002_ops_views.sql, read as dashboards read
them: through a LOGIN role made a member of nnreg_readonly exactly as
docs/dashboards.md says (and through SET ROLE nnreg_readonly), after known
traffic: networks in two organizations (one public), deployments forced to
success and error at known times, an old error, a held pending task.

The session's stack is shared with the other suites, so every exact figure
is taken on rows only this module made (its organizations, a task kind of
its own, an hour 20 hours back and a day 3 days back, where no other suite
puts anything); whole-registry figures are compared with the same figures
computed by the owner from the tables.
"""

import time
import uuid

import pytest

import nnreg_client
from nnreg_client import assert_json

VIEWS = {
    "networks_per_organization", "storage", "storage_per_organization", "tasks_by_status",
    "oldest_pending_task", "deployment_errors_24h", "deployment_error_rate", "uploads_per_day",
    "deployment_durations",
}
TABLES = ("api_keys", "networks", "organizations", "blobs", "network_files", "tasks",
          "idempotency_keys", "nnreg_migrations")
SEP = "\x1f"  # psql field separator: no org name, error or number contains it
DAY = 86400.0


# --- psql as the owner and as the read-only role ---------------------------------

def psql(stack, query, role=None, set_role=None, check=True):
    """Runs query with scripts/dev psql (as the owner nnreg, or as the LOGIN
    role `role`, optionally after SET ROLE set_role); CompletedProcess."""
    args = ["psql", "-q", "-At", "-F", SEP, "-v", "ON_ERROR_STOP=1"]
    if role:
        args += ["-U", role]  # after scripts/dev's own -U nnreg: the last one wins
    if set_role:
        args += ["-c", "SET ROLE %s" % set_role]
    return stack.dev(*args, "-c", query, check=check)


def rows(stack, query, role=None, set_role=None):
    out = psql(stack, query, role, set_role).stdout.rstrip("\n")
    return [line.split(SEP) for line in out.splitlines()] if out else []


def as_dashboard(stack, ops, query):
    """Rows of query read by the dashboard login (member of nnreg_readonly)."""
    return rows(stack, query, role=ops["login"])


def owner(stack, query):
    return rows(stack, query)


def stable(read, reference, timeout=30.0):
    """read() once it equals reference() (the deployer may finish another
    suite's task between the two); asserts they meet within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got, want = read(), reference()
        if got == want:
            return got
        if time.monotonic() > deadline:
            assert got == want
        time.sleep(0.3)


def model_bytes(model):
    return sum(p.stat().st_size for p in nnreg_client.model_files(model).values())


# --- the traffic ------------------------------------------------------------------

def wait_not_pending(stack, task_ids, timeout=60.0):
    """Lets the stack's deployer finish the creates' tasks before they are
    overwritten (its finish is guarded by status = 'pending', so a late one
    could not undo the forced states anyway)."""
    deadline = time.monotonic() + timeout
    ids = ",".join(map(str, task_ids))
    while time.monotonic() < deadline:
        if stack.sql_value("SELECT count(*) FROM tasks WHERE id IN (%s) AND status = 'pending'"
                           % ids) == "0":
            return
        time.sleep(0.2)


@pytest.fixture(scope="module")
def ops(stack):
    tag = uuid.uuid4().hex[:10]
    login = "ops_dash_" + tag
    # docs/dashboards.md's recipe (trust authentication in the dev cluster).
    stack.sql("CREATE ROLE %s LOGIN IN ROLE nnreg_readonly" % login)
    a, b, c = stack.new_tenant(), stack.new_tenant(), stack.new_tenant()
    names = (a["org"], b["org"], c["org"])
    org_ids = {name: int(i) for name, i in owner(
        stack, "SELECT name, id FROM organizations WHERE name IN ('%s', '%s', '%s')" % names)}
    nets = {}
    for label, tenant, model in (("a1", a, "half_plus_two_cpu"), ("a2", a, "half_plus_two_cpu"),
                                 ("b1", b, "half_plus_three")):
        resp = stack.create_network(api_key=tenant["api_key"], model=model,
                                    name="ops %s %s" % (label, tag))
        nets[label] = assert_json(resp, 201)
    wait_not_pending(stack, [n["task_id"] for n in nets.values()])

    error_msg = "ops view test: forced failure %s" % tag
    old_error_msg = "ops view test: failure of yesterday %s" % tag
    kind = "ops_test_" + tag
    slug = "ops-" + tag
    # X, an hour 20 hours back, holds this module's finished deployments:
    # a1 succeeded in 60 s, a2 failed, b1 succeeded in 120 s.  The three
    # networks are backdated to day D, 3 days back.
    sql = """
BEGIN;
CREATE TEMP TABLE t0 AS SELECT date_trunc('hour', now(), 'UTC') - interval '20 hours' AS x,
    ((now() AT TIME ZONE 'UTC')::date - 3) AS d;
UPDATE tasks SET status = 'success', error = NULL, owner = NULL, lease_until = NULL,
    create_date = x + interval '5 minutes', update_date = x + interval '6 minutes'
    FROM t0 WHERE id = {a1t};
UPDATE tasks SET status = 'error', error = '{error_msg}', owner = NULL, lease_until = NULL,
    create_date = x + interval '7 minutes', update_date = x + interval '10 minutes'
    FROM t0 WHERE id = {a2t};
UPDATE tasks SET status = 'success', error = NULL, owner = NULL, lease_until = NULL,
    create_date = x + interval '15 minutes', update_date = x + interval '17 minutes'
    FROM t0 WHERE id = {b1t};
UPDATE networks SET create_date = (d + time '12:00') AT TIME ZONE 'UTC'
    FROM t0 WHERE id IN ({a1}, {a2}, {b1});
UPDATE networks SET is_public = true, slug = '{slug}' WHERE id = {a1};
INSERT INTO tasks (org_id, kind, name, status, error, create_date, update_date)
    VALUES ({borg}, 'deploy', 'ops old failure', 'error', '{old_error_msg}',
            now() - interval '26 hours', now() - interval '25 hours');
INSERT INTO tasks (org_id, kind, name, status, error, create_date, update_date)
    VALUES ({borg}, '{kind}', 'ops failed', 'error', 'ops test', now() - interval '2 hours',
            now() - interval '1 hour');
INSERT INTO tasks (org_id, kind, name, owner, attempts, lease_until, create_date, update_date)
    VALUES ({borg}, '{kind}', 'ops held', 'ops-test-deployer', 2, now() + interval '1 hour',
            now() - interval '30 days', now() - interval '30 days');
COMMIT;
""".format(a1t=nets["a1"]["task_id"], a2t=nets["a2"]["task_id"], b1t=nets["b1"]["task_id"],
           a1=nets["a1"]["id"], a2=nets["a2"]["id"], b1=nets["b1"]["id"], borg=org_ids[b["org"]],
           error_msg=error_msg, old_error_msg=old_error_msg, kind=kind, slug=slug)
    (x, d), = owner(stack, sql + "SELECT extract(epoch FROM x), d FROM t0;")
    (old_error_id,), = owner(stack, "SELECT id FROM tasks WHERE error = '%s'" % old_error_msg)
    (pending_id,), = owner(stack, "SELECT id FROM tasks WHERE kind = '%s' AND status = 'pending'"
                                  % kind)
    ctx = {
        "login": login, "tag": tag, "kind": kind, "nets": nets,
        "orgs": {"a": (org_ids[a["org"]], a["org"]), "b": (org_ids[b["org"]], b["org"]),
                 "c": (org_ids[c["org"]], c["org"])},
        "x": float(x), "d": d, "error_msg": error_msg, "old_error_id": int(old_error_id),
        "pending_id": int(pending_id),
    }
    try:
        yield ctx
    finally:
        # What other suites could trip over: a public network, a held
        # pending task, a login role.
        stack.sql("UPDATE networks SET is_public = false, slug = NULL WHERE slug = '%s'" % slug)
        stack.sql("DELETE FROM tasks WHERE kind = '%s' OR id = %d" % (kind, int(old_error_id)))
        stack.sql("DROP ROLE IF EXISTS %s" % login)


# --- the migration and the role ---------------------------------------------------

def test_migrate_again_applies_nothing(stack):
    out = stack.admin("migrate").stdout
    assert "nothing to apply" in out, out
    assert not [line for line in out.splitlines() if line.startswith("applied ")], out
    names = [r[0] for r in owner(stack, "SELECT name FROM nnreg_migrations ORDER BY version")]
    assert names[:2] == ["001_init.sql", "002_ops_views.sql"], names


def test_the_role_holds_select_on_the_views_and_nothing_else(stack):
    assert owner(stack, "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls "
                        "FROM pg_roles WHERE rolname = 'nnreg_readonly'") == [["f"] * 5]
    views = owner(stack, "SELECT c.relname, c.relkind FROM pg_class c "
                         "JOIN pg_namespace s ON s.oid = c.relnamespace "
                         "WHERE s.nspname = 'nnreg_ops' ORDER BY 1")
    assert {v for v, _ in views} == VIEWS and {k for _, k in views} == {"v"}, views
    # Every privilege nnreg_readonly holds on a relation of this database.
    grants = owner(stack, "SELECT s.nspname, c.relname, a.privilege_type FROM pg_class c "
                          "JOIN pg_namespace s ON s.oid = c.relnamespace "
                          "CROSS JOIN aclexplode(c.relacl) a "
                          "WHERE a.grantee = 'nnreg_readonly'::regrole")
    assert sorted(grants) == sorted(["nnreg_ops", v, "SELECT"] for v in VIEWS), grants
    schemas = owner(stack, "SELECT s.nspname, a.privilege_type FROM pg_namespace s "
                           "CROSS JOIN aclexplode(s.nspacl) a "
                           "WHERE a.grantee = 'nnreg_readonly'::regrole")
    assert schemas == [["nnreg_ops", "USAGE"]], schemas


@pytest.mark.parametrize("how", ["login", "set_role"])
def test_tables_are_refused_to_the_role(stack, ops, how):
    kw = {"role": ops["login"]} if how == "login" else {"role": ops["login"],
                                                         "set_role": "nnreg_readonly"}
    for table in TABLES:
        for query in ("SELECT * FROM %s" % table, "SELECT count(*) FROM public.%s" % table):
            proc = psql(stack, query, check=False, **kw)
            assert proc.returncode != 0, (query, proc.stdout)
            assert "permission denied for table %s" % table in proc.stderr, (query, proc.stderr)
    proc = psql(stack, "SELECT key_hash FROM api_keys", check=False, **kw)
    assert "permission denied for table api_keys" in proc.stderr, proc.stderr
    proc = psql(stack, "CREATE VIEW nnreg_ops.keys AS SELECT 1", check=False, **kw)
    assert "permission denied for schema nnreg_ops" in proc.stderr, proc.stderr
    # The views themselves are readable both ways.
    for view in sorted(VIEWS):
        psql(stack, "SELECT * FROM nnreg_ops.%s" % view, **kw)


# --- the views ----------------------------------------------------------------------

def test_networks_per_organization(stack, ops):
    ids = ",".join(str(i) for i, _ in ops["orgs"].values())
    got = as_dashboard(stack, ops, "SELECT org_id, org_name, networks, public_networks "
                                   "FROM nnreg_ops.networks_per_organization "
                                   "WHERE org_id IN (%s) ORDER BY org_id" % ids)
    a, b, c = ops["orgs"]["a"], ops["orgs"]["b"], ops["orgs"]["c"]
    assert got == sorted([[str(a[0]), a[1], "2", "1"], [str(b[0]), b[1], "1", "0"],
                          [str(c[0]), c[1], "0", "0"]], key=lambda r: int(r[0]))
    # One row per organization.
    assert as_dashboard(stack, ops, "SELECT count(*) FROM nnreg_ops.networks_per_organization") \
        == owner(stack, "SELECT count(*) FROM organizations")


def test_storage_per_organization(stack, ops):
    two, three = model_bytes("half_plus_two_cpu"), model_bytes("half_plus_three")
    nfiles_two = len(nnreg_client.model_files("half_plus_two_cpu"))
    nfiles_three = len(nnreg_client.model_files("half_plus_three"))
    want = {
        ops["orgs"]["a"][0]: [ops["orgs"]["a"][1], 2 * nfiles_two, 2 * two, nfiles_two, two],
        ops["orgs"]["b"][0]: [ops["orgs"]["b"][1], nfiles_three, three, nfiles_three, three],
        ops["orgs"]["c"][0]: [ops["orgs"]["c"][1], 0, 0, 0, 0],
    }
    got = as_dashboard(stack, ops, "SELECT org_id, org_name, file_references, referenced_bytes, "
                                   "blobs, blob_bytes FROM nnreg_ops.storage_per_organization "
                                   "WHERE org_id IN (%s)" % ",".join(map(str, want)))
    assert {int(r[0]): [r[1]] + [int(v) for v in r[2:]] for r in got} == want


def test_storage_totals(stack, ops):
    cols = ("blobs, blob_bytes, referenced_blobs, unreferenced_blobs, unreferenced_bytes, "
            "file_references, referenced_bytes")
    got = as_dashboard(stack, ops, "SELECT %s FROM nnreg_ops.storage" % cols)
    assert len(got) == 1
    want = owner(stack, """
        SELECT (SELECT count(*) FROM blobs), (SELECT COALESCE(sum(size), 0) FROM blobs),
               (SELECT count(DISTINCT sha256) FROM network_files),
               (SELECT count(*) FROM blobs b
                 WHERE b.sha256 NOT IN (SELECT sha256 FROM network_files)),
               (SELECT COALESCE(sum(size), 0) FROM blobs b
                 WHERE b.sha256 NOT IN (SELECT sha256 FROM network_files)),
               (SELECT count(*) FROM network_files),
               (SELECT COALESCE(sum(size), 0) FROM network_files)""")
    assert got == want
    blobs, blob_bytes, referenced, unreferenced, _, refs, ref_bytes = map(int, got[0])
    assert blobs == referenced + unreferenced
    assert refs >= 9 and ref_bytes >= 2 * model_bytes("half_plus_two_cpu") \
        + model_bytes("half_plus_three")
    assert blob_bytes <= ref_bytes + int(got[0][4])


def test_tasks_by_status(stack, ops):
    got = as_dashboard(stack, ops, "SELECT status, tasks FROM nnreg_ops.tasks_by_status "
                                   "WHERE kind = '%s' ORDER BY status" % ops["kind"])
    assert got == [["error", "1"], ["pending", "1"], ["success", "0"]]
    # Every status of the deploy kind is listed, and all kinds add up.
    query = ("SELECT kind, status, tasks FROM nnreg_ops.tasks_by_status "
             "WHERE tasks > 0 ORDER BY 1, 2")
    stable(lambda: as_dashboard(stack, ops, query),
           lambda: owner(stack, "SELECT kind, status, count(*) FROM tasks "
                                "GROUP BY 1, 2 ORDER BY 1, 2"))
    deploy = as_dashboard(stack, ops, "SELECT status, tasks FROM nnreg_ops.tasks_by_status "
                                      "WHERE kind = 'deploy' ORDER BY status")
    assert [s for s, _ in deploy] == ["error", "pending", "success"]
    counts = {s: int(n) for s, n in deploy}
    assert counts["error"] >= 2 and counts["success"] >= 2


def test_oldest_pending_task(stack, ops):
    got = as_dashboard(stack, ops, "SELECT age_seconds, task_id, kind, org_id, network_id, "
                                   "attempts, owner, lease_until IS NOT NULL "
                                   "FROM nnreg_ops.oldest_pending_task")
    assert len(got) == 1
    age, task_id, kind, org_id, network_id, attempts, holder, leased = got[0]
    assert [task_id, kind, org_id, network_id, attempts, holder, leased] == [
        str(ops["pending_id"]), ops["kind"], str(ops["orgs"]["b"][0]), "", "2",
        "ops-test-deployer", "t"]
    assert 30 * DAY <= float(age) < 30 * DAY + 600


def test_deployment_errors_24h(stack, ops):
    got = as_dashboard(stack, ops, "SELECT task_id, network_id, network_name, org_id, org_name, "
                                   "error, "
                                   "extract(epoch FROM failed_at), extract(epoch FROM create_date) "
                                   "FROM nnreg_ops.deployment_errors_24h")
    a2 = ops["nets"]["a2"]
    mine = [r for r in got if r[0] == str(a2["task_id"])]
    assert len(mine) == 1, got
    task_id, network_id, network_name, org_id, org_name, error, failed_at, created = mine[0]
    assert [network_id, network_name, org_id, org_name, error] == [
        str(a2["id"]), a2["name"], str(ops["orgs"]["a"][0]), ops["orgs"]["a"][1], ops["error_msg"]]
    assert float(failed_at) == pytest.approx(ops["x"] + 600, abs=0.01)
    assert float(created) == pytest.approx(ops["x"] + 420, abs=0.01)
    ids = {r[0] for r in got}
    assert str(ops["old_error_id"]) not in ids  # 25 hours ago
    assert str(ops["nets"]["a1"]["task_id"]) not in ids  # succeeded
    # Exactly the deploy errors of the last 24 hours, newest first.
    stable(lambda: [r[0] for r in as_dashboard(stack, ops, "SELECT task_id FROM "
                                                           "nnreg_ops.deployment_errors_24h")],
           lambda: [r[0] for r in owner(stack, "SELECT id FROM tasks WHERE kind = 'deploy' AND "
                                               "status = 'error' AND update_date >= now() - "
                                               "interval '24 hours' "
                                               "ORDER BY update_date DESC, id DESC")])


def test_deployment_error_rate(stack, ops):
    got = as_dashboard(stack, ops, "SELECT extract(epoch FROM hour), finished, errors, "
                                   "error_ratio, "
                                   "extract(epoch FROM date_trunc('hour', now(), 'UTC')) "
                                   "FROM nnreg_ops.deployment_error_rate ORDER BY hour")
    assert len(got) == 24
    hours = [float(r[0]) for r in got]
    assert hours == [hours[0] + 3600 * i for i in range(24)]
    assert hours[-1] == float(got[0][4])  # up to the current hour
    by_hour = {float(r[0]): r[1:4] for r in got}
    # The hour 20 hours back holds this module's three deployments only.
    assert ops["x"] in by_hour, (ops["x"], hours)
    finished, errors, ratio = by_hour[ops["x"]]
    assert (int(finished), int(errors)) == (3, 1)
    assert float(ratio) == pytest.approx(1 / 3)
    for finished, errors, ratio in by_hour.values():
        if int(finished) == 0:
            assert ratio == "" and errors == "0"
        else:
            assert float(ratio) == pytest.approx(int(errors) / int(finished))
    # The old failure (25 hours back) is outside every bucket.
    assert min(hours) > time.time() - 24 * 3600 - 60


def test_uploads_per_day(stack, ops):
    got = as_dashboard(stack, ops, "SELECT day, networks_created, files_uploaded, bytes_uploaded, "
                                   "new_blobs, new_blob_bytes, (now() AT TIME ZONE 'UTC')::date "
                                   "FROM nnreg_ops.uploads_per_day ORDER BY day")
    days = [r[0] for r in got]
    assert days[-1] == got[0][6] and len(set(days)) == len(days)
    by_day = {r[0]: [int(v) for v in r[1:6]] for r in got}
    # Day D, 3 days back, holds this module's three networks only.
    files = 2 * len(nnreg_client.model_files("half_plus_two_cpu")) \
        + len(nnreg_client.model_files("half_plus_three"))
    nbytes = 2 * model_bytes("half_plus_two_cpu") + model_bytes("half_plus_three")
    assert by_day[ops["d"]][:3] == [3, files, nbytes]
    # Every day from the first to today, zeros included (D-1 .. D+2 at least).
    assert len(days) >= 4 and days.index(ops["d"]) == len(days) - 4
    # The blobs' side, against the owner's own count.
    view = ("SELECT day, new_blobs, new_blob_bytes FROM nnreg_ops.uploads_per_day "
            "WHERE new_blobs > 0 ORDER BY day")
    stable(lambda: as_dashboard(stack, ops, view),
           lambda: owner(stack, "SELECT (create_date AT TIME ZONE 'UTC')::date, count(*), "
                                "sum(size) FROM blobs GROUP BY 1 ORDER BY 1"))


def test_deployment_durations(stack, ops):
    got = as_dashboard(stack, ops, "SELECT task_id, network_id, org_id, org_name, "
                                   "duration_seconds, extract(epoch FROM finished_at) "
                                   "FROM nnreg_ops.deployment_durations")
    by_task = {r[0]: r for r in got}
    a1, b1 = ops["nets"]["a1"], ops["nets"]["b1"]
    row = by_task[str(a1["task_id"])]
    assert row[1:4] == [str(a1["id"]), str(ops["orgs"]["a"][0]), ops["orgs"]["a"][1]]
    assert float(row[4]) == pytest.approx(60.0)
    assert float(row[5]) == pytest.approx(ops["x"] + 360, abs=0.01)
    row = by_task[str(b1["task_id"])]
    assert row[1:4] == [str(b1["id"]), str(ops["orgs"]["b"][0]), ops["orgs"]["b"][1]]
    assert float(row[4]) == pytest.approx(120.0)
    assert str(ops["nets"]["a2"]["task_id"]) not in by_task  # failed
    # The docs' median panel, as the dashboard runs it.
    median = as_dashboard(stack, ops, "SELECT percentile_cont(0.5) WITHIN GROUP "
                                      "(ORDER BY duration_seconds) "
                                      "FROM nnreg_ops.deployment_durations")
    assert float(median[0][0]) >= 0
