"""The ``compute`` section: checked before any node runs, ``local`` by default."""

from __future__ import annotations

import sys

import pytest

from ilf_kedro.parameters import validate_parameters
from tests.kedro_project import copy_project, run_pipeline
from tests.test_run_checks import _defaults, _with


def test_local_is_the_default_and_the_section_is_read_once():
    params = _defaults()
    assert params["compute"]["backend"] == "local"
    for section in ("execution", "sampling", "finetune"):
        assert "compute" not in params[section]  # one section, no copies
    validate_parameters(params)


def test_the_stages_take_the_section_from_their_nodes():
    """Every node that samples, judges or fine-tunes is given ``params:compute``."""
    import importlib
    import pkgutil

    import ilf_kedro.pipelines

    stages = {"sample", "run_tests", "train_model", "train_refiner", "generate_refinements"}
    stages |= {"sample_for_annotation", "annotate_failures", "test_written_refinements"}
    seen = set()
    for found in pkgutil.iter_modules(ilf_kedro.pipelines.__path__):
        module = importlib.import_module(f"ilf_kedro.pipelines.{found.name}")
        if not hasattr(module, "create_pipeline"):
            continue
        for node in module.create_pipeline().nodes:
            name = getattr(node.func, "__name__", "")
            if name in stages:
                seen.add(name)
                assert "params:compute" in node.inputs, node.name
    assert seen == stages


def test_a_ray_backend_validates():
    # The accumulation is stated: it must divide over the Ray Train workers (2 by default).
    params = _with(
        compute__backend="ray", compute__address="auto", finetune__gradient_accumulation_steps=4
    )
    assert validate_parameters(params).compute.backend == "ray"  # ray is installed here


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"compute__backend": "slurm"}, r"compute.backend is 'slurm'.*'local' or 'ray'"),
        ({"sampling__backend": "vllm"}, r"sampling.backend is 'vllm'.*'hf', 'server' or 'ray'"),
        ({"compute__verdicts__num_cpus": 0}, r"compute.verdicts.num_cpus is 0"),
        ({"compute__sampling__replica": 2}, r"unknown parameter compute.sampling.replica; did"),
        (
            {"compute__backend": "ray", "finetune__num_processes": 2},
            r"finetune.num_processes is 2, but it is for accelerate on one machine",
        ),
        (
            {
                "compute__backend": "ray",
                "compute__finetune__num_workers": 3,
                "finetune__gradient_accumulation_steps": 32,
            },
            r"gradient_accumulation_steps is 32; allowed: a multiple of "
            r"compute.finetune.num_workers \(3\)",
        ),
        (
            {
                "sampling__backend": "ray",
                "compute__sampling__engine": "server",
                "sampling__server__command": "vllm serve {model} --host {host} --port {port}",
            },
            r"compute.sampling.num_gpus is 0, but each replica runs sampling.server.command "
            r"`vllm serve .*`, and vLLM needs a GPU per replica; allowed: "
            r"compute.sampling.num_gpus > 0",
        ),
        ({"compute__sampling__engine": "vllm"}, r"compute.sampling.engine is 'vllm'.*'hf'"),
    ],
)
def test_bad_compute_settings_name_the_parameter(changes, message):
    with pytest.raises(ValueError, match=message):
        validate_parameters(_with(**changes))


def test_vllm_replicas_with_gpus_pass_the_checks():
    command = "python -m vllm.entrypoints.openai.api_server --model {model} --port {port}"
    params = _with(
        sampling__backend="ray",
        compute__sampling__engine="server",
        compute__sampling__num_gpus=1,
        sampling__server__command=command,
    )
    assert validate_parameters(params).compute.sampling.engine == "server"


@pytest.mark.parametrize("key", ["compute.backend", "sampling.backend"])
def test_ray_without_the_extra_stops_the_run_before_any_node(key, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what Python does for an absent package
    monkeypatch.setenv("ILF_KEDRO_MLFLOW", "false")
    project = copy_project(tmp_path / "project")
    with pytest.raises(
        ValueError, match=rf'parameter {key} is ray, which needs Ray.*pip install -e "\.\[ray\]"'
    ):
        run_pipeline(project, "ilf", params={key: "ray"})
    assert not list((project / "data").rglob("*.parquet"))  # no node ran
