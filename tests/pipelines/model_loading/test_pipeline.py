"""model_loading: the memory plan comes first and gates loading the base model."""

from ilf_kedro.pipelines.model_loading import create_pipeline


def test_the_base_model_loads_only_after_its_memory_plan():
    nodes = {node.name: node for node in create_pipeline().nodes}
    assert set(nodes) == {"plan_memory", "load_base_model"}
    assert "memory_plan" in nodes["load_base_model"].inputs
    assert nodes["load_base_model"].outputs == ["base_model"]
    # The plan needs the configuration alone: no dataset, so no weights, goes in.
    assert all(i.startswith("params:") for i in nodes["plan_memory"].inputs)
