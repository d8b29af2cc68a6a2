"""Loopback services for the tests: pywb's `wayback` server and small static HTTP servers.

pywb 2.10.0 pins old libraries, so it lives in its own virtualenv
(`.venv-pywb`, git-ignored) and is only ever talked to over HTTP.
`python tests/services.py ensure-pywb` creates that virtualenv when it is
missing (the Makefile calls it before `pytest`). Every server here binds
127.0.0.1 on a free port and is stopped by the code that started it.
"""

from __future__ import annotations

import contextlib
import glob
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
PYWB_VERSION = "2.10.0"
PYWB_VENV = ROOT / ".venv-pywb"


def pywb_installed(venv: Path = PYWB_VENV) -> bool:
    pattern = str(venv / "lib" / "python*" / "site-packages" / f"pywb-{PYWB_VERSION}.dist-info")
    return (venv / "bin" / "wayback").exists() and bool(glob.glob(pattern))


def ensure_pywb(venv: Path = PYWB_VENV) -> Path:
    """The `wayback` executable of the pinned pywb; installs it into `venv` when missing."""
    if not pywb_installed(venv):
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q",
                        f"pywb=={PYWB_VERSION}"], check=True)
    if not pywb_installed(venv):
        raise RuntimeError(f"pywb {PYWB_VERSION} is still missing from {venv} after installing")
    return venv / "bin" / "wayback"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers at all (any HTTP status); RuntimeError on timeout or exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answered {url} within {timeout} s")


def stop_process(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


# `open_archive(url, QUICK_PATIENCE)`: the archive clients' retry policy with the production
# waits compressed. pywb answers its own 503 page for a capture it cannot replay (an
# unresolvable revisit, a damaged record), which the clients retry after 0.5, 1 and 2 s;
# here the same retries end in the same error within milliseconds.
QUICK_PATIENCE = SimpleNamespace(retry_backoff=0.01, retry_backoff_max=0.05, probe_seconds=0.05,
                                 probe_max_seconds=0.5)


class PywbServer:
    """A running `wayback` over a config root whose collections are symlinks to ours.

    pywb discovers collections under `collections/` on each request, so one
    server serves every collection a test session adds with `serve()`.
    """

    def __init__(self, root: Path, port: int, process: subprocess.Popen, log_path: Path):
        self.root = root
        self.port = port
        self.process = process
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"

    def serve(self, collection: str | os.PathLike, name: str) -> str:
        """Publish a pywb-layout collection directory under `name`; returns its base URL."""
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"collection name must be [A-Za-z0-9_-]+, not {name!r}")
        source = Path(collection).resolve()
        for part in ("archive", "indexes"):
            if not (source / part).is_dir():
                raise ValueError(f"{source} has no {part}/ directory")
        target = self.root / "collections" / name
        if target.exists():
            if (target / "archive").resolve() != source / "archive":
                raise ValueError(f"collection {name!r} already serves another directory")
        else:
            target.mkdir(parents=True)
            for part in ("archive", "indexes"):
                (target / part).symlink_to(source / part, target_is_directory=True)
        return f"{self.url}/{name}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_pywb(root: Path, port: int | None = None):
    """Start `wayback -b 127.0.0.1 -p PORT` in `root`, wait until it answers, stop it after."""
    wayback = ensure_pywb()
    port = port or free_port()
    (root / "collections").mkdir(parents=True, exist_ok=True)
    log_path = root / "wayback.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(wayback), "-b", "127.0.0.1", "-p", str(port)], cwd=root,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", process=process)
        yield PywbServer(root, port, process, log_path)
    finally:
        stop_process(process)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler for stand-in services: no access log, one call to answer."""

    def reply(self, status: int, body: bytes = b"",
              headers: Iterable[tuple[str, str]] = ()) -> None:
        """Answer `status` with `headers` (in order, repeats kept), Content-Length and `body`."""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


class _RangeFileHandler(QuietHandler):
    """GET of files under `directory`, honouring a single `Range: bytes=a-b` like a WARC store."""

    directory: Path
    requests_seen: list

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.requests_seen.append((self.path, self.headers.get("Range")))
        path = (self.directory / self.path.lstrip("/")).resolve()
        if self.directory not in path.parents or not path.is_file():
            self.reply(404, b"not found")
            return
        data = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if not match:
            self.reply(200, data)
            return
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
        if start >= len(data):
            self.reply(416, b"", [("Content-Range", f"bytes */{len(data)}")])
            return
        self.reply(206, data[start:end + 1], [("Content-Range", f"bytes {start}-{end}/{len(data)}")])


@contextlib.contextmanager
def serve_http(handler_class: type[http.server.BaseHTTPRequestHandler], port: int = 0):
    """Run a threaded stdlib HTTP server with `handler_class` on 127.0.0.1 (`port`, 0: a free
    one); yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler_class)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def serve_ranges(directory: str | os.PathLike):
    """A WARC store over `directory`; yields (base URL, list of (path, Range) requests seen)."""
    seen: list = []
    handler = type("RangeFileHandler", (_RangeFileHandler,),
                   {"directory": Path(directory).resolve(), "requests_seen": seen})
    with serve_http(handler) as url:
        yield url, seen


def main(argv: list[str]) -> int:
    if argv[1:] == ["ensure-pywb"]:
        print(ensure_pywb())
        return 0
    print("usage: python tests/services.py ensure-pywb", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
