"""Chat templates: the shipped Jinja files, any file the user gives, or the base model's own template.

Shipped templates wrap every assistant turn, end-of-turn token included, in {% generation %} markers, so
training can put the loss on answers only and the model learns to stop.
"""

from __future__ import annotations

from pathlib import Path

from l2l.cli import UsageError

FOLDER = Path(__file__).resolve().parent / "templates"
NAMES = ("llama3", "llama2", "chatml", "phi3", "tokenizer")
END_OF_TURN = {"llama3": "<|eot_id|>", "chatml": "<|im_end|>", "phi3": "<|end|>", "llama2": None}  # None: eos


def load(name_or_file: str, tokenizer=None) -> str:
    """The template text for a shipped name, a file path, or 'tokenizer' (the base model's own)."""
    if name_or_file == "tokenizer":
        template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
        if not template:
            raise UsageError("--thread_template tokenizer: the base model's tokenizer has no chat template; "
                             f"use one of {', '.join(NAMES[:-1])} or a Jinja file")
        return template
    if name_or_file in END_OF_TURN:
        return (FOLDER / f"{name_or_file}.jinja").read_text(encoding="utf-8")
    path = Path(name_or_file)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    raise UsageError(f"--thread_template {name_or_file!r} is neither a template name ({', '.join(NAMES)}) nor a file")


def end_of_turn(name_or_file: str, tokenizer) -> str | None:
    """The token that ends an assistant turn (what generation must stop on)."""
    token = END_OF_TURN.get(name_or_file)
    return token or getattr(tokenizer, "eos_token", None)


def missing_tokens(template: str, tokenizer) -> list[str]:
    """Marker tokens of a shipped template that the tokenizer does not know as single tokens."""
    import re

    vocab = tokenizer.get_vocab()
    return sorted({t for t in re.findall(r"<\|[a-z_]+\|>", template) if t not in vocab})
