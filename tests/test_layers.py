"""Imports run one way, from the top floor down, and never in a circle (docs/architecture.md).

Every import in `service/` is read from the source (module level, function level and
TYPE_CHECKING blocks alike): a module may import its own floor or a lower one, never a
higher one, and no chain of imports leads back to where it started.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "service"

# Top floor first. A module belongs to the first floor with a prefix naming it.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    (
        "entry",
        (
            "service",
            "service.asgi",
            "service.__main__",
            "service.cli_support",
            "service.cli_admin",
            "service.cli_checks",
            "service.devcerts",
            "service.server",
        ),
    ),
    ("app", ("service.app", "service.guard")),
    ("api", ("service.api", "service.middleware")),
    ("services", ("service.services",)),
    ("domain", ("service.domain", "service.signalbus", "service.health")),
    ("security", ("service.security", "service.logging", "service.datadir")),
    ("redaction", ("service.redaction", "service.logsink", "service.logrender")),
    (
        "base",
        (
            "service.store",
            "service.models",
            "service.config",
            "service.settings",
            "service.cache",
            "service.version",
            "service.errors",
            "service.metrics",
            "service.context",
            "service.problem",
            "service.files",
            "service.redisclient",
            "service.workers",
            "service.tracing",
            "service.tracing_setup",
        ),
    ),
]


def module_name(path: Path) -> str:
    parts = ["service", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def floor_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (prefix length, floor): the longest prefix wins
    for index, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    assert best is not None, f"{module} is on no floor: add it to FLOORS"
    return best[1]


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_is_on_a_floor() -> None:
    for module in MODULES:
        floor_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module: str) -> None:
    upward = sorted(t for t in GRAPH[module] if floor_of(t) < floor_of(module))
    assert not upward, (
        f"{module} ({FLOORS[floor_of(module)][0]}) imports a higher floor: "
        + ", ".join(f"{t} ({FLOORS[floor_of(t)][0]})" for t in upward)
    )


def test_no_import_cycle() -> None:
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            pytest.fail("import cycle: " + " → ".join(cycle))
        if module in done:
            return
        path.append(module)
        for target in sorted(GRAPH[module]):
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(MODULES):
        visit(module)


# Settings are parsed before anything else exists: the settings modules read the
# environment and files only, never the models (which may grow to need the settings).
SETTINGS = ("service.config", "service.settings")


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith(SETTINGS) and m in MODULES)
)
def test_settings_import_no_models(module: str) -> None:
    models = sorted(
        t for t in GRAPH[module] if t == "service.models" or t.startswith("service.models.")
    )
    assert not models, f"{module} imports the models: {', '.join(models)}"


def test_the_middleware_imports_nothing_from_the_api() -> None:
    """The ASGI layer runs before the app and stays free of the framework: it renders its
    answers with `service.problem`, never through `service.api` (Quart, SQLAlchemy...)."""
    for module, targets in GRAPH.items():
        if module == "service.middleware" or module.startswith("service.middleware."):
            api = sorted(t for t in targets if t == "service.api" or t.startswith("service.api."))
            assert not api, f"{module} imports {', '.join(api)}"


MAX_MODULE_LINES = 300


def test_no_service_module_is_over_300_lines() -> None:
    """A module a newcomer can read in one sitting: split it when it grows past this."""
    long = {
        str(path.relative_to(ROOT)): count
        for path in sorted(ROOT.rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


STORE_PLUMBING = {"__init__.py", "db.py", "sqlite_reader.py", "migrations.py", "tables.py"}


def test_store_functions_take_the_connection_then_keywords() -> None:
    """docs/architecture.md: `verb_noun(conn, *, ...)`, where `conn` is a transaction's
    connection or the `Database` (named `db`)."""
    wrong = []
    for path in sorted((ROOT / "store").glob("*.py")):
        if path.name in STORE_PLUMBING:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(
                node, ast.AsyncFunctionDef | ast.FunctionDef
            ) and not node.name.startswith("_"):
                positional = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
                if positional not in (["conn"], ["db"]) or node.args.vararg is not None:
                    wrong.append(f"{path.name}:{node.name}{tuple(positional)}")
    assert wrong == []
