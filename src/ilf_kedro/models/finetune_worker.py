"""One rank of a multi-process fine-tune, started by ``accelerate launch`` (see
``distributed``): ``python -m ilf_kedro.models.finetune_worker LAUNCH_DIR``.

Every rank reads the job and its ranks from the launch directory, loads the base model
and runs :func:`~ilf_kedro.models.finetune_job.train_rank` (rank 0 saves the trained
model there); on failure it writes its exception to ``errors/rank<N>.json``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

import torch

from .distributed import LaunchDirectory, RankError
from .finetune_job import rank_device, train_rank

logger = logging.getLogger("ilf_kedro.finetune_worker")


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def train(launch_dir: LaunchDirectory) -> None:
    """This rank's part: load the base, train, and (rank 0) save the result."""
    job, ranks = launch_dir.job(), launch_dir.ranks()
    base = job.load_base(launch_dir.base_location())
    pairs = launch_dir.pairs()
    logger.info(
        "%s fine-tune (%s) of %s on %d example(s), %d accumulation step(s) per rank",
        job.settings.strategy,
        ranks.distributed,
        base.info.get("loaded_from") or base.info.get("source"),
        len(pairs),
        job.train_settings(ranks).gradient_accumulation_steps,
    )
    train_rank(job, base, pairs, ranks, rank_device(ranks), save_to=launch_dir.model_dir)
    _leave_process_group()


def _leave_process_group() -> None:
    """Every rank waits for rank 0's save, then closes the process group. A rank that
    exits with its gloo group still open can abort in the group's destructor while its peer
    is still at work (seen in CI: rank 1 died of SIGABRT while rank 0 saved). Ray Train
    manages its own group; this is the accelerate launcher's."""
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.INFO,
        format=f"[rank {_rank()}] %(levelname)s %(name)s: %(message)s",
    )
    launch_dir = LaunchDirectory(Path(args[0]))
    try:
        train(launch_dir)
    except BaseException as exc:
        error = RankError(
            rank=_rank(),
            type=type(exc).__name__,
            message=str(exc),
            traceback=traceback.format_exc(limit=-8),
        )
        errors = launch_dir.errors_dir
        errors.mkdir(parents=True, exist_ok=True)
        (errors / f"rank{error.rank}.json").write_text(json.dumps(asdict(error)))
        logger.error("%s: %s", error.type, error.message)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
