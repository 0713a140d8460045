"""Nodes of refinement: pi_Refine rewrites annotated programs (paper Table 3)."""

from __future__ import annotations

import pandas as pd

from ilf_kedro.feedback import sources
from ilf_kedro.ilf import training_sets
from ilf_kedro.models import ModelBundle, truncate_to_tokens
from ilf_kedro.models.server_sampling import sample_from_endpoint
from ilf_kedro.parameters import Compute, Refiner, Sampling
from ilf_kedro.pipelines.stage_nodes import sample
from ilf_kedro.serving.client import Endpoint


def build_refinement_prompts(
    annotations: pd.DataFrame,
    tasks: pd.DataFrame,
    refiner_model: ModelBundle,
    refiner_training_set: pd.DataFrame,
    refiner: Refiner,
    max_old_code_tokens: int,
    seed: int,
) -> pd.DataFrame:
    """Annotations -> Figure 2 prompts (old code cut to ``max_old_code_tokens`` tokens of
    pi_Refine's tokenizer), with the task prompt the refinement will start with; a
    ``few_shot`` refiner gets ``refiner.shots`` worked examples from
    ``refiner_training_set`` before each query."""
    prefix = ""
    if refiner.kind == "few_shot":
        prefix = training_sets.few_shot_prefix(refiner_training_set, refiner.shots, seed)
    tokenizer = refiner_model.tokenizer
    return training_sets.refinement_prompts(
        annotations,
        tasks,
        truncate_old_code=lambda code: truncate_to_tokens(
            tokenizer, code, max_old_code_tokens, side="right"
        ),
        prefix=prefix,
    )


def generate_refinements(
    refiner_model: ModelBundle,
    refinement_prompts: pd.DataFrame,
    sampling: Sampling,
    compute: Compute,
    refiner: Refiner,
    credentials: dict,
) -> pd.DataFrame:
    """``num_samples`` refinements per prompt, from ``refiner_model`` or, when
    ``refiner.endpoint`` is set, from the model behind it; ``program`` is the task
    prompt plus what the refiner wrote after it, i.e. the refined program the tests judge."""
    if refiner.endpoint is not None:
        endpoint = Endpoint.from_settings(refiner.endpoint)
        samples = sample_from_endpoint(
            endpoint, refinement_prompts, sampling, credentials=credentials
        )
    else:
        samples = sample(refiner_model, refinement_prompts, sampling, compute)
    samples["program"] = samples["task_prompt"] + samples["completion"]
    samples["refiner"] = refiner.describe()
    return samples.drop(columns="task_prompt")


def derange_feedback(annotations: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same annotations with each feedback text moved to another task (Table 2's
    "unrelated feedback" control)."""
    return sources.unrelated_feedback(annotations, seed)


def select_passing_refinements(refinement_results: pd.DataFrame) -> pd.DataFrame:
    """Refinements that pass every test -> ``passing_refinements``."""
    return training_sets.passing_refinements(refinement_results)


def build_ilf_training_set(
    passing_refinements: pd.DataFrame, tasks: pd.DataFrame, seed: int
) -> pd.DataFrame:
    """One random passing refinement per task -> (code-generation prompt, body) pairs."""
    return training_sets.ilf_training_set(passing_refinements, tasks, seed)


def compare_feedback(
    with_feedback: pd.DataFrame, with_unrelated_feedback: pd.DataFrame, refiner: Refiner
) -> pd.DataFrame:
    """Table 2: pass@k of the same refiner on the same tasks, prompted with each task's
    own feedback vs with feedback written for another task -> ``refinement_ablation``."""
    rows = pd.concat(
        [
            with_feedback.assign(prompt_contents="code + feedback"),
            with_unrelated_feedback.assign(prompt_contents="code + unrelated feedback"),
        ],
        ignore_index=True,
    )
    rows.insert(0, "refiner", refiner.describe())
    first = ["refiner", "prompt_contents"]
    return rows[first + [c for c in rows.columns if c not in first]]
