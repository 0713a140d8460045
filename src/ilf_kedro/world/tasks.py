"""The miniature world's task families: small Python functions described in English.

Every family draws its parameters (a comparison, a constant, a bound, an order) from a
seeded ``random.Random``: the task's meaning. A meaning can be written in several
equivalent styles (``STYLES``: a one-line expression, a loop, a helper variable, an
indexed loop), and so can its known *mistakes* (the same program with one
systematic slip: a non-strict comparison, an off-by-one bound, the opposite order...),
each with the sentence an annotator would write about it: a slip misreads the words,
whatever the style. The asserts are computed by running the right program on random
inputs, chosen so that every known mistake fails at least one of them.

Plain Python, no Kedro.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# Words the string families draw their inputs from (short, lower/upper case, digits).
_WORDS = [
    "apple", "Bob", "code", "data", "Eve", "frog", "green", "House", "ink", "jazz", "kite",
    "Lamp", "moon", "Nile", "open", "park", "quiz", "River", "sun", "tree", "Umbra", "vase",
    "wolf", "xray", "Yard", "zone", "a1b2", "x9", "Mix3d", "abc", "Oak", "idea",
]  # fmt: skip


# The ways a meaning can be written (``world.corpus.styles`` and the gold author's mix draw
# from these). "indexed" (a loop over ``range(len(...))`` with subscripts, other names)
# uses only constructs the other styles use too, so an author who writes only in it, where
# the corpus never does, writes code a model of the corpus can learn. Every family renders
# each of its meanings, right or slipped, in every style, and the styles of one meaning
# compute the same function (tests/world): a slip is a misreading of the words, whatever
# style the program is written in.
STYLES = ("expression", "loop", "helper", "indexed")


@dataclass(frozen=True)
class Mistake:
    """One systematic slip: its kind, the wrong body in each style, and the annotator's
    sentence on it."""

    kind: str
    bodies: Mapping[str, str]
    feedback: str


@dataclass(frozen=True)
class WorldTask:
    """A task before it gets an id: description, the right body in each style, inputs,
    known mistakes."""

    family: str
    text: str
    signature: str  # "def name(args):"
    bodies: Mapping[str, str]  # style -> the right body, indented, ending in a newline
    inputs: tuple  # argument tuples the asserts call the function with
    mistakes: tuple[Mistake, ...] = field(default_factory=tuple)

    @property
    def entry_point(self) -> str:
        return self.signature[4 : self.signature.index("(")]

    @property
    def code(self) -> str:
        """The right program in the first style (the asserts' reference)."""
        return self.program_with(self.bodies[STYLES[0]])

    def program_with(self, body: str) -> str:
        return f"{self.signature}\n{body}"


def _in_every_style(render: Callable[..., str], **meaning) -> dict[str, str]:
    return {style: render(style, **meaning) for style in STYLES}


_OPS = {
    ">": ("greater than", "<="),
    ">=": ("at least", "<"),
    "<": ("less than", ">="),
    "<=": ("at most", ">"),
}
_STRICTNESS = {">": ">=", ">=": ">", "<": "<=", "<=": "<"}
_DIRECTION = {">": "<", "<": ">", ">=": "<=", "<=": ">="}


def _comparison_mistakes(op: str, k: int, bodies_of: Callable[[str], dict], what: str):
    """The two comparison slips: the wrong strictness and the wrong direction."""
    strict = op in (">", "<")
    if strict:
        wrong_strict = (
            f"The comparison must be strict: {what} equal to {k} must not be counted, "
            f"but the code keeps them."
        )
    else:
        wrong_strict = (
            f"{what.capitalize()} equal to {k} must be counted too, but the comparison "
            f"leaves them out; it has to include equality."
        )
    wrong_way = (
        f"The comparison points the wrong way: the code takes {what} "
        f"{_OPS[_DIRECTION[op]][0]} {k} instead of {_OPS[op][0]} {k}."
    )
    # Two kinds, as slips in real code are lopsided: ">=" written for "greater than" is
    # common, ">" written for "at least" rarer; the corpus gives each its own rate.
    return (
        Mistake("strictness" if strict else "inclusion", bodies_of(_STRICTNESS[op]), wrong_strict),
        Mistake("direction", bodies_of(_DIRECTION[op]), wrong_way),
    )


def _random_list(rng: random.Random, low: int, high: int) -> list[int]:
    return [rng.randint(low, high) for _ in range(rng.randint(5, 7))]


# MBPP's two usual openings. Wording only: which split a task falls in never depends on it
# (``generate.held_out`` reads the text after the opening).
OPENINGS = ("Write a function to ", "Write a python function to ")


def _opening(rng: random.Random) -> str:
    return rng.choice(OPENINGS)


def _select(style: str, op: str, k: int) -> str:
    return {
        "expression": f"    return [x for x in items if x {op} {k}]\n",
        "loop": (
            "    result = []\n    for item in items:\n"
            f"        if item {op} {k}:\n            result.append(item)\n    return result\n"
        ),
        "helper": f"    selected = [item for item in items if item {op} {k}]\n"
        "    return selected\n",
        "indexed": "    out = []\n    for i in range(len(items)):\n"
        f"        if items[i] {op} {k}:\n            out.append(items[i])\n    return out\n",
    }[style]


def select_elements(rng: random.Random) -> WorldTask:
    op, k = rng.choice(list(_OPS)), rng.randint(0, 40)
    phrase = _OPS[op][0]

    def bodies(o):
        return _in_every_style(_select, op=o, k=k)

    inputs = tuple((_random_list(rng, k - 6, k + 6) + [k],) for _ in range(3))
    return WorldTask(
        "select_elements",
        f"{_opening(rng)}return the elements of a list that are {phrase} {k}, in order.",
        "def select_elements(items):",
        bodies(op),
        inputs,
        _comparison_mistakes(op, k, bodies, "elements"),
    )


def _count_words(style: str, op: str, k: int) -> str:
    return {
        "expression": f"    return sum(1 for word in sentence.split() if len(word) {op} {k})\n",
        "loop": (
            "    count = 0\n    for word in sentence.split():\n"
            f"        if len(word) {op} {k}:\n            count += 1\n    return count\n"
        ),
        "helper": "    words = sentence.split()\n"
        f"    return len([w for w in words if len(w) {op} {k}])\n",
        "indexed": "    words = sentence.split()\n    total = 0\n    for i in range(len(words)):\n"
        f"        if len(words[i]) {op} {k}:\n            total += 1\n    return total\n",
    }[style]


def count_long_words(rng: random.Random) -> WorldTask:
    op, k = rng.choice(list(_OPS)), rng.randint(2, 8)
    phrase = _OPS[op][0]

    def bodies(o):
        return _in_every_style(_count_words, op=o, k=k)

    def sentence():
        words = rng.sample(_WORDS, 6)
        # A word of length exactly k, so the asserts tell "less than k" from "at most k".
        words.append(rng.choice([w for w in _WORDS if len(w) == k] or ["abcdefgh"[:k]]))
        rng.shuffle(words)
        return " ".join(words)

    return WorldTask(
        "count_words",
        f"{_opening(rng)}count the words of a sentence whose length is {phrase} {k}.",
        "def count_words(sentence):",
        bodies(op),
        tuple((sentence(),) for _ in range(3)),
        _comparison_mistakes(op, k, bodies, "words"),
    )


_POWERS = {1: "numbers", 2: "squares", 3: "cubes"}


def _term(power: int, var: str) -> str:
    return var if power == 1 else f"{var} ** {power}"


def _range_total(style: str, start: int, stop: str, power: int) -> str:
    span = f"range({start}, {stop})"
    return {
        "expression": f"    return sum({_term(power, 'i')} for i in {span})\n",
        "loop": f"    total = 0\n    for i in {span}:\n        total += {_term(power, 'i')}\n"
        "    return total\n",
        "helper": f"    numbers = {span}\n    return sum({_term(power, 'j')} for j in numbers)\n",
        "indexed": f"    total = 0\n    for j in {span}:\n"
        f"        total = total + {_term(power, 'j')}\n    return total\n",
    }[style]


def range_total(rng: random.Random) -> WorldTask:
    power, inclusive = rng.choice([1, 2, 3]), rng.random() < 0.5
    start = rng.choice([0, 1, 2, 3])
    bound = "up to and including n" if inclusive else "below n"
    stop = "n + 1" if inclusive else "n"
    what = "integers" if power == 1 else f"{_POWERS[power]} of the integers"

    def bodies(stop_expr: str, p: int = power) -> dict[str, str]:
        return _in_every_style(_range_total, start=start, stop=stop_expr, power=p)

    wrong_stop = "n" if inclusive else "n + 1"
    mistakes = [
        Mistake(
            # Stopping a range at n when n is included is the classic slip ("off_by_one");
            # running past the end of "below n" is its rarer mirror ("past_end").
            "off_by_one" if inclusive else "past_end",
            bodies(wrong_stop),
            "The range is off by one at the end: n itself must be "
            + ("included." if inclusive else "left out, the task says below n."),
        )
    ]
    for other in (1, 2, 3):
        if other != power:
            mistakes.append(
                Mistake(
                    "wrong_power",
                    bodies(stop, other),
                    f"The code adds up the {_POWERS[other]} instead of the {_POWERS[power]}.",
                )
            )
    inputs = tuple((n,) for n in rng.sample(range(2, 12), 3))
    return WorldTask(
        "range_total",
        f"{_opening(rng)}return the sum of the {what} from {start} {bound}.",
        "def range_total(n):",
        bodies(stop),
        inputs,
        tuple(mistakes),
    )


# Synonyms, so that each meaning of the two families without a number in their text has
# several wordings, and the test split (held out by wording) still sees every meaning.
_ORDER_WORDS = {
    False: (
        "in ascending order",
        "in increasing order",
        "from smallest to largest",
        "from lowest to highest",
    ),
    True: (
        "in descending order",
        "in decreasing order",
        "from largest to smallest",
        "from highest to lowest",
    ),
}
_EXTREME_WORDS = {True: ("largest", "greatest", "biggest"), False: ("smallest", "least", "lowest")}


def _order(style: str, descending: bool, by_abs: bool) -> str:
    key = ", key=abs" if by_abs else ""
    return {
        "expression": f"    return sorted(items{key}, reverse={descending})\n",
        "loop": "    result = list(items)\n"
        f"    result.sort({'key=abs, ' if by_abs else ''}reverse={descending})\n"
        "    return result\n",
        "helper": f"    ordered = sorted(items{key}, reverse={descending})\n    return ordered\n",
        "indexed": "    out = list(items)\n"
        f"    out.sort({'key=abs, ' if by_abs else ''}reverse={descending})\n    return out\n",
    }[style]


def order_list(rng: random.Random) -> WorldTask:
    descending, by_abs = rng.random() < 0.5, rng.random() < 0.5
    order = "descending" if descending else "ascending"

    def bodies(desc: bool, key: bool = by_abs) -> dict[str, str]:
        return _in_every_style(_order, descending=desc, by_abs=key)

    mistakes = [
        Mistake(
            # Lopsided, as slips in real code are: a forgotten reverse=True is common,
            # a stray one rare. A symmetric slip near one half would leave the corpus
            # saying almost nothing about what "descending" means.
            "order" if descending else "order_reversed",
            bodies(not descending),
            f"The list comes out in the opposite order: the task asks for {order} order.",
        )
    ]
    if by_abs:
        mistakes.append(
            Mistake(
                "key",
                bodies(descending, False),
                "The numbers must be compared by their absolute value, but the code "
                "sorts them by their signed value.",
            )
        )
    inputs = tuple((_random_list(rng, -9, 9),) for _ in range(3))
    how = rng.choice(_ORDER_WORDS[descending])
    by = rng.choice([" of their absolute values", " by absolute value"]) if by_abs else ""
    return WorldTask(
        "order_list",
        f"{_opening(rng)}sort a list of numbers {how}{by}.",
        "def order_list(items):",
        bodies(descending),
        inputs,
        tuple(mistakes),
    )


def _indexed_cut(cut: str) -> str:
    """A slice written with explicit bounds: ``[:3]`` -> ``[0:3]``, ``[-3:]`` ->
    ``[max(0, len(s) - 3):]``, ``[3:]`` -> ``[3:len(s)]`` (the same characters)."""
    start, stop = cut[1:-1].split(":")
    if not start:
        return f"[0:{stop}]"
    if start.startswith("-"):
        return f"[max(0, len(s) - {start[1:]}):]"
    return f"[{start}:len(s)]"


def _slice(style: str, cut: str) -> str:
    return {
        "expression": f"    return s{cut}\n",
        "loop": f'    result = ""\n    for ch in s{cut}:\n        result += ch\n'
        "    return result\n",
        "helper": f"    part = s{cut}\n    return part\n",
        "indexed": f"    return s{_indexed_cut(cut)}\n",
    }[style]


def string_slice(rng: random.Random) -> WorldTask:
    kind, k = rng.choice(["first", "last", "drop"]), rng.randint(1, 8)
    cuts = {"first": f"[:{k}]", "last": f"[-{k}:]", "drop": f"[{k}:]"}
    texts = {
        "first": f"return the first {k} characters of a string",
        "last": f"return the last {k} characters of a string",
        "drop": f"return a string without its first {k} characters",
    }

    def bodies(cut: str) -> dict[str, str]:
        return _in_every_style(_slice, cut=cut)

    off = {"first": f"[:{k + 1}]", "last": f"[-{k + 1}:]", "drop": f"[{k + 1}:]"}
    mistakes = [
        Mistake(
            "slice_length",
            bodies(off[kind]),
            f"The slice is off by one: it takes {k + 1} characters where the task says {k}."
            if kind != "drop"
            else f"The slice is off by one: it removes {k + 1} characters, not {k}.",
        )
    ]
    if kind in ("first", "last"):
        other = "last" if kind == "first" else "first"
        mistakes.append(
            Mistake(
                "wrong_end",
                bodies(cuts[other]),
                f"The code takes the characters from the wrong end of the string: "
                f"the task wants the {kind} ones, not the {other} ones.",
            )
        )
    inputs = tuple(("".join(rng.sample(_WORDS, 2)),) for _ in range(3))
    return WorldTask(
        "string_slice",
        f"{_opening(rng)}{texts[kind]}.",
        "def string_slice(s):",
        bodies(cuts[kind]),
        inputs,
        tuple(mistakes),
    )


def _multiples(style: str, cmp: str, m: int) -> str:
    return {
        "expression": f"    return sum(1 for x in items if x % {m} {cmp} 0)\n",
        "loop": "    count = 0\n    for item in items:\n"
        f"        if item % {m} {cmp} 0:\n            count += 1\n    return count\n",
        "helper": f"    matches = [item for item in items if item % {m} {cmp} 0]\n"
        "    return len(matches)\n",
        "indexed": "    total = 0\n    for i in range(len(items)):\n"
        f"        if items[i] % {m} {cmp} 0:\n            total += 1\n    return total\n",
    }[style]


def count_multiples(rng: random.Random) -> WorldTask:
    negate, k = rng.random() < 0.5, rng.randint(2, 15)
    cmp = "!=" if negate else "=="

    def bodies(c: str, m: int = k) -> dict[str, str]:
        return _in_every_style(_multiples, cmp=c, m=m)

    phrase = "not divisible" if negate else "divisible"
    mistakes = (
        Mistake(
            # Lopsided: a dropped "not" is the common slip, an added one the rare one.
            "negation" if negate else "negation_added",
            bodies("==" if negate else "!="),
            "The condition is reversed: the code counts the numbers that are "
            + ("divisible" if negate else "not divisible")
            + f" by {k}.",
        ),
        Mistake(
            "wrong_constant",
            bodies(cmp, k + 1),
            f"The code checks divisibility by the wrong number; the task is about {k}.",
        ),
    )
    inputs = tuple((_random_list(rng, 0, 30) + [k, k * 2],) for _ in range(3))
    return WorldTask(
        "count_multiples",
        f"{_opening(rng)}count the numbers in a list that are {phrase} by {k}.",
        "def count_multiples(items):",
        bodies(cmp),
        inputs,
        mistakes,
    )


def _shift(style: str, term: Callable[[str], str]) -> str:
    return {
        "expression": f"    return [{term('x')} for x in items]\n",
        "loop": "    result = []\n    for item in items:\n"
        f"        result.append({term('item')})\n    return result\n",
        "helper": f"    shifted = [{term('item')} for item in items]\n    return shifted\n",
        "indexed": "    out = []\n    for i in range(len(items)):\n"
        f"        out.append({term('items[i]')})\n    return out\n",
    }[style]


def shift_elements(rng: random.Random) -> WorldTask:
    op, k = rng.choice(["+", "-", "*"]), rng.randint(2, 20)
    verbs = {"+": f"add {k} to", "-": f"subtract {k} from", "*": f"multiply by {k}"}
    names = {"+": "adds", "-": "subtracts", "*": "multiplies"}

    def bodies(o: str, m: int = k) -> dict[str, str]:
        return _in_every_style(_shift, term=lambda v: f"{v} {o} {m}")

    wrong = {"+": "-", "-": "+", "*": "+"}[op]
    mistakes = [
        Mistake(
            "wrong_operator",
            bodies(wrong),
            f"The code {names[wrong]} where it should {verbs[op].split()[0]}: "
            f"the operation is the wrong one.",
        ),
        Mistake(
            "wrong_constant",
            bodies(op, k + 1),
            f"The constant is wrong: the task says {k}.",
        ),
    ]
    if op == "-":
        mistakes.append(
            Mistake(
                "operand_order",
                _in_every_style(_shift, term=lambda v: f"{k} - {v}"),
                f"The subtraction is the wrong way round: the code subtracts each element "
                f"from {k} instead of {k} from each element.",
            )
        )
    inputs = tuple((_random_list(rng, -5, 15),) for _ in range(3))
    text = _opening(rng) + (
        f"{verbs[op]} every element of a list."
        if op != "*"
        else f"multiply every element of a list by {k}."
    )
    return WorldTask(
        "shift_elements", text, "def shift_elements(items):", bodies(op), inputs, tuple(mistakes)
    )


def _extreme(style: str, largest: bool, by_abs: bool) -> str:
    fn = "max" if largest else "min"

    def size(v: str) -> str:
        return f"abs({v})" if by_abs else v

    return {
        "expression": f"    return {fn}(items{', key=abs' if by_abs else ''})\n",
        # A strict comparison keeps the first of equal elements, as max() and min() do.
        "loop": "    best = items[0]\n    for item in items[1:]:\n"
        f"        if {size('item')} {'>' if largest else '<'} {size('best')}:\n"
        "            best = item\n    return best\n",
        "helper": f"    best = {fn}(items{', key=abs' if by_abs else ''})\n    return best\n",
        "indexed": "    best = items[0]\n    for i in range(1, len(items)):\n"
        f"        if {size('items[i]')} {'>' if largest else '<'} {size('best')}:\n"
        "            best = items[i]\n    return best\n",
    }[style]


def extreme_value(rng: random.Random) -> WorldTask:
    largest, by_abs = rng.random() < 0.5, rng.random() < 0.5

    def bodies(big: bool, key: bool = by_abs) -> dict[str, str]:
        return _in_every_style(_extreme, largest=big, by_abs=key)

    word = "largest" if largest else "smallest"
    other = "smallest" if largest else "largest"
    mistakes = [
        Mistake(
            # Lopsided: max() written for "smallest" is the common slip, min() for
            # "largest" the rare one.
            "min_max" if not largest else "min_max_reversed",
            bodies(not largest),
            f"The function returns the {other} element, but the task asks for the {word} one.",
        )
    ]
    if by_abs:
        mistakes.append(
            Mistake(
                "key",
                bodies(largest, False),
                "The elements must be compared by their absolute value, not their signed value.",
            )
        )
    inputs = tuple((_random_list(rng, -15, 15),) for _ in range(3))
    what = rng.choice(["absolute value", "magnitude"]) if by_abs else "value"
    return WorldTask(
        "extreme_value",
        f"{_opening(rng)}return the element of a list with the "
        f"{rng.choice(_EXTREME_WORDS[largest])} {what}.",
        "def extreme_value(items):",
        bodies(largest),
        inputs,
        tuple(mistakes),
    )


# Every kind of slip the families know (``world.corpus.mistake_rates`` keys; a test keeps
# this, the families and the parameter schema equal).
MISTAKE_KINDS = (
    "strictness", "inclusion", "direction", "off_by_one", "past_end", "wrong_power",
    "order", "order_reversed", "key", "wrong_end", "slice_length", "negation",
    "negation_added", "wrong_constant", "wrong_operator", "operand_order", "min_max",
    "min_max_reversed",
)  # fmt: skip

FAMILIES: dict[str, Callable[[random.Random], WorldTask]] = {
    "select_elements": select_elements,
    "count_words": count_long_words,
    "range_total": range_total,
    "order_list": order_list,
    "string_slice": string_slice,
    "count_multiples": count_multiples,
    "shift_elements": shift_elements,
    "extreme_value": extreme_value,
}


def run_function(code: str, entry_point: str, args: tuple):
    """Call ``entry_point`` of ``code`` with ``args`` (trusted, generated code only)."""
    namespace: dict = {}
    exec(compile(code, "<world>", "exec"), namespace)  # noqa: S102 - our own gold programs
    return namespace[entry_point](*args)


def _call(entry_point: str, args: tuple) -> str:
    return f"{entry_point}({', '.join(repr(a) for a in args)})"


def asserts(task: WorldTask) -> list[str]:
    """The task's asserts: the gold program's result on each input."""
    lines = []
    for args in task.inputs:
        expected = run_function(task.code, task.entry_point, args)
        lines.append(f"assert {_call(task.entry_point, args)} == {expected!r}")
    return lines


def caught_mistakes(task: WorldTask) -> tuple[Mistake, ...]:
    """The task's mistakes that fail at least one of its asserts (only those are kept;
    the styles of a meaning compute the same function, so the first style decides)."""
    gold = [run_function(task.code, task.entry_point, args) for args in task.inputs]
    kept = []
    for mistake in task.mistakes:
        program = task.program_with(mistake.bodies[STYLES[0]])
        results = [run_function(program, task.entry_point, args) for args in task.inputs]
        if results != gold:
            kept.append(mistake)
    return tuple(kept)


def draw_task(rng: random.Random, families: list[str]) -> WorldTask:
    """One task of a family chosen at random, with only the mistakes its asserts catch."""
    task = FAMILIES[rng.choice(families)](rng)
    return WorldTask(
        task.family,
        task.text,
        task.signature,
        task.bodies,
        task.inputs,
        caught_mistakes(task),
    )


def candidates(task: WorldTask) -> list[dict]:
    """Every program the world knows for ``task``: each style right, and each style with
    each known slip (``mistake`` empty for the right ones), with the slip's sentence."""
    rows = [
        {"style": style, "mistake": "", "correct": True, "feedback": "", "program": program}
        for style, program in ((s, task.program_with(b)) for s, b in task.bodies.items())
    ]
    for mistake in task.mistakes:
        rows += [
            {
                "style": style,
                "mistake": mistake.kind,
                "correct": False,
                "feedback": mistake.feedback,
                "program": task.program_with(body),
            }
            for style, body in mistake.bodies.items()
        ]
    return rows


def check_families(families: list[str]) -> list[str]:
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(
            f"world.families {families!r}: unknown {unknown}; allowed: {sorted(FAMILIES)}"
        )
    return list(families)
