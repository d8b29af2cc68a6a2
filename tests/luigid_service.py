"""A real central scheduler (`luigid`) on a free loopback port, and its JSON API.

Production runs many worker processes against one luigid; the tests do the
same on 127.0.0.1 and check the scheduler's own view of the run (task states,
status messages, progress) through the API the visualiser uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from services import free_port, stop_process, wait_for_http


@dataclass
class Luigid:
    port: int
    root: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def visualiser(self) -> str:
        return f"{self.url}/static/visualiser/index.html"

    def api(self, method: str, data: dict | None = None) -> dict:
        query = urllib.parse.quote(json.dumps(data or {}))
        with urllib.request.urlopen(f"{self.url}/api/{method}?data={query}", timeout=10) as r:
            return json.loads(r.read())["response"]

    def tasks(self, status: str) -> dict:
        return self.api("task_list", {"status": status})

    def status_message(self, task_id: str) -> str | None:
        return self.api("get_task_status_message", {"task_id": task_id}).get("statusMessage")

    def progress(self, task_id: str) -> float | None:
        return self.api("get_task_progress_percentage", {"task_id": task_id}).get(
            "progressPercentage")

    def log(self) -> str:
        return (self.root / "luigid.log").read_text(errors="replace")


@contextlib.contextmanager
def run_luigid(root: Path, config: str | None = None):
    """Start luigid (state and logs under `root`) on 127.0.0.1, wait until it answers;
    `config` is the text of its luigi.cfg (scheduler settings), none by default."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    env = None  # inherited
    if config is not None:
        (root / "luigid.cfg").write_text(config)
        env = dict(os.environ, LUIGI_CONFIG_PATH=str(root / "luigid.cfg"))
    port = free_port()
    luigid_bin = Path(sys.executable).with_name("luigid")
    with open(root / "luigid.log", "wb") as log:
        process = subprocess.Popen(
            [str(luigid_bin), "--port", str(port), "--address", "127.0.0.1",
             "--logdir", str(root / "logs"), "--state-path", str(root / "state.pickle")],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/task_list?data=%7B%7D", process=process)
        yield Luigid(port, root, process)
    finally:
        stop_process(process)
