"""The declarative half of the fault proxy: which calls fail, how, and what was recorded.

A `FaultPlan` is a seed and an ordered tuple of `Rule`s; each rule pairs a
selector (path / archived-URL regex, call kind, method, a window of matching
calls, a probability) with one fault. `Decider` walks the rules for each call,
in order, with one `random.Random(plan.seed)`: the same plan and the same
sequence of calls give the same faults, whatever the clock says. It holds no
socket and no thread, so it can be tested and reasoned about on its own;
`faultproxy.FaultProxy` applies its decisions to real connections.

Kept apart from the proxy because the later retry and circuit-breaker work
reads plans and records (`Call`) far more often than it touches the server.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs

# -- faults ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delay:
    """Hold the call `seconds` + uniform(0, `jitter`) seconds before answering or forwarding.
    Not terminal: the rules after it are evaluated too (latency plus a failure)."""

    seconds: float = 0.0
    jitter: float = 0.0


@dataclass(frozen=True)
class Trickle:
    """Forward, but send the body `chunk` bytes at a time with `interval` seconds between
    pieces (a slow archive). Not terminal."""

    chunk: int = 256
    interval: float = 0.05


@dataclass(frozen=True)
class Respond:
    """Answer `status` without contacting the archive (a 429, a 5xx). `retry_after` seconds
    (rounded up to a whole second) are sent as `Retry-After`, in delta-seconds or, with
    `retry_after_form="http-date"`, as an HTTP-date that far ahead."""

    status: int = 503
    retry_after: float | None = None
    retry_after_form: Literal["seconds", "http-date"] = "seconds"
    body: bytes = b""


@dataclass(frozen=True)
class Reset:
    """Forward, send the headers and the first `after_bytes` body bytes, then reset the
    connection (TCP RST). The kernel may drop bytes the client had not read yet, so the client
    sees a reset anywhere from the status line on; use `Truncate` for an exact short body."""

    after_bytes: int = 0


@dataclass(frozen=True)
class Truncate:
    """Forward, send the headers and the first `after_bytes` body bytes, then close cleanly
    (FIN): the body is shorter than its Content-Length (or lacks its last chunk)."""

    after_bytes: int = 0


@dataclass(frozen=True)
class Drop:
    """Reset the connection at once, before any answer, without contacting the archive."""


Fault = Delay | Trickle | Respond | Reset | Truncate | Drop
TERMINAL = (Respond, Reset, Truncate, Drop)
FAULT_NAMES = {Delay: "delay", Trickle: "trickle", Respond: "respond", Reset: "reset",
               Truncate: "truncate", Drop: "drop"}


def too_many_requests(seconds: float, form: Literal["seconds", "http-date"] = "seconds") -> Respond:
    """A 429 with `Retry-After` in the given form."""
    return Respond(429, retry_after=seconds, retry_after_form=form)


# -- which calls ----------------------------------------------------------------------------

KINDS = ("cdx", "replay", "warc", "other")
_REPLAY = re.compile(r"/(\d{1,14})([a-z]{2}_)?/(.+)$")
_WARC = re.compile(r"\.w?arc(\.gz)?$")


def call_kind(path: str, range_header: str | None) -> str:
    """cdx (a path ending in /cdx), warc (a Range read or a .warc[.gz] path), replay
    (`/<timestamp>[mod_]/<url>`), or other."""
    if path.rstrip("/").endswith("/cdx"):
        return "cdx"
    if range_header or _WARC.search(path):
        return "warc"
    if _REPLAY.search(path):
        return "replay"
    return "other"


def archived_url(path: str, query: str) -> str | None:
    """The archived URL a call is about: the `url` query parameter (CDX), or the URL after the
    timestamp of a replay path, with the query (which belongs to that URL)."""
    values = parse_qs(query).get("url")
    if values:
        return values[0]
    m = _REPLAY.search(path)
    if m:
        return m.group(3) + (f"?{query}" if query else "")
    return None


@dataclass(frozen=True)
class Rule:
    """One fault for the calls it selects. Every selector given must match:

    - `path`: a regex searched in the request path (no query); `re.escape` a plain substring;
    - `url`: a regex searched in the archived URL (`archived_url`); a call with none never matches;
    - `kind`: one of KINDS (`call_kind`); `method`: e.g. "GET".

    Of the matching calls that reach this rule, the first `after` pass untouched, then the
    fault fires on each with `probability` (drawn from the plan's seeded generator), at most
    `times` times (None: no limit). `Rule(Respond(503), times=3)` is a burst of exactly three.
    """

    fault: Fault
    path: str | None = None
    url: str | None = None
    kind: str | None = None
    method: str | None = None
    after: int = 0
    times: int | None = None
    probability: float = 1.0
    _path: re.Pattern | None = field(init=False, repr=False, compare=False, default=None)
    _url: re.Pattern | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self):
        if not isinstance(self.fault, tuple(FAULT_NAMES)):
            raise TypeError(f"not a fault: {self.fault!r}")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], not {self.probability}")
        if self.after < 0 or (self.times is not None and self.times < 0):
            raise ValueError("after and times must not be negative")
        object.__setattr__(self, "_path", re.compile(self.path) if self.path is not None else None)
        object.__setattr__(self, "_url", re.compile(self.url) if self.url is not None else None)

    def selects(self, method: str, path: str, url: str | None, kind: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.kind is not None and kind != self.kind:
            return False
        if self._path is not None and not self._path.search(path):
            return False
        return self._url is None or (url is not None and bool(self._url.search(url)))


@dataclass(frozen=True)
class FaultPlan:
    """An ordered tuple of rules and the seed of the generator that rolls their dice.

    For each call the rules are evaluated in order: non-terminal faults (Delay, Trickle) add up
    and evaluation goes on; the first terminal fault (Respond, Reset, Truncate, Drop) ends it.
    A call stopped by a rule is not seen by the rules after it (their `after`/`times` counts
    do not move). The empty plan forwards everything untouched.
    """

    rules: tuple[Rule, ...] = ()
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "rules", tuple(self.rules))


@dataclass(frozen=True)
class Decision:
    """What to do with one call: hold it `delay` seconds, then answer or forward (`terminal`
    None: forward untouched, or trickled when `trickle`). `faults` names every fault applied."""

    delay: float = 0.0
    trickle: Trickle | None = None
    terminal: Respond | Reset | Truncate | Drop | None = None
    rule: int | None = None
    faults: tuple[str, ...] = ()


class Decider:
    """A plan's state over a run: the seeded generator and each rule's counts. Not thread-safe
    on its own: the proxy calls `decide` under its lock, in arrival order."""

    def __init__(self, plan: FaultPlan):
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.seen = [0] * len(plan.rules)
        self.fired = [0] * len(plan.rules)

    def decide(self, method: str, path: str, url: str | None, kind: str) -> Decision:
        delay, trickle, faults = 0.0, None, []
        for i, rule in enumerate(self.plan.rules):
            if not rule.selects(method, path, url, kind):
                continue
            self.seen[i] += 1
            if self.seen[i] <= rule.after:
                continue
            if rule.times is not None and self.fired[i] >= rule.times:
                continue
            if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                continue
            self.fired[i] += 1
            fault = rule.fault
            faults.append(FAULT_NAMES[type(fault)])
            if isinstance(fault, Delay):
                delay += fault.seconds + (self.rng.uniform(0, fault.jitter) if fault.jitter else 0.0)
            elif isinstance(fault, Trickle):
                trickle = fault
            else:
                return Decision(delay, trickle, fault, i, tuple(faults))
        return Decision(delay, trickle, None, None, tuple(faults))


# -- what happened ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request the proxy took (times are time.monotonic() in the test's process).

    `upstream_status` is None when the call never got an answer from the archive (a Respond,
    a Drop, an outage, an unreachable upstream); `forwarded_at` is when it was sent there.
    `status` is what the client was sent (None: nothing, the connection was reset first).
    `delay` is the hold the plan decided (Delay seconds plus the jitter drawn); the hold
    observed is `(forwarded_at or answered) - started`. `retry_after` is the number of seconds
    the `Retry-After` sent promised, counted from `answered` (when the headers went out).
    """

    index: int
    method: str
    path: str
    query: str
    url: str | None
    kind: str
    range: str | None
    started: float
    faults: tuple[str, ...] = ()
    rule: int | None = None
    delay: float = 0.0
    forwarded_at: float | None = None
    upstream_status: int | None = None
    answered: float | None = None
    status: int | None = None
    retry_after: float | None = None
    retry_after_header: str | None = None
    bytes_sent: int = 0
    ended: float = 0.0
    error: str | None = None

    @property
    def target(self) -> str:
        """The request target as the client sent it (path and query)."""
        return f"{self.path}?{self.query}" if self.query else self.path


def retry_after_violations(calls, key=lambda c: c.target) -> list[tuple[Call, Call]]:
    """(promise, early) pairs: call `early` arrived before the `Retry-After` sent in answer to
    an earlier call `promise` with the same `key` (by default the same path and query) had run
    out. The proxy stands for the archive, so arriving is reaching it, whatever it then did."""
    return [(promise, later) for promise in calls
            if promise.retry_after is not None and promise.answered is not None
            for later in calls
            if later.index > promise.index and key(later) == key(promise)
            and later.started < promise.answered + promise.retry_after]
