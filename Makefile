# Portcullis — every target works on a fresh machine with only Python 3.11+.
# The first Python 3.11+ on PATH; a pyenv shim whose version is not installed fails quietly.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 \
	&& $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
# `make run HOST=0.0.0.0 PORT=9443 HTTP_PORT=9080` (an IPv6 host goes in brackets: HOST=[::]).
HOST ?= 127.0.0.1
PORT ?= 8443
HTTP_PORT ?= 8080
# `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest allowed release.
LOCK_FLAGS ?=
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command 'make lock' $(LOCK_FLAGS)
export PORTCULLIS_DATA_DIR ?= var

.PHONY: run test test-fast lint certs bench migrate fmt clean lock lock-check audit base-digest dashboard client

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Installs the exact, hash-checked set in the lock files; then the project itself.
$(VENV)/.run-installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml requirements-dev.lock | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@ $(VENV)/.run-installed

certs/server.pem certs/server-key.pem:
	$(MAKE) certs

certs: $(VENV)/.run-installed
	$(BIN)/portcullis certs --dir certs

migrate: $(VENV)/.run-installed
	$(BIN)/portcullis migrate

# In development `portcullis serve` derives the issuer (tokens' `iss`, the target of every
# redirect) from PORT, unless PORTCULLIS_ISSUER is set in the environment or in .env.
run: $(VENV)/.run-installed certs/server.pem migrate
	$(BIN)/portcullis serve --config hypercorn.toml \
		--bind $(HOST):$(PORT) --insecure-bind $(HOST):$(HTTP_PORT)

test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest

# The quick edit loop: the suite without the tests that start real servers, a browser or
# the scale-out cluster (pytest markers `server` and `scale`).
test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m "not server and not scale"

lint: $(VENV)/.dev-installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

fmt: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The typed Python client (openapi-python-client) in clients/python, from the OpenAPI
# document (also written to clients/openapi.json); run it after changing a route or model.
client: $(VENV)/.dev-installed
	$(BIN)/python -m tools.openapi_document clients/openapi.json
	$(BIN)/openapi-python-client generate --path clients/openapi.json --meta setup \
		--config clients/openapi-python-client.yaml --output-path clients/python --overwrite

# Re-lock after changing dependencies in pyproject.toml (keeps the other pins).
lock: $(VENV)/.dev-installed
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock
	$(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
		| $(BIN)/uv pip compile - --universal --python-version 3.11 --generate-hashes --quiet \
		--custom-compile-command 'make lock' $(LOCK_FLAGS) -o requirements-build.lock
	$(BIN)/python -m tools.lockfile stamp

lock-check: | $(BIN)/python
	$(BIN)/python -m tools.lockfile check

# Known advisories in the locked set (skipped, saying so, when the advisory service is
# unreachable).
audit: $(VENV)/.dev-installed
	$(BIN)/python -m tools.audit

# `make bench BENCH_QUICK=1`: the same checks, shorter and smaller (1-2 minutes). Set
# PORTCULLIS_BENCH_DATABASE_URL and PORTCULLIS_BENCH_REDIS_URL for the PostgreSQL + Redis rows.
BENCH_QUICK ?=
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench $(if $(BENCH_QUICK),--quick)

# The Grafana dashboard and the Kubernetes PrometheusRule/PodMonitor, from tools/monitoring.py
# and deploy/prometheus/portcullis.rules.yaml (commit the result).
dashboard: $(VENV)/.dev-installed
	$(BIN)/python -m tools.monitoring

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# The container's base image is pinned by digest (Dockerfile, ARG PYTHON_IMAGE): this
# resolves the tag again (podman or docker) and writes the new digest there.
BASE_TAG ?= docker.io/library/python:3.12-slim
base-digest:
	@engine=$$(command -v podman || command -v docker) || { echo "needs podman or docker" >&2; exit 1; }; \
	$$engine pull -q $(BASE_TAG) >/dev/null && \
	digest=$$($$engine image inspect --format '{{index .RepoDigests 0}}' $(BASE_TAG) | sed 's/.*@//') && \
	sed -i "s|^ARG PYTHON_IMAGE=.*|ARG PYTHON_IMAGE=python:3.12-slim@$$digest|" Dockerfile && \
	grep '^ARG PYTHON_IMAGE=' Dockerfile
