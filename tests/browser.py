"""Headless chromium for the tests that check what people look at (visualiser, run report).

`ensure_chromium()` finds Debian's chromium, or installs it with apt-get
(as root: `apt-get update`, then `apt-get install chromium`, each bounded in
time) when it is missing; it raises `BrowserUnavailable` with the reason when
that cannot be done, and the tests skip with that reason. The Makefile calls
`python tests/browser.py ensure` before pytest, so CI on a fresh machine
installs it once, up front.

Chromium runs with the flags a root user in a sandboxed container needs
(`--no-sandbox`) and with every background connection switched off (the
machine's closed network refuses them), each time with a fresh profile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "chromium-headless-shell")
APT_PACKAGE = "chromium"
UPDATE_TIMEOUT = 300
INSTALL_TIMEOUT = 900
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
)


class BrowserUnavailable(RuntimeError):
    """Chromium is not here and cannot be installed here (the reason says why)."""


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str:
    """The chromium executable, installed with apt-get when missing (root only)."""
    found = find_chromium()
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise BrowserUnavailable("chromium is not installed and there is no apt-get to install it")
    if os.geteuid() != 0:
        raise BrowserUnavailable("chromium is not installed and installing it needs root "
                                 "(sudo apt-get install chromium)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = ((["apt-get", "update", "-qq"], UPDATE_TIMEOUT),
             (["apt-get", "install", "-y", "-qq", "--no-install-recommends", APT_PACKAGE],
              INSTALL_TIMEOUT))
    for cmd, timeout in steps:
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BrowserUnavailable(f"`{' '.join(cmd)}` did not finish within {timeout} s") from None
        if proc.returncode != 0:
            raise BrowserUnavailable(f"`{' '.join(cmd)}` failed ({proc.returncode}): "
                                     f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    found = find_chromium()
    if not found:
        raise BrowserUnavailable(f"apt-get installed {APT_PACKAGE}, but no chromium is on PATH")
    return found


def _run(chromium: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def dump_dom(chromium: str, url: str, wait_ms: int = 5000, timeout: float = 60) -> str:
    """The page's DOM after its scripts ran for up to `wait_ms` of virtual time."""
    proc = _run(chromium, [f"--virtual-time-budget={wait_ms}", "--dump-dom", url], timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom {url} exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-1500:]}")
    return proc.stdout.decode("utf-8", errors="replace")


def screenshot(chromium: str, url: str, png: str | os.PathLike, size: tuple[int, int] = (1280, 1600),
               wait_ms: int = 5000, timeout: float = 60) -> Path:
    """A PNG of the page as rendered (after `wait_ms` of virtual time)."""
    png = Path(png)
    proc = _run(chromium, [f"--virtual-time-budget={wait_ms}", f"--window-size={size[0]},{size[1]}",
                           f"--screenshot={png}", url], timeout)
    if proc.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium --screenshot {url} exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-1500:]}")
    return png


if __name__ == "__main__":
    if sys.argv[1:] != ["ensure"]:
        sys.exit("usage: python tests/browser.py ensure")
    try:
        print(ensure_chromium())
    except BrowserUnavailable as e:
        # the browser tests skip with this reason; the rest of the suite still runs
        print(f"chromium unavailable: {e}", file=sys.stderr)
