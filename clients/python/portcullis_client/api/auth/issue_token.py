from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.o_auth_error_out import OAuthErrorOut
from ...models.problem import Problem
from ...models.token_form import TokenForm
from ...models.token_out import TokenOut
from typing import cast



def _get_kwargs(
    *,
    body: TokenForm,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}


    

    

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/auth/token",
    }

    _kwargs["data"] = body.to_dict()
    headers["Content-Type"] = "application/x-www-form-urlencoded"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> OAuthErrorOut | Problem | TokenOut | None:
    if response.status_code == 200:
        response_200 = TokenOut.from_dict(response.json())



        return response_200

    if response.status_code == 400:
        response_400 = OAuthErrorOut.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = OAuthErrorOut.from_dict(response.json())



        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())



        return response_403

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())



        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())



        return response_415

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[OAuthErrorOut | Problem | TokenOut]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: TokenForm,

) -> Response[OAuthErrorOut | Problem | TokenOut]:
    """ RFC 6749 token endpoint: `password`, `refresh_token`, `client_credentials`.

     RFC 6749 token endpoint: `password`, `refresh_token`, `client_credentials`. With a `DPoP` proof
    header (RFC 9449) the tokens are bound to its key: `token_type` is `DPoP`.

    Args:
        body (TokenForm): RFC 6749 token request (application/x-www-form-urlencoded); documents
            the form.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[OAuthErrorOut | Problem | TokenOut]
     """


    kwargs = _get_kwargs(
        body=body,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    *,
    client: AuthenticatedClient | Client,
    body: TokenForm,

) -> OAuthErrorOut | Problem | TokenOut | None:
    """ RFC 6749 token endpoint: `password`, `refresh_token`, `client_credentials`.

     RFC 6749 token endpoint: `password`, `refresh_token`, `client_credentials`. With a `DPoP` proof
    header (RFC 9449) the tokens are bound to its key: `token_type` is `DPoP`.

    Args:
        body (TokenForm): RFC 6749 token request (application/x-www-form-urlencoded); documents
            the form.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        OAuthErrorOut | Problem | TokenOut
     """


    return sync_detailed(
        client=client,
body=body,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: TokenForm,

) -> Response[OAuthErrorOut | Problem | TokenOut]:
    """ RFC 6749 token endpoint: `password`, `refresh_token`, `client_credentials`.

     RFC 6749 token endpoint: `password`, `refresh_token`, `client_credentials`. With a `DPoP` proof
    header (RFC 9449) the tokens are bound to its key: `token_type` is `DPoP`.

    Args:
        body (TokenForm): RFC 6749 token request (application/x-www-form-urlencoded); documents
            the form.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[OAuthErrorOut | Problem | TokenOut]
     """


    kwargs = _get_kwargs(
        body=body,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: TokenForm,

) -> OAuthErrorOut | Problem | TokenOut | None:
    """ RFC 6749 token endpoint: `password`, `refresh_token`, `client_credentials`.

     RFC 6749 token endpoint: `password`, `refresh_token`, `client_credentials`. With a `DPoP` proof
    header (RFC 9449) the tokens are bound to its key: `token_type` is `DPoP`.

    Args:
        body (TokenForm): RFC 6749 token request (application/x-www-form-urlencoded); documents
            the form.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        OAuthErrorOut | Problem | TokenOut
     """


    return (await asyncio_detailed(
        client=client,
body=body,

    )).parsed
