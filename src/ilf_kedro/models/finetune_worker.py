"""One rank of a multi-process fine-tune, started by ``accelerate launch`` (see
``distributed``): ``python -m ilf_kedro.models.finetune_worker LAUNCH_SPEC.json``.

Every rank loads the base model, trains under DDP or FSDP through the ``Trainer`` and, on
failure, writes its exception to ``errors/rank<N>.json``; rank 0 saves the trained model
as a ``save_bundle`` directory.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from .distributed import LaunchSpec, RankError
from .loading import INFO_FILENAME, load_model, resolve_dtype
from .trainer import TrainSettings, encode_pairs, run_trainer, with_lora

logger = logging.getLogger("ilf_kedro.finetune_worker")


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _trainer_kwargs(spec: LaunchSpec, model) -> dict:
    extra = {"ddp_backend": "gloo" if spec.device == "cpu" else "nccl"}
    if spec.distributed == "fsdp":
        blocks = getattr(model, "_no_split_modules", None) or []
        extra.update(
            fsdp="full_shard auto_wrap",
            fsdp_config={"transformer_layer_cls_to_wrap": list(blocks)},
        )
    else:
        extra["ddp_find_unused_parameters"] = False
    return extra


def train(spec: LaunchSpec) -> None:
    """This rank's part: load, train, and (rank 0) save the result."""
    load_dtype = spec.master_dtype if spec.strategy == "full" else spec.model_dtype
    base = load_model(
        **spec.base,  # spec (+ tiny_config, seed): see io.base_reference
        device="cpu",  # the Trainer places (or shards) the model on this rank's device
        dtype=load_dtype or spec.model_dtype,
    )
    model = base.model
    if spec.strategy == "lora":
        model = with_lora(model, spec.lora, spec.settings["seed"])
    pairs = pd.read_parquet(spec.pairs_path)
    encoded, n_truncated = encode_pairs(base.tokenizer, pairs, spec.max_seq_length)
    settings = TrainSettings(
        **{**spec.settings, "trainer_kwargs": {**spec.settings["trainer_kwargs"]}}
    )
    settings.trainer_kwargs.update(_trainer_kwargs(spec, base.model))
    logger.info(
        "%s fine-tune (%s) of %s on %d example(s), %d accumulation step(s) per rank",
        spec.strategy,
        spec.distributed,
        spec.base["spec"],
        len(encoded),
        settings.gradient_accumulation_steps,
    )
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if spec.device == "cpu":
        device = torch.device("cpu")
    gathered: dict = {}

    def gather(trainer) -> None:
        # A collective under FSDP: every rank takes part, rank 0 receives the full dict.
        gathered["state"] = trainer.accelerator.get_state_dict(trainer.model)

    outcome = run_trainer(model, encoded, base.tokenizer, settings, device, finish=gather)
    if _rank() == 0:
        info = outcome.info(spec.base_info, len(encoded), n_truncated, spec.hyper)
        _save(spec, base, outcome.model, gathered["state"], info)
    _leave_process_group()


def _leave_process_group() -> None:
    """Every rank waits for rank 0's save, then closes the process group. A rank that
    exits with its gloo group still open can abort in the group's destructor while its peer
    is still at work (seen in CI: rank 1 died of SIGABRT while rank 0 saved)."""
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def _save(spec: LaunchSpec, base, model, state: dict, info: dict) -> None:
    from .io import save_bundle
    from .loading import ModelBundle

    dtype = resolve_dtype(spec.model_dtype)
    if spec.strategy == "lora":
        from peft import set_peft_model_state_dict

        model = model.cpu()
        set_peft_model_state_dict(model, {k: v for k, v in state.items() if "lora_" in k})
        if spec.lora["save"] == "merged":
            model = model.merge_and_unload()
        else:
            info["adapter_base"] = spec.adapter_base  # the caller's base, not the ranks' copy
        save_bundle(ModelBundle(model.to(dtype=dtype), base.tokenizer, info), spec.output_dir)
        return
    out = Path(spec.output_dir)
    out.mkdir(parents=True)
    # Under FSDP the module holds only this rank's shard: save the gathered full state.
    unwrapped = model.to(dtype=dtype) if spec.distributed == "ddp" else model
    unwrapped.save_pretrained(out, state_dict={k: v.to(dtype) for k, v in state.items()})
    base.tokenizer.save_pretrained(out)
    info["dtype"] = spec.model_dtype
    (out / INFO_FILENAME).write_text(json.dumps(info, indent=2, sort_keys=True, default=str))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.INFO,
        format=f"[rank {_rank()}] %(levelname)s %(name)s: %(message)s",
    )
    spec = LaunchSpec.read(args[0])
    try:
        train(spec)
    except BaseException as exc:
        error = RankError(
            rank=_rank(),
            type=type(exc).__name__,
            message=str(exc),
            traceback=traceback.format_exc(limit=-8),
        )
        errors = Path(spec.errors_dir)
        errors.mkdir(parents=True, exist_ok=True)
        (errors / f"rank{error.rank}.json").write_text(json.dumps(asdict(error)))
        logger.error("%s: %s", error.type, error.message)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
