"""A fault-and-latency proxy in front of a loopback archive (pywb's CDX and replay, a WARC store).

Why: the ingest must survive a real archive -- slow answers, 429s with
`Retry-After`, 5xx bursts, connections reset mid-body, trickling bodies,
outages -- and a test must be able to cause each one on purpose, repeatably,
and then check what the client did (did it wait out the `Retry-After`? how
many calls reached the archive?). This proxy sits between a client and a
127.0.0.1 upstream, forwards every call (Range headers and all, bodies
streamed) and applies a `FaultPlan` on the way.

Use::

    from faultproxy import FaultProxy, FaultPlan, Rule, Delay, Respond, Reset, too_many_requests

    with FaultProxy("http://127.0.0.1:8080/world") as proxy:   # or the `faultproxy` fixture
        proxy.plan = FaultPlan(seed=1, rules=[
            Rule(Delay(0.05, jitter=0.02)),                       # every call, then go on
            Rule(too_many_requests(2, "http-date"), kind="cdx", times=1),
            Rule(Respond(503), url=r"example\\.com/a\\.pdf", times=3),   # a burst of three
            Rule(Reset(after_bytes=1000), kind="replay", probability=0.2),
        ])
        client = SomeClient(proxy.url)      # the upstream's URL, with the proxy's port
        ...
        proxy.start_outage("refuse")        # connection refused from now on ...
        proxy.end_outage()                  # ... until the test says so
        calls = proxy.calls                 # every call, finished (see `Call`)
        assert not retry_after_violations(calls)

Faults (faultplan.py; the names in `Call.faults` in brackets):

- `Delay(seconds, jitter)` [delay]: hold the call, then go on;
- `Trickle(chunk, interval)` [trickle]: forward, the body a piece at a time;
- `Respond(status, retry_after, retry_after_form, body)` [respond]: answer
  for the archive, which is never contacted (`too_many_requests(s, form)`
  is the 429); `Retry-After` is rounded up, so a client that honours it is
  never early, and `Call.retry_after` is what the header promised;
- `Reset(after_bytes)` [reset]: forward, then a TCP RST after that many
  body bytes (the client sees ECONNRESET, not a clean end);
- `Truncate(after_bytes)` [truncate]: forward, then a clean close after that
  many body bytes, short of the Content-Length or last chunk;
- `Drop()` [drop]: an RST at once, before any answer.

The proxy adds [outage] (a call answered by a "503" outage) and
[foreign-target] (an absolute-form request for another host: 502).

- Rules are evaluated in order for each call; `Delay` and `Trickle` add up,
  the first `Respond`/`Reset`/`Truncate`/`Drop` ends the walk (rules after it
  do not see the call). A rule selects calls by path or archived-URL regex,
  kind (cdx, replay, warc, other), method, and a window (`after`, `times`,
  `probability`). `proxy.fired()` counts each rule's firings.
- Deterministic: one `random.Random(plan.seed)` rolls every die, under a
  lock, in arrival order; setting `proxy.plan` (thread-safe, any time)
  restarts the generator and the rules' counts.
- Outages are a switch the test flips (`start_outage` / `end_outage`, or
  `with proxy.outage(): ...`): "refuse" stops listening (connect() gets
  ECONNREFUSED; such attempts never reach the proxy, so they are not
  recorded; Linux keeps the port meanwhile), "503" answers 503 (optionally
  with Retry-After) to every call; the plan's rules do not see calls during
  an outage. `seconds=` ends one by itself, for a bench; tests flip the
  switch. `proxy.outages` lists (mode, start, end).
- Records: every call that reached the proxy, as a frozen `Call` (monotonic
  times, method, path, query, archived URL, kind, Range, faults applied,
  upstream status, status sent, Retry-After promised, body bytes sent).
  `proxy.calls` waits for calls in flight to finish first; `clear_calls()`
  forgets them. `retry_after_violations(calls)` lists the calls that came
  back before a `Retry-After` sent to the same target had run out.
- `proxy.url` is the upstream URL given with the proxy's origin (`base`);
  `proxy.proxied(upstream_url)` rewrites any other URL of the upstream.
- Loopback only: binds 127.0.0.1 and forwards only to a 127.0.0.1 upstream;
  a client may also use it as an HTTP proxy (absolute-form request targets,
  `[ingest] archive_proxy`), for that upstream only.
- One connection per call (`Connection: close`), a fresh upstream connection
  per call: a fault never leaks into the next call through a kept-alive socket.

Standard library only (http.server, http.client, socket), so bench/ can
import it too (bench scripts put tests/ on sys.path).
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import http.server
import math
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

from faultplan import (  # noqa: F401 - re-exported: the proxy's API is one import
    Call,
    Decider,
    Decision,
    Delay,
    Drop,
    FaultPlan,
    Reset,
    Respond,
    Rule,
    Trickle,
    Truncate,
    archived_url,
    call_kind,
    retry_after_violations,
    too_many_requests,
)

LOOPBACK = "127.0.0.1"
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"))
OUTAGE_MODES = ("refuse", "503")


def _bind_listener(backlog: int) -> socket.socket:
    """A listening socket on 127.0.0.1 bound to an explicit port number: Linux keeps an
    explicitly bound port across shutdown()/listen(), which is how "refuse" outages work."""
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            port = probe.getsockname()[1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            sock.close()
            continue
        sock.listen(backlog)
        return sock
    raise RuntimeError("no free port on 127.0.0.1")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, proxy: FaultProxy, sock: socket.socket):
        super().__init__(sock.getsockname(), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_name, self.server_port = LOOPBACK, sock.getsockname()[1]
        self.proxy = proxy


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _any(self):
        self.close_connection = True
        self.server.proxy._handle(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _any  # noqa: N815

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


def _reset(handler: http.server.BaseHTTPRequestHandler) -> None:
    """Close the client's connection with a TCP RST (SO_LINGER 0) now. The socket is detached
    so that socketserver's own shutdown(SHUT_WR) cannot send a FIN ahead of the RST."""
    sock = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    fd = sock.detach()
    if fd >= 0:
        socket.close(fd)


