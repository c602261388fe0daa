from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.note_public import NotePublic
from ...models.note_update import NoteUpdate
from ...models.problem import Problem
from ...types import UNSET, Unset
from typing import cast



def _get_kwargs(
    note_id: str,
    *,
    body: NoteUpdate,
    if_match: str | Unset = UNSET,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_match, Unset):
        headers["If-Match"] = if_match



    

    

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/v1/notes/{note_id}".format(note_id=quote(str(note_id), safe=""),),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> NotePublic | Problem | None:
    if response.status_code == 200:
        response_200 = NotePublic.from_dict(response.json())



        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())



        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())



        return response_404

    if response.status_code == 412:
        response_412 = Problem.from_dict(response.json())



        return response_412

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())



        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())



        return response_415

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())



        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())



        return response_429

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())



        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[NotePublic | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    note_id: str,
    *,
    client: AuthenticatedClient,
    body: NoteUpdate,
    if_match: str | Unset = UNSET,

) -> Response[NotePublic | Problem]:
    """ Partial update.

     Partial update. `If-Match` with a stale ETag → 412; concurrent updates are applied one after the
    other, never lost.

    Args:
        note_id (str):
        if_match (str | Unset):
        body (NoteUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[NotePublic | Problem]
     """


    kwargs = _get_kwargs(
        note_id=note_id,
body=body,
if_match=if_match,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    note_id: str,
    *,
    client: AuthenticatedClient,
    body: NoteUpdate,
    if_match: str | Unset = UNSET,

) -> NotePublic | Problem | None:
    """ Partial update.

     Partial update. `If-Match` with a stale ETag → 412; concurrent updates are applied one after the
    other, never lost.

    Args:
        note_id (str):
        if_match (str | Unset):
        body (NoteUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        NotePublic | Problem
     """


    return sync_detailed(
        note_id=note_id,
client=client,
body=body,
if_match=if_match,

    ).parsed

async def asyncio_detailed(
    note_id: str,
    *,
    client: AuthenticatedClient,
    body: NoteUpdate,
    if_match: str | Unset = UNSET,

) -> Response[NotePublic | Problem]:
    """ Partial update.

     Partial update. `If-Match` with a stale ETag → 412; concurrent updates are applied one after the
    other, never lost.

    Args:
        note_id (str):
        if_match (str | Unset):
        body (NoteUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[NotePublic | Problem]
     """


    kwargs = _get_kwargs(
        note_id=note_id,
body=body,
if_match=if_match,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    note_id: str,
    *,
    client: AuthenticatedClient,
    body: NoteUpdate,
    if_match: str | Unset = UNSET,

) -> NotePublic | Problem | None:
    """ Partial update.

     Partial update. `If-Match` with a stale ETag → 412; concurrent updates are applied one after the
    other, never lost.

    Args:
        note_id (str):
        if_match (str | Unset):
        body (NoteUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        NotePublic | Problem
     """


    return (await asyncio_detailed(
        note_id=note_id,
client=client,
body=body,
if_match=if_match,

    )).parsed
