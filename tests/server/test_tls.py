"""The real server: Hypercorn with hypercorn.toml, real TLS, on loopback ports."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import Server, run_server
from tests.support.serving import portcullis_serve

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`portcullis serve`, as users start it: it also names the OpenSSL configuration that
    sets the key-exchange groups (service/server/tls.py)."""
    with portcullis_serve(tmp_path_factory.mktemp("tls")) as srv:
        yield srv


def handshake(server: Server, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def test_tls13_and_tls12_with_ecdhe_aead_only(server: Server) -> None:
    ctx = server.ssl_context()
    with handshake(server, ctx) as tls:
        assert tls.version() == "TLSv1.3"
    ctx12 = server.ssl_context()
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    with handshake(server, ctx12) as tls:
        assert tls.version() == "TLSv1.2"
        cipher = tls.cipher()
        assert cipher is not None
        name = cipher[0]
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name


@pytest.mark.parametrize(
    "ciphers",
    [
        "AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA384",
        "DHE-RSA-AES128-GCM-SHA256",
    ],
)
def test_tls12_without_ecdhe_aead_is_refused(server: Server, ciphers: str) -> None:
    ctx = server.ssl_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(server, ctx).close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize(
    ("version", "groups", "chosen"),
    [
        ("-tls1_3", "X25519", "X25519"),
        ("-tls1_3", "P-256", "prime256v1"),
        ("-tls1_3", "P-384", "secp384r1"),
        ("-tls1_3", "X448", None),
        ("-tls1_3", "P-521", None),
        # TLS 1.2: the groups also bound the certificate's curve (P-256), so offer it last
        ("-tls1_2", "X448:P-256", "prime256v1"),
        ("-tls1_2", "P-521:P-256", "prime256v1"),
    ],
)
def test_tls_key_exchange_groups_are_mozilla_intermediate(
    server: Server, version: str, groups: str, chosen: str | None
) -> None:
    result = subprocess.run(
        [  # noqa: S607
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-servername",
            "localhost",
            "-CAfile",
            str(server.ca),
            version,
            "-groups",
            groups,
        ],
        input=b"",
        capture_output=True,
        timeout=30,
        check=False,
    )
    output = result.stdout.decode(errors="replace")
    if chosen is None:  # no group in common: no handshake
        assert result.returncode != 0 and "Server Temp Key" not in output, output[-500:]
    else:
        assert result.returncode == 0, result.stderr[-500:]
        temp_key = next(line for line in output.splitlines() if "Server Temp Key" in line)
        assert chosen in temp_key


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_old_tls_versions_refused(server: Server) -> None:
    ctx = server.ssl_context()
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(server, ctx).close()


def test_alpn_offers_h2_and_http11(server: Server) -> None:
    for protocols, expected in ((["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")):
        ctx = server.ssl_context()
        ctx.set_alpn_protocols(protocols)
        with handshake(server, ctx) as tls:
            assert tls.selected_alpn_protocol() == expected


def test_http2_request_with_security_headers(server: Server) -> None:
    with httpx.Client(verify=server.ssl_context(), http2=True, base_url=server.url) as client:
        r = client.get("/healthz")
    assert r.http_version == "HTTP/2" and r.json() == {"status": "ok"}
    assert r.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "server" not in r.headers


def test_plain_http_port_only_redirects(server: Server) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}") as client:
        for method, path in (
            ("GET", "/v1/notes?limit=3"),
            ("POST", "/v1/auth/token"),
            ("GET", "/healthz"),
        ):
            r = client.request(method, path, headers={"Host": "evil.example"})
            assert r.status_code == 308
            assert r.headers["location"] == f"{server.url}{path}"
            assert r.content == b""


def test_full_flow_over_tls(server: Server) -> None:
    with httpx.Client(verify=server.ssl_context(), http2=True, base_url=server.url) as client:
        password = "Tr0ub4dor&3-horse-staple"
        r = client.post("/v1/auth/register", json={"username": "tlsuser", "password": password})
        assert r.status_code == 201
        r = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "tlsuser", "password": password},
        )
        token = r.json()["access_token"]
        r = client.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["username"] == "tlsuser"
        for bad in (token[:-4] + "AAAA", "x.y.z"):
            r = client.get("/v1/users/me", headers={"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401
            assert (
                r.headers["www-authenticate"] == 'Bearer realm="portcullis", error="invalid_token"'
            )
        r = client.post("/v1/auth/revoke", data={"token": token})
        assert r.status_code == 200
        r = client.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401


def test_oversized_request_head_refused(server: Server) -> None:
    with httpx.Client(verify=server.ssl_context(), base_url=server.url) as client:
        try:
            r = client.get("/healthz", headers={"X-Big": "a" * 20000})
        except httpx.RemoteProtocolError:
            return  # connection closed on the oversized head: also a refusal
        assert r.status_code in (400, 431)


def test_slow_request_head_is_cut_off(server: Server) -> None:
    with handshake(server, server.ssl_context()) as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        tls.settimeout(15)
        started = time.monotonic()
        data = b""
        try:
            while chunk := tls.recv(1024):
                data += chunk
        except (ssl.SSLError, ConnectionResetError, TimeoutError):
            pass
        assert time.monotonic() - started < 12
        assert b"200 OK" not in data


def test_logs_are_json_lines(server: Server) -> None:
    with httpx.Client(verify=server.ssl_context(), base_url=server.url) as client:
        client.get("/healthz", headers={"X-Request-ID": "server-log-check"})
    time.sleep(0.3)
    records = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    assert any(
        r["event"] == "http.request" and r.get("request_id") == "server-log-check" for r in records
    )
    assert any("Running on" in r["event"] for r in records)  # Hypercorn's own lines, as JSON


def test_signing_keys_file_is_private(server: Server) -> None:
    keys = Path(server.data_dir) / "keys" / "jwks.json"
    assert keys.stat().st_mode & 0o777 == 0o600


def test_sigterm_exits_cleanly(tmp_path: Path) -> None:
    with run_server(tmp_path) as srv:
        with httpx.Client(verify=srv.ssl_context(), base_url=srv.url) as client:
            assert client.get("/healthz").status_code == 200
        assert srv.stop(signal.SIGTERM) == 0


def test_mutual_tls_when_configured(tmp_path: Path) -> None:
    from service.devcerts import make_client_cert

    args = ("--ca-certs", str(tmp_path / "certs" / "ca.pem"), "--verify-mode", "CERT_REQUIRED")
    with run_server(tmp_path, extra_args=args) as srv:
        anonymous = srv.ssl_context()
        with (
            pytest.raises((ssl.SSLError, ConnectionResetError, httpx.HTTPError)),
            httpx.Client(verify=anonymous, base_url=srv.url) as client,
        ):
            client.get("/healthz")
        client_cert = make_client_cert(tmp_path / "certs", "robot")
        ctx = srv.ssl_context()
        ctx.load_cert_chain(client_cert["cert"], client_cert["key"])
        with httpx.Client(verify=ctx, base_url=srv.url) as client:
            assert client.get("/healthz").status_code == 200


def _server_ended(tls: ssl.SSLSocket, conn: Any, seconds: float) -> bool:
    """Read for up to `seconds`: True once the server closes or sends GOAWAY."""
    import h2.events
    import h2.exceptions

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tls.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = tls.recv(65536)
        except TimeoutError:
            return False
        except (ssl.SSLError, OSError):
            return True
        if not data:
            return True
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            continue
        if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
            return True
    return False


def test_http2_rapid_reset_flood_ends_the_connection(server: Server) -> None:
    """Streams opened and reset at once never reach the app, and the connection ends once
    the client has reset far more streams than it completed (service/server/patches/h2.py: over
    100 resets and over 2x the completed streams), well before the 1000-stream GOAWAY."""
    import h2.config
    import h2.connection

    ctx = server.ssl_context()
    ctx.set_alpn_protocols(["h2"])
    with handshake(server, ctx) as tls:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        headers = [
            (":method", "GET"),
            (":path", "/healthz"),
            (":scheme", "https"),
            (":authority", "localhost"),
            ("x-request-id", "rapid-reset-flood"),
        ]
        ended = False
        sent = 0
        for _batch in range(12):  # up to 600 streams, each reset at once
            for _ in range(50):
                stream_id = conn.get_next_available_stream_id()
                conn.send_headers(stream_id, headers, end_stream=True)
                conn.reset_stream(stream_id)
                sent += 1
            try:
                tls.sendall(conn.data_to_send())
            except (ssl.SSLError, OSError):
                ended = True
            ended = ended or _server_ended(tls, conn, 0.05)
            if ended:
                break
        # well before the 5 s idle timeout could explain a close
        ended = ended or _server_ended(tls, conn, 2.0)
        assert ended, f"the server kept accepting reset streams ({sent} sent)"
    time.sleep(0.5)
    records = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    ran = [r for r in records if r.get("request_id") == "rapid-reset-flood"]
    assert len(ran) <= 5, f"{len(ran)} reset streams were served"
