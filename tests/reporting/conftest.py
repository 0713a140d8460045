"""A run's ``eval_metrics`` as the evaluation stage writes it, for the report tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def eval_metrics() -> pd.DataFrame:
    return EVAL_METRICS.copy()


EVAL_METRICS = pd.DataFrame(
    {
        "method": ["zero-shot", "ILF", "MBPP gold", "human refinements", "my method"],
        "feedback_source": [None, "human", None, "human", "gpt"],
        "pass@1": [0.25, 0.375, 0.2, 0.3, 0.1],
        "pass@10": [0.6, 0.7, 0.65, 0.69, np.nan],
        "any_correct": [0.6, 0.7, 0.65, 0.69, 0.1],
        "n_tasks": [8, 8, 8, 8, 8],
        "n_programs": [80, 80, 80, 80, 8],
        "training_set_size": [0, 5, 5, 5, 3],
        "random_weights": [True, True, True, True, True],
        "untrained_reason": ["", "", "", "", ""],
    }
)
