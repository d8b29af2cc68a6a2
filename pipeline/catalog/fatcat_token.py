"""The fatcat API token: read from `FATCAT_API_AUTH_TOKEN`, checked, and never shown.

Why a module of its own: the token is checked before a run
(`pipeline.preflight`) and again when the client is built, and scrubbed from
every text the client lets out (`token_forms`); the rules live here once, apart
from the HTTP calls of `pipeline.catalog.fatcat`.
fatcat's tokens are macaroons whose `editor_id = ...` caveat names the editor
they act for (`editor_id_of_token`: the open editgroups of another run are
looked up under that editor).
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from pipeline.catalog.base import InvalidCredentials

TOKEN_ENV = "FATCAT_API_AUTH_TOKEN"
EDITOR_CAVEAT = re.compile(rb"editor_id = ([a-z2-7]{26})")


def editor_id_of_token(token: str | None) -> str | None:
    """The editor a fatcat token (a base64 macaroon) names in its `editor_id = ...` caveat."""
    if not token:
        return None
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        return None
    match = EDITOR_CAVEAT.search(raw)
    return match.group(1).decode("ascii") if match else None


def token_problem(raw: str | None) -> str | None:
    """Why the token cannot be sent as an HTTP header (None: it can, or it is unset).

    Surrounding whitespace (the CR/LF of `$(cat token.txt)` from a CRLF file)
    is not a problem: `clean_token` strips it. What is left must be visible
    ASCII: `requests` refuses a header with a control character (and its
    error repeats the header, token and all), and a non-Latin-1 character
    fails deep in `http.client`. The message names the variable and the
    position, never the value.
    """
    token = (raw or "").strip()
    for i, ch in enumerate(token):
        if not "!" <= ch <= "~":
            what = ("a space or control character" if ch.isspace() or ord(ch) < 32 or ord(ch) == 127
                    else "a non-ASCII character")
            return (f"{TOKEN_ENV} holds {what} at position {i + 1} of {len(token)}, which an HTTP "
                    "header cannot carry; export the token exactly as issued")
    return None


def clean_token(raw: str | None) -> str | None:
    """The token without surrounding whitespace (None when unset or blank); raises
    `InvalidCredentials` (naming the variable, not the value) when it cannot be sent."""
    problem = token_problem(raw)
    if problem:
        raise InvalidCredentials(problem)
    return (raw or "").strip() or None


def token_forms(token: str) -> list[str]:
    """Every way the token can appear in a text: as is, stripped, and escaped the way a
    repr or JSON writes it (`abc\\r`, `\\u00e9`), longest first."""
    forms = {token, token.strip(), repr(token)[1:-1], json.dumps(token)[1:-1],
             token.encode("unicode_escape").decode("ascii"),
             repr(token.encode("utf-8", "backslashreplace"))[2:-1]}
    return sorted((f for f in forms if f), key=len, reverse=True)
