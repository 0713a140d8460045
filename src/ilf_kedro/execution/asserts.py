"""Asserts judged in the harness: the program's calls run in its process, the rest here.

:func:`plan_assert` splits an assert such as ``assert abs(f(1.5) - 2.0) < 1e-6`` into the
calls of the program (``f(1.5)``: the sandbox evaluates them and hands their values
back) and the expression around them, which stays in this process with every literal of
the assert. :func:`evaluate` then evaluates that expression here on the decoded values,
with Python's own operators and built-ins, so nothing of the program's code takes part.

An assert is judged this way when its test is built from literals, calls of the program
(a function name that neither the setup code nor another test statement binds; its
arguments may be anything, they are its input), the operators ``+ - * / // % **``, unary ``-
+ ~ not``, comparisons (``is``/``is not`` only against ``None``, ``True``, ``False``),
``and`` (every operand is evaluated anyway: when one is false the assert fails either
way), subscripts, and the built-ins in :data:`FUNCTIONS` (unless the program defines a
function of that name, which is then its call, see :func:`plan_assert`). A built-in
applied to nothing but calls of the program (``list(f(3))``) is evaluated with them, in
the program's process. ``or`` and conditional expressions are not judged here (an
operand Python would skip could then raise); such asserts run in the program's process,
untrusted. What would take the judge minutes or gigabytes (a program's value may be any
size) raises :class:`~.sandbox.wire.BeyondLimits` instead.
"""

from __future__ import annotations

import ast
import builtins
import numbers
import threading
from typing import NamedTuple

from ilf_kedro.execution.sandbox.semantics import approx_eq
from ilf_kedro.execution.sandbox.wire import BeyondLimits

FUNCTIONS = {
    name: getattr(builtins, name)
    for name in (
        "abs",
        "all",
        "any",
        "bool",
        "complex",
        "dict",
        "divmod",
        "float",
        "frozenset",
        "int",
        "isinstance",
        "len",
        "list",
        "max",
        "min",
        "round",
        "set",
        "sorted",
        "str",
        "sum",
        "tuple",
    )
}
_COMPARE = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}
_UNARY = {
    ast.Not: lambda a: not a,
    ast.USub: lambda a: -a,
    ast.UAdd: lambda a: +a,
    ast.Invert: lambda a: ~a,
}
_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_SEQUENCES = (str, bytes, bytearray, list, tuple)
MAX_POWER = 10_000  # largest integer exponent judged (a program's 10**10 would hang us)
MAX_INT_BITS = 100_000_000  # largest power judged, in bits (12 MB)
MAX_INT_WORK = 10**12  # product of the operands' bits of a multiplication or division
MAX_REPEAT = 1_000_000  # longest sequence a ``*`` may build


class JudgedAssert(NamedTuple):
    """An assert judged here: the calls the program's process evaluates, and the test."""

    calls: list  # source of each call, in the order the test reads them
    test: ast.expr  # the assert's test, each call replaced by the name ``__call_<i>__``
    tolerant: bool  # a lone ``X == Y`` compared as MBPP's scripts do (approx_eq)
    builtins: frozenset  # names of FUNCTIONS the test calls here (a program may define one)


class _Untrusted(Exception):
    pass


def statements(text: str) -> list[ast.stmt] | None:
    """The statements of ``text``, or None when it does not parse."""
    try:
        return ast.parse(text).body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def bound_names(sources: list[str]) -> set[str]:
    """Every name the given statements bind (assignments, definitions, imports, loop
    targets...). A source that does not parse binds nothing: it raises when it runs."""
    return bound_in([statements(source) or [] for source in sources])


def bound_in(bodies: list[list[ast.stmt]]) -> set[str]:
    """:func:`bound_names` of statements already parsed."""
    names: set[str] = set()
    for body in bodies:
        for node in (n for statement in body for n in ast.walk(statement)):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                names.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.Global | ast.Nonlocal):
                names.update(node.names)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
    return names


def plan_assert(
    text: str,
    bound: set[str],
    tolerant: bool,
    program_names: frozenset = frozenset(),
    body: list[ast.stmt] | None = None,
) -> JudgedAssert | None:
    """The assert in ``text`` as calls + test, or None when it cannot be judged here.

    ``bound``: names the setup code and test statements bind (a call of one of them is
    not the program's); ``program_names``: built-in names the program itself defines (a
    call of one of them is the program's, e.g. MBPP 126's ``sum``); ``body``: the
    statements of ``text`` when they are parsed already."""
    body = statements(text) if body is None else body
    if not body or len(body) != 1 or not isinstance(body[0], ast.Assert):
        return None
    planner = _Planner(text, bound, program_names)
    try:
        test = planner.visit(body[0].test)
    except (_Untrusted, RecursionError):
        return None
    lone_eq = (
        isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
    )
    return JudgedAssert(planner.calls, test, tolerant and lone_eq, frozenset(planner.builtins))


