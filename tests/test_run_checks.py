"""Bad configuration fails when the run starts, naming the parameter and what is allowed
(``ilf_kedro.parameters``: one schema, one message style)."""

from __future__ import annotations

import pytest

from ilf_kedro.parameters import (
    ParameterError,
    Parameters,
    check_rounds_source,
    validate_parameters,
)
from tests.conftest import PROJECT_ROOT
from tests.kedro_project import nested


def _defaults(env: str | None = None, runtime_params: dict | None = None) -> dict:
    """The project's parameters as a run sees them, ``runtime_params`` applied as
    ``--params`` would."""
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env=env or "base",
        merge_strategy={"parameters": "soft"},
        runtime_params=runtime_params,
    )
    return loader["parameters"]


def _with(**changes) -> dict:
    """The defaults with ``section__key=value`` changes (``__`` for the dot)."""
    return _defaults(runtime_params=nested({k.replace("__", "."): v for k, v in changes.items()}))


def test_the_defaults_pass_and_reach_the_sections_as_written():
    params = validate_parameters(_defaults())
    assert isinstance(params, Parameters)
    assert params.sampling.num_samples == 10 and params.sampling.stop_sequences[0] == "\ndef "
    # conf/base: the miniature world's fine-tune (conf/paper and conf/demo: the paper's 5e-6)
    assert params.finetune.learning_rate == 1e-3 and params.finetune.lora.r == 16
    assert params.refiner.describe() == "fine-tuned pi_Refine"
    assert params.ablations["two_shot_refiner"].describe() == "2-shot base model"
    assert params.feedback.source == "human"
    assert "{program}" in params.feedback.llm.feedback_template


def test_an_ilf_rounds_run_needs_an_automatic_feedback_source():
    check_rounds_source("interpreter")
    with pytest.raises(ParameterError, match=r"feedback.source is 'human', but ilf_rounds"):
        check_rounds_source("human")


def test_every_problem_is_listed_at_once():
    with pytest.raises(ParameterError) as info:
        validate_parameters(_with(sampling__top_p=2, finetune__strategy="qlora", rounds=9))
    lines = str(info.value).splitlines()
    assert lines[0] == "bad parameters:"
    assert any(line.startswith("  - parameter sampling.top_p is 2:") for line in lines)
    assert any(line.startswith("  - parameter finetune.strategy is 'qlora':") for line in lines)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"feedback__source": "gpt"},
            r"feedback.source is 'gpt'.*'human', 'unrelated', 'interpreter' or 'llm'",
        ),
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
            r"refiner.kind is 'prompted'.*'finetuned' or 'few_shot'",
        ),
        (
            {"refiner__kind": "few_shot", "refiner__shots": 0},
            r"refiner.shots is 0: Input should be greater than or equal to 1",
        ),
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
        validate_parameters(_with(**changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sampling__num_sample": 5}, r"unknown parameter sampling.num_sample; did you mean "),
        ({"max_tasks_per_split": -1}, r"max_tasks_per_split is -1: Input should be greater"),
        ({"sampling__temperature": "hot"}, r"sampling.temperature is 'hot'"),
        ({"finetune__strategy": "qlora"}, r"finetune.strategy is 'qlora'.*'full' or 'lora'"),
        ({"refinement__split": "trian"}, r"refinement.split names split\(s\) \['trian'\]"),
        ({"rft__samples_per_task": 0}, r"rft.samples_per_task is 0: Input should be greater"),
        ({"rft__dedupe": "maybe"}, r"rft.dedupe is 'maybe'"),
        ({"rft__sample_per_task": 2}, r"unknown parameter rft.sample_per_task; did you mean "),
    ],
)
def test_the_schema_names_the_key_and_what_is_allowed(changes, message):
    with pytest.raises(ValueError, match=message):
        validate_parameters(_with(**changes))


def test_the_paper_environment_passes_the_schema():
    params = _defaults("paper")
    assert params["sampling"]["num_samples"] == 30 and params["finetune"]["learning_rate"] == 5e-6
    validate_parameters(params)


def test_one_root_seed_reaches_every_stage():
    params = _defaults(runtime_params={"seed": 7})
    stages = [params["annotations"], params["model"], params["sampling"], params["finetune"]]
    stages.append(params["rft"])
    assert [stage["seed"] for stage in stages] == [7, 7, 7, 7, 7]
    assert params["reporting"]["perplexity"]["seed"] == 7


def test_catalog_locations_given_as_params_are_not_parameters():
    validate_parameters({**_defaults(), "mbpp_uri": "m.jsonl", "mine_uri": "s3://b/mine.jsonl"})
    with pytest.raises(ValueError, match="unknown parameter mbpp_url; did you mean mbpp_uri"):
        validate_parameters({**_defaults(), "mbpp_url": "m.jsonl"})
