#!/usr/bin/env python
"""Extend a model's tokenizer with the most useful new tokens of the target language, learned from text, and
its embeddings with them (each new row the mean of its pieces' rows): a model folder every script accepts.

    python extend_tokenizer.py HuggingFaceTB/SmolLM2-135M-Instruct ./faq_pt ./smollm2-pt-vocab --num_new_tokens 1000
    python extend_tokenizer.py ./base ./corpus_pt.txt ./base-pt --num_new_tokens 4000 --lang pt-BR

The new tokens continue the base tokenizer's own BPE (tokenizers' BpeTrainer on the base tokenizer's pieces):
text the base cut one way is cut the same way and then joined, existing ids decode as before, and a round trip
is lossless. finetune.py trains the new rows of a model made here (peft trainable_token_indices) by itself.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import TRUST_REMOTE_CODE_HELP, Parser, UsageError, log, positive_int, run
from l2l.config import add_arguments, from_args, option


@dataclass(kw_only=True)
class ExtendOptions:
    """extend_tokenizer.py's settings."""

    base_model: str = option(help="The model to extend (Hub id or folder) with a fast BPE tokenizer.", positional=True)
    dataset: str = option(
        help="Target-language text: a translated dataset (combine_checkpoints.py), threads, "
        "a Hub dataset, a JSONL/parquet file, or a .txt file (one passage a line).",
        positional=True,
    )
    output_dir: str = option(help="Folder for the extended model (tokenizer + resized model).", positional=True)
    num_new_tokens: int = option(help="How many tokens to add, e.g. 1000.", type=positive_int)
    text_field: str | None = option(
        None, "Comma-separated text columns (default: detected, e.g. instruction,input,output or messages)."
    )
    lang: str | None = option(
        None,
        "The text's language (default: the dataset's lang column); text found to be in another language is refused.",
    )
    output_init: str = option(
        "first_piece", "How an untied output layer's new rows start: first_piece (the row of the first base piece "
        "the token joins, as EEVE: generation can then choose the new token) or mean (the mean of its pieces' "
        "rows, which makes it less likely than its first piece). The input rows start as the mean.",
        choices=["first_piece", "mean"])
    untie_embeddings: bool = option(
        False, "Give a model whose output layer is tied to its input embeddings (SmolLM2, Gemma, Qwen2.5 small) an "
        "output matrix of its own, so --output_init applies (one more vocabulary-sized matrix to train).")
    max_texts: int = option(200_000, "Texts read at most. Default 200000.", type=positive_int)
    overwrite: bool = option(False, "Replace an existing output folder.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)


def build_parser() -> Parser:
    p = Parser(prog="extend_tokenizer.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, ExtendOptions)
    return p


def check_language(texts: list[str], expected: str | None) -> None:
    """Refuse text in another language than expected (or English text when nothing is expected)."""
    import random

    from l2l import languages
    from l2l.languages import detected_languages

    sample = random.Random(0).sample(texts, min(200, len(texts)))
    found, code = detected_languages(sample, expected or "en")
    top = max(set(found) - {None}, key=found.count, default=None)
    share = found.count(top) / len(found) if found else 0
    if expected and top != code and share >= 0.5:
        raise UsageError(f"the text is mostly in {languages.display_name(top)} ({share:.0%} of a sample), not in "
                         f"{expected}: learn new tokens from {expected} text")
    if not expected and top == "en" and share >= 0.5:
        raise UsageError(f"the text is mostly English ({share:.0%} of a sample): learn new tokens from "
                         "target-language text (or say --lang en to mean it)")


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(ExtendOptions, build_parser().parse_args(argv))
    from l2l.io import check_output_free

    check_output_free(cfg.output_dir, cfg.overwrite, inputs=(cfg.base_model, cfg.dataset))
    from l2l.vocab import read_marker

    read_marker(cfg.base_model)  # an earlier extension's record, read before the work (a damaged one: one line)
    if cfg.lang:
        from l2l import languages

        languages.validate(cfg.lang, "--lang")
    from l2l.data import read_texts

    texts, lang = read_texts(cfg.dataset, cfg.text_field, cfg.max_texts, cfg.trust_remote_code)
    if not texts:
        raise UsageError(f"no text in {cfg.dataset}")
    check_language(texts, cfg.lang or lang)
    from l2l import vocab
    from l2l.modeling import load_tokenizer

    tokenizer = load_tokenizer(cfg.base_model, trust_remote_code=cfg.trust_remote_code)
    spec = vocab.check_extensible(tokenizer)
    backend = tokenizer.backend_tokenizer
    counts = vocab.word_counts(backend, texts)
    pieces = vocab.base_pieces(backend, counts)
    log(f"{len(texts)} texts, {sum(counts.values())} words ({len(counts)} distinct): learning merges")
    merges = vocab.learn_merges(counts, pieces, cfg.num_new_tokens * 2 + 100)
    spec, new, _ = vocab.extend_spec(spec, merges, cfg.num_new_tokens)
    if len(new) < cfg.num_new_tokens:
        raise UsageError(f"the text supports only {len(new)} new tokens (pieces joined at least twice); give more "
                         f"text or --num_new_tokens {len(new)}")
    save_extended(cfg, tokenizer, spec, new, counts, pieces)
    return 0


def save_extended(cfg, tokenizer, spec: dict, new: dict, counts, pieces) -> None:
    """Tokenizer and resized model into output_dir, written whole or not at all."""
    import json

    import transformers

    from l2l import vocab
    from l2l.io import building
    from l2l.modeling import load_model, load_tokenizer

    out = Path(cfg.output_dir)
    with building(out, "extended model") as tmp:
        tokenizer.save_pretrained(tmp)
        (tmp / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        extended = load_tokenizer(str(tmp))
        model = load_model(transformers.AutoModelForCausalLM, cfg.base_model, device="cpu", dtype="auto",
                           trust_remote_code=cfg.trust_remote_code)
        output_rows = vocab.init_new_rows(model, new, cfg.output_init, cfg.untie_embeddings)
        model.save_pretrained(tmp, safe_serialization=True)
        before, after = vocab.report(counts, pieces, None), vocab.report(counts, pieces, extended)
        vocab.write_marker(tmp, vocab.extension_record(
            vocab.read_marker(cfg.base_model), cfg.base_model, cfg.dataset, len(tokenizer), new,
            {"before": round(before, 4), "after": round(after, 4)}, output_rows))
    hint = " (--output_init does not apply: --untie_embeddings gives them rows of their own)" if (
        output_rows.startswith("tied")) else ""
    log(f"{len(new)} new tokens (ids {min(new)}-{max(new)}); tokens per word of the text: {before:.3f} -> "
        f"{after:.3f} ({after / before:.2f}x); output rows: {output_rows}{hint}")
    print(out)


if __name__ == "__main__":
    run(main)
