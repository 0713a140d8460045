"""ilf_ablations: ilf plus Table 2 and the few-shot refiner rows of Table 4 (the run itself
is tested in tests/pipelines/feedback)."""

from ilf_kedro.pipelines import ilf, ilf_ablations


def test_it_is_ilf_plus_the_ablations():
    base = {node.name for node in ilf.create_pipeline().nodes}
    full = {node.name: node for node in ilf_ablations.create_pipeline().nodes}
    assert base < set(full)
    compare = full["unrelated_feedback.compare_feedback_with_unrelated_feedback"]
    assert compare.outputs == ["refinement_ablation"]
    combine = full["combine_method_metrics"]
    assert {"one_shot_refiner_metrics", "two_shot_refiner_metrics"} <= set(combine.inputs)
