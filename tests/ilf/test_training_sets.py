import pandas as pd

from ilf_kedro.feedback.sources import normalise_annotations
from ilf_kedro.ilf.training_sets import (
    FAILING_PROGRAM_COLUMNS,
    annotation_queue,
    failing_programs,
    failing_tasks,
    gold_training_set,
    ilf_and_rft_training_set,
    ilf_training_set,
    refinement_prompts,
    refiner_training_pairs,
    rft_training_set,
    source_refinement_training_set,
)

PROMPT_536 = (
    '"""\nWrite a function to select the nth items of a list.\n\n'
    ">>> Example: nth_items([1, 2, 3, 4, 5, 6, 7, 8, 9],2)=[1, 3, 5, 7, 9] \n"
    '"""\n\ndef nth_items(list,n):\n'
)
FIGURE_2_PROMPT_536 = (
    "OLD CODE:\n"
    '"""\nWrite a function to select the nth items of a list.\n\n'
    ">>> Example: nth_items([1, 2, 3, 4, 5, 6, 7, 8, 9],2)=[1, 3, 5, 7, 9] \n"
    '"""\n\ndef nth_items(list,n):\n\treturn list[n-1::]\n\n'
    "\n\nFEEDBACK:\n"
    "The list needs to be sliced by n in the return statement."
    "\n\nREFINEMENT:\n" + PROMPT_536
)

TASKS = pd.DataFrame(
    {
        "task_id": [311, 312],
        "split": ["train", "train"],
        "prompt": ['"""\nAdd.\n"""\n\ndef add(a, b):\n', '"""\nNeg.\n"""\n\ndef neg(a):\n'],
        "gold_code": ["def add(a, b):\n    return a + b", "def neg(a):\n    return -a"],
    }
)


def test_figure_2_prompt_of_a_released_annotation(annotations_raw, mbpp_tasks):
    annotations = normalise_annotations(annotations_raw, mbpp_tasks, max_edit_distance=None, seed=0)
    prompts = refinement_prompts(annotations[annotations["task_id"] == 536], mbpp_tasks)
    assert prompts.loc[0, "prompt"] == FIGURE_2_PROMPT_536
    assert prompts.loc[0, "task_prompt"] == PROMPT_536


def _annotation(task_id, old, feedback, refinement):
    return {
        "task_id": task_id,
        "incorrect_program": old,
        "feedback": feedback,
        "refinement": refinement,
        "feedback_source": "human",
    }


def test_refiner_pairs_truncate_only_the_old_code():
    prompt = TASKS.loc[0, "prompt"]
    old = prompt + "    return a - b\n" + "# filler\n" * 200
    annotations = pd.DataFrame(
        [_annotation(311, old, "Add, do not subtract.", prompt + "    return a + b\n")]
    )
    # One token per character keeps the arithmetic visible.
    pairs = refiner_training_pairs(
        annotations,
        TASKS,
        count_tokens=len,
        truncate_tokens=lambda text, n: text[:n],
        max_old_code_tokens=512,
        max_seq_length=300,
    )
    row = pairs.loc[0]
    assert row["completion"] == "    return a + b\n"
    assert row["prompt"].endswith("\n\nFEEDBACK:\nAdd, do not subtract.\n\nREFINEMENT:\n" + prompt)
    assert len(row["prompt"]) + len(row["completion"]) + 1 <= 300
    assert row["prompt"].startswith("OLD CODE:\n" + old[:50])
    # With room to spare the old code keeps its first 512 tokens.
    roomy = refiner_training_pairs(
        annotations, TASKS, count_tokens=len, truncate_tokens=lambda text, n: text[:n]
    )
    assert "OLD CODE:\n" + old[:512] + "\n\nFEEDBACK:" in roomy.loc[0, "prompt"]


def test_ilf_training_set_is_one_seeded_passing_refinement_per_task():
    passing = pd.DataFrame(
        {
            "task_id": [311, 311, 311, 312],
            "program": [TASKS.loc[0, "prompt"] + f"    return a + b  # {i}\n" for i in range(3)]
            + [TASKS.loc[1, "prompt"] + "    return -a\n"],
        }
    )
    first = ilf_training_set(passing, TASKS, seed=0)
    assert first["task_id"].tolist() == [311, 312]
    assert first.loc[1, "completion"] == "    return -a\n"
    assert first.loc[0, "prompt"] == TASKS.loc[0, "prompt"]
    assert first.equals(ilf_training_set(passing, TASKS, seed=0))
    picks = {ilf_training_set(passing, TASKS, seed=s).loc[0, "completion"] for s in range(12)}
    assert len(picks) > 1


def test_baseline_training_sets_use_the_same_task_ids():
    gold = gold_training_set(TASKS, pd.Series([312]))
    assert gold.to_dict("records") == [
        {"task_id": 312, "prompt": TASKS.loc[1, "prompt"], "completion": "    return -a"}
    ]
    annotations = pd.DataFrame([_annotation(311, "x", "fb", TASKS.loc[0, "prompt"] + "    pass")])
    human = source_refinement_training_set(annotations, TASKS, pd.Series([311, 312]))
    assert human["completion"].tolist() == ["    pass"]


