"""The project's parameters: one pydantic model per ``conf/base/parameters*.yml`` section,
owning its defaults and its rules (cross-field rules are validators).

Nodes take these models as the type of their ``params:`` inputs, so Kedro's parameter
validation hands them the validated objects. The project's hook first validates the whole
tree with :func:`validate_parameters` when the context is created, before Kedro builds
anything, so every problem is reported at once in one style, each with its dotted key and
what is allowed, and a typo gets the closest known key (``sampling.num_sample`` -> did
you mean ``sampling.num_samples``?). Library functions that take settings as keywords
validate them with :func:`section`, in the same style.

Plain Python and pydantic: no Kedro, no torch.
"""

from __future__ import annotations

import difflib
import importlib.util
import shlex
import string
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

PositiveInt = Field(ge=1)
# A list parameter the Kedro CLI can pass: --params="evaluation.task_sets=mbpp humaneval"
# gives one string, its items separated by spaces.
SpaceSeparated = BeforeValidator(lambda value: value.split() if isinstance(value, str) else value)
# Runtime parameters that point catalog entries at files (``${runtime_params:...}``).
CATALOG_URIS = ("mbpp_uri", "annotations_uri", "humaneval_uri")

FeedbackSource = Literal["human", "unrelated", "interpreter", "llm"]
SOURCES: tuple[str, ...] = FeedbackSource.__args__
# Sources that need the released (or an imported) annotation file.
HUMAN_SOURCES = ("human", "unrelated")
# Sources that write feedback on the base model's own failing samples (Algorithm 1, step 1).
AUTOMATIC_SOURCES = ("interpreter", "llm")
# Fields a feedback or refinement template may use (``feedback.llm.*_template``).
TEMPLATE_FIELDS = ("task", "prompt", "program", "verdict", "feedback", "entry_point")
API_KEY_ENV = "OPENAI_API_KEY"
RAY_EXTRA = 'pip install -e ".[ray]"'  # how to install Ray (``compute.backend: ray``)


class ParameterError(ValueError):
    """Bad parameters: every problem, one per line, each naming its dotted key."""


def problem(key: str, text: str) -> PydanticCustomError:
    """A rule's error for ``key`` (relative to the model that raises it): reads
    ``parameter <section>.<key> <text>`` once the section's place is known."""
    return PydanticCustomError("parameter", "{key} {text}", {"key": key, "text": text})


class Strict(BaseModel):
    """Unknown keys are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid")


class Annotations(Strict):
    """``annotations``: the paper's filters on human annotations."""

    max_edit_distance: float | None = Field(default=0.5, gt=0, le=1)
    seed: int = Field(default=0, ge=0)


class RayVerdicts(Strict):
    """``compute.verdicts``: one Ray task judges a shard of programs in its own sandbox."""

    num_cpus: int = Field(default=1, ge=1)  # CPUs per task = programs it runs at once
    programs_per_task: int = Field(default=64, ge=1)  # shard size
    max_retries: int = Field(default=3, ge=0)  # re-runs of a shard whose node died
    placement: Literal["SPREAD", "DEFAULT"] = "SPREAD"  # Ray scheduling strategy


class RaySampling(Strict):
    """``compute.sampling``: model replicas for ``sampling.backend: ray``. ``engine``:
    ``hf``, the project's sampler in Ray tasks over shards of batches; ``server``, one Ray
    actor per replica running ``sampling.server.command`` on its node (``vllm serve`` on
    GPUs, ``transformers serve`` on CPU), sampled through the endpoint client."""

    engine: Literal["hf", "server"] = "hf"
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


class Execution(Strict):
    """``execution``: how programs are run against unit tests (``ilf_kedro.execution``)."""

    timeout_s: float = Field(default=3.0, gt=0)
    time_limit_floor_s: float = Field(default=3.0, gt=0)
    time_limit_factor: float = Field(default=4.0, gt=0)
    calibration_timeout_s: float = Field(default=60.0, gt=0)
    workers: int | None = Field(default=None, ge=1)
    memory_mb: int = Field(default=2048, ge=64)
    max_processes: int = Field(default=64, ge=1)
    max_file_mb: int = Field(default=16, ge=0)
    max_result_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    progress: bool = True


