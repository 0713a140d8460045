"""The committed lock pins every declared dependency, for the Python it was resolved for."""

from __future__ import annotations

import re

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import PROJECT_ROOT


def _pins() -> dict[str, str]:
    pins = {}
    for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")) and ";" not in line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_every_declared_dependency_and_extra_is_pinned_in_the_lock():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    pins = _pins()
    unpinned = [r for r in declared if canonicalize_name(Requirement(r).name) not in pins]
    assert not unpinned, f"not in requirements.lock (run bash scripts/lock.sh): {unpinned}"
    for spec in declared:
        req = Requirement(spec)
        version = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), f"{spec} vs lock {version}"


def test_the_lock_has_torchs_cpu_build_and_refuses_other_pythons():
    text = (PROJECT_ROOT / "requirements.lock").read_text()
    assert _pins()["torch"].endswith("+cpu")
    guard = re.search(r'^torch==0\+(\S+) ; python_version != "(3\.\d+)"$', text, re.M)
    assert guard and guard.group(2) == "3.11" and "3.11" in guard.group(1)
