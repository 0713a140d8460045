import pytest

from ilf_kedro.ilf.prompts import (
    PromptError,
    build_code_prompt,
    build_refinement_prompt,
    code_prompt,
    completion_after_prompt,
    find_entry_point,
    header_entry_point,
    strip_refinement_marker,
)

TASK_1_PROMPT = (
    '"""\n'
    "Write a function to find the minimum cost path to reach (m, n) from (0, 0) for the given "
    "cost matrix cost[][] and a position (m, n) in cost[][].\n"
    "\n"
    ">>> Example: min_cost([[1, 2, 3], [4, 8, 2], [1, 5, 3]], 2, 2) = 8\n"
    '"""\n'
    "\n"
    "R = 3\n"
    "C = 3\n"
    "def min_cost(cost, m, n):\n"
)
TASK_32_PROMPT = (
    '"""\n'
    "Write a python function to find the largest prime factor of a given number.\n"
    "\n"
    ">>> Example: max_Prime_Factors(15) = 5\n"
    '"""\n'
    "\n"
    "import math \n"
    "def max_Prime_Factors (n):\n"
)
TASK_927_PROMPT = (
    '"""\n'
    "Write a function to calculate the height of the given binary tree.\n"
    "\n"
    ">>> Example: (max_height(root)) = 3\n"
    '"""\n'
    "\n"
    "class Node: \n"
    "\tdef __init__(self, data): \n"
    "\t\tself.data = data \n"
    "\t\tself.left = None\n"
    "\t\tself.right = None\n"
    "def max_height(node):\n"
)


@pytest.mark.parametrize(
    ("task_id", "expected", "entry_point"),
    [
        (1, TASK_1_PROMPT, "min_cost"),
        (32, TASK_32_PROMPT, "max_Prime_Factors"),
        (927, TASK_927_PROMPT, "max_height"),
    ],
    ids=["task-1", "task-32", "task-927"],
)
def test_mbpp_prompts_equal_the_papers_format(mbpp_tasks, task_id, expected, entry_point):
    row = mbpp_tasks.set_index("task_id").loc[task_id]
    assert row["prompt"] == expected
    assert row["entry_point"] == entry_point


@pytest.mark.parametrize(
    ("code", "test", "name", "header_end"),
    [
        (
            "def find_Volume(l,b,h) :\r\n    return l*b*h/2",
            "assert find_Volume(1,2,3) == 3",
            "find_Volume",
            "def find_Volume(l,b,h) :",
        ),
        ("def f (n):\n    return n", "assert int(f(5)) == 5", "f", "def f (n):"),
        ("def g(n): return n", "assert (g(1)) == 1", "g", "def g(n):"),
        (
            "def h(a,\n      b) -> int:\n    return a",
            "assert h(1, 2) == 1",
            "h",
            "def h(a,\n      b) -> int:",
        ),
    ],
)
def test_entry_point_variants_the_strict_pattern_misses(code, test, name, header_end):
    prompt, entry = build_code_prompt("Task.", code, test)
    assert entry == name
    assert prompt.endswith(header_end + "\n")
    assert "\r" not in prompt


def test_entry_point_prefers_a_defined_function_over_a_builtin_wrapper():
    code = "def helper(x):\n    return x\ndef lobb(n, m):\n    return helper(n)\n"
    name, _ = find_entry_point(code, "assert int(lobb(5, 3)) == 35")
    assert name == "lobb"


@pytest.mark.parametrize(
    ("code", "test", "reason"),
    [
        ("def f(:\n", "assert f(1) == 1", "gold program is not valid Python"),
        ("def f(x):\n    return x", "assert g(1) == 1", "none of which the gold program"),
        ("f = lambda x: x", "assert f(1) == 1", "none of which the gold program"),
        ("def f(x):\n    return x", "assert f(1 ==", "first test is not valid Python"),
    ],
)
def test_unbuildable_prompts_raise_a_prompt_error_with_the_reason(code, test, reason):
    with pytest.raises(PromptError, match=reason):
        build_code_prompt("Task.", code, test)


def test_refinement_prompt_is_figure_2():
    prompt = build_refinement_prompt("def f(x):\n    return 1", "Return x.", "def f(x):\n")
    assert prompt == (
        "OLD CODE:\ndef f(x):\n    return 1\n\nFEEDBACK:\nReturn x.\n\nREFINEMENT:\ndef f(x):\n"
    )


def test_refinement_prompt_truncates_only_the_old_code():
    prompt = build_refinement_prompt("x" * 100, "fb", "P\n", truncate=lambda s: s[:10])
    assert prompt == "OLD CODE:\n" + "x" * 10 + "\n\nFEEDBACK:\nfb\n\nREFINEMENT:\nP\n"


def test_refinement_marker_is_stripped():
    assert strip_refinement_marker("Refinement:\ndef f(): pass") == "def f(): pass"
    assert strip_refinement_marker("def f(): pass") == "def f(): pass"


def test_completion_after_prompt():
    prompt = '"""\nT\n"""\n\ndef f(x):\n'
    assert completion_after_prompt(prompt + "    return x\n", prompt) == "    return x\n"
    # An annotator who retyped the docstring still yields the body.
    assert completion_after_prompt('"""T"""\ndef f(x):\n    return x', prompt) == "    return x"


def test_code_prompt_from_a_header_is_the_gold_programs_prompt():
    gold = "import math\n\ndef area(r):\n    return math.pi * r * r\n"
    test = "assert area(1) == math.pi"
    prompt, entry_point = build_code_prompt("Write a function for the area.", gold, test)
    header = "import math\n\ndef area(r):"
    assert code_prompt("Write a function for the area.", header, test) == prompt
    assert header_entry_point(header) == entry_point == "area"


def test_code_prompt_without_a_test_has_no_example():
    assert code_prompt("Add.", "def add(a, b):") == '"""\nAdd.\n"""\n\ndef add(a, b):\n'


@pytest.mark.parametrize("header", ["x = 1", "def f(x", "", "def f(x):\n    return x"])
def test_a_header_must_end_with_a_def_line(header):
    with pytest.raises(PromptError, match="header must end with"):
        header_entry_point(header)
