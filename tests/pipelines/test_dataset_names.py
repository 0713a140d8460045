"""Dataset names keep to Kedro's namespaces: a node names a dotted dataset only inside that
dataset's own top-level namespace; what leaves a namespace has a flat name. Kedro 1.x
warns otherwise ("One or more dataset names contain '.' characters"), once per process,
so the pipelines are built in a fresh interpreter, as `kedro run` builds them: a session
whose context runs the project's hooks (which plan the rounds and test sets), then every
registered pipeline. Every dataset those pipelines name is in the catalog (an entry or a
factory), so a renamed dataset cannot fall back to memory unnoticed."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.kedro_project import DEMO_ENV, copy_project

pytestmark = pytest.mark.slow

DOTTED_NAME_WARNING = "dataset names contain '.'"

BUILD_EVERY_PIPELINE = r"""
import json, logging, sys, warnings
from pathlib import Path

# Kedro's logging setup routes warnings to the `py.warnings` logger (where a run shows
# them); before it does, they go to warnings.showwarning. Both are recorded.
logged = []
class Record(logging.Handler):
    def emit(self, record):
        logged.append(record.getMessage())
logging.getLogger("py.warnings").addHandler(Record())

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = Path.cwd()
    bootstrap_project(project)
    env, params = sys.argv[1] or None, json.loads(sys.argv[2])
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        catalog = session.load_context().catalog
        built = {name: pipelines[name] for name in pipelines}
uncatalogued = {
    name: sorted(d for d in pipe.datasets() if not d.startswith("params:") and d not in catalog)
    for name, pipe in built.items()
}
shown = [warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught]
print(json.dumps({
    "namespaces": {
        name: sorted({n.namespace.split(".")[0] for n in pipe.nodes if n.namespace})
        for name, pipe in built.items()
    },
    "uncatalogued": {name: found for name, found in uncatalogued.items() if found},
    "warnings": shown + logged,
}))
"""

CONFIGURATIONS = {
    # What the tests and a first run use.
    "demo": (DEMO_ENV, {}),
    # conf/base with three ILF rounds and a second test set (docs/rounds.md,
    # docs/paper-scale.md): rounds and sets read each other.
    "rounds_and_test_sets": (
        "",
        {
            "rounds": 3,
            "evaluation": {
                "task_sets": ["mbpp", "humaneval"],
                "task_set_formats": {"humaneval": "humaneval"},
            },
        },
    ),
}


def build_every_pipeline(project, env: str, params: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", BUILD_EVERY_PIPELINE, env, json.dumps(params)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=sorted(CONFIGURATIONS))
def built(request, tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp(request.param) / "project")
    env, params = CONFIGURATIONS[request.param]
    return request.param, build_every_pipeline(project, env, params)


def test_every_pipeline_was_built_with_its_planned_rounds_and_sets(built):
    configuration, result = built
    namespaces = result["namespaces"]
    assert {"ilf", "ilf_ablations", "ilf_rounds", "evaluation"} <= set(namespaces)
    assert {"zero_shot", "ilf", "gold", "rft", "ilf_rft", "unrelated_feedback"} <= set(
        namespaces["ilf_ablations"]
    )
    if configuration == "rounds_and_test_sets":
        assert {"round_1", "round_2", "round_3"} <= set(namespaces["ilf_rounds"])
        assert "humaneval" in namespaces["evaluation"]


def test_kedro_does_not_warn_about_dotted_dataset_names(built):
    _, result = built
    dotted = [w for w in result["warnings"] if DOTTED_NAME_WARNING in w]
    assert not dotted, dotted


def test_no_warning_is_raised_at_the_projects_own_code(built):
    _, result = built
    # A warning names the file and line it was raised at: "<file>:<line>: <Category>: ...".
    ours = [w for w in result["warnings"] if "/ilf_kedro/" in re.split(r":\d+: ", w)[0]]
    assert not ours, ours


def test_every_dataset_a_pipeline_names_is_catalogued(built):
    _, result = built
    assert not result["uncatalogued"], result["uncatalogued"]
