"""fatcat's official generated client (`fatcat-openapi-client`) against the stand-in.

The generated models deserialize and validate what a fatcat server answers
(required fields, identifier and checksum lengths, datetimes), so when they
accept the stand-in's answers, the stand-in speaks fatcat's shapes, not only
the project's idea of them. The client's default host is the public
production API: it is built here only through `official_client(host, ...)`,
which has no default.
"""

from __future__ import annotations

import json

import fatcat_openapi_client as fc
import pytest
import requests
from catalog_world import entity, hashes, ident_of
from fatcat_openapi_client.rest import ApiException
from fatcat_standin import FatcatStandin

from pipeline.catalog.fatcat import FatcatCatalog

TOKEN = "official-client-T0ken"


def official_client(host: str, token: str | None = None) -> fc.DefaultApi:
    """The generated client for an explicit host (never its built-in production default)."""
    if not host.startswith("http://127.0.0.1:"):
        raise ValueError(f"tests talk to loopback stand-ins only, not {host!r}")
    conf = fc.Configuration(host=host)
    if token is not None:
        conf.api_key["Authorization"] = token
        conf.api_key_prefix["Authorization"] = "Bearer"
    return fc.DefaultApi(fc.ApiClient(conf))


def error_of(exc: ApiException) -> fc.ErrorResponse:
    """The error body as fatcat's `error_response` model (its required fields validated)."""
    return fc.ErrorResponse(**json.loads(exc.body))


@pytest.fixture
def api():
    with FatcatStandin(TOKEN, [entity(i) for i in range(4)] + [entity(9, state="deleted")]) as standin:
        yield standin


def test_lookup_file_gives_a_file_entity(api):
    found = official_client(api.url).lookup_file(sha1=hashes(1)["sha1"])
    assert isinstance(found, fc.FileEntity)
    assert (found.ident, found.revision, found.state) == (ident_of(1), entity(1)["revision"], "active")
    assert found.sha1 == hashes(1)["sha1"]
    assert [(u.url, u.rel) for u in found.urls] == [(u["url"], u["rel"]) for u in entity(1)["urls"]]
    assert found.release_ids == entity(1)["release_ids"]


@pytest.mark.parametrize("sha1", ["f" * 40, hashes(9)["sha1"]])  # none; a deleted entity
def test_lookup_misses_are_fatcat_error_responses(api, sha1):
    with pytest.raises(ApiException) as err:
        official_client(api.url).lookup_file(sha1=sha1)
    body = error_of(err.value)
    assert (err.value.status, body.success, body.error) == (404, False, "NotFound")
    assert body.message


@pytest.mark.parametrize("sha1", ["F" * 40, "abc", ""])
def test_malformed_checksum_is_a_fatcat_error_response(api, sha1):
    # the official client refuses these before sending: ask over plain HTTP
    session = requests.Session()
    session.trust_env = False  # straight to the loopback stand-in, whatever the environment says
    answer = session.get(api.url + "/file/lookup", params={"sha1": sha1}, timeout=5)
    body = fc.ErrorResponse(**answer.json())
    assert (answer.status_code, body.success, body.error) == (400, False, "MalformedChecksum")


def test_editgroup_lifecycle_in_fatcats_shapes(api):
    client = official_client(api.url, TOKEN)
    created = client.create_editgroup(fc.Editgroup(description="backfill", extra={"agent": "t"}))
    assert isinstance(created, fc.Editgroup) and len(created.editgroup_id) == 26
    assert created.description == "backfill" and created.extra == {"agent": "t"}
    assert created.created is not None and created.changelog_index is None and created.editor_id

    before = client.lookup_file(sha1=hashes(2)["sha1"])
    before.size, before.edit_extra = 4242, {"why": "backfill"}
    edit = client.update_file(created.editgroup_id, ident_of(2), before)
    assert isinstance(edit, fc.EntityEdit)
    assert (edit.ident, edit.editgroup_id, edit.prev_revision) == (
        ident_of(2), created.editgroup_id, entity(2)["revision"])
    assert len(edit.edit_id) == 36 and len(edit.revision) == 36 and edit.revision != edit.prev_revision
    assert edit.extra == {"why": "backfill"}  # edit_extra is the edit's, not the entity's

    # not visible before the accept
    assert client.get_file(ident_of(2)).revision == entity(2)["revision"]
    group = client.get_editgroup(created.editgroup_id)
    assert group.changelog_index is None
    assert [e.edit_id for e in group.edits.files] == [edit.edit_id] and group.edits.releases == []

    accepted = client.accept_editgroup(created.editgroup_id)
    assert isinstance(accepted, fc.Success) and accepted.success is True
    group = client.get_editgroup(created.editgroup_id)
    assert group.changelog_index == 1 and group.edits.files[0].revision == edit.revision
    after = client.get_file(ident_of(2))
    assert (after.revision, after.size, after.edit_extra) == (edit.revision, 4242, None)


