"""nnreg-admin's operations commands end to end, against the running stack:

- `gc` removes a deleted network's blobs only once nothing references them
  and both the row (create_date) and the file (mtime) are older than the
  grace period; keeps shared and young blobs; removes orphan files, rows
  without files and dead uploads in data/tmp; refuses a second gc; puts
  back a blob an interrupted gc had set aside; `--dry-run` changes nothing.
- `check` exits 0 on a clean store and 1 with one JSON line per problem:
  damaged blobs (a byte flipped, a size changed), missing ones, old orphan
  files, stray entries.
- `publish` / `unpublish` make a network appear in and disappear from the
  public list, its slug and other organizations' view.

Ages are made with os.utime (files) and an UPDATE of blobs.create_date
(rows), never by waiting.  Every test leaves the store clean.
"""

import hashlib
import json
import os
import subprocess
import time
import uuid

import pytest

import helpers_create as hc
from nnreg_client import REPO, assert_error, assert_json

GRACE = 3600  # NNREG_GC_GRACE_SECONDS's default, which the stack uses
OLD = 2 * GRACE
GC_SUMMARY_KEYS = {"blobs_removed", "bytes_freed", "rows_removed", "temp_removed", "kept_young",
                   "dry_run"}
GC_LOCK_KEY = 7957688175018828643


# --- helpers -------------------------------------------------------------------


def run_admin(stack, *args):
    """nnreg-admin ARGS; returns (exit status, JSON lines of stdout, stderr)."""
    proc = stack.admin(*args, check=False)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, lines, proc.stderr


def gc(stack, *flags):
    rc, lines, err = run_admin(stack, "gc", *flags)
    assert rc == 0, "gc exited %d: %s" % (rc, err)
    assert len(lines) == 1, lines
    summary = lines[0]
    assert set(summary) == GC_SUMMARY_KEYS, summary
    assert all(isinstance(summary[k], int) and summary[k] >= 0
               for k in GC_SUMMARY_KEYS - {"dry_run"}), summary
    assert summary["dry_run"] is ("--dry-run" in flags)
    return summary


def check(stack, *flags):
    """Runs check; returns (exit status, problem lines, summary)."""
    rc, lines, err = run_admin(stack, "check", *flags)
    assert rc in (0, 1), "check exited %d: %s" % (rc, err)
    assert lines, "check printed nothing: %s" % err
    summary = lines[-1]
    assert "problem" not in summary and summary["problems"] == len(lines) - 1, lines
    problems = lines[:-1]
    assert all("problem" in p for p in problems), problems
    assert (rc == 1) == bool(problems), (rc, lines, err)
    if rc == 1:
        assert "problem" in err, err
    return rc, problems, summary


def assert_clean(stack):
    rc, problems, summary = check(stack)
    assert rc == 0 and problems == [] and summary["problems"] == 0, (problems, summary)
    return summary


def blob_file(stack, sha):
    return stack.blob_dir / "sha256" / sha[:2] / sha


def blob_row(stack, sha):
    return stack.sql_rows("SELECT size FROM blobs WHERE sha256 = '%s'" % sha)


def age_files(stack, shas, seconds=OLD):
    past = time.time() - seconds
    for sha in shas:
        os.utime(blob_file(stack, sha), (past, past))


def age_rows(stack, shas, seconds=OLD):
    names = ",".join("'%s'" % s for s in shas)
    stack.sql("UPDATE blobs SET create_date = clock_timestamp() - interval '%d seconds' "
              "WHERE sha256 IN (%s)" % (seconds, names))


def age(stack, shas, seconds=OLD):
    age_rows(stack, shas, seconds)
    age_files(stack, shas, seconds)


def new_network(stack, files=None, api_key=None, **fields):
    """Creates a half_plus_two_cpu network with unique graph and data shard
    (so their blobs are its own); returns the body."""
    fields.setdefault("name", "admin-" + uuid.uuid4().hex[:8])
    resp = stack.create_network(api_key=api_key, files=files or hc.unique_files(), **fields)
    return assert_json(resp, 201)


def delete_network(stack, network_id, api_key=None):
    resp = stack.request("DELETE", "networks/%d/" % network_id, api_key=api_key)
    assert resp.status_code in (200, 204), (resp.status_code, resp.text)


