"""The labeling configuration's control names, the export's row types and its error."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ilf_kedro.ilf.training_sets import QUEUE_COLUMNS

logger = logging.getLogger(__name__)


FEEDBACK = "feedback"
REFINEMENT = "refinement"
VERDICT = "refinement_passes"
PASSES, FAILS = "passes", "fails"
CONTROLS = (FEEDBACK, REFINEMENT, VERDICT)
PROGRAM = "program"
PREFILL_MODEL_VERSION = "failing_program"
# Kept beside the released schema so a row can be traced back to Label Studio.
TRACE_COLUMNS = ["worker_id", "label_studio_task", "label_studio_annotation"]
EXPORT_COLUMNS = QUEUE_COLUMNS + TRACE_COLUMNS


class LabelStudioExportError(ValueError):
    """An export that cannot become annotations; the message names every task at fault."""


@dataclass(frozen=True)
class TaskData:
    """What an annotator sees for one failing program (a Label Studio task's ``data``)."""

    task_id: int
    split: str
    prompt: str
    program: str
    test_results: str


@dataclass(frozen=True)
class ExportedAnnotation:
    """One submitted Label Studio annotation, read back in the released ILF schema."""

    task_id: int
    prompt: str
    Feedback: str
    original_model_completion: str
    unedited_annotator_completion: str
    passed: bool
    worker_id: int | None
    label_studio_task: int
    label_studio_annotation: int
