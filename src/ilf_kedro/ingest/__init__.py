"""Data ingest (plain Python, no Kedro): MBPP rows -> tasks and splits (``tasks``),
HumanEval rows -> tasks (``humaneval``), the raw files' row schemas (``validation``) and the
test sets an evaluation runs on (``task_sets``)."""
