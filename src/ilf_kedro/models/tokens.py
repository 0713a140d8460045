"""Token-level text helpers."""

from __future__ import annotations


def truncate_to_tokens(tokenizer, text: str, max_tokens: int, side: str = "right") -> str:
    """Cut ``text`` to at most ``max_tokens`` tokens of ``tokenizer``.

    Args:
        tokenizer: A Hugging Face tokenizer.
        text: The text to shorten.
        max_tokens: Token budget (special tokens are not counted or added).
        side: Where tokens are REMOVED (Hugging Face ``truncation_side`` convention):
            ``"right"`` keeps the start of the text, ``"left"`` keeps its end.

    Returns:
        ``text`` unchanged if it fits, else the decoded kept tokens (a prefix of ``text``
        for ``"right"``, a suffix for ``"left"``, for byte-level tokenizers).
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    if max_tokens < 0:
        raise ValueError("max_tokens must be >= 0")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    kept = ids[:max_tokens] if side == "right" else ids[len(ids) - max_tokens :]
    return tokenizer.decode(kept, skip_special_tokens=False, clean_up_tokenization_spaces=False)