def test_write_errors_are_fatcat_error_responses(api):
    client = official_client(api.url, TOKEN)
    eg = client.create_editgroup(fc.Editgroup(description="d")).editgroup_id
    file0 = client.get_file(ident_of(0))
    client.update_file(eg, ident_of(0), file0)
    cases = [
        (lambda: client.update_file(eg, ident_of(0), file0), 400, "ConstraintViolation"),
        (lambda: client.update_file(eg, "b" * 26, file0), 404, "NotFound"),
        (lambda: client.update_file(eg, "not-an-ident", file0), 400, "InvalidFatcatId"),
        (lambda: client.update_file("c" * 26, ident_of(1), file0), 404, "NotFound"),
        (lambda: official_client(api.url).create_editgroup(fc.Editgroup(description="x")),
         403, "InvalidCredentials"),
        (lambda: official_client(api.url, "wrong").accept_editgroup(eg), 403, "InvalidCredentials"),
    ]
    for call, status, name in cases:
        with pytest.raises(ApiException) as err:
            call()
        body = error_of(err.value)
        assert (err.value.status, body.success, body.error) == (status, False, name), name
    client.accept_editgroup(eg)
    for call in (lambda: client.accept_editgroup(eg),
                 lambda: client.update_file(eg, ident_of(1), client.get_file(ident_of(1)))):
        with pytest.raises(ApiException) as err:
            call()
        assert (err.value.status, error_of(err.value).error) == (400, "EditgroupAlreadyAccepted")


def test_the_projects_client_and_the_official_one_see_the_same_catalog(api):
    ours = FatcatCatalog(api.url, token=TOKEN, backoff=0.001)
    eg = ours.create_editgroup("backfill of full file-level metadata", {"agent": "filemeta-backfill"})
    ours.update_file(eg, ident_of(3), {**ours.get_file(ident_of(3)), "sha256": hashes(3)["sha256"]})
    ours.accept_editgroup(eg)
    official = official_client(api.url)
    group = official.get_editgroup(eg)
    assert group.description.startswith("backfill") and group.extra == {"agent": "filemeta-backfill"}
    assert group.changelog_index == 1 and [e.ident for e in group.edits.files] == [ident_of(3)]
    assert official.lookup_file(sha1=hashes(3)["sha1"]).sha256 == hashes(3)["sha256"]


def test_official_client_is_never_built_without_an_explicit_loopback_host():
    with pytest.raises(TypeError):
        official_client()  # the generated client's default host would be production
    with pytest.raises(ValueError):
        official_client("https://api.fatcat.wiki/v0")


def test_the_standin_shares_no_code_with_the_project():
    """A wrong idea of fatcat in `pipeline.catalog` must not pass on both sides."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parent / "fatcat_standin.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported and not any(name.split(".")[0] == "pipeline" for name in imported)


def test_edit_deletion_editor_editgroups_and_auth_check_in_fatcats_shapes():
    from fatcat_standin import EDITOR_ID, macaroon_token

    token = macaroon_token(EDITOR_ID)
    with FatcatStandin(token, [entity(i) for i in range(3)]) as standin:
        client = official_client(standin.url, token)
        assert client.auth_check().success is True
        with pytest.raises(ApiException) as err:
            official_client(standin.url, "wrong").auth_check()
        assert (err.value.status, error_of(err.value).error) == (403, "InvalidCredentials")
        first = client.create_editgroup(fc.Editgroup(description="one", extra={"agent": "t"}))
        second = client.create_editgroup(fc.Editgroup(description="two"))
        assert first.editor_id == EDITOR_ID
        edit = client.update_file(second.editgroup_id, ident_of(1), client.get_file(ident_of(1)))
        with pytest.raises(ApiException) as err:  # the edit is not in that editgroup
            client.delete_file_edit(first.editgroup_id, edit.edit_id)
        assert (err.value.status, error_of(err.value).error) == (400, "BadRequest")
        deleted = client.delete_file_edit(second.editgroup_id, edit.edit_id)
        assert isinstance(deleted, fc.Success) and deleted.success is True
        assert client.get_editgroup(second.editgroup_id).edits.files == []
        with pytest.raises(ApiException) as err:
            client.delete_file_edit(second.editgroup_id, edit.edit_id)
        assert (err.value.status, error_of(err.value).error) == (404, "NotFound")
        client.accept_editgroup(first.editgroup_id)
        listed = official_client(standin.url).get_editor_editgroups(EDITOR_ID, limit=10)
        assert [g.editgroup_id for g in listed] == [second.editgroup_id, first.editgroup_id]
        assert [g.changelog_index for g in listed] == [None, 1] and listed[1].extra == {"agent": "t"}
        assert official_client(standin.url).get_editor_editgroups(EDITOR_ID, limit=1)[0] == listed[0]
