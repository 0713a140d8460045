"""The tables between ILF's stages: failing tasks, refinement prompts, training pairs.

Plain pandas, no Kedro and no model: where a token budget matters the caller passes a
``count_tokens``/``truncate`` pair built from its tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ilf_kedro.ilf.prompts import build_refinement_prompt, completion_after_prompt
from ilf_kedro.parameters import Finetune, RefinerTraining

PAIR_COLUMNS = ["task_id", "prompt", "completion"]
QUEUE_COLUMNS = [
    "task_id",
    "prompt",
    "Feedback",
    "original_model_completion",
    "unedited_annotator_completion",
    "passed",
]


def failing_tasks(task_pass_stats: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    """Tasks none of whose samples passed (the ones that need feedback), with their split."""
    failing = task_pass_stats.loc[task_pass_stats["c"] == 0, ["task_id", "n"]]
    return failing.merge(tasks[["task_id", "split", "prompt"]], on="task_id", how="left")


FAILING_PROGRAM_COLUMNS = [
    "task_id",
    "split",
    "prompt",
    "program",
    "status",
    "error_type",
    "error_message",
]


def failing_programs(failing: pd.DataFrame, results: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One failing program per failing task (a seeded random pick), with its verdict: the
    programs that get feedback (Algorithm 1, step 1)."""
    candidates = results[results["task_id"].isin(failing["task_id"])]
    picked = (
        candidates.sample(frac=1.0, random_state=seed)
        .drop_duplicates("task_id")
        .sort_values("task_id", ignore_index=True)
    )
    split = dict(zip(failing["task_id"], failing["split"], strict=True))
    picked = picked.assign(split=picked["task_id"].map(split))
    return picked.reindex(columns=FAILING_PROGRAM_COLUMNS).astype({"task_id": "int64"})


def annotation_queue(failing: pd.DataFrame) -> pd.DataFrame:
    """Failing programs in the released annotation schema with empty feedback and
    refinement, ready for annotators."""
    return pd.DataFrame(
        {
            "task_id": failing["task_id"].astype("int64"),
            "prompt": failing["prompt"],
            "Feedback": "",
            "original_model_completion": failing["program"],
            "unedited_annotator_completion": "",
            "passed": False,
        },
        columns=QUEUE_COLUMNS,
    )


def refinement_prompts(
    annotations: pd.DataFrame,
    tasks: pd.DataFrame,
    truncate_old_code: Callable[[str], str] | None = None,
    prefix: str = "",
) -> pd.DataFrame:
    """Figure 2 prompts for annotated programs: ``task_id``, ``prompt`` (for pi_Refine,
    after ``prefix``: a few-shot refiner's worked examples), ``task_prompt`` (what the
    refined program starts with), ``feedback_source``."""
    task_prompt = dict(zip(tasks["task_id"], tasks["prompt"], strict=True))
    rows = [
        {
            "task_id": row.task_id,
            "prompt": prefix
            + build_refinement_prompt(
                row.incorrect_program, row.feedback, task_prompt[row.task_id], truncate_old_code
            ),
            "task_prompt": task_prompt[row.task_id],
            "feedback_source": row.feedback_source,
        }
        for row in annotations.itertuples(index=False)
    ]
    columns = ["task_id", "prompt", "task_prompt", "feedback_source"]
    return pd.DataFrame(rows, columns=columns).astype({"task_id": "int64"})


def refiner_training_pairs(
    annotations: pd.DataFrame,
    tasks: pd.DataFrame,
    count_tokens: Callable[[str], int],
    truncate_tokens: Callable[[str, int], str],
    *,
    max_old_code_tokens: int = RefinerTraining.model_fields["max_old_code_tokens"].default,
    max_seq_length: int = Finetune.model_fields["max_seq_length"].default,
) -> pd.DataFrame:
    """pi_Refine's training pairs: Figure 2 prompt -> the refined program after the task
    prompt (the model is trained to write the whole program that the prompt's last part
    starts). The old code keeps its first ``max_old_code_tokens`` tokens and is cut further
    where needed so prompt + target + EOS fit ``max_seq_length``; nothing else is cut."""
    task_prompt = dict(zip(tasks["task_id"], tasks["prompt"], strict=True))
    rows = []
    for row in annotations.itertuples(index=False):
        target = completion_after_prompt(row.refinement, task_prompt[row.task_id])
        frame = build_refinement_prompt("", row.feedback, task_prompt[row.task_id])
        room = max_seq_length - count_tokens(frame) - count_tokens(target) - 1
        budget = max(0, min(max_old_code_tokens, room))
        prompt = build_refinement_prompt(
            row.incorrect_program,
            row.feedback,
            task_prompt[row.task_id],
            truncate=lambda code, budget=budget: truncate_tokens(code, budget),
        )
        rows.append((row.task_id, prompt, target))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS).astype({"task_id": "int64"})


def passing_refinements(refinement_results: pd.DataFrame) -> pd.DataFrame:
    """The generated refinements that passed every test."""
    return refinement_results[refinement_results["passed"]].reset_index(drop=True)


