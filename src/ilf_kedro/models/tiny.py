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
Write a function to find the minimum cost path to reach (m, n) from (0, 0) for the given
cost matrix cost[][] and a position (m, n) in cost[][].
>>> Example: min_cost([[1, 2, 3], [4, 8, 2], [1, 5, 3]], 2, 2) = 8
"""

def min_cost(cost, m, n):
    tc = [[0 for x in range(n + 1)] for x in range(m + 1)]
    tc[0][0] = cost[0][0]
    for i in range(1, m + 1):
        tc[i][0] = tc[i - 1][0] + cost[i][0]
    for j in range(1, n + 1):
        tc[0][j] = tc[0][j - 1] + cost[0][j]
    return tc[m][n]

"""
Write a python function to identify non-prime numbers.
>>> Example: is_not_prime(2) = False
"""

import math
def is_not_prime(n):
    result = False
    for i in range(2, int(math.sqrt(n)) + 1):
        if n % i == 0:
            result = True
    return result

"""
Write a function to find the largest integers from a given list of numbers using heap.
>>> Example: heap_queue_largest([25, 35, 22, 85, 14, 65, 75, 22, 58], 3) = [85, 75, 65]
"""

import heapq as hq
def heap_queue_largest(nums, n):
    largest_nums = hq.nlargest(n, nums)
    return largest_nums

def count_ways(n):
    A = [0] * (n + 1)
    B = [0] * (n + 1)
    A[0] = 1
    A[1] = 0
    B[0] = 0
    B[1] = 1
    for i in range(2, n + 1):
        A[i] = A[i - 2] + 2 * B[i - 1]
        B[i] = A[i - 1] + B[i - 2]
    return A[n]

def find_char_long(text):
    return re.findall(r"\b\w{4,}\b", text)

def square_nums(nums):
    square_nums = list(map(lambda x: x ** 2, nums))
    return square_nums

def remove_Occ(s, ch):
    for i in range(len(s)):
        if s[i] == ch:
            s = s[0:i] + s[i + 1:]
            break
    return s

class Pair(object):
    def __init__(self, a, b):
        self.a = a
        self.b = b

def sort_matrix(M):
    result = sorted(M, key=sum)
    return result

def is_palindrome(string: str) -> bool:
    """Return True if the string reads the same forwards and backwards."""
    if not isinstance(string, str):
        raise ValueError("expected a string")
    while True:
        try:
            return string == string[::-1]
        except Exception as e:
            print(e)
        else:
            continue
        finally:
            pass

assert min_cost([[1, 2, 3], [4, 8, 2], [1, 5, 3]], 2, 2) == 8
assert is_not_prime(10) == True
assert square_nums([1, 2, 3]) == [1, 4, 9]
if __name__ == "__main__":
    print(sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]]))

OLD CODE:
FEEDBACK:
The code is wrong because it does not return the right value. It should return the sum
of the list, not the length. The function also fails on an empty list and on negative
numbers. Use a loop over the elements and add each one to the total.
REFINEMENT:
'''


@functools.lru_cache(maxsize=8)
def _tokenizer_json(vocab_size: int) -> str:
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
    # Many repetitions of the lines so frequent code fragments become merges.
    lines = [line for line in _CORPUS.splitlines(keepends=True) if line.strip()]
    tok.train_from_iterator(lines * 4, trainer=trainer)
    return tok.to_str()


def build_tiny_tokenizer(vocab_size: int = TINY_DEFAULTS["vocab_size"]):
    """Build the download-free byte-level BPE tokenizer.

    Args:
        vocab_size: Target vocabulary size (upper bound; special tokens included).

    Returns:
        A ``PreTrainedTokenizerFast`` with ``eos_token`` ``<|endoftext|>`` and
        ``pad_token`` ``<|pad|>``; ``decode(encode(text)) == text`` for any text.
    """
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_str(_tokenizer_json(int(vocab_size)))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        clean_up_tokenization_spaces=False,
        model_max_length=int(TINY_DEFAULTS["n_positions"]),
    )


def build_tiny_model(tokenizer, tiny_config: dict[str, Any] | None = None):
    """Build a tiny causal LM with random weights (initialised from the torch RNG).

    Args:
        tokenizer: The tokenizer from ``build_tiny_tokenizer``; fixes vocab and special ids.
        tiny_config: Overrides of ``TINY_DEFAULTS`` (``architecture``, ``n_layer``,
            ``n_embd``, ``n_head``, ``rotary_dim``, ``n_positions``); unknown keys are
            passed to the transformers config.

    Returns:
        ``(model, resolved_config_dict)``.
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
        model = transformers.CodeGenForCausalLM(config)
    elif arch == "gpt2":
        cfg.pop("rotary_dim", None)
        config = transformers.GPT2Config(**common, **cfg)
        model = transformers.GPT2LMHeadModel(config)
    else:
        raise ValueError(f"Unknown tiny architecture {arch!r}; use 'codegen' or 'gpt2'.")
    return model, {"architecture": arch, **cfg, "vocab_size": len(tokenizer)}
