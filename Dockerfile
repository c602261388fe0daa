# Portcullis container image: `portcullis serve` (Hypercorn) for service.asgi:app with TLS.
# Reproducible from the locks: every dependency is installed from requirements.lock, and the
# build backend from requirements-build.lock, with their hashes checked (`make lock` updates
# both); nothing is fetched unpinned. The base image is pinned by digest, here only:
# `make base-digest` resolves the tag again and rewrites this line.
ARG PYTHON_IMAGE=python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /venv /build
COPY requirements.lock requirements-build.lock ./
RUN /venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock \
 && /build/bin/pip install --no-cache-dir --require-hashes -r requirements-build.lock
COPY pyproject.toml README.md LICENSE ./
COPY service ./service
# The wheel is built by the hash-checked setuptools above (no build isolation, which would
# fetch `setuptools>=77` unpinned), then installed into the runtime venv without deps.
RUN /build/bin/pip wheel --no-cache-dir --no-build-isolation --no-deps --wheel-dir /wheels . \
 && /venv/bin/pip install --no-cache-dir --no-deps --no-index /wheels/portcullis-*.whl

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --home-dir /app portcullis
WORKDIR /app
COPY --from=build /venv /venv
COPY hypercorn.toml ./
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PORTCULLIS_ENV=production \
    PORTCULLIS_DATA_DIR=/app/var
# /app/var holds the embedded SQLite database and the signing key file: a volume, so both
# outlive the container (mount a named volume or a host folder writable by uid 10001).
# Created and owned before VOLUME: a new named volume starts as a copy of it.
RUN mkdir -p /app/var /app/certs && chown portcullis /app/var && chmod 0700 /app/var
VOLUME /app/var
USER portcullis
EXPOSE 8443 8080
# Asks the service itself for GET /healthz over loopback. TLS verification is off for this
# one request only: the certificate names the public host, not 127.0.0.1, the connection
# never leaves the container's network namespace, and nothing secret is sent.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import ssl, urllib.request; c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE; urllib.request.urlopen('https://127.0.0.1:8443/healthz', context=c, timeout=2)"]
# Mount the real certificate at /app/certs/server.pem and server-key.pem, set
# PORTCULLIS_ISSUER, PORTCULLIS_CERTFILE=/app/certs/server.pem, PORTCULLIS_DATABASE_URL,
# PORTCULLIS_REDIS_URL and a shared PORTCULLIS_SIGNING_KEYS_FILE (docs/configuration.md);
# run `portcullis migrate` once per release. A bad setting or missing file exits non-zero
# with one line naming it.
CMD ["portcullis", "serve", "--config", "hypercorn.toml", "--bind", "0.0.0.0:8443", \
     "--insecure-bind", "0.0.0.0:8080", "--workers", "2", \
     "--certfile", "/app/certs/server.pem", "--keyfile", "/app/certs/server-key.pem"]