def shas_of(network, pred=lambda f: True):
    return {f["sha256"] for f in network["files"] if pred(f)}


def own_files(network):
    """The blobs only this network has: its unique graph and data shard."""
    return shas_of(network, lambda f: f["name"] != "variables.index")


def random_blob(size=64):
    data = os.urandom(size)
    return hashlib.sha256(data).hexdigest(), data


def write_blob_file(stack, sha, data):
    path = blob_file(stack, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o444)
    return path


@pytest.fixture(autouse=True)
def clean_store(stack):
    """Every test starts and ends with a store check finds nothing wrong in."""
    assert_clean(stack)
    yield
    assert_clean(stack)


# --- gc ------------------------------------------------------------------------


def test_gc_removes_a_deleted_networks_blobs_only_when_old(stack):
    net = new_network(stack)
    mine = own_files(net)
    assert len(mine) == 2, net["files"]
    sizes = {f["sha256"]: f["size"] for f in net["files"]}

    # Referenced, even when old: nothing to do.
    age(stack, mine)
    gc(stack)
    assert all(blob_file(stack, s).exists() and blob_row(stack, s) for s in mine)

    # Unreferenced and young: kept.
    age(stack, mine, seconds=0)
    delete_network(stack, net["id"])
    summary = gc(stack)
    assert summary["kept_young"] >= 2, summary
    assert all(blob_file(stack, s).exists() and blob_row(stack, s) for s in mine)

    # Old rows, young files (a create refreshed them): kept, rows included.
    age_rows(stack, mine)
    summary = gc(stack)
    assert summary["kept_young"] >= 2, summary
    assert all(blob_file(stack, s).exists() and blob_row(stack, s) for s in mine)

    # Old files, young rows: kept as well.
    age_rows(stack, mine, seconds=0)
    age_files(stack, mine)
    gc(stack)
    assert all(blob_file(stack, s).exists() and blob_row(stack, s) for s in mine)

    # Both old: a dry run says so and changes nothing ...
    age(stack, mine)
    dry = gc(stack, "--dry-run")
    assert dry["blobs_removed"] >= 2 and dry["rows_removed"] >= 2, dry
    assert dry["bytes_freed"] >= sum(sizes[s] for s in mine), dry
    assert all(blob_file(stack, s).exists() and blob_row(stack, s) for s in mine)

    # ... and gc removes files and rows.
    summary = gc(stack)
    assert summary["blobs_removed"] >= 2 and summary["rows_removed"] >= 2, summary
    assert summary["bytes_freed"] >= sum(sizes[s] for s in mine), summary
    for s in mine:
        assert not blob_file(stack, s).exists(), s
        assert blob_row(stack, s) == [], s
    assert not any(n.startswith("gc-") for n in stack.upload_tmp_files())

    # Nothing left to do the second time.
    again = gc(stack)
    assert again["blobs_removed"] == 0 and again["rows_removed"] == 0, again


def test_gc_keeps_shared_blobs(stack):
    files = hc.unique_files()
    shard = next(p for p in files if p.startswith("variables.data-"))
    a = new_network(stack, files=files)
    b_files = hc.unique_files()
    b_files[shard] = files[shard]  # the same shard bytes: one blob, two networks
    b = new_network(stack, files=b_files)
    shared = shas_of(a, lambda f: f["name"] == shard)
    assert shared == shas_of(b, lambda f: f["name"] == shard)
    a_only = own_files(a) - shared
    index = shas_of(a, lambda f: f["name"] == "variables.index")  # every network has it

    delete_network(stack, a["id"])
    age(stack, shared | a_only | index)
    gc(stack)
    assert not blob_file(stack, next(iter(a_only))).exists()
    for s in shared | index:
        assert blob_file(stack, s).exists() and blob_row(stack, s), s
    assert_json(stack.get("networks/%d/" % b["id"]), 200)

    delete_network(stack, b["id"])
    age(stack, own_files(b))
    gc(stack)
    for s in own_files(b):
        assert not blob_file(stack, s).exists() and blob_row(stack, s) == [], s
    # The index is every half_plus_two network's: kept while one is left.
    sha = next(iter(index))
    refs = int(stack.sql("SELECT count(*) FROM network_files WHERE sha256 = '%s'" % sha))
    assert blob_file(stack, sha).exists() == (refs > 0) == bool(blob_row(stack, sha)), refs


