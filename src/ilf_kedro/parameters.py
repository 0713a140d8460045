"""The schema of the project's parameters (pydantic), checked when a run starts.

Unknown keys, wrong types and out-of-range values are reported together, each with its
dotted key and what is allowed, and a typo gets the closest known key
(``sampling.num_sample`` -> did you mean ``sampling.num_samples``?). Plain Python, no
Kedro: the project's hook calls :func:`validate_parameters` before any node runs.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ilf_kedro import endpoints
from ilf_kedro.compute.cluster import RAY_EXTRA, ray_available
from ilf_kedro.models.server_sampling import SERVER_DEFAULTS

PositiveInt = Field(ge=1)
# Runtime parameters that point catalog entries at files (``${runtime_params:...}``).
CATALOG_URIS = ("mbpp_uri", "annotations_uri", "humaneval_uri")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Annotations(Strict):
    max_edit_distance: float | None = Field(default=None, gt=0, le=1)
    seed: int = Field(ge=0)


class Execution(Strict):
    timeout_s: float = Field(gt=0)
    time_limit_floor_s: float = Field(gt=0)
    time_limit_factor: float = Field(gt=0)
    calibration_timeout_s: float = Field(gt=0)
    workers: int | None = Field(default=None, ge=1)
    memory_mb: int = Field(ge=64)
    max_processes: int = Field(ge=1)
    max_file_mb: int = Field(ge=0)
    max_result_bytes: int = Field(ge=1)
    progress: bool
    compute: dict[str, Any] = {}  # ${compute}: validated as the compute section


class RayVerdicts(Strict):
    """``compute.verdicts``: one Ray task judges a shard of programs in its own sandbox."""

    num_cpus: int = Field(default=1, ge=1)  # CPUs per task = programs it runs at once
    programs_per_task: int = Field(default=64, ge=1)  # shard size
    max_retries: int = Field(default=3, ge=0)  # re-runs of a shard whose node died
    placement: Literal["SPREAD", "DEFAULT"] = "SPREAD"  # Ray scheduling strategy


class RaySampling(Strict):
    """``compute.sampling``: model replicas (Ray tasks over shards of batches) for
    ``sampling.backend: ray``."""

    replicas: int = Field(default=2, ge=1)  # shards generated at once
    num_cpus: float = Field(default=1, gt=0)  # per replica
    num_gpus: float = Field(default=0, ge=0)  # per replica; > 0 samples on CUDA
    batches_per_shard: int = Field(default=4, ge=1)  # a lost node costs its shards only
    max_retries: int = Field(default=3, ge=0)  # re-runs of a shard whose node died
    placement: Literal["SPREAD", "DEFAULT"] = "SPREAD"  # Ray scheduling strategy


class RayFinetune(Strict):
    """``compute.finetune``: the Ray Train ``TorchTrainer`` of the fine-tune."""

    num_workers: int = Field(default=2, ge=1)
    num_cpus_per_worker: float = Field(default=1, gt=0)
    gpus_per_worker: float = Field(default=0, ge=0)  # > 0: CUDA workers (nccl), else gloo
    storage_path: str | None = None  # checkpoints; shared storage (NFS, s3://) on a cluster
    placement: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    max_failures: int = Field(default=2, ge=0)  # restarts of the job when a worker is lost


class Compute(Strict):
    """Where the heavy stages run: ``local`` (this machine, the default) or ``ray``."""

    backend: Literal["local", "ray"] = "local"
    address: str | None = None  # auto, ray://host:port, host:port; empty: a local cluster
    verdicts: RayVerdicts = RayVerdicts()
    sampling: RaySampling = RaySampling()
    finetune: RayFinetune = RayFinetune()


class Endpoint(Strict):
    """An OpenAI-compatible endpoint; defaults are the client's (``endpoints.Endpoint``)."""

    base_url: str | None = None
    model: str | None = None
    api: Literal["chat", "completions"] = endpoints.Endpoint.api
    max_concurrency: int = Field(default=endpoints.Endpoint.max_concurrency, ge=1)
    max_retries: int = Field(default=endpoints.Endpoint.max_retries, ge=0)
    timeout_s: float = Field(default=endpoints.Endpoint.timeout_s, gt=0)
    cache_dir: str | None = None


class LLMFeedback(Endpoint):
    temperature: float = Field(ge=0)
    max_tokens: int = PositiveInt
    feedback_template: str
    refinement_template: str


