"""Prometheus metrics, aggregated over every Hypercorn worker process.

Hypercorn runs each worker as a spawned child of one master process. Every worker
writes its samples to `<data_dir>/metrics/<master pid>/` (prometheus-client's
multiprocess mode), so a scrape served by any worker sums all of them. A new master
starts with an empty folder and removes the folders of masters that are gone, so no
stale file survives a restart. `PROMETHEUS_MULTIPROC_DIR`, when the operator sets it,
wins (the operator then owns its clean-up).

`prepare_multiprocess_dir` must run before `prometheus_client` is imported anywhere;
`service.asgi` calls it first thing.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from .workers import group_folder

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The fixed label values (docs/operations.md): each series exists from start-up at 0, so
# an alert rule sees 0 rather than "absent" before the first event.
AUTH_FAILURE_REASONS = (
    "malformed",
    "oversized",
    "bad_algorithm",
    "bad_type",
    "unknown_key",
    "bad_signature",
    "expired",
    "invalid_claim",
    "revoked",
    "inactive_principal",
    "bad_header",
    "too_old",
    "invalid",
    "dpop_proof",
    "dpop_bound",
    "not_dpop_bound",
)
LOGIN_OUTCOMES = ("success", "failure")
# DPoP proofs: accepted, or the reason they were refused (security.dpop.REASONS).
DPOP_OUTCOMES = tuple(
    """accepted missing duplicated oversized malformed bad_type bad_algorithm private_key
    bad_key bad_signature missing_jti bad_method bad_uri bad_iat bad_ath nonce_required
    nonce_invalid replayed key_mismatch""".split()
)
RATELIMIT_POLICIES = ("default", "token", "register", "login", "openapi")
_CHILDREN_CACHED = 4096  # label sets whose children are kept (bounded anyway; see below)
# The `method` label: the standard methods (RFC 9110 and PATCH), any other as OTHER, so a
# client cannot make up series. `route` is a route template or a fixed bucket
# (`<unmatched>`, `<probe>`, `<redirect>`) and `status` a status code, or `other`.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
# The in-flight gauge is counted in memory and written to its (shared) sample at most
# this often, and at once before this process renders a scrape.
IN_FLIGHT_PUBLISH_SECONDS = 0.1


def prepare_multiprocess_dir(data_dir: Path) -> Path | None:
    """Choose and prepare the shared metrics folder of this server process group."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    folder = group_folder((data_dir / "metrics").resolve())
    os.environ[ENV] = str(folder)
    return folder


class Metrics:
    """The service's metrics; one instance per app (its own registry in tests).

    `dependencies` are the ones this process checks: each shows 0 ("not known to be
    up") until its first readiness check answers.
    """

    def __init__(self, dependencies: tuple[str, ...] = ("database",)) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(ENV))
        self.registry = CollectorRegistry(auto_describe=True)
        reg: Any = None if self.multiprocess else self.registry
        self.requests = Counter(
            "portcullis_http_requests_total",
            "Completed HTTP requests.",
            ["method", "route", "status"],
            registry=reg,
        )
        self.duration = Histogram(
            "portcullis_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.in_flight = Gauge(
            "portcullis_http_requests_in_flight",
            "HTTP requests being served now.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.auth_failures = Counter(
            "portcullis_auth_failures_total",
            "Rejected bearer tokens, by reason.",
            ["reason"],
            registry=reg,
        )
        self.logins = Counter(
            "portcullis_logins_total",
            "Token endpoint authentications, by outcome.",
            ["outcome"],
            registry=reg,
        )
        self.ratelimit_rejections = Counter(
            "portcullis_ratelimit_rejections_total",
            "Requests refused by a rate limit, by policy.",
            ["policy"],
            registry=reg,
        )
        self.refresh_reuse = Counter(
            "portcullis_refresh_token_reuse_total",
            "Spent refresh tokens presented again (each revoked its login session).",
            registry=reg,
        )
        self.in_flight_limit = Gauge(
            "portcullis_http_requests_in_flight_limit",
            "The in-flight cap (PORTCULLIS_MAX_INFLIGHT), summed over live workers.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.dpop_proofs = Counter(
            "portcullis_dpop_proofs_total",
            "DPoP proofs checked, by outcome (accepted or the refusal's reason).",
            ["outcome"],
            registry=reg,
        )
        self.client_blocks = Counter(
            "portcullis_client_blocks_total",
            "Client addresses blocked automatically.",
            registry=reg,
        )
        self.dependency_up = Gauge(
            "portcullis_dependency_up",
            "1 when the dependency answered its last check.",
            ["dependency"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.issuer_keys_up = Gauge(
            "portcullis_issuer_keys_up",
            "1 while an external issuer's keys are fetched (cached keys keep working).",
            ["issuer"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.key_set_mismatch = Gauge(
            "portcullis_key_set_mismatch",
            "1 while other live processes verify with a different signing key set.",
            registry=reg,
            multiprocess_mode="livemax",
        )

        # In multiprocess mode a child's first use writes its 0 to this process's file,
        # so the aggregated scrape shows every series (zeros add nothing to the sums).
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason)
        for outcome in LOGIN_OUTCOMES:
            self.logins.labels(outcome)
        for policy in RATELIMIT_POLICIES:
            self.ratelimit_rejections.labels(policy)
        for outcome in DPOP_OUTCOMES:
            self.dpop_proofs.labels(outcome)
        for dependency in dependencies:
            self.dependency_up.labels(dependency).set(0)
        # The labelled children of the request metrics, looked up once per label set
        # (`.labels()` validates and joins the values on every call).
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # Requests being served by this process. Two gauge writes per request (each a
        # lock and an mmap write in multiprocess mode) become one write per change
        # within IN_FLIGHT_PUBLISH_SECONDS; a scrape sees the exact count of the
        # process serving it and others' as of at most that long ago.
        self.requests_in_flight = 0
        self._publish_due: asyncio.TimerHandle | None = None

    def request_started(self) -> None:
        self.requests_in_flight += 1
        if self._publish_due is None:
            self._schedule_publish()

    def request_finished(self) -> None:
        self.requests_in_flight -= 1
        if self._publish_due is None:
            self._schedule_publish()

    def _schedule_publish(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): publish now
            self.publish_in_flight()
            return
        self._publish_due = loop.call_later(IN_FLIGHT_PUBLISH_SECONDS, self.publish_in_flight)

    def publish_in_flight(self) -> None:
        if self._publish_due is not None:
            self._publish_due.cancel()
            self._publish_due = None
        self.in_flight.set(self.requests_in_flight)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._request_children.get((method, route, status))
        if children is None:
            label = method if method in METHODS else "OTHER"
            code = str(status) if 100 <= status <= 599 else "other"
            children = (
                self.requests.labels(label, route, code),
                self.duration.labels(label, route),
            )
            if len(self._request_children) < _CHILDREN_CACHED and label == method:
                self._request_children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        self.publish_in_flight()
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def process_exit(self) -> None:
        """Drop this worker's live gauges from the aggregate."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