def _connection_tokens(value: str | None) -> set[str]:
    """Header names a `Connection` header lists: hop-by-hop too, never forwarded."""
    return {v.strip().lower() for v in (value or "").split(",") if v.strip()}


def _retry_after_header(fault: Respond) -> tuple[str, float] | None:
    """(header value, seconds promised), rounded up: a client honouring it is never early."""
    if fault.retry_after is None:
        return None
    seconds = max(0, math.ceil(fault.retry_after))
    if fault.retry_after_form == "seconds":
        return str(seconds), float(seconds)
    now = time.time()
    at = math.ceil(now) + seconds  # HTTP-dates have whole seconds: round up, never down
    return email.utils.formatdate(at, usegmt=True), at - now


class FaultProxy:
    """A threaded loopback proxy applying a `FaultPlan` to the calls it forwards to `upstream`.

    `upstream` is an http://127.0.0.1:PORT URL, with or without a path (a collection's base
    URL); `url` is that URL with the proxy's port, `base` the proxy's origin. Start with
    `start()` or `with`; `close()` stops it.
    """

    def __init__(self, upstream: str, plan: FaultPlan | None = None, *, timeout: float = 60.0,
                 chunk_size: int = 64 * 1024):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname != LOOPBACK or not parts.port:
            raise ValueError(f"upstream must be http://{LOOPBACK}:PORT[/path], not {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self.upstream_origin = f"http://{LOOPBACK}:{parts.port}"
        self.upstream_port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.chunk_size = chunk_size
        self._lock = threading.Condition()
        self._decider = Decider(plan or FaultPlan())
        self._calls: list[Call] = []
        self._in_flight = 0
        self._next_index = 0
        self._outage: dict | None = None  # {"mode", "retry_after", "generation"}
        self._outage_generation = 0
        self._outages: list[tuple[str, float, float | None]] = []
        self._switch = threading.Lock()  # serialises listening on/off
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._server = _Server(self, _bind_listener(_Server.request_queue_size))
        self._serve()
        return self

    def _serve(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True,
                                        name=f"faultproxy:{self.port}")
        self._thread.start()

    def close(self) -> None:
        with self._switch:
            if self._server is None:
                return
            if self._thread is not None and self._thread.is_alive():
                self._server.shutdown()
                self._thread.join(timeout=5)
            self._server.server_close()
            self._server = None
        with self._lock:
            self._outage = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The upstream URL given, through the proxy."""
        return self.base + self._prefix

    def proxied(self, upstream_url: str) -> str:
        """`upstream_url` (on the upstream's origin) rewritten to go through the proxy."""
        if upstream_url != self.upstream_origin and not upstream_url.startswith(
                self.upstream_origin + "/"):
            raise ValueError(f"{upstream_url!r} is not on the upstream {self.upstream_origin}")
        return self.base + upstream_url[len(self.upstream_origin):]

    # -- the plan ----------------------------------------------------------------------------

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return self._decider.plan

    @plan.setter
    def plan(self, plan: FaultPlan) -> None:
        """Replace the plan (thread-safe); its generator and rule counts start afresh."""
        if not isinstance(plan, FaultPlan):
            raise TypeError(f"not a FaultPlan: {plan!r}")
        with self._lock:
            self._decider = Decider(plan)

    def fired(self) -> list[int]:
        """How many times each rule of the current plan has fired."""
        with self._lock:
            return list(self._decider.fired)

    # -- outages -----------------------------------------------------------------------------

    def start_outage(self, mode: str = "refuse", seconds: float | None = None,
                     retry_after: float | None = None) -> None:
        """Make the archive unreachable ("refuse": connections refused) or failing ("503":
        every call answered 503, with `Retry-After` when given) until `end_outage()`, or for
        `seconds` when given. A second start replaces the first."""
        if mode not in OUTAGE_MODES:
            raise ValueError(f"outage mode must be one of {OUTAGE_MODES}, not {mode!r}")
        self.end_outage()
        with self._switch:
            with self._lock:
                self._outage_generation += 1
                generation = self._outage_generation
                self._outage = {"mode": mode, "generation": generation,
                                "respond": Respond(503, retry_after=retry_after)}
                self._outages.append((mode, time.monotonic(), None))
            if mode == "refuse":
                self._server.shutdown()
                self._thread.join(timeout=5)
                # Linux: a listening socket shut down for reading stops listening (connect()
                # is refused) yet keeps its port; listen() again brings it back
                self._server.socket.shutdown(socket.SHUT_RD)
        if seconds is not None:
            timer = threading.Timer(seconds, self._end_outage, args=(generation,))
            timer.daemon = True
            timer.start()

    def end_outage(self) -> None:
        """End the current outage, if any (the proxy listens and forwards again)."""
        with self._lock:
            generation = self._outage["generation"] if self._outage else None
        if generation is not None:
            self._end_outage(generation)

    def _end_outage(self, generation: int) -> None:
        with self._switch:
            with self._lock:
                if not self._outage or self._outage["generation"] != generation:
                    return
                mode = self._outage["mode"]
                self._outage = None
                mode_, start, _ = self._outages[-1]
                self._outages[-1] = (mode_, start, time.monotonic())
            if mode == "refuse" and self._server is not None:
                self._server.socket.listen(self._server.request_queue_size)
                self._serve()

    @property
    def outages(self) -> list[tuple[str, float, float | None]]:
        """Every outage so far: (mode, start, end), monotonic times; end None while it lasts."""
        with self._lock:
            return list(self._outages)

    @property
    def in_outage(self) -> bool:
        with self._lock:
            return self._outage is not None

    @contextlib.contextmanager
    def outage(self, mode: str = "refuse", retry_after: float | None = None):
        """`with proxy.outage("503"): ...` -- down inside the block, up after it."""
        self.start_outage(mode, retry_after=retry_after)
        try:
            yield self
        finally:
            self.end_outage()

    # -- records -----------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every call so far, in arrival order, once the calls in flight have finished (waits
        up to 10 s for them; a call still running after that is left out)."""
        with self._lock:
            self._lock.wait_for(lambda: self._in_flight == 0, timeout=10)
            return sorted(self._calls, key=lambda c: c.index)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # -- one call ----------------------------------------------------------------------------

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        target = h.path
        foreign = False
        if not target.startswith("/"):  # absolute form: used as an HTTP proxy
            parts = urlsplit(target)
            foreign = parts.scheme != "http" or parts.netloc != f"{LOOPBACK}:{self.upstream_port}"
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        path, _, query = target.partition("?")
        range_header = h.headers.get("Range")
        url, kind = archived_url(path, query), call_kind(path, range_header)
        with self._lock:
            # the record is a dict while the call runs (each step adds to it), a Call after
            rec = {"index": self._next_index, "method": h.command, "path": path,
                   "query": query, "url": url, "kind": kind, "range": range_header,
                   "started": started}
            self._next_index += 1
            self._in_flight += 1
            outage = self._outage
            if foreign or outage:
                decision = Decision()
            else:
                decision = self._decider.decide(h.command, path, url, kind)
        try:
            if foreign:
                rec["faults"] = ("foreign-target",)
                self._respond(h, rec, Respond(502, body=b"faultproxy forwards only to "
                                              + self.upstream_origin.encode()))
            elif outage:
                rec["faults"] = ("outage",)
                self._respond(h, rec, outage["respond"])
            else:
                self._apply(h, rec, decision, target)
        except (OSError, http.client.HTTPException) as exc:  # the client or the upstream went
            rec.setdefault("error", f"{type(exc).__name__}: {exc}")  # away: recorded, not raised
        finally:
            with self._lock:
                self._calls.append(Call(**rec, ended=time.monotonic()))
                self._in_flight -= 1
                self._lock.notify_all()

    def _apply(self, h, rec: dict, decision: Decision, target: str) -> None:
        rec.update(faults=decision.faults, rule=decision.rule)
        if decision.delay > 0:
            rec["delay"] = decision.delay
            time.sleep(decision.delay)
        fault = decision.terminal
        if isinstance(fault, Respond):
            self._respond(h, rec, fault)
        elif isinstance(fault, Drop):
            _reset(h)
        else:
            self._forward(h, rec, target, decision.trickle, fault)

    def _respond(self, h, rec: dict, fault: Respond) -> None:
        """Answer `fault.status` on the archive's behalf (it is never contacted)."""
        h.send_response_only(fault.status)
        retry = _retry_after_header(fault)
        if retry is not None:
            h.send_header("Retry-After", retry[0])
            rec.update(retry_after_header=retry[0], retry_after=retry[1])
        h.send_header("Date", h.date_time_string())
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Length", str(len(fault.body)))
        h.send_header("Connection", "close")
        h.end_headers()
        rec.update(status=fault.status, answered=time.monotonic())
        if h.command != "HEAD" and fault.body:
            h.wfile.write(fault.body)
            rec["bytes_sent"] = len(fault.body)

    def _forward(self, h, rec: dict, target: str, trickle: Trickle | None,
                 cut: Reset | Truncate | None) -> None:
        """Send the call upstream and stream the answer back, trickled or cut as decided."""
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(LOOPBACK, self.upstream_port, timeout=self.timeout)
        try:
            conn.putrequest(h.command, target, skip_host=True, skip_accept_encoding=True)
            named = _connection_tokens(h.headers.get("Connection"))
            for name, value in h.headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() not in named:
                    conn.putheader(name, value)
            if "Host" not in h.headers:
                conn.putheader("Host", f"{LOOPBACK}:{self.upstream_port}")
            rec["forwarded_at"] = time.monotonic()
            try:
                conn.endheaders(body)
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                rec["error"] = f"upstream: {type(exc).__name__}: {exc}"
                self._respond(h, rec, Respond(502, body=b"faultproxy: the upstream failed"))
                return
            rec["upstream_status"] = response.status
            self._relay(h, rec, response, trickle, cut)
        finally:
            conn.close()

    def _relay(self, h, rec: dict, response: http.client.HTTPResponse,
               trickle: Trickle | None, cut: Reset | Truncate | None) -> None:
        """The upstream's status and end-to-end headers, then its body, streamed. The body keeps
        its Content-Length; one without is re-chunked, so a cut body is always detectably short."""
        no_body = h.command == "HEAD" or response.status in (204, 304) or response.status < 200
        known_length = response.getheader("Content-Length") is not None and not response.chunked
        chunked = not (no_body or known_length) and h.request_version == "HTTP/1.1"
        h.send_response_only(response.status, response.reason)
        named = _connection_tokens(response.getheader("Connection"))
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() not in named:
                h.send_header(name, value)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        rec.update(status=response.status, answered=time.monotonic(), bytes_sent=0)
        limit = cut.after_bytes if cut is not None else None
        while not no_body and (limit is None or rec["bytes_sent"] < limit):
            size = trickle.chunk if trickle else self.chunk_size
            if limit is not None:
                size = min(size, limit - rec["bytes_sent"])
            data = response.read(size) if trickle else response.read1(size)
            if not data:
                break
            if trickle and rec["bytes_sent"]:
                time.sleep(trickle.interval)  # between pieces: n pieces take (n-1) intervals
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            rec["bytes_sent"] += len(data)
        if cut is None and response.length:  # read1() meets an early end without a word
            rec["error"] = f"upstream: the body ended {response.length} bytes short"
        if isinstance(cut, Reset):
            _reset(h)
        elif isinstance(cut, Truncate):
            h.connection.shutdown(socket.SHUT_WR)
        elif chunked:
            h.wfile.write(b"0\r\n\r\n")