class Endpoint(Strict):
    """An OpenAI-compatible endpoint (``feedback.llm``, ``refiner.endpoint``)."""

    base_url: str | None = None
    model: str | None = None
    api: Literal["chat", "completions"] = "chat"
    max_concurrency: int = Field(default=4, ge=1)
    max_retries: int = Field(default=4, ge=0)
    timeout_s: float = Field(default=120.0, gt=0)
    cache_dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_keys(cls, values: Any) -> Any:
        if isinstance(values, Mapping) and "api_key" in values:
            raise problem(
                "api_key",
                "must not be set: keys never go in parameters; put it in "
                f"conf/local/credentials.yml (openai: {{api_key: ...}}) or ${API_KEY_ENV}",
            )
        return values

    def check_reachable(self, key: str) -> None:
        """Raise :func:`problem` for ``key`` when ``base_url`` or ``model`` is not set."""
        for name in ("base_url", "model"):
            if not getattr(self, name):
                raise problem(
                    f"{key}.{name}",
                    "is not set; an OpenAI-compatible endpoint needs base_url "
                    "(e.g. http://127.0.0.1:8000/v1) and model",
                )


def check_template(template: str, key: str, allowed: tuple[str, ...] = TEMPLATE_FIELDS) -> str:
    """``template`` if every ``{field}`` it uses is allowed, else :func:`problem`."""
    if not template.strip():
        raise problem(key, "must be a non-empty template string")
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as err:
        raise problem(key, f"is not a valid template: {err}") from err
    unknown = sorted(used - set(allowed))
    if unknown:
        fields = ", ".join("{" + name + "}" for name in allowed)
        raise problem(key, f"uses unknown field(s) {unknown}; allowed: {fields}")
    return template


class LLMFeedback(Endpoint):
    """``feedback.llm``: the endpoint, its sampling settings and the two templates."""

    temperature: float = Field(default=0.0, ge=0)
    max_tokens: int = Field(default=256, ge=1)
    feedback_template: str
    refinement_template: str


class Feedback(Strict):
    """``feedback``: where feedback on failing programs comes from."""

    source: FeedbackSource = "human"
    llm: LLMFeedback

    @model_validator(mode="after")
    def _llm_is_usable(self) -> Feedback:
        if self.source == "llm":
            self.llm.check_reachable("llm")
            # The feedback is not written yet when its own prompt is filled in.
            before_feedback = tuple(f for f in TEMPLATE_FIELDS if f != "feedback")
            check_template(self.llm.feedback_template, "llm.feedback_template", before_feedback)
            check_template(self.llm.refinement_template, "llm.refinement_template")
        return self


class Refiner(Strict):
    """``refiner`` (and each ``ablations.*``): pi_Refine's kind, shots and endpoint."""

    kind: Literal["finetuned", "few_shot"] = "finetuned"
    shots: int = Field(default=1, ge=1)
    endpoint: Endpoint | None = None

    @model_validator(mode="after")
    def _endpoint_fits_the_kind(self) -> Refiner:
        if self.endpoint is None:
            return self
        if self.kind == "finetuned":
            raise problem(
                "endpoint",
                "is set but kind is finetuned: a fine-tuned pi_Refine runs locally; use "
                "kind few_shot for a refiner behind an endpoint",
            )
        self.endpoint.check_reachable("endpoint")
        return self

    def describe(self) -> str:
        """A short label: ``fine-tuned pi_Refine``, ``2-shot base model``, ``1-shot gpt-x``."""
        if self.kind == "finetuned":
            return "fine-tuned pi_Refine"
        who = (self.endpoint.model if self.endpoint else None) or "base model"
        return f"{self.shots}-shot {who}"


class Stage(Strict):
    split: str


class RefinerTraining(Stage):
    max_old_code_tokens: int = Field(default=512, ge=1)


class InitialSampling(Strict):
    splits: list[str] = Field(min_length=1)


