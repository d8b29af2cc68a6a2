"""The fatcat API backend against the loopback stand-in: contract, retries, the token."""

import json
import logging

import pytest
import requests
from catalog_world import entity, hashes, ident_of, write_lines
from fatcat_standin import FatcatStandin

from pipeline.catalog.base import (
    CatalogUnavailable,
    ConstraintViolation,
    EditgroupAlreadyAccepted,
    InvalidCredentials,
    NotFound,
)
from pipeline.catalog.fatcat import FatcatCatalog
from pipeline.catalog.fatcat_token import TOKEN_ENV

TOKEN = "s3cret-Tok3n-ZZZ"


@pytest.fixture
def standin():
    with FatcatStandin(TOKEN, [entity(i) for i in range(4)]) as api:
        yield api


def client(api, token=TOKEN, **kw):
    kw.setdefault("backoff", 0.001)
    return FatcatCatalog(api.url, token=token, **kw)


def test_base_url_must_be_explicit():
    for bad in ("", "api.fatcat.wiki/v0", "ftp://x/v0", "https://user:pw@host/v0"):
        with pytest.raises(ValueError):
            FatcatCatalog(bad, token=TOKEN)


def test_token_read_from_environment_only_when_not_given(monkeypatch, standin):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    c = FatcatCatalog(standin.url)
    assert c.create_editgroup("d", {})
    assert TOKEN not in repr(c)
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(InvalidCredentials, match=TOKEN_ENV):
        FatcatCatalog(standin.url).create_editgroup("d", {})


def test_lookup_hit_and_404_miss(standin):
    c = client(standin)
    got = c.lookup_sha1(hashes(2)["sha1"])
    assert got["ident"] == ident_of(2) and got["revision"] == entity(2)["revision"]
    assert c.lookup_sha1("f" * 40) is None
    assert not standin.requests[-1]["authorized"]  # reads go without the token


def test_editgroup_lifecycle_over_http(standin):
    c = client(standin)
    eg = c.create_editgroup("backfill", {"agent": "a", "version": "v"})
    assert len(eg) == 26
    edit = c.update_file(eg, ident_of(1), {**entity(1), "size": 5})
    assert edit["ident"] == ident_of(1) and edit["editgroup_id"] == eg
    with pytest.raises(ConstraintViolation, match="file_edit_editgroup_id_ident_id_key"):
        c.update_file(eg, ident_of(1), entity(1))
    c.accept_editgroup(eg)
    assert c.get_file(ident_of(1))["size"] == 5
    assert c.get_editgroup(eg)["changelog_index"] == 1
    with pytest.raises(EditgroupAlreadyAccepted):
        c.update_file(eg, ident_of(2), entity(2))
    with pytest.raises(NotFound):
        c.update_file(c.create_editgroup("d", {}), ident_of(77), entity(2))
    assert c.get_editgroup("a" * 26) is None and c.get_file(ident_of(77)) is None


@pytest.mark.parametrize("status", [401, 403])
def test_wrong_or_missing_token_is_invalid_credentials(status):
    with FatcatStandin(TOKEN, [entity(0)], auth_status=status, echo_auth_in_errors=True) as api:
        bad = "wrong-" + TOKEN
        with pytest.raises(InvalidCredentials) as err:
            client(api, token=bad).create_editgroup("d", {})
        assert bad not in str(err.value) and "[token]" in str(err.value)  # scrubbed echo
        assert err.value.__cause__ is None  # raised from None: no chained request to print
        assert api.editgroups() == []


def test_retries_5xx_then_succeeds(standin, caplog):
    standin.add_fault("GET", "lookup", "503", times=2)
    with caplog.at_level(logging.WARNING):
        assert client(standin).lookup_sha1(hashes(0)["sha1"])["ident"] == ident_of(0)
    assert sum(r["op"] == "lookup" for r in standin.requests) == 3
    assert "retry 2/4" in caplog.text


@pytest.mark.parametrize("status", ["429", "503"])
def test_retry_after_of_429_and_503_is_waited(standin, monkeypatch, status):
    """The API says when to ask again: the retry waits that long (not the 1 ms backoff), capped,
    and a 429 is retried like a 5xx."""
    import pipeline.httpretry as httpretry

    waits = []
    monkeypatch.setattr(httpretry.time, "sleep", waits.append)
    standin.add_fault("GET", "lookup", status, retry_after="7")
    standin.add_fault("GET", "lookup", status, retry_after="86400")  # a day: capped
    standin.add_fault("GET", "lookup", status)  # no Retry-After: the backoff
    assert client(standin, max_retry_after=30.0).lookup_sha1(hashes(0)["sha1"])["ident"] == ident_of(0)
    assert waits[:2] == [7.0, 30.0]
    assert 0.004 <= waits[2] <= 0.005  # the backoff (1 ms * 2**2) with up to 1 ms of jitter
    assert len(waits) == 3


