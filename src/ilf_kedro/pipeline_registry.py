"""Project pipelines: one per ILF stage, plus ``ilf`` (Algorithm 1) and ``__default__``."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Algorithm 1 from the annotations to Table 4; initial_sampling (Table 1 and the queue
# for a new round of feedback) runs on its own or in __default__.
ILF_STAGES = ("data_processing", "refiner_training", "refinement", "finetune", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["ilf"] = sum((pipelines[name] for name in ILF_STAGES), Pipeline([]))
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