class RejectionSampling(Strict):
    """``rft``: rejection-sampling fine-tuning (STaR, RFT, ReST-EM), the baseline without
    feedback: pi_theta fine-tuned on its own zero-shot samples that pass their tests, on
    the tasks of ``refinement.split`` (ILF's) where one does. ``samples_per_task``: passing
    samples kept per task (at random); ``dedupe``: each distinct program at most once."""

    samples_per_task: int = Field(default=1, ge=1)
    dedupe: bool = True
    seed: int = Field(default=0, ge=0)


class Method(Strict):
    """``evaluation.methods.<namespace>``: the row label and whether it used feedback."""

    name: str
    uses_feedback: bool


class Evaluation(Strict):
    splits: list[str] = Field(default=["test"], min_length=1)
    task_sets: Annotated[list[str], SpaceSeparated] = Field(default=["mbpp"], min_length=1)
    task_set_formats: dict[str, Literal["mbpp", "humaneval"]] = {}
    methods: dict[str, Method]


class Model(Strict):
    """``model``: where and how the base model loads."""

    device: str = "auto"
    dtype: Literal["auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"] = "auto"
    seed: int = Field(default=0, ge=0)
    tiny_config: dict[str, Any] = {}


class Server(Strict):
    """``sampling.server``: the ``server`` backend's OpenAI-compatible server."""

    # {model}: the model directory; {host}, {port}: where the server must listen.
    command: str = "transformers serve {model} --host {host} --port {port}"
    health_path: str = "/health"
    startup_timeout_s: float = Field(default=300.0, gt=0)
    max_concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=4, ge=0)
    timeout_s: float = Field(default=600.0, gt=0)
    log_path: str | None = None

    @field_validator("command")
    @classmethod
    def _has_fields(cls, command: str) -> str:
        for field in ("{model}", "{port}"):
            if field not in command:
                raise ValueError(f"must contain {field} (and may use {{host}})")
        return command


