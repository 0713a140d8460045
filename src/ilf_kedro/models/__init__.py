"""Models for ILF: loading, the one sampler, the one fine-tune, perplexity scoring (plain
Python, no Kedro)."""

from .finetune import finetune
from .io import load_bundle, save_bundle
from .loading import (
    INFO_FILENAME,
    TINY_RANDOM,
    ModelBundle,
    declares_random_weights,
    load_model,
    resolve_device,
    resolve_dtype,
    warn_if_random,
)
from .perplexity import completion_log_likelihoods, completion_perplexities, perplexity_table
from .sampling import OUTPUT_COLUMNS, sample_programs
from .tokens import truncate_to_tokens
from .trainer import IGNORE_INDEX, encode_example

__all__ = [
    "IGNORE_INDEX",
    "INFO_FILENAME",
    "OUTPUT_COLUMNS",
    "TINY_RANDOM",
    "ModelBundle",
    "declares_random_weights",
    "encode_example",
    "finetune",
    "load_bundle",
    "load_model",
    "perplexity_table",
    "completion_log_likelihoods",
    "completion_perplexities",
    "resolve_device",
    "resolve_dtype",
    "sample_programs",
    "save_bundle",
    "truncate_to_tokens",
    "warn_if_random",
]
