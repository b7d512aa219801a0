"""nnreg-fcgi on TCP (NNREG_LISTEN=ADDRESS:PORT), as docs/multihost.md
describes for an nginx on another host: FCGI_WEB_SERVER_ADDRS decides which
peers may talk to it at all.  Spoken to directly in FastCGI on 127.0.0.1;
no database is needed (health answers 503 JSON without one)."""

import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from nnreg_client import REPO

BUILD = Path(os.environ.get("NNREG_BUILD_DIR", str(REPO / "build")))
if not BUILD.is_absolute():
    BUILD = REPO / BUILD

FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT = 1, 3, 4, 5, 6


def record(kind, content, request_id=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, kind, request_id, len(content), pad) + content + b"\0" * pad


def name_value(name, value):
    def length(n):
        return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)
    name, value = name.encode(), value.encode()
    return length(len(name)) + length(len(value)) + name + value


def fcgi_get(port, uri, timeout=15):
    """One GET in FastCGI; returns the STDOUT bytes (b"" when the server
    closed the connection without answering)."""
    params = {"REQUEST_METHOD": "GET", "REQUEST_URI": uri, "DOCUMENT_URI": uri,
              "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
              "SERVER_NAME": "localhost", "SERVER_PORT": "80", "CONTENT_LENGTH": "0"}
    body = b"".join(name_value(k, v) for k, v in params.items())
    msg = (record(FCGI_BEGIN_REQUEST, struct.pack(">HB5x", 1, 0)) + record(FCGI_PARAMS, body)
           + record(FCGI_PARAMS, b"") + record(FCGI_STDIN, b""))
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(msg)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
        while len(buf) >= 8:
            _, kind, _, clen, pad = struct.unpack(">BBHHBx", buf[:8])
            content = buf[8:8 + clen]
            buf = buf[8 + clen + pad:]
            if kind == FCGI_STDOUT:
                out += content
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp, port, allowed):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "NNREG_LISTEN": "127.0.0.1:%d" % port,
           "NNREG_DATABASE_URL": "host=%s/nowhere dbname=nnreg connect_timeout=2" % tmp,
           "NNREG_DATA_DIR": str(Path(tmp) / "data"),
           "NNREG_DEPLOY_DIR": str(Path(tmp) / "deploy"),
           "NNREG_MAGIC_FILE": str(BUILD / "nnreg.magic.mgc"),
           "NNREG_WORKERS": "1",
           "FCGI_WEB_SERVER_ADDRS": allowed}
    log = open(Path(tmp) / ("fcgi-%d.log" % port), "wb")
    proc = subprocess.Popen([str(BUILD / "nnreg-fcgi")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    log.close()
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                pytest.fail("nnreg-fcgi did not listen on %d:\n%s" % (
                    port, (Path(tmp) / ("fcgi-%d.log" % port)).read_text()))
            time.sleep(0.05)


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_tcp_listener_answers_only_the_addresses_in_fcgi_web_server_addrs():
    with tempfile.TemporaryDirectory(prefix="nnreg-fcgi-tcp-") as tmp:
        port = free_port()
        proc = start(tmp, port, "127.0.0.1")
        try:
            out = fcgi_get(port, "/v0.7/health")
            head, _, body = out.partition(b"\r\n\r\n")
            assert b"Status: 503" in head, out[:500]
            assert b'"database_unavailable"' in body, out[:500]
        finally:
            stop(proc)

        port = free_port()
        proc = start(tmp, port, "10.255.255.1,192.0.2.7")
        try:
            # Accepted by the kernel, then closed by libfcgi unanswered.
            assert fcgi_get(port, "/v0.7/health") == b""
            assert proc.poll() is None  # refusing a peer is not a crash
        finally:
            stop(proc)
