"""One source for each default: no function of the package writes a parameter's default a
second time. Library functions take the section model (plus keyword overrides) or read
the default from it (``load_model(device=_DEFAULTS.device)``), so changing a default in
``ilf_kedro.parameters`` changes it everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic import BaseModel

from ilf_kedro import parameters
from tests.conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src/ilf_kedro"
# Keywords named like a parameter that are another fact: the call's own progress bar (not
# ``execution.progress``), and the CPUs of a node of the loopback test cluster (not the
# CPUs a Ray task of ``compute.*`` reserves).
OTHER_FACTS = {
    ("*", "progress"),
    ("LoopbackCluster.__init__", "num_cpus"),
}


def _schema_defaults() -> dict[str, list]:
    """Field name -> the defaults of the fields of that name, over every section model."""
    defaults: dict[str, list] = {}
    for model in vars(parameters).values():
        if isinstance(model, type) and issubclass(model, BaseModel) and model is not BaseModel:
            for name, field in model.model_fields.items():
                if not field.is_required():
                    defaults.setdefault(name, []).append(
                        field.get_default(call_default_factory=True)
                    )
    return defaults


def _literal_keyword_defaults(path: Path):
    """(line, qualified function, keyword, value) for every keyword default of ``path``
    that is a literal (a default read from a model is a name, not a literal)."""
    tree = ast.parse(path.read_text(), str(path))
    for scope in ast.walk(tree):
        for node in ast.iter_child_nodes(scope):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            owner = f"{scope.name}." if isinstance(scope, ast.ClassDef) else ""
            args = node.args
            positional = args.posonlyargs + args.args
            with_default = positional[len(positional) - len(args.defaults) :]
            pairs = list(zip(with_default, args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d]
            for arg, default in pairs:
                try:
                    value = ast.literal_eval(default)
                except ValueError:
                    continue
                yield node.lineno, owner + node.name, arg.arg, value


def _repeated(path: Path, defaults: dict[str, list], root: Path = PROJECT_ROOT) -> list[str]:
    found = []
    for line, function, name, value in _literal_keyword_defaults(path):
        if value is None or (function, name) in OTHER_FACTS or ("*", name) in OTHER_FACTS:
            continue  # None: "not given", no fact to repeat
        if any(type(d) is type(value) and d == value for d in defaults.get(name, [])):
            found.append(f"{path.relative_to(root)}:{line} {function}({name}={value!r})")
    return found


def test_no_function_repeats_a_parameter_default():
    defaults = _schema_defaults()
    repeated = [r for path in sorted(PACKAGE.rglob("*.py")) for r in _repeated(path, defaults)]
    assert not repeated, "defaults written again (read them from the model):\n" + "\n".join(
        repeated
    )


def test_the_check_finds_a_repeated_default(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "class Sampler:\n"
        "    def sample(self, num_samples=10, temperature=0.8, seed=None, progress=True):\n"
        "        pass\n"
    )
    found = _repeated(probe, _schema_defaults(), root=tmp_path)
    assert found == [
        "probe.py:2 Sampler.sample(num_samples=10)",
        "probe.py:2 Sampler.sample(temperature=0.8)",
    ]
