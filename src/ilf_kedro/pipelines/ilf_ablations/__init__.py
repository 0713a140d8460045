"""ilf_ablations: ``ilf`` plus the paper's ablations (Table 2, Table 4's few-shot refiners).

A package of its own because Kedro imports only the pipeline modules named on the
command line (``kedro run --pipelines=ilf_ablations``)."""

from kedro.pipeline import Pipeline

from ilf_kedro.pipelines import ilf


def create_pipeline(**kwargs) -> Pipeline:
    return ilf.create_pipeline(ablations=True)


__all__ = ["create_pipeline"]
