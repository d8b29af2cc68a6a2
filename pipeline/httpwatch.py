"""The machinery behind `pipeline.httpdeadline`: connections a deadline can cut, and the watchdog.

Why apart from the deadline itself: what an exchange's deadline means (its
clock, its messages, reading a body under a cap) is one job; getting hold of
the socket urllib3 is using, whatever phase it is in, and one thread that
shuts it at the right moment is another, with nothing to say to the clients.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from typing import Protocol

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Deadline(Protocol):
    """What the watchdog and the connections need of `pipeline.httpdeadline.Deadline`."""

    expires: float  # on time.monotonic()'s clock
    done: bool

    def attach(self, conn: _Watched) -> None: ...

    def _fire(self) -> None: ...


log = logging.getLogger(__name__)

# the deadline of the exchange this thread (or context) is sending, if any
running: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "running_deadline", default=None)


# -- connections that report to the running deadline ------------------------------------------

class _Watched:
    """Mixin for urllib3 connections: each remembers the socket a deadline must shut down.

    That is the connection's socket once connected (http.client may drop the
    connection's hold on it while the answer is still read; the object, still
    open, is kept here). While connecting it is a duplicate of the TCP socket:
    the TLS layer takes over the socket it wraps, and shutdown acts on the
    connection whichever descriptor names it, so the handshake can be cut too.
    """

    _target: socket.socket | None = None

    def _new_conn(self):
        sock = super()._new_conn()
        self._target = sock.dup()
        deadline = running.get()
        if deadline is not None:
            deadline.attach(self)
        return sock

    def connect(self) -> None:
        try:
            super().connect()
        finally:
            if self._target is not None:
                self._target.close()  # the duplicate: only needed while connecting
            self._target = self.sock

    def request(self, *args, **kwargs):
        deadline = running.get()
        if deadline is not None:  # a kept-alive connection, reused for this exchange
            deadline.attach(self)
        return super().request(*args, **kwargs)

    def _cut(self) -> None:
        target = self._target
        if target is not None:
            try:
                # socket's own shutdown (an SSLSocket's would also drop its TLS state)
                socket.socket.shutdown(target, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: nothing left to wait on


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections (direct or through a proxy) a Deadline can cut."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.PoolManager):
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


def session() -> requests.Session:
    """A session whose exchanges a Deadline bounds; no proxy or credentials from the environment."""
    s = requests.Session()
    s.trust_env = False
    watch(s)
    return s


def watch(s: requests.Session) -> requests.Session:
    """Mount the deadline-aware adapter on `s` (a session handed in from outside)."""
    for prefix in ("http://", "https://"):
        if not isinstance(s.get_adapter(prefix), DeadlineAdapter):
            s.mount(prefix, DeadlineAdapter())
    return s


# -- the watchdog -------------------------------------------------------------------------------

class _Watchdog:
    """One daemon thread firing deadlines in expiry order; started on first use (per process)."""

    def __init__(self):
        self._pid: int | None = None
        self._starting = threading.Lock()

    def _start(self) -> None:
        with self._starting:
            if self._pid == os.getpid():
                return  # another thread started it meanwhile
            self._cond = threading.Condition()
            self._heap: list[tuple[float, int, Deadline]] = []
            self._seq = itertools.count()
            threading.Thread(target=self._run, args=(self._cond, self._heap),
                             name="http-deadline", daemon=True).start()
            self._pid = os.getpid()

    def watch(self, deadline: Deadline) -> None:
        if self._pid != os.getpid():  # first use, or a forked child (threads do not survive fork)
            self._start()
        with self._cond:
            heapq.heappush(self._heap, (deadline.expires, next(self._seq), deadline))
            if self._heap[0][2] is deadline:
                self._cond.notify()

    def _run(self, cond: threading.Condition, heap: list) -> None:
        with cond:
            while True:
                while heap and heap[0][2].done:
                    heapq.heappop(heap)  # finished in time: forgotten when it comes up
                if not heap:
                    cond.wait()
                    continue
                delay = heap[0][0] - time.monotonic()
                if delay > 0:
                    cond.wait(delay)
                    continue
                # a shutdown() per connection: brief enough to do under the lock
                try:
                    heapq.heappop(heap)[2]._fire()
                except Exception:  # the watchdog must outlive any one deadline
                    log.exception("cutting an exchange at its deadline failed")


_WATCHDOG = _Watchdog()