def test_retry_after_as_an_http_date():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from pipeline.httpretry import Retrying

    retry_after = Retrying(retry_after_max=300.0).retry_after

    def answer(status, value):
        r = requests.Response()
        r.status_code = status
        r.headers["Retry-After"] = value
        return r

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < retry_after(answer(503, later)) <= 120
    assert retry_after(answer(429, "3")) == 3.0
    assert retry_after(answer(500, "3")) is None  # only 429 and 503 promise a time
    assert retry_after(answer(429, "soon")) is None


def test_gives_up_after_bounded_retries(standin):
    standin.add_fault("POST", "create_editgroup", "503", times=10)
    with pytest.raises(CatalogUnavailable, match="after 3 attempts"):
        client(standin, retries=2).create_editgroup("d", {})
    assert sum(r["op"] == "create_editgroup" for r in standin.requests) == 3


def test_connection_refused_is_retried_then_unavailable(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = FatcatCatalog(f"http://127.0.0.1:{port}/v0", token=TOKEN, retries=1, backoff=0.001)
    with pytest.raises(CatalogUnavailable, match="ConnectionError") as err:
        c.lookup_sha1("a" * 40)
    assert err.value.__cause__ is None


def test_lost_put_answer_is_not_a_second_edit(standin):
    c = client(standin)
    eg = c.create_editgroup("d", {})
    standin.add_fault("PUT", "update_file", "drop")
    edit = c.update_file(eg, ident_of(3), {**entity(3), "size": 9})
    files = standin.get_editgroup(eg)["edits"]["files"]
    assert [f["edit_id"] for f in files] == [edit["edit_id"]]
    assert sum(r["op"] == "update_file" for r in standin.requests) == 2


def test_lost_accept_answer_is_still_success(standin):
    c = client(standin)
    eg = c.create_editgroup("d", {})
    c.update_file(eg, ident_of(3), {**entity(3), "size": 9})
    standin.add_fault("POST", "accept", "drop")
    c.accept_editgroup(eg)
    assert standin.get_editgroup(eg)["changelog_index"] == 1


def test_put_body_carries_no_catalog_keys(standin):
    seen = {}
    c = client(standin)
    orig = c._send  # every call's one way out

    def spy(method, url, headers, data):
        if method == "PUT":
            seen.update(json.loads(data))
        return orig(method, url, headers, data)

    c._send = spy
    c.update_file(c.create_editgroup("d", {}), ident_of(0), entity(0))
    assert seen and not {"ident", "revision", "state"} & set(seen)
    assert seen["sha1"] == hashes(0)["sha1"]


def test_environment_proxies_are_not_used(standin, monkeypatch):
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy would make this fail
    assert client(standin).lookup_sha1(hashes(1)["sha1"])["ident"] == ident_of(1)
    # while a plain requests session would have used it
    with pytest.raises(requests.ConnectionError):
        requests.get(standin.url + "/file/lookup", params={"sha1": hashes(1)["sha1"]}, timeout=5)


def test_import_without_token_fails_before_any_request(standin, tmp_path, monkeypatch):
    from catalog_world import file_meta

    from pipeline.importer import import_file_meta

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    fm = write_lines(tmp_path / "fm.json", [file_meta(0)])
    with pytest.raises(InvalidCredentials, match=TOKEN_ENV):
        import_file_meta(fm, FatcatCatalog(standin.url), journal_path=tmp_path / "j.json")
    assert standin.requests == []
    # a dry run needs no token
    dry = import_file_meta(fm, FatcatCatalog(standin.url), journal_path=None, dry_run=True)
    assert dry.counts["update"] == 1


def test_the_editor_is_read_from_a_fatcat_macaroon_token(caplog):
    from fatcat_standin import EDITOR_ID, macaroon_token

    from pipeline.catalog.fatcat_token import editor_id_of_token

    token = macaroon_token(EDITOR_ID)
    assert editor_id_of_token(token) == EDITOR_ID
    assert editor_id_of_token(token.replace("+", "-").replace("/", "_").rstrip("=")) == EDITOR_ID
    assert editor_id_of_token(TOKEN) is None and editor_id_of_token(None) is None
    with FatcatStandin(token, [entity(0)]) as api, caplog.at_level(logging.WARNING):
        eg = client(api, token=token).create_editgroup("d", {"agent": "a"})
        client(api, token=token).update_file(eg, ident_of(0), entity(0))
        found = client(api, token=token).open_editgroups("a")
        assert [g["editgroup_id"] for g in found] == [eg] and len(found[0]["edits"]["files"]) == 1
        assert client(api, token=token).open_editgroups("b") == []
        assert client(api, token=TOKEN).open_editgroups("a") == []  # names no editor: said so
    assert "names no editor" in caplog.text and token not in caplog.text
