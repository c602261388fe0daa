# Portcullis container image: Hypercorn serving service.asgi:app with TLS.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir --upgrade pip \
    && /venv/bin/pip install --no-cache-dir .

FROM python:3.12-slim
RUN useradd --system --uid 10001 --home-dir /app portcullis
WORKDIR /app
COPY --from=build /venv /venv
COPY hypercorn.toml ./
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PORTCULLIS_ENV=production \
    PORTCULLIS_DATA_DIR=/app/var
RUN mkdir -p /app/var /app/certs && chown -R portcullis /app/var
USER portcullis
EXPOSE 8443 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import socket; socket.create_connection(('127.0.0.1', 8443), 2)"
# Mount the real certificate at /app/certs/server.pem and server-key.pem, set
# PORTCULLIS_ISSUER, PORTCULLIS_DATABASE_URL, PORTCULLIS_REDIS_URL, and a shared
# PORTCULLIS_SIGNING_KEYS_FILE; run `python -m service migrate` once per release.
CMD ["hypercorn", "--config", "hypercorn.toml", "--bind", "0.0.0.0:8443", \
     "--insecure-bind", "0.0.0.0:8080", "--workers", "2", "service.asgi:app"]
