"""`make install DESTDIR=...` puts exactly what an app host needs in place
(docs/multihost.md): the programs, the SQL migrations, the compiled magic
file, nginx's configuration and the systemd units with the install paths
filled in, the environment file; `make uninstall` takes all of it away but
an environment file the operator edited.

Runs `make` in the build directory the rest of the suite uses
(NNREG_BUILD_DIR, default ./build); no stack is started."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from nnreg_client import REPO

BUILD = Path(os.environ.get("NNREG_BUILD_DIR", str(REPO / "build")))
if not BUILD.is_absolute():
    BUILD = REPO / BUILD

PROGRAMS = ("nnreg-admin", "nnreg-deployer", "nnreg-fcgi", "nnreg-inferd")
UNITS = ("nnreg-fcgi.service", "nnreg-deployer.service", "nnreg-inferd.service",
         "nnreg-nginx.service", "nnreg-maintenance.service", "nnreg-maintenance.timer")


def make(*args, check=True):
    proc = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(BUILD), *args],
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError("make %s: exit %d\n%s\n%s" % (" ".join(args), proc.returncode,
                                                            proc.stdout, proc.stderr))
    return proc


def make_var(name):
    """The value of a variable of the build's Makefile, fully expanded."""
    proc = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(BUILD), "-f",
                           "Makefile", "-f", "-", "nnreg-print-var"],
                          input="nnreg-print-var:\n\t@echo $(%s)\n" % name,
                          capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout.strip()


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*")
                  if p.is_file() or p.is_symlink())


@pytest.fixture(scope="module")
def dest():
    if not (BUILD / "Makefile").exists():
        pytest.fail("no build in %s: run scripts/dev build first" % BUILD, pytrace=False)
    make("all")
    d = Path(tempfile.mkdtemp(prefix="nnreg-install-"))
    try:
        make("install", "DESTDIR=%s" % d)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def paths():
    return {name: make_var(name) for name in (
        "prefix", "bindir", "sysconfdir", "localstatedir", "pkgdatadir", "systemdunitdir")}


