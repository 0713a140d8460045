"""Reports of an ILF run, plain Python (no Kedro), one module per concern:

- ``tables``: the paper's Table 4 (``comparison_table``, ``comparison_markdown``) and
  Tables 3 and 1 (``refinement_report``);
- ``figures``: pass@k per method, Figure 3's perplexity histogram, feedback length, rounds,
  sample efficiency;
- ``summary``: the plain-text run summary.

Perplexity scoring needs a model, so it lives with the models
(``ilf_kedro.models.perplexity``) and reporting only draws its table.
"""

from .figures import (
    feedback_length_figure,
    feedback_lengths,
    pass_at_k_figure,
    perplexity_figure,
    rounds_figure,
    sample_efficiency_figure,
)
from .summary import run_summary, run_summary_counts
from .tables import (
    PAPER_SET,
    PAPER_TABLE4,
    RANDOM_WEIGHTS_NOTE,
    by_test_set,
    comparison_markdown,
    comparison_table,
    refinement_report,
    test_set_title,
)

__all__ = [
    "PAPER_SET",
    "PAPER_TABLE4",
    "RANDOM_WEIGHTS_NOTE",
    "by_test_set",
    "comparison_markdown",
    "comparison_table",
    "feedback_length_figure",
    "feedback_lengths",
    "pass_at_k_figure",
    "perplexity_figure",
    "refinement_report",
    "rounds_figure",
    "run_summary",
    "run_summary_counts",
    "sample_efficiency_figure",
    "test_set_title",
]