def test_failing_tasks_and_annotation_queue():
    stats = pd.DataFrame({"task_id": [311, 312], "n": [2, 2], "c": [0, 1]})
    failing = failing_tasks(stats, TASKS)
    assert failing["task_id"].tolist() == [311]
    results = pd.DataFrame(
        {
            "task_id": [311, 311, 312],
            "prompt": ["p"] * 3,
            "program": ["bad 1", "bad 2", "good"],
            "passed": [False, False, True],
            "status": ["failed", "error", "passed"],
            "error_type": ["AssertionError", "NameError", ""],
            "error_message": ["test 1/1: assert f(1) == 2", "name 'x' is not defined", ""],
        }
    )
    programs = failing_programs(failing, results, seed=0)
    assert programs.columns.tolist() == FAILING_PROGRAM_COLUMNS
    assert programs.loc[0, "split"] == "train" and programs.loc[0, "status"] != "passed"
    queue = annotation_queue(programs)
    assert queue["task_id"].tolist() == [311]
    assert queue.loc[0, "original_model_completion"] == programs.loc[0, "program"]
    assert queue.loc[0, "original_model_completion"] in {"bad 1", "bad 2"}
    assert queue.loc[0, "Feedback"] == "" and not queue.loc[0, "passed"]


# Zero-shot verdicts on three train tasks and a refine task: 311 has two distinct passing
# samples (one of them twice) and a failing one, 312 only failing ones, 313 one passing
# sample, 111 (refine split) a passing one.
RFT_TASKS = pd.concat(
    [
        TASKS,
        pd.DataFrame(
            {
                "task_id": [313, 111],
                "split": ["train", "refine"],
                "prompt": ['"""\nOne.\n"""\n\ndef one():\n', '"""\nTwo.\n"""\n\ndef two():\n'],
                "gold_code": ["def one():\n    return 1", "def two():\n    return 2"],
            }
        ),
    ],
    ignore_index=True,
)
ADD, NEG, ONE, TWO = RFT_TASKS["prompt"]
SAMPLES = pd.DataFrame(
    [
        (311, ADD + "    return a + b\n", True),
        (311, ADD + "    return a - b\n", False),
        (311, ADD + "    return b + a\n", True),
        (311, ADD + "    return a + b\n", True),
        (312, NEG + "    return a\n", False),
        (312, NEG + "    return +a\n", False),
        (313, ONE + "    return 1\n", True),
        (111, TWO + "    return 2\n", True),
    ],
    columns=["task_id", "program", "passed"],
)


def _rft(samples_per_task=1, dedupe=True, seed=0, split="train"):
    return rft_training_set(
        SAMPLES, RFT_TASKS, split, samples_per_task=samples_per_task, dedupe=dedupe, seed=seed
    )


def test_rft_keeps_one_passing_sample_per_train_task_where_one_passes():
    pairs = _rft()
    assert pairs.columns.tolist() == ["task_id", "prompt", "completion"]
    # 312 has no passing sample; 111 is on the refine split.
    assert pairs["task_id"].tolist() == [311, 313]
    assert pairs.loc[0, "prompt"] == ADD
    assert pairs.loc[0, "completion"] in {"    return a + b\n", "    return b + a\n"}
    assert pairs.loc[1, "completion"] == "    return 1\n"
    assert _rft(split="refine")["completion"].tolist() == ["    return 2\n"]


def test_rft_choice_is_seeded():
    assert _rft(seed=3).equals(_rft(seed=3))
    picks = {_rft(seed=seed).loc[0, "completion"] for seed in range(12)}
    assert picks == {"    return a + b\n", "    return b + a\n"}


def test_rft_keeps_up_to_samples_per_task_distinct_programs():
    many = _rft(samples_per_task=5)
    assert many["task_id"].tolist() == [311, 311, 313]
    assert sorted(many["completion"][:2]) == ["    return a + b\n", "    return b + a\n"]
    repeated = _rft(samples_per_task=5, dedupe=False)
    assert repeated["task_id"].tolist() == [311, 311, 311, 313]
    assert repeated["completion"].tolist().count("    return a + b\n") == 2


def test_rft_of_no_passing_sample_is_an_empty_set():
    failing = SAMPLES.assign(passed=False)
    pairs = rft_training_set(failing, RFT_TASKS, "train", samples_per_task=1, dedupe=True, seed=0)
    assert pairs.empty and pairs.columns.tolist() == ["task_id", "prompt", "completion"]


def test_ilf_and_rft_is_both_sets_each_pair_once():
    ilf = pd.DataFrame(
        {"task_id": [312, 311], "prompt": [NEG, ADD], "completion": ["    return -a\n"] * 2}
    )
    rft = _rft(samples_per_task=5)
    both = ilf_and_rft_training_set(ilf, rft)
    assert len(both) == len(ilf) + len(rft)
    assert both["task_id"].tolist() == [311, 311, 311, 312, 313]
    again = ilf_and_rft_training_set(ilf, pd.concat([rft, ilf], ignore_index=True))
    assert again.equals(both)
