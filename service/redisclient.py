"""The Redis client from `PORTCULLIS_REDIS_URL`: one server, a Redis Cluster or Sentinel.

- `redis://[user:password@]host:6379/0`, `rediss://…` (TLS), `unix:///path?db=0`: one server;
- `redis+cluster://[user:password@]host:7000[,host:7001…]` (`rediss+cluster://` for TLS):
  a Redis Cluster, any nodes as seeds;
- `redis+sentinel://[user:password@]host:26379[,host:26380…]/<master name>[/db]`
  (`rediss+sentinel://` for TLS to the data nodes): the master Sentinel names, followed
  through fail-overs. The password is the data nodes'; Sentinels without auth are assumed.

Every client gets the same bounds: 0.5 s connect and command timeouts, and one immediate
retry on a broken connection. A pooled connection that broke while Redis restarted fails
once; retrying it on a fresh connection keeps that from looking like an outage, and with
no back-off a real outage costs a request at most two short connection attempts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
SCHEMES = ("redis://", "rediss://", "unix://", *CLUSTER_SCHEMES, *SENTINEL_SCHEMES)
WARM_CONNECTIONS = 32  # pooled connections opened at start-up (see warm_up)


def _nodes(netloc: str) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """(username, password, [(host, port), …]) from `user:pass@h1:p1,h2:p2`."""
    credentials, _, hosts = netloc.rpartition("@")
    username = password = None
    if credentials:
        user, _, secret = credentials.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("every Redis node needs host:port")
        nodes.append((host.strip("[]"), int(port)))
    return username, password, nodes


def check_url(url: str) -> None:
    """Raise ValueError (without echoing the URL: it may hold a password) when unusable."""
    if not url.startswith(SCHEMES):
        raise ValueError(
            "must be a redis://, rediss://, unix://, redis+cluster:// or redis+sentinel:// URL"
        )
    if url.startswith(CLUSTER_SCHEMES + SENTINEL_SCHEMES):
        parts = urlsplit(url)
        _nodes(parts.netloc)
        if url.startswith(SENTINEL_SCHEMES) and not parts.path.strip("/"):
            raise ValueError("a redis+sentinel:// URL names the master: …/<master name>[/db]")


def make_client(url: str) -> Any:
    """An asyncio Redis (or RedisCluster) client for `url`."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    bounds: dict[str, Any] = {
        "socket_timeout": 0.5,
        "socket_connect_timeout": 0.5,
        "retry": Retry(NoBackoff(), 1),
        "retry_on_error": [RedisConnectionError],
    }
    if url.startswith(CLUSTER_SCHEMES):
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        parts = urlsplit(url)
        username, password, nodes = _nodes(parts.netloc)
        # Its per-node pools raise MaxConnectionsError past 100 concurrent commands
        # (a standalone pool has no cap): allow as many as the in-flight cap can need.
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            username=username,
            password=password,
            ssl=url.startswith("rediss+"),
            max_connections=4096,
            **bounds,
        )
    if url.startswith(SENTINEL_SCHEMES):
        from redis.asyncio.sentinel import Sentinel

        parts = urlsplit(url)
        username, password, nodes = _nodes(parts.netloc)
        name, _, db = parts.path.strip("/").partition("/")
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            nodes,
            sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
            username=username,
            password=password,
            ssl=url.startswith("rediss+"),
            **bounds,
        )
        return sentinel.master_for(name, db=int(db or 0))
    import redis.asyncio as aioredis

    # redis-py 8 caps a standalone pool at 100 connections too (MaxConnectionsError).
    return aioredis.from_url(url, health_check_interval=5, max_connections=4096, **bounds)


async def warm_up(client: Any, key: str, connections: int = WARM_CONNECTIONS) -> None:
    """Get ready for the first burst; raises while Redis is down.

    A cluster client learns its topology first: redis-py's asyncio RedisCluster,
    initialised lazily by concurrent first commands, fails some of them
    (docs/upstream.md). Then `connections` concurrent reads of `key` open as many pooled
    connections to the server that holds it (on a cluster: its slot's node), so a burst
    finds them established: dozens of handshakes at once can take longer than the
    limiter waits for Redis (`ratelimit.REDIS_DEADLINE`), and would look like an outage."""
    import asyncio

    from redis.asyncio.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        await client.initialize()
    await asyncio.gather(*(client.exists(key) for _ in range(connections)))


async def close(client: Any) -> None:
    """Close the client's connections, and a Sentinel client's Sentinel connections."""
    manager = (
        getattr(client.connection_pool, "sentinel_manager", None)
        if hasattr(client, "connection_pool")
        else None
    )
    await client.aclose()
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()
