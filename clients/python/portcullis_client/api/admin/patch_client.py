from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.client_admin import ClientAdmin
from ...models.client_patch import ClientPatch
from ...models.problem import Problem
from typing import cast



def _get_kwargs(
    client_id: str,
    *,
    body: ClientPatch,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}


    

    

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/v1/admin/clients/{client_id}".format(client_id=quote(str(client_id), safe=""),),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ClientAdmin | Problem | None:
    if response.status_code == 200:
        response_200 = ClientAdmin.from_dict(response.json())



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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[ClientAdmin | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    client_id: str,
    *,
    client: AuthenticatedClient,
    body: ClientPatch,

) -> Response[ClientAdmin | Problem]:
    """ Disable/enable a client or change its scopes; disabling or narrowing revokes its tokens on every
    replica.

     Disable/enable a client or change its scopes; disabling or narrowing revokes its tokens on every
    replica.

    Args:
        client_id (str):
        body (ClientPatch):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ClientAdmin | Problem]
     """


    kwargs = _get_kwargs(
        client_id=client_id,
body=body,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    client_id: str,
    *,
    client: AuthenticatedClient,
    body: ClientPatch,

) -> ClientAdmin | Problem | None:
    """ Disable/enable a client or change its scopes; disabling or narrowing revokes its tokens on every
    replica.

     Disable/enable a client or change its scopes; disabling or narrowing revokes its tokens on every
    replica.

    Args:
        client_id (str):
        body (ClientPatch):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ClientAdmin | Problem
     """


    return sync_detailed(
        client_id=client_id,
client=client,
body=body,

    ).parsed

async def asyncio_detailed(
    client_id: str,
    *,
    client: AuthenticatedClient,
    body: ClientPatch,

) -> Response[ClientAdmin | Problem]:
    """ Disable/enable a client or change its scopes; disabling or narrowing revokes its tokens on every
    replica.

     Disable/enable a client or change its scopes; disabling or narrowing revokes its tokens on every
    replica.

    Args:
        client_id (str):
        body (ClientPatch):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ClientAdmin | Problem]
     """


    kwargs = _get_kwargs(
        client_id=client_id,
body=body,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    client_id: str,
    *,
    client: AuthenticatedClient,
    body: ClientPatch,

) -> ClientAdmin | Problem | None:
    """ Disable/enable a client or change its scopes; disabling or narrowing revokes its tokens on every
    replica.

     Disable/enable a client or change its scopes; disabling or narrowing revokes its tokens on every
    replica.

    Args:
        client_id (str):
        body (ClientPatch):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ClientAdmin | Problem
     """


    return (await asyncio_detailed(
        client_id=client_id,
client=client,
body=body,

    )).parsed