def test_install_puts_every_piece_in_place(dest, paths):
    rel = {k: v.lstrip("/") for k, v in paths.items()}
    sql = sorted(p.name for p in (REPO / "sql").glob("*.sql"))
    expected = sorted(
        ["%s/%s" % (rel["bindir"], p) for p in PROGRAMS]
        + ["%s/nnreg.magic.mgc" % rel["pkgdatadir"]]
        + ["%s/sql/%s" % (rel["pkgdatadir"], s) for s in sql]
        + ["%s/nnreg/nginx.conf" % rel["sysconfdir"], "%s/nnreg/nnreg.env" % rel["sysconfdir"]]
        + ["%s/%s" % (rel["systemdunitdir"], u) for u in UNITS])
    got = files_under(dest)
    assert [f for f in got if f not in expected] == []
    assert [f for f in expected if f not in got] == []
    for prog in PROGRAMS:
        path = dest / rel["bindir"] / prog
        assert os.access(path, os.X_OK), path
    out = subprocess.run([str(dest / rel["bindir"] / "nnreg-fcgi"), "--help"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "NNREG_DATABASE_URL" in out.stdout
    assert (dest / rel["pkgdatadir"] / "nnreg.magic.mgc").read_bytes() == \
        (BUILD / "nnreg.magic.mgc").read_bytes()
    for s in sql:
        assert (dest / rel["pkgdatadir"] / "sql" / s).read_bytes() == \
            (REPO / "sql" / s).read_bytes()
    # The directories nginx writes its pid, temp files and logs into.
    assert (dest / rel["localstatedir"] / "lib/nnreg/nginx").is_dir()
    assert (dest / rel["localstatedir"] / "log/nnreg").is_dir()
    # Nothing left to fill in, anywhere.
    for f in got:
        p = dest / f
        if "/bin/" in f or f.endswith(".mgc"):
            continue
        left = re.findall(r"@[A-Za-z_0-9]+@", p.read_text())
        assert not left, "%s: %s" % (f, left)


def test_units_run_the_installed_programs_with_the_environment_file(dest, paths):
    unitdir = dest / paths["systemdunitdir"].lstrip("/")
    env_file = "%s/nnreg/nnreg.env" % paths["sysconfdir"]
    for unit, prog in (("nnreg-fcgi.service", "nnreg-fcgi"),
                       ("nnreg-deployer.service", "nnreg-deployer"),
                       ("nnreg-inferd.service", "nnreg-inferd")):
        text = (unitdir / unit).read_text()
        lines = set(line.strip() for line in text.splitlines())
        assert "ExecStart=%s/%s" % (paths["bindir"], prog) in lines, unit
        assert "EnvironmentFile=%s" % env_file in lines, unit
        # nnreg-inferd reads its settings at start only: no reload.
        assert ("ExecReload=/bin/kill -HUP $MAINPID" in lines) == (prog != "nnreg-inferd"), unit
        assert "KillSignal=SIGTERM" in lines, unit
        assert any(re.fullmatch(r"TimeoutStopSec=\d+", line) for line in lines), unit
        assert any(re.fullmatch(r"Restart=(on-failure|always)", line) for line in lines), unit
        assert "User=nnreg" in lines and "NoNewPrivileges=yes" in lines, unit
    assert "-c %s/nnreg/nginx.conf" % paths["sysconfdir"] in \
        (unitdir / "nnreg-nginx.service").read_text()
    # Maintenance: prune, then gc, as the service user with the same
    # settings, nightly.
    lines = [line.strip() for line in
             (unitdir / "nnreg-maintenance.service").read_text().splitlines()]
    assert [line for line in lines if line.startswith("ExecStart=")] == [
        "ExecStart=%s/nnreg-admin prune" % paths["bindir"],
        "ExecStart=%s/nnreg-admin gc" % paths["bindir"]]
    assert "Type=oneshot" in lines and "User=nnreg" in lines
    assert "EnvironmentFile=%s" % env_file in lines
    timer = (unitdir / "nnreg-maintenance.timer").read_text()
    assert re.search(r"^OnCalendar=\S", timer, re.M) and "WantedBy=timers.target" in timer
    if not shutil.which("systemd-analyze"):
        return
    # systemd's own check, on copies whose programs point into DESTDIR (it
    # wants every command to exist).
    with tempfile.TemporaryDirectory(prefix="nnreg-units-") as tmp:
        for unit in UNITS:
            text = (unitdir / unit).read_text().replace(
                "=%s/" % paths["bindir"], "=%s%s/" % (dest, paths["bindir"]))
            Path(tmp, unit).write_text(text)
        proc = subprocess.run(["systemd-analyze", "verify", "--man=no", *UNITS], cwd=tmp,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "nnreg" not in proc.stderr, proc.stderr


def test_environment_file_names_only_real_settings(dest, paths):
    env = (dest / paths["sysconfdir"].lstrip("/") / "nnreg/nnreg.env").read_text()
    pairs = [line.split("=", 1) for line in env.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    help_text = subprocess.run([str(BUILD / "nnreg-fcgi"), "--help"], capture_output=True,
                               text=True, timeout=30).stdout
    keys = [k for k, _ in pairs]
    assert "NNREG_DATABASE_URL" in keys and "NNREG_DATA_DIR" in keys
    for key, value in pairs:
        assert re.fullmatch(r"NNREG_[A-Z_]+", key), key
        assert key in help_text, "%s is not a setting nnreg-fcgi knows" % key
        # systemd's EnvironmentFile and a shell read it alike: no quoting.
        assert not re.search(r"[\s\"'\\]", value), (key, value)
    url = dict(pairs)["NNREG_DATABASE_URL"]
    for bound in ("connect_timeout=", "keepalives_idle=", "tcp_user_timeout="):
        assert bound in url
    assert dict(pairs)["NNREG_MAGIC_FILE"] == paths["pkgdatadir"] + "/nnreg.magic.mgc"


def test_nginx_configuration_is_accepted_by_nginx(dest, paths):
    """nginx -t on the installed file, its state paths (pid file, logs, temp
    files) moved to a scratch directory."""
    conf = (dest / paths["sysconfdir"].lstrip("/") / "nnreg/nginx.conf").read_text()
    assert "listen 8080;" in conf and "user www-data;" in conf
    assert "unix:/run/nnreg/nnreg-fcgi.sock" in conf
    var = paths["localstatedir"]
    with tempfile.TemporaryDirectory(prefix="nnreg-nginx-t-") as tmp:
        os.makedirs(os.path.join(tmp, "lib/nnreg/nginx"))
        os.makedirs(os.path.join(tmp, "log/nnreg"))
        test_conf = Path(tmp, "nginx.conf")
        test_conf.write_text(conf.replace(var + "/", tmp + "/"))
        proc = subprocess.run(["/usr/sbin/nginx", "-t", "-q", "-c", str(test_conf), "-e",
                               os.path.join(tmp, "log/nnreg/nginx-error.log")],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr


def test_the_unit_shown_in_the_docs_is_the_installed_one(dest, paths):
    """docs/multihost.md shows nnreg-fcgi.service as installed with
    --prefix=/usr --sysconfdir=/etc: the same lines, comments aside."""
    doc = (REPO / "docs" / "multihost.md").read_text()
    shown = re.search(r"```ini\n(.*?)```", doc, re.S).group(1)
    unit = (dest / paths["systemdunitdir"].lstrip("/") / "nnreg-fcgi.service").read_text()
    unit = unit.replace(paths["bindir"] + "/", "/usr/bin/").replace(
        paths["sysconfdir"] + "/", "/etc/")

    def lines(text):
        return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines(shown) == lines(unit)


def test_reinstall_keeps_an_edited_environment_file_and_uninstall_removes_the_rest(dest, paths):
    env = dest / paths["sysconfdir"].lstrip("/") / "nnreg/nnreg.env"
    shipped = env.read_text()
    env.write_text(shipped + "NNREG_WORKERS=4\n")
    make("install", "DESTDIR=%s" % dest)
    assert env.read_text().endswith("NNREG_WORKERS=4\n")
    assert Path(str(env) + ".dist").read_text() == shipped
    make("uninstall", "DESTDIR=%s" % dest)
    assert files_under(dest) == [str(env.relative_to(dest))]
    env.unlink()
    make("install", "DESTDIR=%s" % dest)
    make("uninstall", "DESTDIR=%s" % dest)
    assert files_under(dest) == []

