"""What a run's parameters decide about the shape of its pipelines: how many ILF rounds
``ilf_rounds`` chains (``rounds``), which shares of the annotations ``ilf_sweep`` trains on
(``sweep.shares``), which test sets ``evaluation`` builds (``evaluation.task_sets``) and
which project pipelines run before ``ilf``, ``ilf_ablations`` and ``ilf_sweep``
(``input_pipelines``) and whether they measure the theory on a dataset of candidate
programs (``reporting.distribution.candidates``).

Kedro 1.x calls ``register_pipelines()`` with no arguments and hands the run's environment
and ``--params`` only to the context (``kedro run --env`` does not even export
``KEDRO_ENV``), so the registry cannot read them itself. The project's hook computes a
:class:`RunPlan` from the validated parameters when the context is created, before Kedro
first builds the pipelines, and keeps it on itself; ``register_pipelines()`` builds these
pipelines from it, with explicit arguments. The pipeline modules hold no state.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from kedro.pipeline import Pipeline

from ilf_kedro.ingest.task_sets import TaskSet, parse_task_sets
from ilf_kedro.parameters import Parameters
from ilf_kedro.pipelines import evaluation, ilf, ilf_ablations, ilf_rounds, ilf_sweep
from ilf_kedro.pipelines.evaluation.pipeline import PAPER_TASK_SETS


@dataclass(frozen=True)
class RunPlan:
    """The pipeline shape a run asks for; the defaults are what every ``create_pipeline()``
    builds when called without arguments (one round, MBPP only, no input pipelines)."""

    rounds: int = 1
    sweep_shares: tuple[float, ...] = ilf_sweep.DEFAULT_SHARES
    task_sets: tuple[TaskSet, ...] = PAPER_TASK_SETS
    input_pipelines: tuple[str, ...] = ()
    candidates: str | None = None

    @classmethod
    def from_parameters(
        cls, params: Parameters, catalog_entries: Collection[str] | None = None
    ) -> RunPlan:
        """The plan of validated ``params``; test sets are checked against the catalog's
        entry names when given (each needs its ``<set>_raw``)."""
        evaluation = params.evaluation
        task_sets = parse_task_sets(
            evaluation.task_sets, evaluation.task_set_formats, catalog_entries
        )
        candidates = params.reporting.distribution.candidates
        if candidates and catalog_entries is not None and candidates not in catalog_entries:
            raise ValueError(
                f"parameter reporting.distribution.candidates names {candidates!r}, which "
                "is no catalog entry; allowed: a dataset of candidate programs, or null"
            )
        return cls(
            rounds=params.rounds,
            sweep_shares=tuple(params.sweep.shares),
            task_sets=tuple(task_sets),
            input_pipelines=check_input_pipelines(params.input_pipelines),
            candidates=candidates,
        )

    def pipelines(self, names: Iterable[str]) -> dict[str, Pipeline]:
        """Those of ``names`` whose shape this plan decides, built for it; nothing when the
        plan is the default (``find_pipelines`` built exactly those already)."""
        return {} if self == RunPlan() else self.build(names)

    def build(self, names: Iterable[str]) -> dict[str, Pipeline]:
        """Those of ``names`` whose shape this plan decides, built for it, always."""
        build = {
            "evaluation": lambda: evaluation.create_pipeline(
                task_sets=self.task_sets, candidates=self.candidates
            ),
            "ilf": lambda: ilf.create_pipeline(
                task_sets=self.task_sets,
                input_pipelines=self.input_pipelines,
                candidates=self.candidates,
            ),
            "ilf_ablations": lambda: ilf_ablations.create_pipeline(
                task_sets=self.task_sets,
                input_pipelines=self.input_pipelines,
                candidates=self.candidates,
            ),
            "ilf_rounds": lambda: ilf_rounds.create_pipeline(
                rounds=self.rounds, input_pipelines=self.input_pipelines
            ),
            "ilf_sweep": lambda: ilf_sweep.create_pipeline(
                shares=self.sweep_shares,
                task_sets=self.task_sets,
                input_pipelines=self.input_pipelines,
                candidates=self.candidates,
            ),
        }
        return {name: build[name]() for name in names if name in build}


def check_input_pipelines(names: Iterable[str] | None) -> tuple[str, ...]:
    """``input_pipelines`` as a tuple, each a pipeline package of this project."""
    names = tuple(names or ())
    for name in names:
        try:
            importlib.import_module(f"ilf_kedro.pipelines.{name}")
        except ModuleNotFoundError:
            raise ValueError(
                f"parameter input_pipelines names {name!r}, which is not a pipeline of "
                "this project (kedro registry list)"
            ) from None
    return names
