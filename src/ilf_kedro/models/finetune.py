"""One supervised fine-tune for pi_Refine and pi_theta*: prompt -> completion, loss on the
completion (and EOS) only, built on transformers' ``Trainer``.

:func:`finetune` builds the :class:`~ilf_kedro.models.finetune_job.FinetuneJob` once and
hands it to a launcher: :class:`InProcess`, :class:`~ilf_kedro.models.distributed.Accelerate`
(``finetune.num_processes`` > 1), or one the caller gives (the Kedro nodes give
``ilf_kedro.compute.ray_train.RayTrain`` with ``compute.backend: ray``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ilf_kedro.parameters import Finetune, section

from .distributed import Accelerate
from .finetune_job import FinetuneJob, Launcher, Ranks, train_rank
from .loading import ModelBundle

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InProcess:
    """The launcher of one process: the job's one rank runs here, on the bundle's device."""

    def launch(self, job: FinetuneJob, bundle: ModelBundle, pairs: pd.DataFrame) -> ModelBundle:
        ranks = Ranks(device=bundle.device.type)
        return train_rank(job, bundle, pairs, ranks, bundle.device, save_to=job.output_dir)


def local_launcher(settings: Finetune) -> Launcher:
    """The launcher on this machine: :class:`InProcess`, or ``accelerate`` ranks when
    ``finetune.num_processes`` > 1."""
    if settings.num_processes > 1:
        return Accelerate(settings.num_processes)
    return InProcess()


def finetune(
    bundle: ModelBundle,
    pairs: pd.DataFrame,
    params: Finetune | Mapping[str, Any] | None = None,
    *,
    launcher: Launcher | None = None,
    output_dir: str | None = None,
    copy_model: bool = True,
    progress: bool = True,
    trainer_kwargs: dict[str, Any] | None = None,
    **overrides: Any,
) -> ModelBundle:
    """Fine-tune a causal LM on (prompt, completion) pairs; loss on completion + EOS only.

    Args:
        bundle: The model to start from (``load_model``/``HFModelDataset``).
        pairs: Columns ``prompt`` and ``completion``; rows with a missing value are
            dropped. Truncation follows ``encode_example``.
        params: The ``finetune`` parameters (``ilf_kedro.parameters.Finetune``: their
            defaults, the paper's, and rules); ``overrides`` (e.g. ``num_epochs=3``)
            replace some of them. ``gradient_accumulation_steps`` is the total over all
            processes; ``seed`` seeds shuffling and dropout; ``lr_scheduler_type``,
            ``warmup_steps`` and ``weight_decay`` go to ``TrainingArguments``;
            ``gradient_checkpointing`` and ``bf16`` ``auto`` turn each on when training
            on CUDA; ``master_dtype`` (``full``): the dtype the weights train in, cast
            back to the bundle's after; ``strategy`` ``full`` (every weight) or ``lora``
            (a PEFT adapter on the frozen base model, trained in place and restored
            after, so its weights are never copied on the device); ``lora.save``
            ``merged`` returns the base weights with the adapter merged in, ``adapter`` a
            PEFT model, which ``save_bundle`` writes as the adapter plus a reference to
            its base; ``num_processes`` > 1 trains in that many processes launched with
            ``accelerate`` (``distributed``: ``ddp``, ``fsdp`` or ``auto``, from the
            memory plan).
        launcher: Where the job runs (a :class:`~ilf_kedro.models.finetune_job.Launcher`);
            None: :func:`local_launcher` of the settings.
        output_dir: When given, the trained model, tokenizer and info are also saved
            there (and it is the Trainer's directory in one process).
        copy_model: ``full`` in one process: train a copy so ``bundle`` stays the base
            model (a base model in memory is shared by several stages). The base model
            waits on the CPU meanwhile, so the device never holds two full copies.
            ``False`` trains in place.
        progress: Show the Trainer's progress bar.
        trainer_kwargs: Extra ``TrainingArguments`` (override everything above).

    Returns:
        A new ``ModelBundle`` in eval mode with ``info`` from ``bundle`` plus
        ``training_examples``, ``prompt_tokens_truncated_examples``, ``train_loss``,
        ``train_steps``, ``loss_curve`` and ``finetune`` (the hyperparameters). With no
        usable pairs nothing is trained: a warning is logged and the base model is
        returned with ``training_examples = 0`` and ``untrained_reason`` set.
    """
    settings = section(Finetune, params, "finetune", **overrides)
    usable = _usable_pairs(pairs)
    if usable.empty:
        return _untrained(bundle)
    job = FinetuneJob.build(
        bundle,
        settings,
        output_dir=output_dir,
        copy_model=copy_model,
        progress=progress,
        trainer_kwargs=dict(trainer_kwargs or {}),
    )
    launcher = launcher or local_launcher(settings)
    return launcher.launch(job, bundle, usable[["prompt", "completion"]])


def _usable_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs with both a prompt and a completion (a warning counts those dropped);
    raises ``ValueError`` when either column is missing."""
    missing = {"prompt", "completion"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs is missing column(s) {sorted(missing)}")
    usable = pairs.dropna(subset=["prompt", "completion"])
    if len(usable) < len(pairs):
        logger.warning(
            "Dropped %d pair(s) with a missing prompt/completion", len(pairs) - len(usable)
        )
    return usable


def _untrained(bundle: ModelBundle) -> ModelBundle:
    """The base model, returned unchanged with a warning, when there is nothing to train on."""
    reason = "the training set is empty (no pairs to fine-tune on); this is the base model"
    logger.warning("NOT fine-tuning: %s, returned unchanged.", reason)
    info = {**bundle.info, "training_examples": 0, "untrained_reason": reason}
    return ModelBundle(model=bundle.model, tokenizer=bundle.tokenizer, info=info)
