"""Chat templates: the shipped Jinja files, any file the user gives, or the base model's own template.

Shipped templates wrap every assistant turn, end-of-turn token included, in {% generation %} markers, so
training can put the loss on answers only and the model learns to stop. The markers are transformers' own, not
part of the template language other runtimes implement: a saved model carries the template without them
(`for_inference`) and keeps the marked copy beside it (TRAINING_FILE), which `load("tokenizer", ...)` prefers.
"""

from __future__ import annotations

from pathlib import Path

from l2l.cli import UsageError

FOLDER = Path(__file__).resolve().parent / "templates"
SHIPPED = ("llama3", "llama2", "chatml", "phi3")
NAMES = SHIPPED + ("tokenizer",)
TRAINING_FILE = "l2l_training_chat_template.jinja"  # the marked template, saved beside the tokenizer
_MARKER = r"\{%(-?)\s*(?:end)?generation\s*(-?)%\}"


def has_markers(template) -> bool:
    import re

    return isinstance(template, str) and re.search(_MARKER, template) is not None


def for_inference(template):
    """The template without {% generation %} markers: the same text rendered, in plain Jinja any runtime reads.
    Each marker becomes an empty comment, which Jinja trims exactly as it trimmed the tag (whitespace control,
    trim_blocks, lstrip_blocks). A template that is not one text (named templates) is left as it is."""
    import re

    if not isinstance(template, str):
        return template
    return re.sub(_MARKER, lambda m: "{#" + m.group(1) + " " + m.group(2) + "#}", template)


def save_with(tokenizer, folder, template=None) -> None:
    """Save `tokenizer` in `folder` with an inference template (markers out), and the marked copy beside it
    when there is one, for training and scoring from that folder later."""
    template = template if template is not None else getattr(tokenizer, "chat_template", None)
    marked = template if has_markers(template) else None
    if marked:
        tokenizer.chat_template = for_inference(template)
    try:
        tokenizer.save_pretrained(folder)
    finally:
        if marked:
            tokenizer.chat_template = template
    if marked:
        (Path(folder) / TRAINING_FILE).write_text(marked, encoding="utf-8")


def saved_training_template(tokenizer) -> str | None:
    """The marked copy saved beside a tokenizer loaded from a folder, if any."""
    folder = Path(str(getattr(tokenizer, "name_or_path", "") or ""))
    path = folder / TRAINING_FILE
    return path.read_text(encoding="utf-8") if folder.is_dir() and path.is_file() else None


def load(name_or_file: str, tokenizer=None) -> str:
    """The template text for a shipped name, a file path, or 'tokenizer' (the base model's own)."""
    if name_or_file == "tokenizer":
        template = (saved_training_template(tokenizer) or getattr(tokenizer, "chat_template", None)
                    if tokenizer is not None else None)
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


def shipped_name(template: str | None) -> str | None:
    """Which shipped template `template` is (marked or not), if any."""
    if not isinstance(template, str) or not template:
        return None
    plain = for_inference(template).strip()
    return next((n for n in SHIPPED if for_inference(load(n)).strip() == plain), None)


def ollama_template(template: str | None) -> str | None:
    """Ollama's TEMPLATE (Go text/template over .Messages) that formats a chat as a shipped `template` does,
    less the leading begin-of-text token the runtime adds; None for a template l2l does not ship."""
    name = shipped_name(template)
    return (FOLDER / f"{name}.ollama").read_text(encoding="utf-8") if name else None


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
