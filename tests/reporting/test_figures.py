"""ilf_kedro.reporting.figures: every figure renders to a PNG, with and without data."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ilf_kedro.reporting import figures, tables


def _save_png(figure: Figure, path) -> None:
    from kedro_datasets.matplotlib import MatplotlibDataset

    MatplotlibDataset(filepath=str(path)).save(figure)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_figures_render_and_handle_empty_inputs(eval_metrics, tmp_path):
    table = tables.comparison_table(eval_metrics, paper_reference=True)
    bars = figures.pass_at_k_figure(table)
    assert isinstance(bars, Figure)
    _save_png(bars, tmp_path / "bars.png")
    annotations = pd.DataFrame(
        {"split": ["train", "refine", "train"], "feedback": ["one two", "a b c d", ""]}
    )
    _save_png(figures.feedback_length_figure(annotations), tmp_path / "lengths.png")
    _save_png(figures.feedback_length_figure(annotations.iloc[:0]), tmp_path / "none.png")
    _save_png(figures.pass_at_k_figure(table.iloc[:0]), tmp_path / "empty.png")
    empty = pd.DataFrame({"source": [], "perplexity": []})
    _save_png(figures.perplexity_figure(empty), tmp_path / "empty_ppl.png")


def test_figure3_names_a_source_without_programs(tmp_path):
    perplexities = pd.DataFrame(
        {
            "source": ["MBPP gold programs", "MBPP gold programs", "human refinements"],
            "perplexity": [3.5, 40.0, 7.0],
        }
    )
    sources = ["MBPP gold programs", "pi_Refine refinements", "human refinements"]
    figure = figures.perplexity_figure(perplexities, sources=sources)
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels == [
        "MBPP gold programs (n=2)",
        "pi_Refine refinements (none)",
        "human refinements (n=1)",
    ]
    _save_png(figure, tmp_path / "ppl.png")
