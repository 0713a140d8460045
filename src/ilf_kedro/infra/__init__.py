"""Plumbing every layer may use (plain Python, no Kedro at import): atomic file writes
(``atomic``), free loopback ports (``ports``), external commands found next to the
interpreter (``commands``), the project's parameters as ``kedro run`` resolves them, for
benchmarks and command-line tools (``project_parameters``), and its datasets through its
catalog, for benchmarks and tests (``project_catalog``)."""
