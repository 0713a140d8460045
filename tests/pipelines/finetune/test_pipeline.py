"""finetune: pi_theta* from the base model and ilf_training_set."""

from ilf_kedro.pipelines.finetune import create_pipeline


def test_pi_theta_star_is_trained_from_the_base_model_on_the_ilf_training_set():
    nodes = {node.name: node for node in create_pipeline().nodes}
    train = nodes["train_ilf_model"]
    assert train.inputs == ["base_model", "ilf_training_set", "params:finetune", "params:compute"]
    assert train.outputs == ["ilf_model"]
    assert "load_base_model" in nodes  # the model it starts from
