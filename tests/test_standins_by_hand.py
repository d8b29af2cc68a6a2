"""The GROBID and fatcat stand-ins started by hand, as the README's operations section says,
for a trial run without the real services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from fatcat_standin import macaroon_token
from services import free_port

ROOT = Path(__file__).resolve().parent.parent


def start(script: str, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, f"tests/{script}", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline()


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=20)


def test_grobid_standin_serves_on_the_port_it_is_given():
    port = free_port()
    proc, first = start("grobid_standin.py", "--port", str(port))
    try:
        assert first.startswith(f"GROBID stand-in at http://127.0.0.1:{port} (mode ok)"), \
            first + proc.stderr.read() if proc.poll() is not None else first
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/isalive", timeout=10) as resp:
            assert resp.read() == b"true"
    finally:
        stop(proc)


def test_fatcat_standin_serves_an_export_with_the_environments_token(world):
    port = free_port()
    token = macaroon_token("aaaaaaaaaaaaaaaaaaaaaaaaaa")
    env = dict(os.environ, FATCAT_API_AUTH_TOKEN=token)
    export = world / "file_export.json.gz"
    proc, first = start("fatcat_standin.py", "--port", str(port), "--export", str(export), env=env)
    try:
        assert first.startswith(f"fatcat stand-in at http://127.0.0.1:{port}/v0 ("), \
            first + proc.stderr.read() if proc.poll() is not None else first
        assert token not in first
        sha1 = json.loads(subprocess.run(["zcat", str(export)], capture_output=True, text=True,
                                         check=True).stdout.splitlines()[0])["sha1"]
        url = f"http://127.0.0.1:{port}/v0/file/lookup?sha1={sha1}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert json.loads(resp.read())["sha1"] == sha1
        check = urllib.request.Request(f"http://127.0.0.1:{port}/v0/auth/check",
                                       headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(check, timeout=10) as resp:
            assert json.loads(resp.read())["success"] is True
    finally:
        stop(proc)


def test_fatcat_standin_refuses_to_start_without_a_token():
    env = {k: v for k, v in os.environ.items() if k != "FATCAT_API_AUTH_TOKEN"}
    proc = subprocess.run([sys.executable, "tests/fatcat_standin.py", "--port", str(free_port())],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "set FATCAT_API_AUTH_TOKEN" in proc.stderr
