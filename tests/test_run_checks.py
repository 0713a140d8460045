"""Bad configuration fails when the run starts, naming the parameter and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ilf_kedro.run_checks import check_parameters
from tests.conftest import PROJECT_ROOT


def _defaults() -> dict:
    params: dict = {}
    for path in sorted(Path(PROJECT_ROOT, "conf/base").glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()))
    return params


def _with(**changes) -> dict:
    params = copy.deepcopy(_defaults())
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = params
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return params


def test_the_defaults_pass():
    check_parameters(_defaults())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"feedback__source": "gpt"}, r"feedback.source is 'gpt'; allowed: human, unrelated, "),
        ({"feedback__source": "llm"}, r"feedback.llm.base_url is not set"),
        (
            {"feedback__source": "llm", "feedback__llm__base_url": "http://h/v1"},
            r"feedback.llm.model is not set",
        ),
        (
            {
                "feedback__source": "llm",
                "feedback__llm__base_url": "http://h/v1",
                "feedback__llm__model": "m",
                "feedback__llm__feedback_template": "{program} {feedback}",
            },
            r"feedback.llm.feedback_template uses unknown field\(s\) \['feedback'\]",
        ),
        (
            {"refiner__kind": "prompted"},
            r"refiner.kind is 'prompted'; allowed: finetuned, few_shot",
        ),
        ({"refiner__kind": "few_shot", "refiner__shots": 0}, r"refiner.shots is 0; allowed"),
        (
            {"refiner__kind": "few_shot", "refiner__endpoint": {"model": "m"}},
            r"refiner.endpoint.base_url is not set",
        ),
        ({"refiner__endpoint": {"base_url": "u", "model": "m"}}, r"kind is finetuned"),
        (
            {
                "ablations__two_shot_refiner": {"kind": "few_shot", "shots": 2},
                "max_tasks_per_split": 1,
            },
            r"ablations.two_shot_refiner.shots is 2 but max_tasks_per_split=1",
        ),
    ],
)
def test_bad_settings_name_the_parameter(changes, message):
    with pytest.raises(ValueError, match=message):
        check_parameters(_with(**changes))
