"""Every HTTP exchange ends by a total deadline and holds at most a size cap: the one place.

Why: `requests`' `timeout` bounds each socket read, not the exchange. A server
that answers one byte every 2 s never trips a 5 s read timeout, so a
precondition check, a CDX lookup or a WARC read could wait forever and say
nothing. Here a watchdog thread shuts the connection's socket down when the
exchange's deadline passes, whatever phase it is in (TLS handshake, headers,
body) and whoever is reading (our loop, or warcio parsing a WARC range), and
the body reader refuses a body above its cap. Both failures say what was
waited for: the URL, how long, how many bytes had come.

The deadline knows nothing of retries: `DeadlineExceeded` is a
`requests.Timeout`, so whatever retry policy wraps an exchange (today
`pipeline.httpretry`) counts it as transient, like any other timeout, and
each attempt gets a deadline of its own. `BodyTooLarge` is not transient:
asking again brings the same body.

Use: a session from `pipeline.httpwatch.session()` (its connections report to the running
deadline), and either `complete(...)` (send, then read the whole body under
the cap; `.content`, `.text`, `.json()` work afterwards) or, for a body
streamed to a parser, a `Deadline` kept open while the parser reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import requests
import urllib3

from pipeline.httpwatch import _WATCHDOG, running

if TYPE_CHECKING:
    from pipeline.httpwatch import _Watched

log = logging.getLogger(__name__)

CHUNK = 256 * 1024


class DeadlineExceeded(requests.exceptions.Timeout):
    """No complete answer within the exchange's total deadline (transient: worth retrying)."""

    def __init__(self, what: str, seconds: float, received: int):
        super().__init__(f"{what}: no complete answer within the {seconds:g} s deadline "
                         f"({received} bytes of body received)")
        self.what = what
        self.seconds = seconds
        self.received = received


class BodyTooLarge(Exception):
    """The answer's body is above the cap its reader holds: refused, not retried."""

    def __init__(self, what: str, max_bytes: int):
        super().__init__(f"{what}: answer body larger than {max_bytes} bytes, refused")
        self.what = what
        self.max_bytes = max_bytes


