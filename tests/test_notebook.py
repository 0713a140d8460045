"""notebooks/ilf_walkthrough.ipynb runs top to bottom on the outputs of the default run."""

from __future__ import annotations

import pytest

from tests.conftest import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "notebooks" / "ilf_walkthrough.ipynb"


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/markdown", ""))
    return "".join(parts)


def test_walkthrough_notebook_runs_on_the_default_run(default_ilf_run, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("ILF_KEDRO_PROJECT", str(default_ilf_run))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()  # raises CellExecutionError on the first failing cell

    text = "\n".join(_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert f"Kedro project: {default_ilf_run}" in text
    assert "--- incorrect program (pi_theta) ---" in text
    assert "--- refinement " in text
    assert "ilf_training_set" in text or "--- target (completion) ---" in text
    for method in ("zero-shot", "ILF", "MBPP gold", "human refinements"):
        assert f"| {method} |" in text
    images = [
        output
        for output in notebook.cells[-1].get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert images, "the comparison plot is not shown"
