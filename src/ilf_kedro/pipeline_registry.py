"""Project pipelines: one per ILF stage, ``ilf`` (Algorithm 1), ``ilf_ablations`` and
``__default__``."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines; ``__default__`` is ``ilf_ablations``, which holds
    every stage (a sum of all would hold initial_sampling twice: alone it always samples)."""
    pipelines = find_pipelines(raise_errors=True)
    if "ilf_ablations" in pipelines:  # absent when only other pipelines were asked for
        pipelines["__default__"] = pipelines["ilf_ablations"]
    return pipelines