class _Planner:
    def __init__(self, text: str, bound: set[str], program_names: frozenset) -> None:
        self.text = text
        self.bound = bound
        self.program_names = program_names
        self.calls: list[str] = []
        self.builtins: set[str] = set()

    def visit(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Constant):
            return node
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return type(node)(elts=[self.visit(e) for e in node.elts], ctx=ast.Load())
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):  # {**x}
                raise _Untrusted
            keys = [self.visit(k) for k in node.keys]
            return ast.Dict(keys=keys, values=[self.visit(v) for v in node.values])
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return ast.UnaryOp(op=node.op, operand=self.visit(node.operand))
        if isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY):
            text = isinstance(node.left, ast.Constant) and isinstance(node.left.value, str | bytes)
            if text and isinstance(node.op, ast.Mod):  # a format: see _binary
                raise _Untrusted
            return ast.BinOp(left=self.visit(node.left), op=node.op, right=self.visit(node.right))
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            return ast.BoolOp(op=node.op, values=[self.visit(v) for v in node.values])
        if isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                if type(op) not in _COMPARE:
                    raise _Untrusted
                singleton = isinstance(right, ast.Constant) and right.value in (None, True, False)
                if isinstance(op, ast.Is | ast.IsNot) and not singleton:
                    raise _Untrusted
            return ast.Compare(
                left=self.visit(node.left),
                ops=node.ops,
                comparators=[self.visit(c) for c in node.comparators],
            )
        if isinstance(node, ast.Subscript):
            return ast.Subscript(value=self.visit(node.value), slice=self.visit(node.slice))
        if isinstance(node, ast.Slice):
            parts = (node.lower, node.upper, node.step)
            return ast.Slice(*(None if p is None else self.visit(p) for p in parts))
        if isinstance(node, ast.Name) and self._builtin(node.id):
            return node
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if self._of_the_program(node):
                return self._program_call(node)
            if self._builtin(node.func.id):
                if any(isinstance(a, ast.Starred) for a in node.args):
                    raise _Untrusted
                if any(k.arg is None for k in node.keywords):
                    raise _Untrusted
                return ast.Call(
                    func=node.func,
                    args=[self.visit(a) for a in node.args],
                    keywords=[ast.keyword(k.arg, self.visit(k.value)) for k in node.keywords],
                )
            return self._program_call(node)
        raise _Untrusted

    def _of_the_program(self, node: ast.Call) -> bool:
        """Whether the sandbox evaluates ``node``: a call of the program, or a built-in
        applied to nothing but such calls (``list(f(3))``, ``len(f(10 ** 6))``), so that a
        lazy iterable is consumed, and a large value measured, where it lives. What
        crosses is then what the built-in returns: the program could forge it, but no
        more than it could make its own call return anything, and no literal of the
        assert goes with it."""
        name = node.func.id
        if name in self.bound:
            return False
        if name not in FUNCTIONS or name in self.program_names:
            return True
        return (
            bool(node.args)
            and all(isinstance(a, ast.Call) and isinstance(a.func, ast.Name) for a in node.args)
            and all(self._of_the_program(a) for a in node.args)
            and all(
                k.arg is not None
                and isinstance(k.value, ast.Constant)
                and any(k.value.value is c for c in (True, False, None))
                for k in node.keywords
            )
        )

    def _builtin(self, name: str) -> bool:
        if name not in FUNCTIONS or name in self.bound or name in self.program_names:
            return False
        self.builtins.add(name)
        return True

    def _program_call(self, node: ast.Call) -> ast.Name:
        if node.func.id in self.bound:  # e.g. a checker the setup code defines
            raise _Untrusted
        source = self._source(node)
        if any(word in source for word in (":=", "await", "yield")):
            for sub in ast.walk(node):  # its arguments are its input: any value will do
                if isinstance(sub, ast.NamedExpr | ast.Await | ast.Yield | ast.YieldFrom):
                    raise _Untrusted
        self.calls.append(source)
        return ast.Name(id=f"__call_{len(self.calls) - 1}__", ctx=ast.Load())

    def _source(self, node: ast.expr) -> str:
        """The text of ``node`` (unparsing the tree costs several times more; so does
        ``ast.get_source_segment``, which splits the whole text each time)."""
        if node.lineno == node.end_lineno == 1 and "\n" not in self.text:
            if self.text.isascii():  # offsets count UTF-8 bytes
                return self.text[node.col_offset : node.end_col_offset]
            return self.text.encode()[node.col_offset : node.end_col_offset].decode()
        return ast.get_source_segment(self.text, node) or ast.unparse(node)


