"""ilf_ablations: ``ilf`` plus the paper's ablations (Table 2, Table 4's few-shot refiners).

A package of its own because Kedro imports only the pipeline modules named on the
command line (``kedro run --pipelines=ilf_ablations``)."""

from collections.abc import Sequence

from kedro.pipeline import Pipeline

from ilf_kedro.ingest.task_sets import TaskSet
from ilf_kedro.pipelines import ilf


def create_pipeline(
    task_sets: Sequence[TaskSet] | None = None,
    input_pipelines: Sequence[str] = (),
    candidates: str | None = None,
    **kwargs,
) -> Pipeline:
    """``ilf`` with the ablations; ``task_sets``, ``input_pipelines`` and ``candidates``
    as ``ilf``'s."""
    return ilf.create_pipeline(
        ablations=True,
        task_sets=task_sets,
        input_pipelines=input_pipelines,
        candidates=candidates,
    )


__all__ = ["create_pipeline"]
