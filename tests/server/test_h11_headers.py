"""server_fixes.h11_headers: h11's response-header check with accepted pairs
remembered. Same result as h11 for every list, and a bad header is refused every time."""

from __future__ import annotations

import h11
import pytest
from h11._headers import normalize_and_validate

from service import server_fixes
from service.server_fixes import VALIDATED_MAX, VALIDATED_PAIR_MAX, h11_headers

API_ANSWER = [
    (b"content-type", b"application/json"),
    (b"Content-Length", b"123"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-request-id", b"0123456789abcdef"),
    (b"date", b"Tue, 01 Dec 2026 12:00:00 GMT"),
]


@pytest.fixture(autouse=True)
def empty_memo() -> None:
    server_fixes._validated.clear()


def same(headers: list[tuple[bytes, bytes]]) -> None:
    ours, theirs = h11_headers(headers), normalize_and_validate(headers)
    assert ours._full_items == theirs._full_items  # raw name, lower name, value; in order


def test_same_headers_as_h11_first_time_and_remembered() -> None:
    same(API_ANSWER)
    assert (b"x-content-type-options", b"nosniff") in server_fixes._validated
    same(API_ANSWER)  # now from the memo
    same([(b"Content-Length", b"7, 7")])  # h11 normalises one repeated length
    same([(b"content-length", b"5"), (b"content-length", b"5")])  # and drops a duplicate
    same([])


@pytest.mark.parametrize(
    "bad",
    [
        (b"x-note", b"a\r\nset-cookie: session=1"),  # response splitting
        (b"x-note", b"a\nb"),
        (b"x-note", b"\x00"),
        (b"bad name", b"v"),
        (b"x-note:", b"v"),
        (b"", b"v"),
        (b"x-note", b" padded"),
        (b"content-length", b"-1"),
        (b"transfer-encoding", b"gzip"),
    ],
)
def test_a_bad_header_is_refused_every_time_and_never_remembered(
    bad: tuple[bytes, bytes],
) -> None:
    h11_headers([*API_ANSWER, (b"x-note", b"fine")])  # a good value of the name, remembered
    for _ in range(2):
        with pytest.raises(h11.LocalProtocolError):
            h11_headers([*API_ANSWER, bad])
    assert bad not in server_fixes._validated


def test_framing_headers_are_judged_together() -> None:
    h11_headers([(b"content-length", b"5")])  # each alone is fine and remembered
    h11_headers([(b"content-length", b"6")])
    with pytest.raises(h11.LocalProtocolError, match="conflicting Content-Length"):
        h11_headers([(b"content-length", b"5"), (b"content-length", b"6")])
    h11_headers([(b"transfer-encoding", b"chunked")])
    with pytest.raises(h11.LocalProtocolError, match="multiple Transfer-Encoding"):
        h11_headers([(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")])


def test_the_memo_is_bounded() -> None:
    for n in range(VALIDATED_MAX * 2 + 7):
        h11_headers([*API_ANSWER, (b"x-note", b"%032x" % n)])
        assert len(server_fixes._validated) <= VALIDATED_MAX
    long_value = (b"x-note", b"v" * VALIDATED_PAIR_MAX)
    long_name = (b"x-" + b"n" * VALIDATED_PAIR_MAX, b"v")
    cookie = (b"Set-Cookie", b"session=s3cret")
    request_id = (b"x-request-id", b"0123456789abcdef")
    for pair in (long_value, long_name, cookie, request_id):
        same([pair])
        same([pair])
        assert pair not in server_fixes._validated


def test_the_h11_response_gets_the_checked_headers() -> None:
    event = h11.Response(headers=h11_headers(API_ANSWER), status_code=200)
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(conn.next_event(), h11.Request)
    head = conn.send(event)
    assert head is not None
    assert b"\r\nx-content-type-options: nosniff\r\n" in head
    assert b"\r\nContent-Length: 123\r\n" in head