def test_gc_removes_orphan_files_and_rows_without_files(stack):
    orphan, data = random_blob()
    path = write_blob_file(stack, orphan, data)
    row_only, _ = random_blob()
    stack.sql("INSERT INTO blobs (sha256, size, create_date) VALUES "
              "('%s', 64, clock_timestamp() - interval '%d seconds')" % (row_only, OLD))

    # A young orphan may be a create between placing its file and
    # committing its rows: kept.
    summary = gc(stack)
    assert path.exists() and summary["kept_young"] >= 1, summary
    assert blob_row(stack, row_only) == []  # the old row without a file went
    assert summary["rows_removed"] >= 1, summary

    age_files(stack, [orphan])
    summary = gc(stack)
    assert not path.exists()
    assert summary["blobs_removed"] >= 1 and summary["bytes_freed"] >= len(data), summary


def test_gc_removes_dead_uploads(stack):
    tmp = stack.upload_tmp_dir
    dead = tmp / ("upload-dead%s" % uuid.uuid4().hex[:6])
    live = tmp / ("upload-live%s" % uuid.uuid4().hex[:6])
    dead.write_bytes(b"x" * 100)
    live.write_bytes(b"y" * 10)
    past = time.time() - OLD
    os.utime(dead, (past, past))
    try:
        dry = gc(stack, "--dry-run")
        assert dry["temp_removed"] >= 1 and dead.exists(), dry
        summary = gc(stack)
        assert summary["temp_removed"] >= 1, summary
        assert not dead.exists()
        assert live.exists()
    finally:
        for p in (dead, live):
            if p.exists():
                p.unlink()


def test_gc_puts_back_what_an_interrupted_gc_set_aside(stack):
    net = new_network(stack)
    sha = sorted(own_files(net))[0]
    aside = stack.upload_tmp_dir / ("gc-" + sha)
    os.rename(blob_file(stack, sha), aside)
    rc, problems, _ = check(stack)
    assert rc == 1 and [p["problem"] for p in problems] == ["missing"], problems

    gc(stack)
    assert blob_file(stack, sha).exists() and not aside.exists()
    assert_clean(stack)
    delete_network(stack, net["id"])


