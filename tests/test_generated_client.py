"""The typed Python client of `make client` (openapi-python-client, in clients/python):
the committed one is what the current OpenAPI document generates, and it works against
the live service: register, token, notes CRUD, a 422 parsed as `Problem`."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.support.server import Server, run_server

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "clients"
sys.path.insert(0, str(CLIENTS / "python"))

from portcullis_client import AuthenticatedClient, Client  # noqa: E402
from portcullis_client.api.auth import issue_token, register_user  # noqa: E402
from portcullis_client.api.notes import (  # noqa: E402
    create_note,
    delete_note,
    get_note,
    list_notes,
    patch_note,
)
from portcullis_client.models import (  # noqa: E402
    NoteCreate,
    NotePublic,
    NoteUpdate,
    PageNotePublic,
    Problem,
    RegisterIn,
    TokenForm,
    TokenFormGrantType,
    TokenOut,
)


def _differences(left: Path, right: Path) -> list[str]:
    """Files that differ, or are only on one side, below two folders."""
    compared = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [
        *(str(left / f) for f in compared.left_only),
        *(str(right / f) for f in compared.right_only),
        *(str(left / f) for f in compared.diff_files),
        *(str(left / f) for f in compared.funny_files),
    ]
    for sub in compared.common_dirs:
        found += _differences(left / sub, right / sub)
    return found


def test_the_committed_client_is_current(tmp_path: Path) -> None:
    """`make client` was run after the last change to a route or model."""
    document = tmp_path / "openapi.json"
    subprocess.run(
        [sys.executable, "-m", "tools.openapi_document", str(document)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert document.read_text() == (CLIENTS / "openapi.json").read_text(), (
        "clients/openapi.json is stale: run `make client`"
    )
    generated = tmp_path / "python"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--meta",
            "setup",
            "--config",
            str(CLIENTS / "openapi-python-client.yaml"),
            "--output-path",
            str(generated),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    stale = _differences(CLIENTS / "python", generated)
    assert stale == [], f"clients/python is stale (run `make client`): {stale}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("generated-client")) as srv:
        yield srv


@pytest.mark.server
def test_the_generated_client_against_the_live_service(server: Server) -> None:
    with Client(base_url=server.url, verify_ssl=server.ssl_context()) as anonymous:
        created = register_user.sync_detailed(
            client=anonymous, body=RegisterIn(username="typed", password=PASSWORD)
        )
        assert created.status_code == 201, created.content
        token = issue_token.sync(
            client=anonymous,
            body=TokenForm(
                grant_type=TokenFormGrantType.PASSWORD, username="typed", password=PASSWORD
            ),
        )
    assert isinstance(token, TokenOut), token
    with AuthenticatedClient(
        base_url=server.url, token=token.access_token, verify_ssl=server.ssl_context()
    ) as user:
        _notes_crud(user)


def _notes_crud(user: AuthenticatedClient) -> None:
    note = create_note.sync(
        client=user, body=NoteCreate(title="from the typed client", body="hello", tags=["gen"])
    )
    assert isinstance(note, NotePublic), note
    page = list_notes.sync(client=user, tag="gen")
    assert isinstance(page, PageNotePublic)
    assert [n.id for n in page.items] == [note.id]
    got = get_note.sync(str(note.id), client=user)
    assert isinstance(got, NotePublic) and got.title == "from the typed client"
    patched = patch_note.sync(str(note.id), client=user, body=NoteUpdate(title="renamed"))
    assert isinstance(patched, NotePublic) and patched.title == "renamed"
    assert patched.version == note.version + 1
    assert delete_note.sync_detailed(str(note.id), client=user).status_code == 204
    missing = get_note.sync(str(note.id), client=user)
    assert isinstance(missing, Problem) and missing.status == 404

    invalid = create_note.sync(client=user, body=NoteCreate(title="", body="", tags=[]))
    assert isinstance(invalid, Problem), invalid
    assert invalid.status == 422 and isinstance(invalid.errors, list)
    assert [str(e.loc[-1]) for e in invalid.errors] == ["title"]
