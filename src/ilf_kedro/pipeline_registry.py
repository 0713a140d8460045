"""Project pipelines: one per ILF stage, ``ilf`` (Algorithm 1), ``ilf_ablations`` and
``__default__``."""

from kedro.framework.project import find_pipelines, settings
from kedro.pipeline import Pipeline

from ilf_kedro.hooks import ParameterCheckHooks
from ilf_kedro.pipelines.run_plan import RunPlan


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines; ``__default__`` is ``ilf_ablations``, which holds
    every stage (a sum of all would hold initial_sampling twice: alone it always samples).
    The pipelines whose shape the run's parameters decide are built from the run's plan
    (``ilf_kedro.pipelines.run_plan``)."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines.update(run_plan().pipelines(list(pipelines)))
    if "ilf_ablations" in pipelines:  # absent when only other pipelines were asked for
        pipelines["__default__"] = pipelines["ilf_ablations"]
    return pipelines


def run_plan() -> RunPlan:
    """The plan the project's parameter hook made for this run (settings.HOOKS); the
    default plan where no context was created (``kedro registry list``)."""
    plans = [hook.plan for hook in settings.HOOKS if isinstance(hook, ParameterCheckHooks)]
    return next((plan for plan in plans if plan is not None), RunPlan())