def test_only_one_gc_at_a_time(stack):
    """A psql session holds gc's advisory lock, as a running gc would."""
    holder = subprocess.Popen([str(REPO / "scripts" / "dev"), "psql", "-At", "-v",
                               "ON_ERROR_STOP=1"],
                              env=stack.env, cwd=str(REPO), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        holder.stdin.write("SELECT 'locked', pg_advisory_lock(%d);\n" % GC_LOCK_KEY)
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked|"
        rc, lines, err = run_admin(stack, "gc")
        assert rc == 1 and lines == [], (rc, lines, err)
        assert "another `nnreg-admin gc` is running" in err, err
        # A dry run changes nothing, so it does not need the lock.
        assert gc(stack, "--dry-run")["dry_run"] is True
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    gc(stack)


def test_gc_racing_creates_never_loses_a_referenced_blob(stack):
    """gc runs while creates upload the very content it is removing: each
    create either succeeds with every file in place or fails; never does a
    network reference a blob that is gone."""
    import random
    import threading

    files = hc.unique_files()
    seed = new_network(stack, files=files)
    content = own_files(seed)
    delete_network(stack, seed["id"])
    created = []
    for _ in range(8):
        present = [s for s in content if blob_file(stack, s).exists()]
        age_files(stack, present)
        age_rows(stack, content)
        result = {}

        def do_gc():
            time.sleep(random.uniform(0, 0.15))
            result["gc"] = run_admin(stack, "gc")

        def do_create():
            time.sleep(random.uniform(0, 0.15))
            result["create"] = stack.create_network(files=files, name="race")

        threads = [threading.Thread(target=do_gc), threading.Thread(target=do_create)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert result["gc"][0] == 0, result["gc"]
        resp = result["create"]
        assert resp.status_code in (201, 500), (resp.status_code, resp.text)
        if resp.status_code == 201:
            net = resp.json()
            created.append(net["id"])
            for f in net["files"]:
                path = blob_file(stack, f["sha256"])
                assert path.exists(), (f, result["gc"])
                assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
                assert blob_row(stack, f["sha256"]), f
            delete_network(stack, net["id"])
    assert created, "no create succeeded"
    assert_clean(stack)
    age(stack, [s for s in content if blob_file(stack, s).exists()])
    gc(stack)


def test_gc_usage_errors(stack):
    rc, lines, err = run_admin(stack, "gc", "--force")
    assert rc == 2 and lines == [] and "--force" in err, err
    rc, lines, err = run_admin(stack, "gc", "--dry-run", "--dry-run", "x")
    assert rc == 2, (rc, err)


# --- check ---------------------------------------------------------------------


def test_check_clean_store(stack):
    summary = assert_clean(stack)
    for key in ("blobs", "bytes", "unreferenced", "missing", "damaged", "unreadable",
                "rows_without_blob", "size_mismatch", "orphans", "young_orphans", "stray"):
        assert isinstance(summary[key], int) and summary[key] >= 0, (key, summary)
    assert summary["sha256_verified"] is True
    assert summary["blobs"] >= 1, summary
    quick = check(stack, "--quick")[2]
    assert quick["sha256_verified"] is False and quick["blobs"] == summary["blobs"], quick


def test_check_reports_damaged_and_missing_blobs(stack):
    net = new_network(stack)
    damaged, missing = sorted(own_files(net))
    damaged_path, missing_path = blob_file(stack, damaged), blob_file(stack, missing)
    original = damaged_path.read_bytes()
    kept = stack.var / ("kept-" + missing)

    os.chmod(damaged_path, 0o644)
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF
    damaged_path.write_bytes(bytes(flipped))
    os.rename(missing_path, kept)
    try:
        rc, problems, summary = check(stack)
        assert rc == 1
        by_sha = {p["sha256"]: p for p in problems}
        assert set(by_sha) == {damaged, missing}, problems
        d = by_sha[damaged]
        assert d["problem"] == "damaged" and d["reason"] == "sha256", d
        assert d["actual_size"] == len(original) and d["size"] == len(original), d
        assert d["actual_sha256"] == hashlib.sha256(bytes(flipped)).hexdigest(), d
        assert d["path"] == str(damaged_path), d
        m = by_sha[missing]
        assert m["problem"] == "missing" and m["path"] == str(missing_path), m
        for p in (d, m):
            assert [f["network_id"] for f in p["files"]] == [net["id"]], p
        assert summary["damaged"] == 1 and summary["missing"] == 1, summary
        assert summary["problems"] == 2, summary

        # --quick compares sizes only: the flipped byte goes unseen, a
        # changed size does not.
        rc, problems, _ = check(stack, "--quick")
        assert [p["sha256"] for p in problems] == [missing], problems
        damaged_path.write_bytes(original + b"!")
        rc, problems, _ = check(stack, "--quick")
        reasons = {p["sha256"]: p.get("reason") for p in problems}
        assert reasons == {damaged: "size", missing: None}, problems
    finally:
        damaged_path.write_bytes(original)
        os.chmod(damaged_path, 0o444)
        if kept.exists():
            os.rename(kept, missing_path)
    assert_clean(stack)
    delete_network(stack, net["id"])


def test_check_reports_old_orphans_and_stray_files(stack):
    orphan, data = random_blob()
    path = write_blob_file(stack, orphan, data)
    stray = stack.blob_dir / "sha256" / "notes.txt"
    stray.write_text("not a blob\n")
    try:
        rc, problems, summary = check(stack)
        # A young orphan is most likely a create in progress: not a problem.
        assert summary["young_orphans"] >= 1, summary
        assert [p["problem"] for p in problems] == ["stray"], problems
        assert problems[0]["path"] == str(stray) and problems[0]["type"] == "file"

        age_files(stack, [orphan])
        rc, problems, summary = check(stack)
        assert rc == 1
        orphans = [p for p in problems if p["problem"] == "orphan"]
        assert len(orphans) == 1 and orphans[0]["sha256"] == orphan, problems
        assert orphans[0]["size"] == len(data) and orphans[0]["age_seconds"] >= GRACE
        assert orphans[0]["path"] == str(path)
    finally:
        stray.unlink()
    gc(stack)  # removes the orphan
    assert not path.exists()


# --- publish / unpublish -------------------------------------------------------


def public_ids(stack, api_key=None):
    ids = []
    with stack.session(api_key=api_key) as s:
        url = stack.url("networks/public/?limit=1000")
        while url:
            body = assert_json(s.get(url, timeout=60), 200)
            ids += [n["id"] for n in body["results"]]
            url = body.get("next")
    return ids


def test_publish_and_unpublish(stack):
    net = new_network(stack)
    other = stack.new_tenant()
    slug = "admin-" + uuid.uuid4().hex[:12]
    etag = stack.get("networks/%d/" % net["id"]).headers["ETag"]
    assert_error(stack.get("networks/%d/" % net["id"], api_key=other["api_key"]), 404)

    rc, lines, err = run_admin(stack, "publish", str(net["id"]), slug)
    assert rc == 0, err
    out = lines[-1]
    assert out["id"] == net["id"] and out["is_public"] is True and out["slug"] == slug, out
    assert out["changed"] is True and out["version"] >= 2, out

    assert net["id"] in public_ids(stack)
    assert net["id"] in public_ids(stack, api_key=other["api_key"])
    by_slug = assert_json(stack.get("networks/public/%s/" % slug, api_key=other["api_key"]), 200)
    assert by_slug["id"] == net["id"] and by_slug["is_public"] is True, by_slug
    assert by_slug["slug"] == slug
    resp = stack.get("networks/%d/" % net["id"], api_key=other["api_key"])
    assert assert_json(resp, 200)["slug"] == slug
    assert stack.get("networks/%d/" % net["id"]).headers["ETag"] != etag  # version bumped

    # Again: nothing changes, and that is fine.
    rc, lines, err = run_admin(stack, "publish", str(net["id"]), slug)
    assert rc == 0 and lines[-1]["changed"] is False and lines[-1]["version"] == out["version"]

    # The slug is taken for every other network.
    second = new_network(stack)
    rc, lines, err = run_admin(stack, "publish", str(second["id"]), slug)
    assert rc == 1 and lines == [], (rc, lines, err)
    assert "taken by network %d" % net["id"] in err, err
    assert assert_json(stack.get("networks/%d/" % second["id"]), 200)["is_public"] is False

    rc, lines, err = run_admin(stack, "unpublish", str(net["id"]))
    assert rc == 0, err
    out = lines[-1]
    assert out["is_public"] is False and out["slug"] is None and out["changed"] is True, out
    assert net["id"] not in public_ids(stack)
    assert_error(stack.get("networks/public/%s/" % slug, api_key=other["api_key"]), 404)
    assert_error(stack.get("networks/%d/" % net["id"], api_key=other["api_key"]), 404)
    assert assert_json(stack.get("networks/%d/" % net["id"]), 200)["slug"] is None

    rc, lines, err = run_admin(stack, "unpublish", str(net["id"]))
    assert rc == 0 and lines[-1]["changed"] is False, (rc, lines, err)

    # The slug is free again.
    rc, lines, err = run_admin(stack, "publish", str(second["id"]), slug)
    assert rc == 0 and lines[-1]["slug"] == slug, err
    rc, _, err = run_admin(stack, "unpublish", str(second["id"]))
    assert rc == 0, err
    for n in (net, second):
        delete_network(stack, n["id"])


@pytest.mark.parametrize("args, message", [
    (("publish", "999999999999", "some-slug"), "no network 999999999999"),
    (("publish", "abc", "some-slug"), "not a network id"),
    (("publish", "1", "Bad_Slug"), "not valid"),
    (("publish", "1", ""), "not valid"),
    (("publish", "1", "a" * 101), "not valid"),
    (("unpublish", "999999999999"), "no network 999999999999"),
    (("unpublish", "0"), "not a network id"),
])
def test_publish_refusals(stack, args, message):
    rc, lines, err = run_admin(stack, *args)
    assert rc == 1 and lines == [], (rc, lines, err)
    assert message in err, err


def test_publish_longest_slug(stack):
    net = new_network(stack)
    slug = ("s" + uuid.uuid4().hex) * 3
    slug = (slug + "-" * 100)[:100]
    rc, lines, err = run_admin(stack, "publish", str(net["id"]), slug)
    assert rc == 0 and lines[-1]["slug"] == slug, err
    assert assert_json(stack.get("networks/public/%s/" % slug), 200)["id"] == net["id"]
    rc, _, err = run_admin(stack, "unpublish", str(net["id"]))
    assert rc == 0, err
    delete_network(stack, net["id"])
