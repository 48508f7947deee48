"""Chat templates: the shipped Jinja files, any file the user gives, or the base model's own template.

Shipped templates wrap every assistant turn, end-of-turn token included, in {% generation %} markers, so
training can put the loss on answers only and the model learns to stop.
"""

from __future__ import annotations

from pathlib import Path

from l2l.cli import UsageError

FOLDER = Path(__file__).resolve().parent / "templates"
SHIPPED = ("llama3", "llama2", "chatml", "phi3")
NAMES = SHIPPED + ("tokenizer",)


def load(name_or_file: str, tokenizer=None) -> str:
    """The template text for a shipped name, a file path, or 'tokenizer' (the base model's own)."""
    if name_or_file == "tokenizer":
        template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
        if not template:
            raise UsageError("--thread_template tokenizer: the base model's tokenizer has no chat template; "
                             f"use one of {', '.join(NAMES[:-1])} or a Jinja file")
        return template
    if name_or_file in SHIPPED:
        return (FOLDER / f"{name_or_file}.jinja").read_text(encoding="utf-8")
    path = Path(name_or_file)
    if path.is_file():
        try:
            template = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise UsageError(f"--thread_template {name_or_file} is not a text file") from e
        if not template.strip():
            raise UsageError(f"--thread_template {name_or_file} is empty")
        if tokenizer is not None:
            check_renders(template, tokenizer, name_or_file)
        return template
    raise UsageError(f"--thread_template {name_or_file!r} is neither a template name ({', '.join(NAMES)}) nor a file")


def end_of_turn(template: str, tokenizer) -> str | None:
    """The token that ends an assistant turn (what generation must stop on): a known end-of-turn marker the
    template text uses, else the tokenizer's end token."""
    for token in ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"):
        if token in template:
            return token
    return getattr(tokenizer, "eos_token", None)


def stop_token_ids(template: str, tokenizer) -> list[int]:
    """Ids generation should stop on: the end-of-turn token and the end token."""
    end = end_of_turn(template, tokenizer)
    ids = (tokenizer.convert_tokens_to_ids(end) if end else None, tokenizer.eos_token_id)
    return list(dict.fromkeys(i for i in ids if i is not None and i != tokenizer.unk_token_id))


def missing_tokens(template: str, tokenizer) -> list[str]:
    """Marker tokens of a shipped template that the tokenizer does not know as single tokens."""
    import re

    vocab = tokenizer.get_vocab()
    return sorted({t for t in re.findall(r"<\|[a-z_]+\|>", template) if t not in vocab})


def prompt_counter(tokenizer, template: str):
    """Tokens of a conversational prompt rendered with the chat template (generation prompt included)."""
    def count(messages: list[dict]) -> int:
        return len(tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True,
                                                 add_generation_prompt=True, return_dict=True)["input_ids"])
    return count


def check_renders(template: str, tokenizer, name: str) -> None:
    """A user's template file must render a small conversation: a Jinja error or an empty result is one line
    here, not a traceback in the middle of a run."""
    import jinja2

    sample = [{"role": "user", "content": "Qq7"}, {"role": "assistant", "content": "Aa9"}]
    try:
        text = tokenizer.apply_chat_template(sample, chat_template=template, tokenize=False)
    except jinja2.TemplateError as e:
        where = f" (line {e.lineno})" if getattr(e, "lineno", None) else ""
        raise UsageError(f"--thread_template {name} is not a working Jinja chat template{where}: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    if "Qq7" not in text or "Aa9" not in text:
        raise UsageError(f"--thread_template {name} leaves out the messages (rendered: {text[:60]!r})")
