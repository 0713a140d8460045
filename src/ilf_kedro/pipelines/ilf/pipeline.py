"""ilf: the stages of Algorithm 1 from the feedback annotations to Table 4 and its reports.

A package of its own (not a sum in the registry) because Kedro loads only the pipelines
named on the command line, so ``kedro run --pipeline=ilf`` must find an ``ilf`` module.
initial_sampling (Table 1 and the queue for a new round of feedback) is not part of it.
"""

from importlib import import_module

from kedro.pipeline import Pipeline

STAGES = (
    "data_processing",
    "refiner_training",
    "refinement",
    "finetune",
    "evaluation",
    "reporting",
)


def create_pipeline(**kwargs) -> Pipeline:
    stages = [import_module(f"ilf_kedro.pipelines.{name}") for name in STAGES]
    return sum((stage.create_pipeline() for stage in stages), Pipeline([]))