def runs_vllm(command: str) -> bool:
    """Whether a server command starts vLLM (``vllm serve``, ``python -m vllm...``)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return any(w.rsplit("/", 1)[-1] == "vllm" or w.startswith("vllm.") for w in words)


class Sampling(Strict):
    """``sampling``: the one sampler of every stage. Library callers that give no stop
    sequences and no ``resume_dir`` get EOS / ``max_new_tokens`` stops and no shards."""

    num_samples: int = Field(default=10, ge=1)
    temperature: float = Field(default=0.8, ge=0)  # 0: greedy
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_new_tokens: int = Field(default=64, ge=1)
    batch_size: int = Field(default=16, ge=1)
    seed: int = Field(default=0, ge=0)
    resume_dir: str | None = None
    backend: Literal["hf", "server", "ray"] = "hf"
    server: Server = Server()
    stop_sequences: list[str] = []  # null or []: EOS and max_new_tokens only

    @field_validator("stop_sequences", mode="before")
    @classmethod
    def _none_is_no_stop(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def generation(self) -> dict[str, Any]:
        """What decides the samples (the sampler's shard key and an endpoint's request)."""
        return {
            "num_samples": self.num_samples,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "batch_size": self.batch_size,
            "stop_sequences": [s for s in self.stop_sequences if s],
            "seed": self.seed,
            "backend": self.backend,
        }


# transformers' learning-rate schedules that need no arguments besides the warm-up.
LrScheduler = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
]


class Lora(Strict):
    """``finetune.lora``. ``target_modules``: ``all-linear`` or module names, each a name
    suffix (a single name too) for both PEFT and the memory plan."""

    r: int = Field(default=16, ge=1)
    alpha: float = Field(default=32, gt=0)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    save: Literal["merged", "adapter"] = "merged"


class Finetune(Strict):
    """``finetune``: the one fine-tune (the paper's hyperparameters by default)."""

    learning_rate: float = Field(default=5e-6, gt=0)
    per_device_batch_size: int = Field(default=1, ge=1)
    gradient_accumulation_steps: int = Field(default=32, ge=1)  # total over processes
    num_epochs: float = Field(default=2, gt=0)
    max_seq_length: int = Field(default=1024, ge=1)
    seed: int = Field(default=0, ge=0)
    lr_scheduler_type: LrScheduler = "linear"  # transformers' name of the schedule
    warmup_steps: int = Field(default=0, ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    # transformers' batch order: random, or group_by_length (similar lengths per batch, so
    # little padding: worth it where a batch holds several sequences)
    train_sampling_strategy: Literal["random", "group_by_length"] = "random"
    gradient_checkpointing: bool | Literal["auto"] = "auto"  # auto: on with CUDA
    bf16: bool | Literal["auto"] = "auto"  # auto: bf16 autocast with CUDA
    master_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    strategy: Literal["full", "lora"] = "full"
    lora: Lora = Lora()
    num_processes: int = Field(default=1, ge=1)
    distributed: Literal["auto", "ddp", "fsdp"] = "auto"


class MemoryPlan(Strict):
    device_memory_gib: float | None = Field(default=None, gt=0)
    max_prompt_tokens: int | None = Field(default=None, ge=1)
    reserved_gib: float = Field(default=2.0, ge=0)  # GiB kept free per device


class Perplexity(Strict):
    """``reporting.perplexity``: Figure 3's perplexities under the base model."""

    refinements: Literal["passing", "all"] = "passing"
    max_programs_per_source: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=8, ge=1)
    max_length: int = Field(default=1024, ge=1)
    seed: int = Field(default=0, ge=0)


class Distribution(Strict):
    """``reporting.distribution``: the paper's theory measured where a dataset holds
    every candidate program of each task (``task_id``, ``correct``, ``program``)."""

    candidates: str | None = None  # that dataset's catalog name; null: not measured
    test_split: str = "test"  # mass on the right programs, KL from the target
    train_split: str = "train"  # KL from the base model
    max_tasks_per_split: int | None = Field(default=100, ge=1)
    batch_size: int = Field(default=32, ge=1)
    seed: int = Field(default=0, ge=0)


class Reporting(Strict):
    paper_reference: bool | dict[str, list[float]] = False
    perplexity: Perplexity = Perplexity()
    distribution: Distribution = Distribution()


# The kinds of slip the world's families know (ilf_kedro.world.tasks.MISTAKE_KINDS; a test
# keeps the two equal).
MistakeKind = Literal[
    "strictness", "inclusion", "direction", "off_by_one", "past_end", "wrong_power",
    "order", "order_reversed", "key", "wrong_end", "slice_length", "negation",
    "negation_added", "wrong_constant", "wrong_operator", "operand_order", "min_max",
    "min_max_reversed",
]  # fmt: skip


# The ways the world writes a meaning (ilf_kedro.world.tasks.STYLES; a test keeps the two
# equal).
WorldStyle = Literal["expression", "loop", "helper", "indexed"]


class WorldCorpus(Strict):
    size: int = PositiveInt
    seed: int = Field(ge=0)
    mistake_rates: dict[MistakeKind, Annotated[float, Field(ge=0, le=1)]]
    # The corpus's mix of styles (weights, normalised; a style left out is never used).
    styles: dict[WorldStyle, Annotated[float, Field(ge=0)]] = Field(min_length=1)
    # Share of examples that repeat a program after its prompt again (copying from context,
    # which web code teaches a real model; ilf_kedro.world.generate.generate_corpus).
    repeat_rate: float = Field(ge=0, le=1)

    @field_validator("styles")
    @classmethod
    def _some_weight(cls, styles: dict[str, float]) -> dict[str, float]:
        if sum(styles.values()) <= 0:
            raise ValueError(f"has {styles}; allowed: weights >= 0 with a positive sum")
        return styles


class WorldGoldAuthor(Strict):
    """Who writes the task set's gold programs (``mbpp_raw``'s ``code``): at ``distance``
    0 an author who writes like the corpus, at 1 one who writes only in the styles the
    corpus never uses, in between a blend of the two."""

    distance: float = Field(default=0.0, ge=0, le=1)


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


class Sweep(Strict):
    """``sweep``: the shares of the annotations ``ilf_sweep`` fine-tunes on (the full run
    is the 100% point), and the seed that picks them."""

    shares: Annotated[list[float], SpaceSeparated] = Field(min_length=1)
    seed: int = Field(ge=0)

    @field_validator("shares")
    @classmethod
    def _shares(cls, shares: list[float]) -> list[float]:
        bad = [s for s in shares if not 0.0 < s < 1.0]
        if bad:
            raise ValueError(f"has {bad}; allowed: shares strictly between 0 and 1")
        percents = [round(s * 100) for s in shares]
        if len(set(percents)) != len(percents) or 0 in percents or 100 in percents:
            raise ValueError(
                f"has {shares}, whose whole percents {percents} repeat or reach 0 or 100; "
                "allowed: distinct shares from 0.01 to 0.99 (each names its namespace "
                "sweep_<percent>)"
            )
        return sorted(shares)


# The world's task families (ilf_kedro.world.tasks.FAMILIES; a test keeps the two equal).
WorldFamily = Literal[
    "select_elements", "count_words", "range_total", "order_list", "string_slice",
    "count_multiples", "shift_elements", "extreme_value",
]  # fmt: skip


class World(Strict):
    """The miniature world (``ilf_kedro.world``, pipeline ``world``)."""

    seed: int = Field(ge=0)
    num_tasks: int = PositiveInt
    families: list[WorldFamily] = Field(min_length=1)
    corpus: WorldCorpus
    gold_author: WorldGoldAuthor = WorldGoldAuthor()
    pretraining: WorldPretraining
    annotator: WorldAnnotator

    @model_validator(mode="after")
    def _gold_author_has_a_style(self) -> World:
        styles = self.corpus.styles
        unused = [s for s in WorldStyle.__args__ if not styles.get(s)]
        if self.gold_author.distance > 0 and not unused:
            raise problem(
                "gold_author.distance",
                f"is {self.gold_author.distance}, but world.corpus.styles {styles} uses "
                "every style; allowed: 0, or leave some style out of the corpus (weight 0)",
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
    rft: RejectionSampling = RejectionSampling()
    evaluation: Evaluation
    base_model: str
    model: Model
    sampling: Sampling
    finetune: Finetune
    memory_plan: MemoryPlan
    reporting: Reporting
    rounds: int  # 1 to max_rounds: checked with max_rounds, below
    max_rounds: int = PositiveInt
    compute: Compute = Compute()
    input_pipelines: list[str] = Field(default_factory=list)
    world: World
    sweep: Sweep

    @model_validator(mode="after")
    def _splits_exist(self) -> Parameters:
        named = {
            "initial_sampling.splits": self.initial_sampling.splits,
            "refiner_training.split": [self.refiner_training.split],
            "refinement.split": [self.refinement.split],
            "evaluation.splits": self.evaluation.splits,
            "world.annotator.splits": self.world.annotator.splits,
            "reporting.distribution.test_split": [self.reporting.distribution.test_split],
            "reporting.distribution.train_split": [self.reporting.distribution.train_split],
        }
        for key, used in named.items():
            unknown = [s for s in used if s not in self.splits]
            if unknown:
                raise problem(key, f"names split(s) {unknown}; allowed: {sorted(self.splits)}")
        return self

    @model_validator(mode="after")
    def _enough_shots(self) -> Parameters:
        cap = self.max_tasks_per_split
        refiners = {"refiner": self.refiner}
        refiners.update({f"ablations.{name}": r for name, r in self.ablations.items()})
        for key, refiner in refiners.items():
            if refiner.kind == "few_shot" and cap is not None and refiner.shots > cap:
                raise problem(
                    f"{key}.shots",
                    f"is {refiner.shots} but max_tasks_per_split={cap} leaves at most {cap} "
                    f"refine-split example(s); allowed: shots <= {cap}",
                )
        return self

    @model_validator(mode="after")
    def _rounds_within_the_cap(self) -> Parameters:
        if not 1 <= self.rounds <= self.max_rounds:
            raise problem(
                "rounds", f"is {self.rounds}; allowed: 1 to max_rounds ({self.max_rounds})"
            )
        return self

    @model_validator(mode="after")
    def _ray_settings(self) -> Parameters:
        for key, backend, other in (
            ("compute.backend", self.compute.backend, "local"),
            ("sampling.backend", self.sampling.backend, "hf"),
        ):
            if backend == "ray" and importlib.util.find_spec("ray") is None:
                raise problem(
                    key,
                    f"is ray, which needs Ray, not installed here; install the extra: "
                    f"{RAY_EXTRA} (or set {key}: {other})",
                )
        if self.compute.backend == "ray":
            workers = self.compute.finetune.num_workers
            if self.finetune.num_processes > 1:
                raise problem(
                    "finetune.num_processes",
                    f"is {self.finetune.num_processes}, but it is for accelerate on one "
                    "machine; with compute.backend=ray the fine-tune runs "
                    "compute.finetune.num_workers Ray Train workers; allowed: 1",
                )
            if self.finetune.gradient_accumulation_steps % workers:
                raise problem(
                    "finetune.gradient_accumulation_steps",
                    f"is {self.finetune.gradient_accumulation_steps}; allowed: a multiple of "
                    f"compute.finetune.num_workers ({workers}), to keep the effective batch",
                )
        replicas = self.compute.sampling
        serving = self.sampling.backend == "ray" and replicas.engine == "server"
        if serving and replicas.num_gpus <= 0 and runs_vllm(self.sampling.server.command):
            raise problem(
                "compute.sampling.num_gpus",
                f"is {replicas.num_gpus}, but each replica runs sampling.server.command "
                f"`{self.sampling.server.command}`, and vLLM needs a GPU per replica; allowed: "
                "compute.sampling.num_gpus > 0, or a CPU server (transformers serve), or "
                "compute.sampling.engine: hf",
            )
        return self


def check_rounds_source(source: str) -> None:
    """``ilf_rounds`` gives each round feedback on its own model's failures: the feedback
    source must be automatic."""
    if source not in AUTOMATIC_SOURCES:
        raise ParameterError(
            f"bad parameters:\n  - parameter feedback.source is {source!r}, but ilf_rounds "
            "gives each round feedback on its own model's failures; allowed: "
            f"{', '.join(AUTOMATIC_SOURCES)} (for new human feedback, see docs/feedback.md, "
            "'Collect feedback on your model')"
        )


def _known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        keys.append(prefix + name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _known_keys(annotation, f"{prefix}{name}.")
    return keys


def _describe(error: dict, model: type[BaseModel], where: str) -> str:
    path = [where] if where else []
    path += [str(part) for part in error["loc"]]
    if error["type"] == "parameter":
        path.append(error["ctx"]["key"])
        return f"parameter {'.'.join(path)} {error['ctx']['text']}"
    key = ".".join(path)
    if error["type"] == "extra_forbidden":
        known = [f"{where}.{k}" if where else k for k in _known_keys(model)]
        close = difflib.get_close_matches(key, [*known, *CATALOG_URIS], n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"unknown parameter {key}{hint}"
    if error["type"] == "missing":
        return f"parameter {key} is missing"
    message = error["msg"].removeprefix("Value error, ")
    return f"parameter {key} is {error.get('input')!r}: {message}"


Section = TypeVar("Section", bound=BaseModel)


def section(
    model: type[Section],
    values: Section | Mapping[str, Any] | None = None,
    where: str = "",
    /,
    **overrides: Any,
) -> Section:
    """``values`` (a validated section, a mapping or None: the defaults) with
    ``overrides`` applied, validated as ``model``; a :class:`ParameterError` names each
    bad key under ``where`` (e.g. ``finetune``)."""
    if isinstance(values, model) and not overrides:
        return values
    if isinstance(values, BaseModel):
        values = values.model_dump(exclude_unset=True)
    try:
        return model.model_validate({**(values or {}), **overrides})
    except ValidationError as err:
        problems = "\n  - ".join(_describe(e, model, where) for e in err.errors())
        raise ParameterError(f"bad parameters:\n  - {problems}") from None


def validate_parameters(params: Mapping[str, Any]) -> Parameters:
    """The run's parameters as :class:`Parameters`, or one :class:`ParameterError` listing
    every unknown key (with the closest known one), wrong type, out-of-range value and
    broken rule.

    Top-level ``*_uri`` keys (``mbpp_uri``, ``annotations_uri``, ``humaneval_uri``, a user's
    own set's) are where ``--params`` points catalog entries, not parameters: skipped."""
    params = {k: v for k, v in params.items() if not (k.endswith("_uri") and isinstance(v, str))}
    return section(Parameters, params)