class Feedback(Strict):
    source: Literal["human", "unrelated", "interpreter", "llm"]
    llm: LLMFeedback


class Refiner(Strict):
    kind: Literal["finetuned", "few_shot"]
    shots: int = Field(default=1, ge=1)
    endpoint: Endpoint | None = None


class Stage(Strict):
    split: str


class RefinerTraining(Stage):
    max_old_code_tokens: int = PositiveInt


class InitialSampling(Strict):
    splits: list[str] = Field(min_length=1)


class Method(Strict):
    name: str
    uses_feedback: bool


class Evaluation(Strict):
    splits: list[str] = Field(min_length=1)
    task_sets: list[str] = Field(min_length=1)
    task_set_formats: dict[str, Literal["mbpp", "humaneval"]] = {}
    methods: dict[str, Method]


class Model(Strict):
    device: str
    dtype: Literal["auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"]
    seed: int = Field(ge=0)
    tiny_config: dict[str, Any] = {}


class Server(Strict):
    """``sampling.server``; defaults are the backend's (``server_sampling.SERVER_DEFAULTS``)."""

    command: str
    health_path: str = SERVER_DEFAULTS["health_path"]
    startup_timeout_s: float = Field(default=SERVER_DEFAULTS["startup_timeout_s"], gt=0)
    max_concurrency: int = Field(default=SERVER_DEFAULTS["max_concurrency"], ge=1)
    max_retries: int = Field(default=SERVER_DEFAULTS["max_retries"], ge=0)
    timeout_s: float = Field(default=SERVER_DEFAULTS["timeout_s"], gt=0)
    log_path: str | None = None


class Sampling(Strict):
    num_samples: int = PositiveInt
    temperature: float = Field(ge=0)
    top_p: float = Field(gt=0, le=1)
    max_new_tokens: int = PositiveInt
    batch_size: int = PositiveInt
    seed: int = Field(ge=0)
    resume_dir: str | None = None
    backend: Literal["hf", "server", "ray"]
    server: Server
    stop_sequences: list[str]
    compute: dict[str, Any] = {}  # ${compute}: validated as the compute section


class Lora(Strict):
    r: int = PositiveInt
    alpha: float = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)
    target_modules: str | list[str]
    save: Literal["merged", "adapter"]


class Finetune(Strict):
    learning_rate: float = Field(gt=0)
    per_device_batch_size: int = PositiveInt
    gradient_accumulation_steps: int = PositiveInt
    num_epochs: float = Field(gt=0)
    max_seq_length: int = PositiveInt
    seed: int = Field(ge=0)
    gradient_checkpointing: bool | Literal["auto"]
    bf16: bool | Literal["auto"]
    master_dtype: Literal["float32", "bfloat16", "float16"]
    strategy: Literal["full", "lora"]
    lora: Lora
    num_processes: int = PositiveInt
    distributed: Literal["auto", "ddp", "fsdp"]
    compute: dict[str, Any] = {}  # ${compute}: validated as the compute section


class MemoryPlan(Strict):
    device_memory_gib: float | None = Field(default=None, gt=0)
    max_prompt_tokens: int | None = Field(default=None, ge=1)
    reserved_gib: float = Field(ge=0)


class Perplexity(Strict):
    refinements: Literal["passing", "all"]
    max_programs_per_source: int | None = Field(default=None, ge=1)
    batch_size: int = PositiveInt
    max_length: int = PositiveInt
    seed: int = Field(ge=0)


class Reporting(Strict):
    paper_reference: bool | dict[str, list[float]]
    perplexity: Perplexity


class WorldCorpus(Strict):
    size: int = PositiveInt
    seed: int = Field(ge=0)
    mistake_rates: dict[str, float]

    @model_validator(mode="after")
    def _rates(self) -> WorldCorpus:
        bad = {k: v for k, v in self.mistake_rates.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"parameter world.corpus.mistake_rates must be in [0, 1]: {bad}")
        return self


class WorldPretraining(Strict):
    epochs: int = PositiveInt
    learning_rate: float = Field(gt=0)
    batch_size: int = PositiveInt
    seed: int = Field(ge=0)
    threads: int | None = Field(default=None, ge=1)
    tiny_config: dict[str, Any]


class WorldAnnotator(Strict):
    splits: list[str] = Field(min_length=1)
    num_samples: int = PositiveInt
    fraction: float = Field(gt=0, le=1)
    seed: int = Field(ge=0)


