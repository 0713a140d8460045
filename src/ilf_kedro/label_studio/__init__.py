"""New human feedback through Label Studio: import tasks out, released-schema annotations back.

Plain Python (no Kedro import). :func:`build_import_tasks` turns ``annotation_queue`` rows and
their test verdicts into a Label Studio JSON import; :func:`parse_export` turns a Label Studio
JSON export back into the released ILF annotation schema that ``data_processing`` validates;
:class:`LabelStudioClient` talks to a running server's REST API.

The labeling configuration (conf/base/label_studio/labeling_config.xml) shows each task's
``prompt``, ``program`` and ``test_results`` and has three controls, whose names the parser
reads: ``feedback`` and ``refinement`` text areas and the ``refinement_passes`` choice.

What an export may hold, and what the parser does with it:

- a submitted annotation with feedback, a refinement and the pass/fail answer: one row;
- a task nobody has annotated yet (or only left a draft): a warning naming the tasks;
- a skipped annotation (the annotator pressed Skip): a warning naming the task, no row;
- more than one submitted annotation for an MBPP task (two annotators, or the task
  imported twice): every one becomes a row, with a warning naming the task;
  ``data_processing`` keeps one per task, chosen with ``annotations.seed`` (as the paper);
- a half-filled annotation (feedback or refinement empty, no pass/fail answer, or the
  failing program submitted unchanged as its own refinement): an error naming every such
  task, since keeping it would be wrong and dropping it would lose a person's work; fix or
  skip it in Label Studio and export again;
- a task that ``build_import_tasks`` did not write (no ``task_id``, ``prompt`` or
  ``program``) or a result from another labeling configuration: an error naming the task.

``passed`` is the annotator's answer to "does your refinement pass every test shown"
(Label Studio cannot run code; ``data_processing`` keeps only annotations answered
"passes", as it keeps only ``passed`` rows of the paper's release). The ``feedback``
pipeline then runs every refinement against the task's tests (``refinement_passed``).
"""

from .client import LabelStudioClient
from .export import load_export_text, parse_export
from .schema import (
    CONTROLS,
    EXPORT_COLUMNS,
    FEEDBACK,
    REFINEMENT,
    TRACE_COLUMNS,
    VERDICT,
    ExportedAnnotation,
    LabelStudioExportError,
    TaskData,
)
from .tasks import build_import_tasks, check_labeling_config, describe_test_results, submission

__all__ = [
    "CONTROLS",
    "EXPORT_COLUMNS",
    "FEEDBACK",
    "REFINEMENT",
    "TRACE_COLUMNS",
    "VERDICT",
    "ExportedAnnotation",
    "LabelStudioClient",
    "LabelStudioExportError",
    "TaskData",
    "build_import_tasks",
    "check_labeling_config",
    "describe_test_results",
    "load_export_text",
    "parse_export",
    "submission",
]
