"""A tiny, download-free model family for the offline default and the tests.

``build_tiny_tokenizer`` trains a byte-level BPE deterministically on a small corpus
embedded below, so any text round-trips exactly (byte-level: every byte has a token) and
no file is fetched. ``build_tiny_model`` builds a small causal LM from a config with
random weights (CodeGen, the paper's architecture, when transformers has it; else GPT-2).
"""

from __future__ import annotations

import functools
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"

# Defaults for the tiny architecture; every key can be overridden through ``tiny_config``.
TINY_DEFAULTS: dict[str, Any] = {
    "architecture": "codegen",  # "codegen" or "gpt2"
    "vocab_size": 1024,  # target BPE vocabulary (the corpus may give fewer merges)
    "n_layer": 2,
    "n_embd": 64,
    "n_head": 4,
    "rotary_dim": 16,  # CodeGen only
    "n_positions": 2048,
}

# Small code + English corpus the BPE merges are learned from. It only shapes how many
# tokens a text takes (merges); correctness never depends on it because the base alphabet
# holds all 256 bytes. Changing it changes the tiny tokenizer, so keep it stable.
_CORPUS = r'''
"""
Write a function to count how many words of a sentence start with a capital letter.

>>> Example: count_capitalised("Hello there Bob") = 2
"""

def count_capitalised(sentence):
    words = sentence.split()
    return sum(1 for word in words if word[:1].isupper())

"""
Write a python function to return the running totals of a list of numbers.

>>> Example: running_totals([1, 2, 3]) = [1, 3, 6]
"""

import itertools
def running_totals(numbers):
    return list(itertools.accumulate(numbers))

"""
Write a function to find the k smallest values of a list using a heap.

>>> Example: k_smallest([7, 2, 9, 4], 2) = [2, 4]
"""

import heapq
def k_smallest(values, k):
    smallest = heapq.nsmallest(k, values)
    return smallest

LIMIT = 100
def collatz_steps(n):
    steps = 0
    while n != 1 and steps < LIMIT:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps

def merge_dicts(first, second):
    merged = dict(first)
    for key, value in second.items():
        merged[key] = merged.get(key, 0) + value
    return merged

def longest_run(items):
    best, current = 0, 0
    previous = None
    for item in items:
        current = current + 1 if item == previous else 1
        best = max(best, current)
        previous = item
    return best

class Point(object):
    def __init__(self, x, y):
        self.x = x
        self.y = y

def sort_by_distance(points):
    return sorted(points, key=lambda p: (p.x ** 2 + p.y ** 2) ** 0.5)

def is_anagram(left: str, right: str) -> bool:
    """Return True if the two strings use the same letters."""
    if not isinstance(left, str) or not isinstance(right, str):
        raise ValueError("expected strings")
    try:
        return sorted(left.lower()) == sorted(right.lower())
    except Exception as error:
        print(error)
    finally:
        pass

assert count_capitalised("Hello there Bob") == 2
assert running_totals([1, 2, 3]) == [1, 3, 6]
assert k_smallest([7, 2, 9, 4], 2) == [2, 4]
if __name__ == "__main__":
    print(merge_dicts({"a": 1}, {"a": 2, "b": 3}))

OLD CODE:
FEEDBACK:
The code is wrong because it does not return the right value. It should return the sum
of the list, not the length. The function also fails on an empty list and on negative
numbers. Use a loop over the elements and add each one to the total.
REFINEMENT:
'''


@functools.lru_cache(maxsize=8)
def _tokenizer_json(vocab_size: int, corpus: tuple[str, ...] | None = None) -> str:
    # Cached as JSON so every call gets a fresh, independent tokenizer object.
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    if corpus is None:
        # Many repetitions of the lines so frequent code fragments become merges.
        lines = [line for line in _CORPUS.splitlines(keepends=True) if line.strip()]
        tok.train_from_iterator(lines * 4, trainer=trainer)
    else:
        tok.train_from_iterator(list(corpus), trainer=trainer)
    return tok.to_str()


def build_tiny_tokenizer(
    vocab_size: int = TINY_DEFAULTS["vocab_size"], corpus: tuple[str, ...] | None = None
):
    """Build the download-free byte-level BPE tokenizer.

    Args:
        vocab_size: Target vocabulary size (upper bound; special tokens included).
        corpus: Texts to learn the merges from instead of the embedded corpus (a model
            trained from scratch on them, e.g. ``ilf_kedro.world``, reads them in fewer
            tokens); the byte alphabet still makes every text round-trip.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``eos_token`` ``<|endoftext|>`` and
        ``pad_token`` ``<|pad|>``; ``decode(encode(text)) == text`` for any text.
    """
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_str(
        _tokenizer_json(int(vocab_size), None if corpus is None else tuple(corpus))
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        clean_up_tokenization_spaces=False,
        model_max_length=int(TINY_DEFAULTS["n_positions"]),
    )


def tiny_model_config(tokenizer, tiny_config: dict[str, Any] | None = None):
    """The transformers config of the tiny model (no weights).

    Args:
        tokenizer: The tokenizer from ``build_tiny_tokenizer``; fixes vocab and special ids.
        tiny_config: Overrides of ``TINY_DEFAULTS`` (``architecture``, ``n_layer``,
            ``n_embd``, ``n_head``, ``rotary_dim``, ``n_positions``); unknown keys are
            passed to the transformers config.

    Returns:
        ``(config, resolved_config_dict)``.
    """
    import transformers

    cfg = {**TINY_DEFAULTS, **(tiny_config or {})}
    arch = str(cfg.pop("architecture")).lower()
    cfg.pop("vocab_size")
    common = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.eos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if arch == "codegen" and not hasattr(transformers, "CodeGenConfig"):
        arch = "gpt2"  # CodeGen was removed from this transformers version
    if arch == "codegen":
        cfg.setdefault("n_ctx", cfg["n_positions"])
        config = transformers.CodeGenConfig(**common, **cfg)
    elif arch == "gpt2":
        cfg.pop("rotary_dim", None)
        config = transformers.GPT2Config(**common, **cfg)
    else:
        raise ValueError(f"Unknown tiny architecture {arch!r}; use 'codegen' or 'gpt2'.")
    return config, {"architecture": arch, **cfg, "vocab_size": len(tokenizer)}


def build_tiny_model(tokenizer, tiny_config: dict[str, Any] | None = None):
    """Build a tiny causal LM with random weights (initialised from the torch RNG).

    Args:
        tokenizer, tiny_config: As for ``tiny_model_config``.

    Returns:
        ``(model, resolved_config_dict)``.
    """
    from transformers import AutoModelForCausalLM

    config, resolved = tiny_model_config(tokenizer, tiny_config)
    return AutoModelForCausalLM.from_config(config), resolved