class World(Strict):
    """The miniature world (``ilf_kedro.world``, pipeline ``world``)."""

    seed: int = Field(ge=0)
    num_tasks: int = PositiveInt
    families: list[str] = Field(min_length=1)
    corpus: WorldCorpus
    pretraining: WorldPretraining
    annotator: WorldAnnotator

    @model_validator(mode="after")
    def _families(self) -> World:
        from ilf_kedro.world.tasks import FAMILIES

        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise ValueError(
                f"parameter world.families names {unknown}; allowed: {sorted(FAMILIES)}"
            )
        return self


class Parameters(Strict):
    """Every parameter of ``conf/base`` (environments override values, not the shape)."""

    seed: int = Field(ge=0)
    max_tasks_per_split: int | None = Field(default=None, ge=1)
    splits: dict[str, tuple[int, int]]
    annotations: Annotations
    execution: Execution
    feedback: Feedback
    refiner: Refiner
    ablations: dict[str, Refiner]
    pass_at_k: list[int] = Field(min_length=1)
    initial_sampling: InitialSampling
    refiner_training: RefinerTraining
    refinement: Stage
    evaluation: Evaluation
    base_model: str
    model: Model
    sampling: Sampling
    finetune: Finetune
    memory_plan: MemoryPlan
    reporting: Reporting
    rounds: int = PositiveInt
    max_rounds: int = PositiveInt
    compute: Compute = Compute()
    input_pipelines: list[str] = Field(default_factory=list)
    world: World

    @model_validator(mode="after")
    def _splits_exist(self) -> Parameters:
        named = {
            "initial_sampling.splits": self.initial_sampling.splits,
            "refiner_training.split": [self.refiner_training.split],
            "refinement.split": [self.refinement.split],
            "evaluation.splits": self.evaluation.splits,
            "world.annotator.splits": self.world.annotator.splits,
        }
        for key, used in named.items():
            unknown = [s for s in used if s not in self.splits]
            if unknown:
                raise ValueError(
                    f"parameter {key} names split(s) {unknown}; allowed: {sorted(self.splits)}"
                )
        return self

    @model_validator(mode="after")
    def _ray_settings(self) -> Parameters:
        on_ray = [
            f"{key}=ray"
            for key, backend in (
                ("compute.backend", self.compute.backend),
                ("sampling.backend", self.sampling.backend),
            )
            if backend == "ray"
        ]
        if on_ray and not ray_available():
            raise ValueError(
                f"parameter {' and '.join(on_ray)} needs Ray, which is not installed; "
                f"install the extra: {RAY_EXTRA} (or set compute.backend: local)"
            )
        if self.compute.backend == "ray":
            workers = self.compute.finetune.num_workers
            if self.finetune.num_processes > 1:
                raise ValueError(
                    "parameter finetune.num_processes is for accelerate on one machine; with "
                    "compute.backend=ray the fine-tune runs compute.finetune.num_workers "
                    f"Ray Train workers: set finetune.num_processes=1 (it is "
                    f"{self.finetune.num_processes})"
                )
            if self.finetune.gradient_accumulation_steps % workers:
                raise ValueError(
                    f"parameter finetune.gradient_accumulation_steps="
                    f"{self.finetune.gradient_accumulation_steps} must be a multiple of "
                    f"compute.finetune.num_workers={workers} to keep the effective batch"
                )
        return self


def _known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        keys.append(prefix + name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _known_keys(annotation, f"{prefix}{name}.")
    return keys


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        known = [*_known_keys(Parameters), *CATALOG_URIS]
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"unknown parameter {key}{hint}"
    if error["type"] == "missing":
        return f"parameter {key} is missing"
    if error["type"] == "value_error":
        return error["msg"].removeprefix("Value error, ")
    return f"parameter {key} is {error.get('input')!r}: {error['msg']}"


def validate_parameters(params: dict[str, Any]) -> Parameters:
    """The run's parameters as :class:`Parameters`, or one ``ValueError`` listing every
    unknown key (with the closest known one), wrong type and out-of-range value.

    Top-level ``*_uri`` keys (``mbpp_uri``, ``annotations_uri``, ``humaneval_uri``, a user's
    own set's) are where ``--params`` points catalog entries, not parameters: skipped."""
    params = {k: v for k, v in params.items() if not (k.endswith("_uri") and isinstance(v, str))}
    try:
        return Parameters.model_validate(params)
    except ValidationError as err:
        problems = "\n  - ".join(_describe(e) for e in err.errors())
        raise ValueError(f"bad parameters:\n  - {problems}") from None
