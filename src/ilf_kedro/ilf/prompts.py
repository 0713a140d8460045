"""Prompt formats of the ILF paper (Chen et al. 2023): code generation and refinement.

Plain Python, no Kedro: the pipelines call these, and so can anyone else.
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings
from collections.abc import Callable

REFINEMENT_MARKER = "Refinement:"


class PromptError(ValueError):
    """A task whose code-generation prompt cannot be built; the message says why."""


def normalise_newlines(text: str) -> str:
    """Return ``text`` with CRLF and lone CR line endings turned into LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def example_line(first_test: str) -> str:
    """Turn the first assert into the prompt's example: ``assert `` removed, ``==`` as ``=``."""
    return first_test.replace("assert ", "", 1).replace("==", "=")


def called_names(test: str) -> list[str]:
    """Names of the functions an assert calls, outermost first (``int(f(x))`` gives int, f)."""
    try:
        tree = ast.parse(test.strip())
    except SyntaxError as err:
        raise PromptError(f"first test is not valid Python: {err.msg}") from err
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                names.append(func.id)
            elif isinstance(func, ast.Attribute):
                names.append(func.attr)
    return names


def _signature_end(code: str, def_node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Offset in ``code`` just past the colon that closes ``def_node``'s signature.

    Tokenising (not a regex) copes with ``def f(a) :``, ``def f (a):``, multi-line
    signatures, annotations and one-line bodies alike.
    """
    lines = code.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: def_node.lineno - 1]) + def_node.col_offset
    depth = 0
    tokens = tokenize.generate_tokens(io.StringIO(code[start:]).readline)
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.OP and tok.string == ":" and depth == 0:
            row, col = tok.end
            head = code[start:].splitlines(keepends=True)
            return start + sum(len(line) for line in head[: row - 1]) + col
    raise PromptError(f"cannot find the end of the signature of {def_node.name!r}")


def find_entry_point(code: str, first_test: str) -> tuple[str, int]:
    """The function the first test calls and where its ``def ...:`` signature ends in ``code``.

    The first name called in the assert that the gold program defines wins, so wrappers
    such as ``int(f(x))`` and parenthesised calls resolve to ``f``; top-level functions
    are preferred over methods of the same name.
    """
    try:
        with warnings.catch_warnings():
            # Old-style escapes such as "\d" in MBPP's code are not our problem here.
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            tree = ast.parse(code)
    except SyntaxError as err:
        raise PromptError(
            f"gold program is not valid Python: {err.msg} (line {err.lineno})"
        ) from err
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    functions += [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n not in functions
    ]
    by_name: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in functions:
        by_name.setdefault(node.name, node)
    names = called_names(first_test)
    for name in names:
        if name in by_name:
            return name, _signature_end(code, by_name[name])
    raise PromptError(
        f"the first test calls {names or 'nothing'}, none of which the gold program defines"
    )


def build_code_prompt(text: str, code: str, first_test: str) -> tuple[str, str]:
    """The paper's code-generation prompt for a task, and its entry point.

    In: the task description, the gold program and the first assert (any line endings).
    Out: ``(prompt, entry_point)`` where prompt is a docstring with the task text and one
    example, a blank line, then the gold program up to and including the entry point's
    ``def NAME(...):`` (helpers before it kept), then a newline.
    """
    text, code, first_test = (normalise_newlines(s) for s in (text, code, first_test))
    entry_point, end = find_entry_point(code, first_test)
    return code_prompt(text, code[:end], first_test), entry_point


def code_prompt(text: str, header: str, first_test: str | None = None) -> str:
    """The paper's code-generation prompt from its parts: a docstring with the task text
    and the example made from ``first_test`` (none without one), a blank line, then
    ``header`` (the code up to and including the ``def NAME(...):`` line) and a newline.
    ``build_code_prompt`` cuts the header out of a gold program; a user of a served model
    writes it."""
    text, header = normalise_newlines(text), normalise_newlines(header)
    example = (
        f"\n>>> Example: {example_line(normalise_newlines(first_test))}\n" if first_test else ""
    )
    return f'"""\n{text}\n{example}"""\n\n{header}\n'


def header_entry_point(header: str) -> str:
    """The name of the function ``header`` ends with: ``header`` must be Python code whose
    last statement is a ``def NAME(...):`` signature with no body (imports, constants and
    helper functions before it are allowed), as the paper's prompt ends."""
    header = normalise_newlines(header).rstrip()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(header + "\n    pass")
    except SyntaxError as err:
        raise PromptError(
            f"header must end with a `def NAME(ARGS):` line: {err.msg} (line {err.lineno})"
        ) from err
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, ast.FunctionDef | ast.AsyncFunctionDef):
        raise PromptError("header must end with a `def NAME(ARGS):` line")
    if _signature_end(header, last) != len(header):
        raise PromptError(f"header must end with the signature of {last.name!r}, not its body")
    return last.name


def strip_refinement_marker(refinement: str) -> str:
    """Drop a leading ``Refinement:`` label some annotators typed before their program."""
    stripped = refinement.lstrip()
    if stripped.startswith(REFINEMENT_MARKER):
        return stripped[len(REFINEMENT_MARKER) :].lstrip("\n").lstrip(" ")
    return refinement


def build_refinement_prompt(
    incorrect_program: str,
    feedback: str,
    task_prompt: str,
    truncate: Callable[[str], str] | None = None,
) -> str:
    """The Figure 2 prompt for pi_Refine.

    In: the incorrect program (task prompt plus completion), the feedback on it and the
    task's code-generation prompt; ``truncate`` shortens the old code (the paper keeps its
    first 512 tokens; the caller owns the tokenizer). Out: ``OLD CODE:`` / ``FEEDBACK:`` /
    ``REFINEMENT:`` sections, ending with the task prompt so pi_Refine writes the body.
    """
    old_code = truncate(incorrect_program) if truncate else incorrect_program
    return f"OLD CODE:\n{old_code}\n\nFEEDBACK:\n{feedback}\n\nREFINEMENT:\n{task_prompt}"


def completion_after_prompt(program: str, prompt: str) -> str:
    """The part of ``program`` a model writes after ``prompt`` (the target of pi_theta*).

    Programs that do not start with the prompt (an annotator retyped the header) are cut
    after the entry point's signature instead, so the target is still the function body.
    """
    if program.startswith(prompt):
        return program[len(prompt) :]
    header_end = prompt.rstrip("\n").rsplit("\n", 1)[-1]
    index = program.find(header_end)
    if index < 0:
        return program
    return program[index + len(header_end) :].lstrip(" ").removeprefix("\n")
