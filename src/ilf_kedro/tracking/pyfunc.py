"""pi_theta* and pi_Refine as MLflow models (``mlflow.pyfunc``), so that MLflow logs,
registers, serves and loads them as it does any model (docs/models.md).

Each carries its ``save_pretrained`` directory as an artifact and, as its model config,
the run's settings: the sampling parameters of the evaluation (temperature, top_p,
max_new_tokens, stop sequences, batch size, seed), the execution parameters of the harness,
``model.device`` / ``model.dtype`` (``auto``: a GPU where there is one) and, for pi_Refine,
how the old code is cut and any few-shot prefix. ``predict`` builds the prompts with the
project's own prompt functions (``ilf.prompts``), samples with the project's one sampler
(``models.sample_programs``) and, for rows that give asserts, judges the programs with the
project's harness (``execution.evaluate_programs``): nothing is re-implemented.

A request's rows (a DataFrame; JSON ``dataframe_records`` over HTTP):

- pi_theta*: ``text`` (the task), ``header`` (the code the prompt ends with: any imports and
  helpers, then the ``def NAME(ARGS):`` line of the function to write) and, optionally,
  ``tests`` (asserts: the first is the prompt's example, all judge the programs);
- pi_Refine: the same, plus ``program`` (the incorrect program) and ``feedback``.

Per-request parameters (``params``): ``num_samples``, ``temperature``, ``top_p``,
``max_new_tokens``, ``seed``; their defaults are the run's. A bad request raises an
``MlflowException`` with INVALID_PARAMETER_VALUE, which MLflow's server answers with a 400
naming the row, column or parameter.

Why not kedro-mlflow's ``pipeline_ml_factory``: it logs one model per run, and only when the
run's pipeline is the ``PipelineML`` itself; ``ilf`` is a sum of pipelines (and
``ilf_ablations`` / ``ilf_sweep`` add to it), which demotes a ``PipelineML`` to a plain
pipeline, and a run has two models to log.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types.schema import Array, ColSpec, DataType, ParamSchema, ParamSpec, Schema

from ilf_kedro.execution import evaluate_programs
from ilf_kedro.ilf.prompts import (
    PromptError,
    build_refinement_prompt,
    code_prompt,
    header_entry_point,
)
from ilf_kedro.models import (
    ModelBundle,
    load_bundle,
    sample_programs,
    save_bundle,
    truncate_to_tokens,
)
from ilf_kedro.parameters import Execution, Model, ParameterError, Sampling, section

PI_THETA_STAR = "pi_theta_star"
PI_REFINE = "pi_refine"
MODEL_ARTIFACT = "model"  # the save_pretrained directory
# The run's settings, a JSON artifact (MLflow would log a ``model_config`` as the run's
# params, where the two models' keys collide); ``load_model(model_config=...)`` overrides
# its keys, e.g. ``{"device": "cpu"}``.
SETTINGS_ARTIFACT = "settings"
# What a request may change, per request; the rest of ``sampling`` is the run's.
REQUEST_PARAMS = ("num_samples", "temperature", "top_p", "max_new_tokens", "seed")
# The sampling settings a served model keeps (the backend, shards and cluster are the run's
# business: a served model samples in its own process).
KEPT_SAMPLING = (*REQUEST_PARAMS, "batch_size", "stop_sequences")
VERDICT_COLUMNS = ["passed", "status", "error_type", "error_message"]
OUTPUT_COLUMNS = ["row", "sample_idx", "prompt", "completion", "program", "finish_reason"]
# Libraries the models need, pinned to the versions that logged them.
REQUIREMENTS = ("mlflow", "torch", "transformers", "peft", "pandas", "pyarrow", "pydantic", "tqdm")

TASK_COLUMNS = {"text": True, "header": True, "tests": False}  # name: required
REFINER_COLUMNS = {**TASK_COLUMNS, "program": True, "feedback": True}
COLUMNS = {PI_THETA_STAR: TASK_COLUMNS, PI_REFINE: REFINER_COLUMNS}

EXAMPLE_TASK = {
    "text": "Write a function to return the sum of the squares of the integers from 1 up "
    "to and including n.",
    "header": "def sum_of_squares(n):",
    "tests": ["assert sum_of_squares(3) == 14", "assert sum_of_squares(1) == 1"],
}
EXAMPLE_REFINEMENT = {
    **EXAMPLE_TASK,
    "program": "def sum_of_squares(n):\n    return sum(i * i for i in range(1, n))\n",
    "feedback": "The range must include n: range(1, n) stops at n - 1.",
}


class RequestError(MlflowException):
    """A malformed request: MLflow's server answers 400 with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


