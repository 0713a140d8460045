"""The package's import graph against the layout docs/developer-guide.md states ("Package
layout"): one line per folder (or top-level module), lowest layer first, each folder on one
line. A module may import its own layer and the layers below, never one above; the graph
has no cycle, between modules or between folders (imports inside functions count: they are
dependencies too); no module imports another package's private (``_name``) names or
modules."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src/ilf_kedro"
LAYOUT_PAGE = PROJECT_ROOT / "docs/developer-guide.md"
LAYOUT_HEADING = "## Package layout"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _dynamic_import(node: ast.AST) -> str | None:
    """The module an ``importlib.import_module(...)`` call names: the literal, or the
    package its f-string starts with (``f"ilf_kedro.pipelines.{name}"``)."""
    if not (isinstance(node, ast.Call) and node.args):
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if called != "import_module":
        return None
    target = node.args[0]
    if isinstance(target, ast.Constant) and isinstance(target.value, str):
        return target.value
    if isinstance(target, ast.JoinedStr) and isinstance(target.values[0], ast.Constant):
        return target.values[0].value.rstrip(".")
    return None


def _imports(name: str, path: Path) -> list[tuple[str, str]]:
    """(imported module, imported name or "") for every import in ``name``'s source: at
    module level or inside a function, and ``importlib.import_module`` calls."""
    found = []
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (dynamic := _dynamic_import(node)) is not None:
            found.append((dynamic, ""))
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found += [(target, alias.name) for alias in node.names]
    return found


def _edges(modules: dict[str, Path] = MODULES) -> dict[str, set[str]]:
    """Project module -> the project modules it imports."""
    edges = {}
    for name, path in modules.items():
        targets = set()
        for module, imported in _imports(name, path):
            full = f"{module}.{imported}"
            target = full if full in MODULES else module
            if target in MODULES and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def _layout() -> list[list[str]]:
    """The developer guide's layout block: per line, the entries it names (``models/``,
    ``parameters.py``, ``hooks.py, settings.py``)."""
    after = LAYOUT_PAGE.read_text().split(LAYOUT_HEADING, 1)[1]
    block = re.search(r"```\n(.*?)```", after, flags=re.DOTALL).group(1)
    lines = [line for line in block.splitlines() if line.strip()]
    assert lines[0].strip() == "src/ilf_kedro/", "the block starts with the package"
    return [re.split(r"\s{2,}", line.strip())[0].split(", ") for line in lines[1:]]


def _layer_of(module: str, layout: list[list[str]]) -> int:
    relative = module.removeprefix("ilf_kedro").lstrip(".").replace(".", "/")
    for index, entries in enumerate(layout):
        for entry in entries:
            if entry.endswith("/") and (relative + "/").startswith(entry):
                return index
            if entry.endswith(".py") and relative == entry.removesuffix(".py"):
                return index
    if relative == "":
        return 0  # the package's own __init__ (its version, its location) is for everyone
    if relative == "__main__":
        return len(layout)  # ``python -m ilf_kedro`` sits on top
    raise AssertionError(f"{module} is in no folder of the developer guide's package layout")


def test_every_folder_and_top_level_module_is_in_the_readme_layout():
    layout = _layout()
    listed = [entry for entries in layout for entry in entries]
    for entry in listed:
        assert (PACKAGE / entry).exists(), f"the developer guide lists {entry}: no such path"
    for path in PACKAGE.iterdir():
        if path.name.startswith(("_", ".")) or path.name == "py.typed":
            continue
        if path.is_dir() or path.suffix == ".py":
            name = f"{path.name}/" if path.is_dir() else path.name
            assert name in listed, f"{name} is missing from the developer guide's package layout"


def test_each_folder_is_on_one_line_of_the_layout():
    """A folder split over two lines (``compute/ray_train.py`` beside ``models/``,
    ``compute/`` above it) would let two folders import each other: each is one layer."""
    entries = [entry for entries in _layout() for entry in entries]
    folders = {entry.split("/")[0] for entry in entries if "/" in entry}
    for folder in folders:
        lines = [entry for entry in entries if entry.split("/")[0] == folder]
        assert lines == [f"{folder}/"], f"{folder}/ is split over the layout: {lines}"


def _upward(edges: dict[str, set[str]]) -> list[str]:
    layout = _layout()
    return sorted(
        f"{module} -> {target}"
        for module, targets in edges.items()
        for target in targets
        if _layer_of(target, layout) > _layer_of(module, layout)
    )


def test_no_layer_imports_a_layer_above_it():
    upward = _upward(_edges())
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_imports_inside_functions_and_by_name_count(tmp_path):
    """An upward import hidden in a function, or made with ``importlib``, is caught."""
    module = tmp_path / "probe.py"
    module.write_text(
        "import importlib\n\n\ndef later():\n"
        "    from ilf_kedro.hooks import ParameterCheckHooks\n"
        "    return importlib.import_module(f'ilf_kedro.pipelines.{ParameterCheckHooks}')\n"
    )
    edges = _edges({"ilf_kedro.ingest.probe": module})
    assert edges == {"ilf_kedro.ingest.probe": {"ilf_kedro.hooks", "ilf_kedro.pipelines"}}
    assert _upward(edges) == [
        "ilf_kedro.ingest.probe -> ilf_kedro.hooks",
        "ilf_kedro.ingest.probe -> ilf_kedro.pipelines",
    ]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle():
    assert _cycles(_edges()) == []


def _folder_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between the package's folders (``ilf_kedro.models``) and top-level
    modules: a module's imports are its folder's."""

    def folder(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for module, targets in edges.items():
        graph.setdefault(folder(module), set())
        for target in targets:
            graph.setdefault(folder(target), set())
            if folder(target) != folder(module):
                graph[folder(module)].add(folder(target))
    return graph


def test_no_two_folders_import_each_other():
    """Module by module the graph may have no cycle while two folders still depend on
    each other (``models.finetune`` importing ``compute.ray_train`` inside a function,
    ``compute.ray_train`` importing ``models.distributed``)."""
    assert _cycles(_folder_edges(_edges())) == []


def test_the_folder_graph_finds_two_folders_importing_each_other(tmp_path):
    down = tmp_path / "down.py"
    down.write_text("def later():\n    from ilf_kedro.compute.ray_train import RayTrain\n")
    up = tmp_path / "up.py"
    up.write_text("from ilf_kedro.models.loading import ModelBundle\n")
    edges = _edges({"ilf_kedro.models.probe": down, "ilf_kedro.compute.probe": up})
    assert _cycles(_folder_edges(edges)) == [["ilf_kedro.compute", "ilf_kedro.models"]]


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def _private_imports(name: str, path: Path) -> list[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    private = []
    for module, imported in _imports(name, path):
        if module.split(".")[0] in sys.stdlib_module_names:
            continue  # the standard library's business (``_sitebuiltins``, ``os._exit``)
        if f"{module}.{imported}" in MODULES:  # ``from . import _sandbox``: a module
            module, imported = f"{module}.{imported}", ""
        if _private(imported):
            private.append(f"{module}.{imported}")
        elif _private(module):
            parts = module.split(".")
            owner = ".".join(parts[: next(i for i, p in enumerate(parts) if _private(p))])
            if not (package == owner or package.startswith(owner + ".")):
                private.append(module)
    return private


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_private_names_of_another(name):
    """``from x import _y`` nowhere (a module's private helpers are its own business,
    a third-party package's too); a private module (``execution/_sandbox.py``) only from
    its own package."""
    private = _private_imports(name, MODULES[name])
    assert not private, f"{name} imports private names: {private}"


def test_private_imports_inside_functions_are_caught(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text("def later():\n    from ilf_kedro.models.sampling import _batch_seed\n")
    assert _private_imports("ilf_kedro.ingest.probe", module) == [
        "ilf_kedro.models.sampling._batch_seed"
    ]
