"""A stage's code hash: the source of every wmf module its build can run, found statically.

The modules are those the build module imports, directly or not, at module level or inside
a function, and the packages they sit in (their `__init__` runs too), read from the import
graph (grimp) without importing anything: planning a night stays cheap and never imports
torch. A hand-kept list of modules once missed the ratings parser, so an upgraded parser
left the old tables Cached; built from the graph, the list cannot miss a module.
Type-checking-only imports run nothing and are left out.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import wmf

_ROOT = Path(wmf.__file__).resolve().parent


@functools.cache
def _graph():
    import grimp

    return grimp.build_graph("wmf", cache_dir=None, exclude_type_checking_imports=True)


@functools.cache
def modules(build: str) -> tuple[str, ...]:
    """Every wmf module that running `build` may execute, sorted."""
    graph = _graph()
    seen: set[str] = set()
    todo = [build]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(graph.find_modules_directly_imported_by(module))
        parent = module.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return tuple(sorted(seen))


def source(module: str) -> Path:
    """The file of a module of the wmf package (a package's `__init__.py`)."""
    path = _ROOT.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


@functools.cache
def code_hash(build: str) -> str:
    """SHA-256 of the names and sources of `modules(build)`, its first 8 bytes in hex."""
    h = hashlib.sha256()
    for module in modules(build):
        h.update(module.encode() + b"\0" + source(module).read_bytes() + b"\0")
    return h.hexdigest()[:16]
