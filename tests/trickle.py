"""A loopback HTTP server that answers a byte at a time: the slow service a read timeout misses.

`Trickle(answer, fast=N)` reads each request (headers, and a body of
Content-Length bytes), sends the first N bytes of `answer` at once, then one
more byte every `pace` seconds until the test calls `release()` (or the
context ends); then the rest at once, and closes. A per-read timeout longer
than `pace` never trips, so only a total deadline ends the client's wait.
Nothing depends on the machine's speed: a slower machine only trickles slower.

`ends_within(call, seconds)` runs a call on a thread and says how it ended,
so a test of a client that would hang fails with a message instead.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable


def http_answer(status: str = "200 OK", headers: Iterable[tuple[str, str]] = (),
                body: bytes = b"") -> bytes:
    """The bytes of an HTTP/1.1 answer with Content-Length and `Connection: close`."""
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers),
             f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def header_length(answer: bytes) -> int:
    """Bytes up to and including the blank line: send those at once to trickle the body only."""
    return answer.index(b"\r\n\r\n") + 4


class Trickle:
    """The server; `url` is its base, `requests` the request lines it read (in order)."""

    def __init__(self, answer: bytes, fast: int = 0, pace: float = 0.05):
        self.answer = answer
        self.fast = fast
        self.pace = pace
        self.requests: list[str] = []
        self._released = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> Trickle:
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        self._sock.close()
        for thread in list(self._threads):
            thread.join(timeout=10)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed by __exit__
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self._read_request(conn)
                conn.sendall(self.answer[: self.fast])
                sent = self.fast
                while sent < len(self.answer) and not self._released.wait(self.pace):
                    conn.sendall(self.answer[sent: sent + 1])
                    sent += 1
                conn.sendall(self.answer[sent:])
            except OSError:
                pass  # the client gave up and closed: that is the point

    def _read_request(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.requests.append(lines[0])
        length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                       if line.lower().startswith("content-length:")), 0)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk


class Ended:
    """How a call ended: `value` or `error`, and after how many seconds."""

    def __init__(self):
        self.value = None
        self.error: BaseException | None = None
        self.seconds = 0.0


def ends_within(call: Callable[[], object], seconds: float) -> Ended:
    """Run `call` on a thread; AssertionError when it is still running after `seconds`."""
    ended = Ended()
    t0 = time.monotonic()

    def run() -> None:
        try:
            ended.value = call()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            ended.error = e
        ended.seconds = time.monotonic() - t0

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s: no deadline ended the call"
    return ended
