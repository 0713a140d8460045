"""model_registry: ``ilf_model`` (pi_theta*) and ``refiner_model`` (pi_Refine) ->
``ilf_model_mlflow``, ``refiner_model_mlflow``: MLflow models registered under stable
names, a new version per run (conf/base/catalog_tracking.yml)."""

from kedro.pipeline import Node, Pipeline

from .nodes import package_ilf_model, package_refiner_model

SETTINGS = ["params:sampling", "params:execution", "params:model"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                package_ilf_model,
                inputs=[
                    "ilf_model",
                    "ilf_training_set",
                    *SETTINGS,
                    "params:seed",
                    "params:base_model",
                ],
                outputs="ilf_model_mlflow",
                name="register_ilf_model",
            ),
            Node(
                package_refiner_model,
                inputs=[
                    "refiner_model",
                    "refiner_training_set",
                    *SETTINGS,
                    "params:refiner",
                    "params:refiner_training.max_old_code_tokens",
                    "params:seed",
                    "params:base_model",
                ],
                outputs="refiner_model_mlflow",
                name="register_refiner_model",
            ),
        ]
    )