@dataclass
class PackagedModel:
    """One of a run's models as MLflow logs it: the weights, the pyfunc that serves them,
    their settings (``config``), and the tags its registered version records (run, seed,
    data digests)."""

    kind: str  # PI_THETA_STAR or PI_REFINE
    bundle: ModelBundle
    config: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)

    def python_model(self) -> ILFModel:
        return {PI_THETA_STAR: CodeModel, PI_REFINE: RefinerModel}[self.kind]()

    def signature(self) -> ModelSignature:
        # Every column optional for MLflow's own schema check, so that the model's checks
        # (``check_rows``) name what is wrong: an empty batch has no columns at all.
        inputs = Schema(
            [
                ColSpec(Array(DataType.string) if name == "tests" else DataType.string, name, False)
                for name in COLUMNS[self.kind]
            ]
        )
        sampling = self.config["sampling"]
        params = ParamSchema(
            [
                ParamSpec(name, _param_type(sampling[name]), sampling[name])
                for name in REQUEST_PARAMS
            ]
        )
        return ModelSignature(inputs=inputs, params=params)

    def input_example(self) -> pd.DataFrame:
        return pd.DataFrame([EXAMPLE_TASK if self.kind == PI_THETA_STAR else EXAMPLE_REFINEMENT])

    def log(self, name: str, registered_model_name: str | None) -> mlflow.models.model.ModelInfo:
        """Log to the active MLflow run (and register a new version of
        ``registered_model_name`` tagged with ``tags``); the weights are saved to a
        temporary directory that MLflow copies into the run's artifacts."""
        import ilf_kedro

        with tempfile.TemporaryDirectory(prefix="ilf-mlflow-") as tmp:
            directory = Path(tmp) / MODEL_ARTIFACT
            save_bundle(self.bundle, directory)
            settings = Path(tmp) / f"{SETTINGS_ARTIFACT}.json"
            settings.write_text(json.dumps(self.config, indent=2, sort_keys=True))
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=self.python_model(),
                artifacts={MODEL_ARTIFACT: str(directory), SETTINGS_ARTIFACT: str(settings)},
                signature=self.signature(),
                input_example=self.input_example(),
                # The project's code travels with the model: a colleague's MLflow loads
                # the predict that made these programs, not their own checkout's.
                code_paths=[str(Path(ilf_kedro.__file__).parent)],
                pip_requirements=_requirements(),
                registered_model_name=registered_model_name,
                metadata={"ilf_kedro": self.tags},
                tags=self.tags,
            )
        if registered_model_name and info.registered_model_version is not None:
            client = mlflow.MlflowClient()
            for key, value in self.tags.items():
                client.set_model_version_tag(
                    registered_model_name, str(info.registered_model_version), key, value
                )
        return info


def _param_type(value: Any) -> str:
    return "long" if isinstance(value, int) and not isinstance(value, bool) else "double"


def _requirements() -> list[str]:
    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def digest(frame: pd.DataFrame) -> str:
    """A short content digest of a table (the data a model came from), stable across runs."""
    text = frame.reset_index(drop=True).to_json(orient="split", default_handler=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def package(
    kind: str,
    bundle: ModelBundle,
    sampling: Sampling,
    execution: Execution,
    model: Model,
    *,
    tags: Mapping[str, Any],
    max_old_code_tokens: int | None = None,
    prefix: str = "",
) -> PackagedModel:
    """A run's model with the run's settings, ready for :meth:`PackagedModel.log`."""
    config = {
        "kind": kind,
        "sampling": sampling.model_dump(include=set(KEPT_SAMPLING)),
        "execution": execution.model_dump() | {"progress": False},
        "device": model.device,
        "dtype": model.dtype,
    }
    if kind == PI_REFINE:
        config |= {"max_old_code_tokens": max_old_code_tokens, "prefix": prefix}
    info = bundle.info
    tags = {
        "ilf_kedro.model": kind,
        "random_weights": str(bool(info.get("random_weights", False))).lower(),
        "training_examples": str(int(info.get("training_examples", 0))),
        **{key: str(value) for key, value in tags.items()},
    }
    return PackagedModel(kind=kind, bundle=bundle, config=config, tags=tags)


class ILFModel(mlflow.pyfunc.PythonModel):
    """What pi_theta* and pi_Refine share: loading, request checks, sampling, verdicts."""

    kind = ""

    def load_context(self, context) -> None:
        settings = Path(context.artifacts[SETTINGS_ARTIFACT]).read_text()
        self.config = {**json.loads(settings), **(context.model_config or {})}
        self.bundle = load_bundle(
            context.artifacts[MODEL_ARTIFACT],
            device=self.config["device"],
            dtype=self.config["dtype"],
        )

    def prompts(self, rows: pd.DataFrame, task_prompts: list[str]) -> pd.DataFrame:
        raise NotImplementedError

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        rows = check_rows(model_input, COLUMNS[self.kind])
        settings = self.sampling(params)
        task_prompts = []
        for i, row in enumerate(rows.itertuples(index=False)):
            tests = row.tests or []
            try:
                header_entry_point(row.header)
            except PromptError as err:
                raise RequestError(f"row {i}, column 'header': {err}") from None
            task_prompts.append(code_prompt(row.text, row.header, tests[0] if tests else None))
        prompts = self.prompts(rows, task_prompts)
        prompts.insert(0, "task_id", range(len(rows)))
        samples = sample_programs(self.bundle, prompts, settings, progress=False)
        return with_verdicts(samples, rows, self.config["execution"])

    def sampling(self, params: Mapping[str, Any] | None) -> Sampling:
        """The run's sampling settings with the request's ``params`` applied."""
        overrides = {k: v for k, v in (params or {}).items() if v is not None}
        unknown = sorted(set(overrides) - set(REQUEST_PARAMS))
        if unknown:
            raise RequestError(f"unknown params {unknown}; allowed: {list(REQUEST_PARAMS)}")
        try:
            return section(Sampling, self.config["sampling"], "params", **overrides)
        except ParameterError as err:
            raise RequestError(str(err)) from None


class CodeModel(ILFModel):
    """pi_theta*: task rows -> ``num_samples`` programs per task, with their verdicts
    where the row gives asserts."""

    kind = PI_THETA_STAR

    def prompts(self, rows: pd.DataFrame, task_prompts: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"prompt": task_prompts})