def deadline_in(exc: BaseException | None) -> DeadlineExceeded | None:
    """The DeadlineExceeded behind `exc` (itself or a cause), if a deadline ended it."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, DeadlineExceeded):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def no_answer(exc: BaseException) -> str:
    """How a service failed to answer, for the message that wraps `exc`."""
    if deadline_in(exc):
        return "too slow"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return "answer broke off"
    return "unreachable"


class Deadline:
    """One exchange's clock: started when built, watched until `finish()` (or the `with` ends).

    Connections that `send()` opens or reuses are attached to it; when the
    deadline passes first, their sockets are shut down, so the blocked read
    returns, and `finish()` raises `DeadlineExceeded` whatever the read made
    of the cut (an exception, or a body that merely looks short).
    """

    def __init__(self, what: str, seconds: float):
        if seconds <= 0:
            raise ValueError(f"deadline must be > 0 s, got {seconds!r}")
        self.what = what
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.received = 0
        self.fired = False
        self.done = False
        self._lock = threading.Lock()
        self._connections: list[_Watched] = []
        _WATCHDOG.watch(self)

    # -- the watchdog's side -------------------------------------------------------------
    def _fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.fired = True
            connections = list(self._connections)
        for conn in connections:
            conn._cut()

    def attach(self, conn: _Watched) -> None:
        with self._lock:
            if conn not in self._connections:
                self._connections.append(conn)
            fired = self.fired
        if fired:
            conn._cut()

    # -- the reader's side ---------------------------------------------------------------
    def send(self, send: Callable[[], requests.Response]) -> requests.Response:
        """`send()` with the connections it uses watched; DeadlineExceeded when the deadline
        cut it. The deadline keeps running for the body: `finish()` it when read."""
        token = running.set(self)
        try:
            response = send()
        except BaseException as exc:
            self.finish(exc)
            raise
        finally:
            running.reset(token)
        if self.fired:  # headers cut short can still parse as an answer: it is not one
            response.close()
            self.finish()
        return response

    def read(self, response: requests.Response, max_bytes: int, *, refuse: bool = True,
             decode_content: bool = True) -> bytes:
        """The body, at most `max_bytes` of it: above that, BodyTooLarge (`refuse`) or the
        first `max_bytes` (stops reading there)."""
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        parts: list[bytes] = []
        held = 0
        while True:
            # read1: what has come, not a whole chunk's worth, so `received` is up to date
            # when the deadline cuts the body
            try:
                chunk = response.raw.read1(max(1, min(CHUNK, max_bytes + 1 - held)),
                                           decode_content=decode_content)
            except urllib3.exceptions.HTTPError as exc:
                raise _as_requests_error(exc) from exc
            if not chunk:
                break
            self.received += len(chunk)
            chunk = chunk[: max_bytes + 1 - held]
            parts.append(chunk)
            held += len(chunk)
            if held > max_bytes:
                if refuse:
                    log.warning("%s", BodyTooLarge(self.what, max_bytes))
                    raise BodyTooLarge(self.what, max_bytes)
                break
        return b"".join(parts)[:max_bytes]

    def reader(self, stream) -> _CountingReader:
        """`stream` (a raw body) with the bytes read from it counted for the message."""
        return _CountingReader(stream, self)

    def cancel(self) -> None:
        """Stop watching, whatever happened (an attempt given up for another)."""
        with self._lock:
            self.done = True
            self._connections.clear()

    def finish(self, exc: BaseException | None = None) -> None:
        """Stop watching. Raises DeadlineExceeded (from `exc`) when the deadline fired."""
        with self._lock:
            already = self.done
            self.done = True
            fired = self.fired
            self._connections.clear()
        if fired and not already and not isinstance(exc, DeadlineExceeded):
            error = DeadlineExceeded(self.what, self.seconds, self.received)
            log.warning("%s", error)
            raise error from exc

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(exc)


def _as_requests_error(exc: urllib3.exceptions.HTTPError) -> requests.RequestException:
    """A body that broke off as `requests` itself reports it when it reads one (a
    `RequestException`): the retry policy then treats it as the transient failure it is,
    for every client alike."""
    if isinstance(exc, urllib3.exceptions.DecodeError):
        return requests.exceptions.ContentDecodingError(exc)
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return requests.exceptions.ChunkedEncodingError(exc)
    return requests.ConnectionError(exc)


def socket_timeouts(seconds: float) -> tuple[float, float]:
    """requests' (connect, read) timeouts under a deadline of `seconds`: the deadline ends the
    exchange; the read timeout, twice as long, is only a backstop should the watchdog not run."""
    return seconds, 2 * seconds


def complete(send: Callable[[], requests.Response], what: str, seconds: float, max_bytes: int,
             *, refuse: bool = True) -> requests.Response:
    """`send()` (a streamed request on a `session()`) and its whole body, within `seconds`.

    The body is read now, at most `max_bytes` of it (above: BodyTooLarge, or
    cut there when not `refuse`), so the response's `.content`, `.text` and
    `.json()` read memory afterwards and the connection is released.
    """
    with Deadline(what, seconds) as deadline:
        response = deadline.send(send)
        try:
            body = deadline.read(response, max_bytes, refuse=refuse)
        except BaseException:
            response.close()
            raise
        response._content = body  # what requests itself keeps once a body is read
        response._content_consumed = True
        if not refuse:
            response.close()  # a cut body leaves the rest unread: the connection cannot be reused
    return response


class _CountingReader:
    """read/readline passed through (the interface warcio uses), counting bytes."""

    def __init__(self, stream, deadline: Deadline):
        self.stream = stream
        self.deadline = deadline

    def read(self, length=-1):
        data = self.stream.read(length) if length not in (None, -1) else self.stream.read()
        self.deadline.received += len(data)
        return data

    def readline(self, length=-1):
        data = self.stream.readline(length) if length not in (None, -1) else self.stream.readline()
        self.deadline.received += len(data)
        return data
