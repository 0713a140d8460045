"""The sandbox: runs untrusted programs against unit tests, isolated, one forked child each.

Modules, each for one concern: :mod:`.records` (what the harness and the server exchange),
:mod:`.wire` (how a value crosses from the program's process to the harness: encoder and
decoder side by side), :mod:`.semantics` (MBPP's tolerant and HumanEval's exact ``==``),
:mod:`.child` (what runs in the program's process), :mod:`.linux` (namespaces, the new
root, uids) and :mod:`.server` (the fork server, started as ``python -I -S __main__.py``).
This package imports only the standard library; the harness imports its records, wire
decoder and semantics, never a program.

Why a program cannot forge a verdict. A :class:`~.records.TaskSpec` is all of a task that
reaches the server, and it holds no expected value: for an assert the harness can judge
(calls of the program combined with literals, arithmetic, comparisons and truth tests)
the server gets a CALL check with the source of the calls only (with a built-in applied
to nothing but them, e.g. ``list(f(3))``), and the harness keeps the rest of the
expression to itself. The child evaluates the calls and writes their values,
encoded by :func:`~.wire.encode_value`, to its report pipe; the harness decodes them into
fresh objects of its own types and evaluates the assert in its own process. So:

- nothing the program returns is ever asked to compare itself: values are read by their
  contents, so a result whose ``__eq__`` always says True is judged by what it holds;
- the comparison helpers the program can reach (in its copy of the server) take no part;
- whatever the program writes, to the report pipe or any other descriptor it can open, is
  at most a claim about what its calls returned (the first claim per check counts). A
  forged claim passes only if it holds the expected value, which is in no memory, message
  or file the program can reach: the server never had it, the task files are not in the
  program's root, and the harness runs as root while the program runs under a uid of its
  own that can neither read the harness's memory nor open its descriptors.

What this does not cover: without root the program runs under the harness's uid, sees
the host's files and could read the harness's memory (a warning says so); a program
trained on the dataset can still know answers, as any solver could. Asserts of any other
form run in the program's process (MBPP's tolerance applied by rewriting them, see
:mod:`.semantics`); their verdicts are marked untrusted.

Isolation (see :mod:`.linux`): a private read-only root holding only the interpreter, a
uid per program from a block locked by this server, mount/IPC/network/PID namespaces per
program, a private ``/tmp``, rlimits, a scrubbed environment, stdin from /dev/null, output
captured up to a bound, and a time limit enforced from outside with SIGKILL (wall
clock, less what a lone program waited for a CPU others held).
"""