class RefinerModel(ILFModel):
    """pi_Refine: (task, incorrect program, feedback) rows -> ``num_samples`` refinements
    per row (Figure 2 prompt; ``program`` is the task prompt plus what pi_Refine wrote
    after it, as in the run), with their verdicts where the row gives asserts."""

    kind = PI_REFINE

    def prompts(self, rows: pd.DataFrame, task_prompts: list[str]) -> pd.DataFrame:
        tokenizer, limit = self.bundle.tokenizer, self.config["max_old_code_tokens"]

        def truncate(code: str) -> str:
            return truncate_to_tokens(tokenizer, code, limit, side="right")

        prefix = self.config.get("prefix") or ""
        return pd.DataFrame(
            {
                "prompt": [
                    prefix + build_refinement_prompt(program, feedback, task_prompt, truncate)
                    for program, feedback, task_prompt in zip(
                        rows["program"], rows["feedback"], task_prompts, strict=True
                    )
                ],
                "task_prompt": task_prompts,
            }
        )


def check_rows(frame: Any, columns: Mapping[str, bool]) -> pd.DataFrame:
    """The request's rows with every column of ``columns`` (optional ones filled with
    None), or a :class:`RequestError` naming the first problem: not a table, no rows, a
    missing column, an empty or non-text value, asserts that are not a list of text."""
    if not isinstance(frame, pd.DataFrame):
        raise RequestError(f"expected a table of rows, got {type(frame).__name__}")
    if frame.empty:
        raise RequestError(f"empty batch: give at least one row with columns {list(columns)}")
    missing = [name for name, required in columns.items() if required and name not in frame]
    if missing:
        raise RequestError(f"missing column(s) {missing}; expected {list(columns)}")
    rows = frame.reset_index(drop=True).copy()
    for name, required in columns.items():
        if name not in rows:
            rows[name] = None
        if name == "tests":
            rows[name] = pd.Series([_tests(v, i) for i, v in enumerate(rows[name])], dtype=object)
            continue
        for i, value in enumerate(rows[name]):
            if not isinstance(value, str) or (required and not value.strip()):
                raise RequestError(
                    f"row {i}, column {name!r}: expected non-empty text, got {value!r}"
                )
    return rows[list(columns)]


def _tests(value: Any, row: int) -> list[str]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    items = list(value) if not isinstance(value, str) else None
    if items is None or not all(isinstance(t, str) and t.strip() for t in items):
        raise RequestError(
            f"row {row}, column 'tests': expected a list of assert statements (text), got {value!r}"
        )
    return items


def with_verdicts(samples: pd.DataFrame, rows: pd.DataFrame, execution: dict) -> pd.DataFrame:
    """The samples as the model's answer (``row`` = the request row), with the harness's
    verdicts for rows that gave asserts (None elsewhere)."""
    if "task_prompt" in samples:  # pi_Refine: the refined program, as the run's refinements
        samples["program"] = samples["task_prompt"] + samples["completion"]
    out = samples.rename(columns={"task_id": "row"})[OUTPUT_COLUMNS].copy()
    tested = [i for i, tests in enumerate(rows["tests"]) if tests]
    for column in VERDICT_COLUMNS:
        out[column] = None
    if tested:
        tasks = pd.DataFrame(
            {
                "task_id": tested,
                "tests": [rows.at[i, "tests"] for i in tested],
                "test_setup_code": "",
            }
        )
        judged = out[out["row"].isin(tested)][["row", "program"]].rename(columns={"row": "task_id"})
        verdicts = evaluate_programs(judged, tasks, execution)
        for column in VERDICT_COLUMNS:
            out.loc[verdicts.index, column] = verdicts[column].astype(object)
    return out.astype(object).where(out.notna(), None)
