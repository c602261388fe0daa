"""One cache type with one owner (docs/architecture.md, "One cache type"): no memo of
`functools` anywhere in `service/` (an `lru_cache` or `cache` is a module global, shared
by every app and test of the process, with an eviction rule of its own), and an
`OrderedDict` only for the limiter's in-memory state (`security/gcra.py`), which is
state rather than a cache."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "service"
MEMOS = frozenset({"lru_cache", "cache"})
ORDERED_DICT_ALLOWED = {"security/gcra.py"}


def _uses(path: Path, where: str) -> tuple[list[str], list[str]]:
    """(functools memos as `where:line name`, OrderedDict uses as `where`) in one module."""
    memos: list[str] = []
    ordered: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "functools":
            memos += [f"{where}:{node.lineno} {a.name}" for a in node.names if a.name in MEMOS]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "functools" and node.attr in MEMOS:
                memos.append(f"{where}:{node.lineno} functools.{node.attr}")
        if isinstance(node, ast.Name | ast.alias):
            name = node.id if isinstance(node, ast.Name) else node.name
            if name == "OrderedDict":
                ordered.append(where)
    return memos, ordered


def test_no_functools_memo_and_one_ordered_dict() -> None:
    memos: list[str] = []
    ordered: set[str] = set()
    for path in sorted(ROOT.rglob("*.py")):
        found, dicts = _uses(path, path.relative_to(ROOT).as_posix())
        memos += found
        ordered.update(dicts)
    assert memos == [], "a memo belongs in a cache.BoundedCache held by its owner"
    assert ordered <= ORDERED_DICT_ALLOWED, ordered


def test_the_check_sees_a_memo(tmp_path: Path) -> None:
    """The scan itself: each spelling of a memo is found, and an OrderedDict."""
    module = tmp_path / "probe.py"
    module.write_text(
        "import functools\nfrom collections import OrderedDict\n"
        "from functools import cache, lru_cache, wraps\n"
        "@functools.lru_cache\ndef f(): ...\n"
    )
    memos, ordered = _uses(module, "probe.py")
    assert memos == ["probe.py:3 cache", "probe.py:3 lru_cache", "probe.py:4 functools.lru_cache"]
    assert ordered == ["probe.py"]