def ilf_training_set(passing: pd.DataFrame, tasks: pd.DataFrame, seed: int) -> pd.DataFrame:
    """pi_theta*'s training set: one passing refinement per task, chosen at random with
    ``seed``; input = the task's code-generation prompt, target = the refinement's body."""
    picked = (
        passing.sample(frac=1.0, random_state=seed)
        .drop_duplicates("task_id")
        .sort_values("task_id", ignore_index=True)
    )
    return _pairs_from_programs(picked["task_id"], picked["program"], tasks)


def annotation_share(
    annotations: pd.DataFrame, ilf_training_set: pd.DataFrame, share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded ``share`` of the annotated train-split tasks (at least one), and the ILF
    training pairs of those tasks: ILF as if only they had been annotated (pi_Refine is
    fixed, and refines each task on its own). ``share`` is in (0, 1]."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"annotation share is {share}; allowed: 0 < share <= 1")
    task_ids = annotations["task_id"].drop_duplicates()
    count = min(len(task_ids), max(1, round(share * len(task_ids))))
    chosen = task_ids.sample(n=count, random_state=seed)
    used = annotations[annotations["task_id"].isin(chosen)].reset_index(drop=True)
    pairs = ilf_training_set[ilf_training_set["task_id"].isin(chosen)].reset_index(drop=True)
    return used, pairs


def gold_training_set(tasks: pd.DataFrame, task_ids: pd.Series) -> pd.DataFrame:
    """Baseline: the MBPP gold programs of ``task_ids`` as (prompt -> body) pairs."""
    chosen = tasks[tasks["task_id"].isin(task_ids)]
    return _pairs_from_programs(chosen["task_id"], chosen["gold_code"], tasks)


def source_refinement_training_set(
    annotations: pd.DataFrame, tasks: pd.DataFrame, task_ids: pd.Series
) -> pd.DataFrame:
    """Baseline: the annotations' own refinements (human, LLM or gold stand-ins) of
    ``task_ids`` as (prompt -> body) pairs."""
    chosen = annotations[annotations["task_id"].isin(task_ids)]
    return _pairs_from_programs(chosen["task_id"], chosen["refinement"], tasks)


def rft_training_set(
    results: pd.DataFrame,
    tasks: pd.DataFrame,
    split: str,
    samples_per_task: int,
    dedupe: bool,
    seed: int,
) -> pd.DataFrame:
    """Rejection-sampling fine-tuning's set (STaR, RFT, ReST-EM): pi_theta's own samples
    (``results``: one verdict per sample) that pass every test, on the tasks of ``split``
    where one does, up to ``samples_per_task`` per task chosen at random with ``seed``
    (``dedupe``: each distinct program at most once per task), as ILF's (prompt -> body)
    pairs."""
    in_split = tasks.loc[tasks["split"] == split, "task_id"]
    passing = results[results["passed"].astype(bool) & results["task_id"].isin(in_split)]
    if dedupe:
        passing = passing.drop_duplicates(["task_id", "program"])
    picked = (
        passing.sample(frac=1.0, random_state=seed)
        .groupby("task_id", sort=False)
        .head(samples_per_task)
        .sort_values("task_id", kind="stable", ignore_index=True)
    )
    return _pairs_from_programs(picked["task_id"], picked["program"], tasks)


def ilf_and_rft_training_set(ilf_pairs: pd.DataFrame, rft_pairs: pd.DataFrame) -> pd.DataFrame:
    """ILF's training pairs and RFT's together (ILF given also the tasks it leaves out,
    where a sample already passes), each (task, completion) pair once."""
    both = pd.concat([ilf_pairs[PAIR_COLUMNS], rft_pairs[PAIR_COLUMNS]], ignore_index=True)
    both = both.drop_duplicates(["task_id", "completion"]).astype({"task_id": "int64"})
    return both.sort_values("task_id", kind="stable", ignore_index=True)


def _pairs_from_programs(
    task_ids: pd.Series, programs: pd.Series, tasks: pd.DataFrame
) -> pd.DataFrame:
    """(task prompt -> what the program has after it) pairs; gold programs, which carry no
    docstring, give what follows the entry point's signature."""
    task_prompt = dict(zip(tasks["task_id"], tasks["prompt"], strict=True))
    rows = [
        (task_id, task_prompt[task_id], completion_after_prompt(program, task_prompt[task_id]))
        for task_id, program in zip(task_ids, programs, strict=True)
    ]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS).astype({"task_id": "int64"})


def few_shot_prefix(examples: pd.DataFrame, shots: int, seed: int) -> str:
    """``shots`` worked Figure 2 examples (pi_Refine training pairs: prompt + refined
    program), chosen with ``seed``, to put before each query of a few-shot refiner."""
    if shots > len(examples):
        raise ValueError(
            f"parameter refiner.shots is {shots} but the refine split has only "
            f"{len(examples)} example(s) whose refinement passes; lower shots or add annotations"
        )
    chosen = examples.sample(n=shots, random_state=seed).sort_values("task_id")
    return "".join(
        p + c.rstrip("\n") + "\n\n\n"
        for p, c in zip(chosen["prompt"], chosen["completion"], strict=True)
    )
