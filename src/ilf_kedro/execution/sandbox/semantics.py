"""The test sets' semantics for ``assert X == Y``, one definition for every runner.

MBPP, as the paper's scripts run it, compares numbers with a relative tolerance like
``pytest.approx`` (rel 1e-6, abs 1e-12): :func:`approx_eq`, and :func:`rewrite_asserts` /
:func:`compile_test` rewrite ``assert X == Y`` to call it. HumanEval's official harness
compares exactly (Python's ``==``). The harness's judge and the in-process checks both use
these; the benchmark's baselines import them too.
"""

from __future__ import annotations

import ast
import math
import numbers

APPROX_NAME = "__ilf_approx_eq__"
REL_TOL = 1e-6
ABS_TOL = 1e-12


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def _close(actual: object, expected: object) -> bool:
    """pytest.approx-like closeness for numbers, recursing into lists, tuples and dicts."""
    if _is_number(actual) and _is_number(expected):
        try:
            if actual == expected:
                return True
            if isinstance(expected, complex) or isinstance(actual, complex):
                scale = abs(expected)
            else:
                if math.isinf(expected) or math.isnan(expected):
                    return False
                scale = abs(expected)
            return bool(abs(actual - expected) <= max(REL_TOL * scale, ABS_TOL))
        except Exception:
            return False
    if type(actual) is type(expected) and isinstance(actual, (list, tuple)):
        return len(actual) == len(expected) and all(
            _eq_or_close(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            _eq_or_close(actual[k], expected[k]) for k in expected
        )
    return False


def _eq_or_close(a: object, e: object) -> bool:
    try:
        if a == e:
            return True
    except Exception:
        return False
    return _close(a, e)


def approx_eq(actual: object, expected: object) -> bool:
    """``actual == expected``, except that numbers may differ by rel 1e-6 (abs 1e-12).

    Exact equality is tried first with the original semantics (so e.g. an ambiguous numpy
    truth value still raises, as the plain assert would); only when it is False are numbers,
    and lists/tuples/dicts of numbers, compared with tolerance.
    """
    if actual == expected:
        return True
    return _close(actual, expected)


class _AssertRewriter(ast.NodeTransformer):
    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        test = node.test
        if (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)
            and len(test.comparators) == 1
        ):
            func = ast.copy_location(ast.Name(id=APPROX_NAME, ctx=ast.Load()), test)
            call = ast.Call(func=func, args=[test.left, test.comparators[0]], keywords=[])
            node.test = ast.copy_location(call, test)
        return node


def compile_test(source: str, filename: str, tolerant: bool = True):
    """Compile one test snippet, with its ``assert X == Y`` made float-tolerant when
    ``tolerant`` (MBPP's semantics; HumanEval's official harness compares exactly)."""
    tree = ast.parse(source)
    if tolerant:
        tree = _AssertRewriter().visit(tree)
    return compile(tree, filename, "exec", dont_inherit=True, optimize=0)


def rewrite_asserts(source: str) -> str:
    """Return ``source`` with every ``assert X == Y`` rewritten to call the tolerant helper.

    The helper must be bound to the global name ``__ilf_approx_eq__`` when the rewritten
    code runs. Source that does not parse is returned unchanged (it will fail on its own).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    tree = ast.fix_missing_locations(_AssertRewriter().visit(tree))
    return ast.unparse(tree)
