"""The deploy kit, run as operators run it: every container of deploy/compose.yaml and of
`kubectl kustomize deploy/kubernetes` becomes a process with exactly the environment and
files the kit gives it (the ConfigMap, the Secrets an operator makes by following
deploy/README.md, the mounted directories), against the test PostgreSQL and Redis. One-shot
commands must exit 0; servers must become ready and stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from dotenv import dotenv_values

from tests.conftest import PG_URL, REDIS_URL, reset_postgres
from tests.support.debian import debian_tool, kustomize
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
BASH = shutil.which("bash") or "/bin/bash"

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        not (PG_URL and REDIS_URL),
        reason="the kit runs against PORTCULLIS_TEST_DATABASE_URL and _REDIS_URL",
    ),
]


def readme_block(heading: str, index: int) -> str:
    """The `index`-th ```sh block below `heading` in deploy/README.md."""
    text = (DEPLOY / "README.md").read_text()
    section = text[text.index(heading) :]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return "\n".join(line.strip() for line in blocks[index].splitlines())


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What the operator makes by following deploy/README.md compose step 2 (the very
    openssl commands), with a self-made certificate for the public side."""
    debian_tool("openssl", "openssl")
    root = tmp_path_factory.mktemp("operator")
    (root / "deploy").mkdir()
    script = readme_block("## Docker Compose, step by step", 1)
    script = script.replace(
        "cat /path/to/public-fullchain.pem /path/to/public-key.pem",
        "cat secrets/tls/server.pem secrets/tls/server-key.pem",
    )
    assert "cat secrets/tls/server.pem" in script  # the placeholder line is still there
    _run([BASH, "-euo", "pipefail", "-c", script], {"PATH": os.environ["PATH"]}, cwd=root)
    secrets = root / "deploy" / "secrets"
    left = sorted(str(p.relative_to(secrets)) for p in secrets.rglob("*") if p.is_file())
    # nothing but what the kit mounts and the CA key the README says to take offline
    assert left == [
        "haproxy/internal-ca.pem",
        "haproxy/portcullis.pem",
        "internal-ca-key.pem",
        "tls/server-key.pem",
        "tls/server.pem",
    ]
    return {"secrets": secrets, "ca": secrets / "haproxy" / "internal-ca.pem"}


def image_env() -> dict[str, str]:
    """The PORTCULLIS_* variables the Dockerfile's ENV gives every container."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for item in line[4:].split():
                key, _, value = item.partition("=")
                if key.startswith("PORTCULLIS_"):
                    env[key] = value
    assert env, "the Dockerfile sets no PORTCULLIS_* variable"
    return env


def _pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _free_bind(args: list[str], port: int) -> list[str]:
    """The container's `--bind 0.0.0.0:8443`, on a free loopback port (one host here)."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg == "--bind":
            out[i + 1] = f"127.0.0.1:{port}"
    return out


def _map_paths(value: str, mounts: dict[str, Path]) -> str:
    for container_path, host in sorted(mounts.items(), key=lambda m: -len(m[0])):
        if value == container_path or value.startswith(container_path + "/"):
            return str(host) + value[len(container_path) :]
    return value


def _command(args: list[str], mounts: dict[str, Path]) -> list[str]:
    args = [_map_paths(a, mounts) for a in args]
    if args[0] == "python":
        return [sys.executable, *args[1:]]
    if (BIN / args[0]).exists():
        return [str(BIN / args[0]), *args[1:]]
    return args


def _run(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> str:
    done = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"{args}: {done.stderr[-3000:]}"
    return done.stdout


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all of its children (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(c) for c in children]
    return total


@contextlib.contextmanager
def _serving(args: list[str], env: dict[str, str], port: int, ca: Path) -> Iterator[int]:
    """Start a server command, wait for /readyz 200 over verified TLS, yield its pid,
    then SIGTERM it and require exit 0 within the drain and graceful stop."""
    log = Path(env.get("PORTCULLIS_DATA_DIR", "/tmp")).parent / f"server-{port}.log"  # noqa: S108
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False  # the certificate names the service, not 127.0.0.1
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"{args} exited {process.returncode}: {log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError), httpx.Client(verify=context, timeout=2) as c:
                if c.get(f"https://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            assert time.monotonic() < deadline, f"never ready: {log.read_text()[-3000:]}"
            time.sleep(0.3)
        yield process.pid
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _memory_request_mib(container: dict[str, Any]) -> int:
    text = str(container["resources"]["requests"]["memory"])
    assert text.endswith("Mi")
    return int(text[:-2])


# Kubernetes -------------------------------------------------------------------------


def test_the_kubernetes_kit_migrates_and_serves(operator: dict[str, Path], tmp_path: Path) -> None:
    assert PG_URL is not None and REDIS_URL is not None
    asyncio.run(reset_postgres(PG_URL))
    rendered = kustomize(DEPLOY / "kubernetes")
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    config_maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    # The operator's Secrets, as deploy/README.md "Kubernetes, step by step" makes them:
    # the key file from `keys rotate` (run below as the README says), TLS from step 2.
    secret_env = {"PORTCULLIS_DATABASE_URL": _pg(PG_URL), "PORTCULLIS_REDIS_URL": REDIS_URL}
    keys_dir = tmp_path / "operator"
    keys_dir.mkdir()
    rotate = readme_block("## Kubernetes, step by step", 0).splitlines()
    (line,) = [x for x in rotate if "python -m service keys rotate" in x]
    variable, _, command = line.partition(" ")
    env = {"PATH": os.environ["PATH"], variable.split("=")[0]: str(keys_dir / "jwks.json")}
    _run([sys.executable, *command.split()[1:]], env)
    secret_files = {
        "portcullis-keys": {"jwks.json": (keys_dir / "jwks.json").read_bytes()},
        "portcullis-tls": {
            "tls.crt": (operator["secrets"] / "tls" / "server.pem").read_bytes(),
            "tls.key": (operator["secrets"] / "tls" / "server-key.pem").read_bytes(),
        },
    }
    secret_envs = {"portcullis-env": secret_env}

    def process_for(kind: str) -> tuple[dict[str, Any], list[str], dict[str, str]]:
        (doc,) = [d for d in docs if d["kind"] == kind]
        pod = doc["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        folder = tmp_path / kind
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts", []):
            host = folder / mount["name"]
            host.mkdir(parents=True)
            source = volumes[mount["name"]]
            if "secret" in source:
                for name, data in secret_files[source["secret"]["secretName"]].items():
                    (host / name).write_bytes(data)
                    (host / name).chmod(source["secret"].get("defaultMode", 0o644) & 0o640)
            mounts[mount["mountPath"]] = host
        env = {"PATH": os.environ["PATH"], **image_env()}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env |= config_maps[source["configMapRef"]["name"]]
            else:
                env |= secret_envs[source["secretRef"]["name"]]
        env = {k: _map_paths(str(v), mounts) for k, v in env.items()}
        return container, _command(container["command"], mounts), env

    _container, migrate, migrate_env = process_for("Job")
    assert "PORTCULLIS_SIGNING_KEYS_FILE" in migrate_env  # and no key Secret mounted
    _run(migrate, migrate_env)
    container, serve, serve_env = process_for("Deployment")
    port = free_port()
    with _serving(_free_bind(serve, port), serve_env, port, operator["ca"]) as pid:
        time.sleep(2)  # both workers up and settled
        rss_mib = _tree_rss_kib(pid) / 1024
    # The memory request covers what a replica holds when idle (bench/PROFILE.md).
    assert _memory_request_mib(container) >= rss_mib, rss_mib
    # The images carry the release's version (pyproject.toml).
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for c in doc["spec"]["template"]["spec"]["containers"]:
                assert c["image"].endswith(f":{version}")
    # A changed setting names a new ConfigMap, so the pods roll.
    assert all(re.fullmatch(r"portcullis-config-[a-z0-9]{10}", n) for n in config_maps)


# Docker Compose ---------------------------------------------------------------------


def _interpolate(value: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in env, f"compose needs {name} ({match.group(0)})"
        return env[name]

    return re.sub(r"\$\{([A-Z_]+)(?::?[?-][^}]*)?\}", one, value)


def test_the_compose_kit_migrates_rotates_and_serves(
    operator: dict[str, Path], tmp_path: Path
) -> None:
    assert PG_URL is not None and REDIS_URL is not None
    asyncio.run(reset_postgres(PG_URL))
    dotenv_script = readme_block("## Docker Compose, step by step", 0)
    (tmp_path / "deploy").mkdir()  # the README's commands run from the repository root
    _run([BASH, "-euo", "pipefail", "-c", dotenv_script], {"PATH": os.environ["PATH"]}, tmp_path)
    dotenv = {k: v or "" for k, v in dotenv_values(tmp_path / "deploy" / ".env").items()}
    assert (tmp_path / "deploy" / ".env").stat().st_mode & 0o777 == 0o600
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    # The database the kit's services reach: the postgres service's user, database and
    # password; this test's PostgreSQL stands in for it.
    postgres = services["postgres"]["environment"]
    expected = (
        f"postgresql://{postgres['POSTGRES_USER']}:{dotenv['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    stand_ins = {expected: _pg(PG_URL), "redis://redis:6379/0": REDIS_URL}
    secrets = tmp_path / "secrets"
    shutil.copytree(operator["secrets"], secrets)
    (secrets / "keys").chmod(0o700)

    def process_for(
        name: str, extra_env: dict[str, str] | None = None, extra_mounts: tuple[str, ...] = ()
    ) -> tuple[list[str], dict[str, str]]:
        service = services[name]
        mounts: dict[str, Path] = {}
        for volume in [*service.get("volumes", []), *extra_mounts]:
            source, target = volume.split(":")[:2]
            assert source.startswith("./secrets/"), volume
            mounts[target] = secrets / source.removeprefix("./secrets/")
        for tmpfs in service.get("tmpfs", []):
            mounts[tmpfs] = tmp_path / name / tmpfs.strip("/").replace("/", "-")
            mounts[tmpfs].mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ["PATH"]}
        for key, value in {**image_env(), **service["environment"], **(extra_env or {})}.items():
            text = _interpolate(str(value), dotenv)
            env[key] = _map_paths(stand_ins.get(text, text), mounts)
        return _command(service["command"], mounts), env

    migrate, env = process_for("migrate")
    _run(migrate, env)
    # Step 4: `docker compose run --rm --no-deps -v ./secrets/keys:/rotate -e ...=... migrate
    # python -m service keys rotate`, on a fresh keys folder.
    step4 = readme_block("## Docker Compose, step by step", 3)
    run_line = " ".join(step4.replace("\\\n", " ").split("\n")[1:])
    volume = re.search(r"-v (\S+)", run_line)
    setting = re.search(r"-e (\w+)=(\S+)", run_line)
    assert volume and setting
    command = run_line.split(" migrate ", 1)[1].split()
    _, env = process_for("migrate", {setting.group(1): setting.group(2)}, (volume.group(1),))
    keys = secrets / "keys" / "jwks.json"
    assert not keys.exists()
    _run(_command(command, {}), env)
    assert keys.stat().st_mode & 0o777 == 0o600
    assert (secrets / "keys").stat().st_mode & 0o777 == 0o700
    serve, env = process_for("replica1")
    port = free_port()
    with _serving(_free_bind(serve, port), env, port, operator["ca"]):
        pass


def test_every_service_command_line_of_the_readme_runs(tmp_path: Path) -> None:
    """Each README command line that runs the service's CLI on the operator's machine
    (creating and rotating the Kubernetes key file), as written, from a checkout whose
    `.venv` is this one: the first creates the file, the second rotates it."""
    text = (DEPLOY / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    lines = [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if ".venv/bin/python -m service" in line
    ]
    assert len(lines) >= 2, lines
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))  # this checkout's virtualenv
    env = {"PATH": os.environ["PATH"]}
    kids: list[str] = []
    for line in lines:
        _run([BASH, "-euo", "pipefail", "-c", line], env, cwd=tmp_path)
        keys = json.loads((tmp_path / "jwks.json").read_text())["keys"]
        assert (tmp_path / "jwks.json").stat().st_mode & 0o777 == 0o600
        kids.append(keys[-1]["kid"])
    assert len(set(kids)) == len(kids)  # each run added a key
