"""The demo tasks a Label Studio import or export is made of."""

import pytest

from ilf_kedro.datasets import JSONLinesDataset
from ilf_kedro.ingest.tasks import build_tasks
from tests.conftest import PAPER_SPLITS, PROJECT_ROOT


@pytest.fixture(scope="module")
def mbpp_raw_demo():
    return JSONLinesDataset(filepath=str(PROJECT_ROOT / "data/01_raw/demo/mbpp_demo.jsonl")).load()


@pytest.fixture(scope="module")
def demo_tasks(mbpp_raw_demo):
    tasks, _ = build_tasks(mbpp_raw_demo, PAPER_SPLITS)
    return tasks
