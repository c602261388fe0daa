"""The container image, built from the Dockerfile with podman and run as uid 10001.

Where the pinned `python:3.12-slim` cannot be pulled, the base is a Debian root
filesystem made with mmdebstrap (Python, venv, the machine's CA bundle and pip settings
so that pip reaches the package index), made once and kept in pytest's cache directory.
The container runtime cannot set rlimits in every sandbox, so the image's root
filesystem is run with `chroot --userspec=10001:10001` (`podman mount`, with /proc, /dev
and /dev/shm bound) with the image's CMD and environment and the kit's settings."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tarfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.debian import debian_tool
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/portcullis:ci"
BASE = "localhost/portcullis-base:bookworm"
DEBIAN_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
UID = 10001

pytestmark = [pytest.mark.server, pytest.mark.image]


def _run(args: list[str], timeout: float = 600, **kwargs: Any) -> str:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    assert done.returncode == 0, f"{args[:4]}: {(done.stderr or done.stdout)[-4000:]}"
    return str(done.stdout)


def private_ca_certificate(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """An internal CA and a certificate for `name` (production refuses the development
    one): the CA, the certificate and its key."""
    openssl = debian_tool("openssl", "openssl")
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    cert, key, csr = folder / "server.pem", folder / "server-key.pem", folder / "server.csr"
    ext = folder / "server.ext"
    ext.write_text(f"subjectAltName=DNS:{name}\nbasicConstraints=critical,CA:FALSE\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _run(
        [
            openssl,
            "req",
            "-x509",
            *ec,
            "-days",
            "2",
            "-subj",
            "/CN=CI internal CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca),
        ]
    )
    _run(
        [openssl, "req", "-new", *ec, "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr)]
    )
    _run(
        [
            openssl,
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca),
            "-CAkey",
            str(ca_key),
            "-set_serial",
            "1",
            "-days",
            "2",
            "-extfile",
            str(ext),
            "-out",
            str(cert),
        ]
    )
    return ca, cert, key


def _pinned_base() -> str:
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert match and "@sha256:" in match.group(1), "the base image is not pinned by digest"
    return match.group(1)


def _debian_base(podman: str, cache: Path) -> str:
    """The mmdebstrap base, imported into podman; the tarball is made once and cached."""
    pip_env = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("PIP_"))
    hooks = ['mkdir -p "$1/etc/xdg" "$1/etc/ssl/certs"']
    for path in ("/etc/pip.conf", "/etc/xdg/pip", "/etc/ssl/certs/ca-certificates.crt"):
        if Path(path).exists():
            hooks.append(f"copy-in {path} {Path(path).parent!s}")
    recipe = json.dumps([DEBIAN_PACKAGES, hooks, pip_env])
    tarball = cache / f"base-{hashlib.sha256(recipe.encode()).hexdigest()[:16]}.tar"
    if not tarball.exists():
        mmdebstrap = debian_tool("mmdebstrap", "mmdebstrap")
        partial = tarball.with_suffix(".partial")
        args = [mmdebstrap, "--variant=minbase", "--format=tar", f"--include={DEBIAN_PACKAGES}"]
        args += [f"--customize-hook={hook}" for hook in hooks]
        sources = Path("/etc/apt/sources.list.d/debian.sources")
        args += ["bookworm", str(partial), *([str(sources)] if sources.exists() else [])]
        _run(args, timeout=900)
        partial.rename(tarball)
    changes = ["--change", "CMD /bin/bash"]
    for item in pip_env:
        changes += ["--change", f"ENV {item}"]
    _run([podman, "import", *changes, str(tarball), BASE])
    return BASE


@pytest.fixture(scope="module")
def image(request: pytest.FixtureRequest) -> str:
    if os.geteuid() != 0:
        pytest.skip("building and chroot-running the image needs root")
    podman = debian_tool("podman", "podman")
    cache = Path(request.config.cache.mkdir("portcullis-image"))
    pulled = subprocess.run(
        [podman, "pull", "-q", _pinned_base()], capture_output=True, timeout=120, check=False
    )
    base = _pinned_base() if pulled.returncode == 0 else _debian_base(podman, cache)
    _run(
        [
            podman,
            "build",
            "--isolation=chroot",
            "--network=host",
            "--build-arg",
            f"PYTHON_IMAGE={base}",
            "-t",
            IMAGE,
            str(ROOT),
        ],
        timeout=1200,
    )
    return podman


def _inspect(podman: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(_run([podman, "image", "inspect", IMAGE]))
    return data[0]


def test_no_secret_env_file_or_state_in_any_layer(image: str, tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    _run([image, "save", "--format", "docker-archive", "-o", str(archive), IMAGE])
    found: list[str] = []
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                for member in inner:
                    name = member.name.lstrip("./")
                    if name.startswith("app/var/") or name.startswith("app/certs/"):
                        found.append(f"{layer}: {name}")  # state or TLS material
                    if Path(name).name in (".env", "jwks.json") or name.endswith(".pem"):
                        if not name.startswith(("usr/", "venv/lib/", "etc/ssl/")):
                            found.append(f"{layer}: {name}")
                    if member.isfile() and member.size < 1_000_000 and name.startswith("app/"):
                        head = inner.extractfile(member)
                        if head is not None and b"PRIVATE KEY-----" in head.read():
                            found.append(f"{layer}: {name} holds a private key")
    assert found == []


@contextlib.contextmanager
def _rootfs(podman: str) -> Iterator[Path]:
    container = _run([podman, "create", IMAGE]).strip()
    root = Path(_run([podman, "mount", container]).strip())
    bound: list[Path] = []
    mount, umount = shutil.which("mount") or "mount", shutil.which("umount") or "umount"
    try:
        # /proc, and /dev with what is mounted below it (/dev/shm): recursive, and a
        # slave of the host's mounts so that unmounting here never reaches the host.
        for source, how in (("/proc", "--bind"), ("/dev", "--rbind")):
            target = root / source.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            _run([mount, how, source, str(target)])
            bound.append(target)
            _run([mount, "--make-rslave", str(target)])
        assert (root / "dev" / "shm").is_dir()
        yield root
    finally:
        for target in reversed(bound):
            subprocess.run([umount, "-R", "-l", str(target)], check=False, timeout=60)
        subprocess.run([podman, "umount", container], check=False, timeout=60)
        subprocess.run([podman, "rm", "-f", container], check=False, timeout=60)


def test_the_image_serves_as_uid_10001_and_stops_cleanly(image: str, tmp_path: Path) -> None:
    config = _inspect(image)["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    command: list[str] = list(config["Cmd"])
    assert config["User"] in ("portcullis", str(UID))
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    ca, cert, key = private_ca_certificate(tmp_path, "portcullis")
    with _rootfs(image) as root:
        data = root / "app" / "var"
        assert (data.stat().st_uid, data.stat().st_mode & 0o777) == (UID, 0o700)
        certs = root / "app" / "certs"
        shutil.copy(cert, certs / "server.pem")
        shutil.copy(key, certs / "server-key.pem")
        os.chown(certs / "server-key.pem", UID, UID)
        os.chmod(certs / "server-key.pem", 0o600)
        chroot = [
            shutil.which("chroot") or "/usr/sbin/chroot",
            f"--userspec={UID}:{UID}",
            str(root),
        ]
        shown = _run(
            [
                *chroot,
                "/usr/bin/env",
                "-i",
                *[f"{k}={v}" for k, v in env.items()],
                "portcullis",
                "--version",
            ]
        )
        assert shown.strip() == f"portcullis {version}"
        port, http_port = free_port(), free_port()
        # The image's CMD on free ports (this machine is shared), from its WORKDIR.
        args = [
            a.replace("0.0.0.0:8443", f"127.0.0.1:{port}").replace(
                "0.0.0.0:8080", f"127.0.0.1:{http_port}"
            )
            for a in command
        ]
        settings = {
            **env,
            "PORTCULLIS_ISSUER": "https://api.example.com",
            "PORTCULLIS_CERTFILE": "/app/certs/server.pem",
            "PORTCULLIS_DRAIN_SECONDS": "1",
        }
        script = 'cd "$0" && exec "$@"'
        log = tmp_path / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    *chroot,
                    "/usr/bin/env",
                    "-i",
                    *[f"{k}={v}" for k, v in settings.items()],
                    "/bin/sh",
                    "-c",
                    script,
                    config.get("WorkingDir") or "/app",
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            context = ssl.create_default_context(cafile=str(ca))
            context.check_hostname = False  # the certificate names the service
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, log.read_text()[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    with httpx.Client(verify=context, timeout=2) as client:
                        if client.get(f"https://127.0.0.1:{port}/healthz").status_code == 200:
                            break
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            # The state went to the volume, owned by the unprivileged user.
            assert {p.stat().st_uid for p in data.rglob("*")} == {UID}
            process.send_signal(signal.SIGTERM)
            graceful = tomllib.loads((ROOT / "hypercorn.toml").read_text())["graceful_timeout"]
            assert process.wait(timeout=1 + graceful + 10) == 0, log.read_text()[-3000:]
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
