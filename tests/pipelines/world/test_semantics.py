"""The semantic regression test: in a small miniature world, ILF must still mean ILF.

With random weights every bug in what the pipeline *means* (feedback that never reaches
pi_Refine's prompt, pi_theta* trained on the original programs, refinements filtered by the
wrong verdicts) still gives 0% and a green suite. Here the world's base model is trained
from scratch, so the run's numbers carry meaning, and the test fails when:

- pi_theta* no longer beats the base model on the test split (e.g. it learns from the
  original programs, or a loss mask hides the answer);
- pi_theta*'s training set holds programs that fail their tests (e.g. it is built from
  the original, failing programs instead of the passing refinements);
- pi_Refine's refinements with each task's own feedback stop passing more often than with
  feedback moved to another task (e.g. the Figure 2 prompt loses the feedback);
- with a gold author who writes in the style the corpus never uses, the gold programs are
  no less likely under the base model than the annotator's refinements (Figure 3: e.g.
  gold scored without its task prompt, or the annotator no longer editing in place).
"""

from __future__ import annotations

import pytest

from tests.kedro_project import copy_project, load, run_pipeline

WORLD = None  # conf/base: the miniature world
# Small enough for CI: 60 test tasks, the paper's 200 refine tasks (fewer leave pi_Refine
# too little to learn the feedback from), 300 train.
SMALL_WORLD = {
    "splits": {"prompt": [1, 2], "test": [3, 62], "refine": [63, 262], "train": [263, 562]},
    "world.num_tasks": 562,
    # One style in the corpus, no repeats: the world before issue 25's styles, whose
    # guarantees were measured on three seeds. With the default mix of three styles the
    # base model gains too little from ILF here (docs/world.md, "The semantic test").
    "world.corpus.styles": {"expression": 1.0, "loop": 0.0, "helper": 0.0},
    "world.corpus.repeat_rate": 0.0,
    # The strong gold author (only the gold programs change with it: the other guarantees
    # hold at any distance); with one style in the corpus, the other three are unused.
    "world.gold_author.distance": 1.0,
    # One thread, as every torch of the suite's workers has: two threads spin against the
    # other worker's tests (365 s of setup in the full suite against 132 s alone).
    "world.pretraining.threads": 1,
}
# Margins, in pass@1, that this world clears and a broken pipeline misses (docs/world.md,
# "The semantic test"). ILF over the base model: +8.8, +16.5 and +11.0 on seeds 0-2, and
# -8.7 when pi_theta* trains on the failing refinements (a loss mask that hid the answer
# would leave the base model's weights: +0.0). Float-level changes (another thread count,
# another CPU's kernels) move seed 0's gain by several points (+13.5 with two threads), so
# the bar sits halfway between its +8.8 and zero. Own feedback over unrelated: +6.8, +8.6 and
# +12.4; +0.0 when the prompt loses the feedback (own and unrelated prompts are then the
# same).
MIN_ILF_GAIN = 0.04
MIN_FEEDBACK_GAIN = 0.03


pytestmark = [pytest.mark.semantic, pytest.mark.slow]


# What the four guarantees read; the other methods of Table 4 (gold, refinements, RFT, ILF +
# RFT) and the distribution metrics are left out, so the run fine-tunes only pi_Refine and
# pi_theta*.
OUTPUTS = [
    "ilf_training_set",
    "zero_shot_metrics",
    "ilf_metrics",
    "perplexities",
    "refinement_ablation",
]


@pytest.fixture(scope="module")
def small_world_run(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("world") / "project")
    # Algorithm 1 and Table 2's branch (the same pi_Refine and programs, feedback moved to
    # other tasks), in one run.
    run_pipeline(project, "ilf_ablations", env=WORLD, params=SMALL_WORLD, to_outputs=OUTPUTS)
    return project


def _pass_at_1(frame, column, value) -> float:
    return float(frame.loc[frame[column] == value, "pass@1"].iloc[0])


def test_pi_theta_star_learns_only_from_passing_refinements(small_world_run):
    from ilf_kedro.execution import evaluate_programs

    training_set = load(small_world_run, "ilf_training_set", env=WORLD)
    tasks = load(small_world_run, "tasks", env=WORLD)
    assert len(training_set) >= 10, "pi_theta* has almost nothing to learn from"
    programs = training_set.assign(program=training_set["prompt"] + training_set["completion"])
    verdicts = evaluate_programs(programs, tasks, progress=False)
    failing = verdicts.loc[~verdicts["passed"], "task_id"].tolist()
    assert not failing, (
        f"pi_theta* is trained on {len(failing)} of {len(verdicts)} programs that fail their "
        f"task's tests (task_id {failing[:10]}): not the passing refinements"
    )


def test_pi_refine_uses_the_feedback(small_world_run):
    ablation = load(small_world_run, "refinement_ablation", env=WORLD)
    own = _pass_at_1(ablation, "prompt_contents", "code + feedback")
    unrelated = _pass_at_1(ablation, "prompt_contents", "code + unrelated feedback")
    assert own >= unrelated + MIN_FEEDBACK_GAIN, (
        f"pi_Refine does not use the feedback: refinements pass@1 {own:.3f} with each "
        f"task's own feedback vs {unrelated:.3f} with unrelated feedback"
    )


def test_ilf_beats_the_base_model_on_the_test_split(small_world_run):
    zero_shot = float(load(small_world_run, "zero_shot_metrics", env=WORLD)["pass@1"].iloc[0])
    ilf = float(load(small_world_run, "ilf_metrics", env=WORLD)["pass@1"].iloc[0])
    assert ilf >= zero_shot + MIN_ILF_GAIN, (
        f"ILF no longer helps: pi_theta* pass@1 {ilf:.3f} against the base model's "
        f"{zero_shot:.3f} on the test split (at least +{MIN_ILF_GAIN:.2f} expected)"
    )


def test_gold_programs_lie_off_the_base_models_distribution(small_world_run):
    from ilf_kedro.pipelines.evaluation.nodes import GOLD

    perplexities = load(small_world_run, "perplexities", env=WORLD)
    median = perplexities.groupby("source")["perplexity"].median()
    assert median[GOLD] > median["human refinements"], (
        f"gold programs by a distant author are no less likely under the base model than "
        f"the annotator's in-place refinements: median perplexity {median[GOLD]:.2f} "
        f"against {median['human refinements']:.2f}"
    )