def evaluate(judged: JudgedAssert, values: tuple) -> bool:
    """Whether the assert holds for the calls' ``values``; raises what Python would raise
    evaluating it (e.g. ValueError for the truth of a numpy array, RecursionError for
    ``==`` between lists nested a thousand deep), or :class:`BeyondLimits`."""
    try:
        return _evaluate(judged, values)
    except RecursionError:
        # The harness's own call stack (a Kedro runner's) takes part of Python's recursion
        # limit; a program's assert runs near the bottom of its stack, as a new thread's.
        return _in_a_new_thread(_evaluate, judged, values)


def _in_a_new_thread(function, *args):
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((True, function(*args)))
        except BaseException as exc:  # handed to the caller
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="ilf-judge")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def _evaluate(judged: JudgedAssert, values: tuple) -> bool:
    env = {f"__call_{i}__": v for i, v in enumerate(values)}
    test = judged.test
    if judged.tolerant:
        return bool(approx_eq(_eval(test.left, env), _eval(test.comparators[0], env)))
    return bool(_eval(test, env))


def _eval(node: ast.expr, env: dict) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id] if node.id in env else FUNCTIONS[node.id]
    if isinstance(node, ast.Tuple):
        return tuple(_eval(e, env) for e in node.elts)
    if isinstance(node, ast.List):
        return [_eval(e, env) for e in node.elts]
    if isinstance(node, ast.Set):
        return {_eval(e, env) for e in node.elts}
    if isinstance(node, ast.Dict):
        return {_eval(k, env): _eval(v, env) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, env))
    if isinstance(node, ast.BinOp):
        return _binary(node.op, _eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.BoolOp):
        value = None
        for v in node.values:
            value = _eval(v, env)
            if not value:
                return value
        return value
    if isinstance(node, ast.Compare):
        left, result = _eval(node.left, env), True
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env)
            result = _COMPARE[type(op)](left, right)
            if not result:
                return result
            left = right
        return result
    if isinstance(node, ast.Subscript):
        return _eval(node.value, env)[_eval(node.slice, env)]
    if isinstance(node, ast.Slice):
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if p is None else _eval(p, env) for p in parts))
    if isinstance(node, ast.Call):
        args = [_eval(a, env) for a in node.args]
        kwargs = {k.arg: _eval(k.value, env) for k in node.keywords}
        return FUNCTIONS[node.func.id](*args, **kwargs)
    raise TypeError(f"cannot evaluate {type(node).__name__}")  # the planner let it through


def _binary(op: ast.operator, a: object, b: object) -> object:
    """``a op b``, refusing (:class:`BeyondLimits`) what would take the harness minutes or
    gigabytes: a program's value is any size its memory allows."""
    if isinstance(op, ast.Pow):
        exact = isinstance(a, numbers.Rational) and isinstance(b, numbers.Integral)
        too_large = exact and (abs(b) > MAX_POWER or _bits(a) * abs(int(b)) > MAX_INT_BITS)
        if too_large and abs(a) not in (0, 1):
            raise BeyondLimits(f"a power with exponent {b} is too large to judge")
        return a**b
    if isinstance(op, ast.Mult):
        for seq, n in ((a, b), (b, a)):
            repeat = isinstance(seq, _SEQUENCES) and isinstance(n, numbers.Integral)
            if repeat and len(seq) * int(n) > MAX_REPEAT:
                raise BeyondLimits("a repeated sequence too long to judge")
    costly = type(a) is int and type(b) is int and _bits(a) * _bits(b) > MAX_INT_WORK
    if costly and isinstance(op, ast.Mult | ast.Div | ast.FloorDiv | ast.Mod):
        raise BeyondLimits("an operation on integers too large to judge")
    if isinstance(op, ast.Mult):
        return a * b
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Div):
        return a / b
    if isinstance(op, ast.FloorDiv):
        return a // b
    if isinstance(a, str | bytes | bytearray):  # a format could ask for gigabytes of padding
        raise BeyondLimits("%-formatting of the program's text is not judged outside it")
    return a % b


def _bits(n: object) -> int:
    return int(n).bit_length() if isinstance(n, numbers.Integral) else 1
