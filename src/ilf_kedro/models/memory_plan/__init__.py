"""Memory plan of the GPU stages, from the model's configuration alone (no weights).

Before any weights load, a run estimates what each GPU stage holds on one device and
compares it with the device's memory:

- sampling: the weights in the inference dtype, the KV cache of ``batch_size`` sequences of
  ``max_prompt_tokens + max_new_tokens`` tokens, the prefill's attention scores (eager
  attention, as CodeGen has) and the last step's logits;
- fine-tune, per process: master weights, gradients and AdamW's two moments (sharded over
  the processes with FSDP), bf16 autocast copies of the weights, the activations of one
  sequence batch at ``max_seq_length`` (with or without gradient checkpointing) and the
  logits and their gradient; for ``lora`` the frozen weights in the inference dtype plus
  the adapter's trainable state.

The model's shape comes from ``AutoConfig`` (a local directory, or a Hugging Face id: only
``config.json`` is fetched) and a model built on PyTorch's ``meta`` device, which counts
parameters exactly without allocating them. Offline, the CodeGen checkpoints' published
hyperparameters stand in for their ``config.json``.

Modules: :mod:`.estimate` (the model's shape and the bytes of each part of a stage),
:mod:`.plan` (the stages against the devices, settings that would fit) and :mod:`.table`
(the table in docs/gpus.md and ``python -m ilf_kedro.models.memory_plan --table``).
"""

from .estimate import (
    GIB,
    KNOWN_CONFIGS,
    ModelShape,
    finetune_memory,
    load_config,
    model_shape,
    sampling_memory,
)
from .plan import (
    MemoryPlan,
    MemoryPlanError,
    PlanInputs,
    StagePlan,
    build_plan,
    device_memory_gib,
    plan_run,
    resolve_distributed,
)
from .table import markdown_table, paper_table

__all__ = [
    "GIB",
    "KNOWN_CONFIGS",
    "MemoryPlan",
    "MemoryPlanError",
    "ModelShape",
    "PlanInputs",
    "StagePlan",
    "build_plan",
    "device_memory_gib",
    "finetune_memory",
    "load_config",
    "markdown_table",
    "model_shape",
    "paper_table",
    "plan_run",
    "resolve_distributed",
    "sampling_memory",
]
