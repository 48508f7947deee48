#!/usr/bin/env python
"""Synthetic English instruction data from a corpus of paragraphs, written by a chat model (the Arabic BARKA
project's recipe): question-answer pairs from shortened paragraphs, 3-turn conversations from the longer ones.

    python generate_synthetic.py wiki_paragraphs.txt ./synthetic_ckpt --model_name Qwen/Qwen2.5-7B-Instruct
    python combine_checkpoints.py ./synthetic_ckpt ./synthetic_en
    python translate.py nllb arb_Arab ./synthetic_ar --base_dataset ./synthetic_en --source_lang en

Every question and answer is its own generation call (batched over paragraphs) whose whole output is used, so
no reply format has to be followed: small models work too. Output goes into checkpoint files like
translate.py's (resumable: run the same command again), which combine_checkpoints.py turns into a dataset of
`messages` conversations that translate.py and finetune.py read.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import TRUST_REMOTE_CODE_HELP, Parser, UsageError, log, positive_int, run
from l2l.config import add_arguments, from_args, option

QUESTION = ("Read the paragraph below and write one question that it answers. Reply with the question only.\n\n"
            "Paragraph:\n{paragraph}")
ANSWER = ("Answer the question comprehensively, using only the paragraph below.\n\nParagraph:\n{paragraph}\n\n"
          "Question: {question}")
FOLLOW_UP = ("Here is a paragraph and a conversation about it. Write the user's next question about the paragraph, "
             "one that has not been asked yet. Reply with the question only.\n\nParagraph:\n{paragraph}\n\n"
             "Conversation:\n{conversation}")


@dataclass(kw_only=True)
class SyntheticOptions:
    """generate_synthetic.py's settings."""

    corpus: str = option(
        help="Paragraphs: a .txt file (blank lines between paragraphs), a JSONL/parquet/csv "
        "file or folder, or a Hub dataset (a Wikipedia dump, say).",
        positional=True,
    )
    checkpoint_location: str = option(help="Folder for the checkpoint files (re-running continues).", positional=True)
    model_name: str = option(help="The chat model that writes (Hub id or folder).")
    text_field: str = option("text", "Column with the paragraph text. Default text.")
    multi_turn_fraction: float = option(
        0.25, "Share of paragraphs (the longest) that become 3-turn conversations. Default 0.25.", type=float
    )
    turns: int = option(3, "Exchanges in a conversation. Default 3.", type=positive_int)
    min_words: int = option(30, "Skip shorter paragraphs. Default 30.", type=positive_int)
    shorten_words: int = option(
        120, "Q&A paragraphs are cut to about this many words, at a sentence end. Default 120.", type=positive_int
    )
    max_paragraphs: int | None = option(None, "Use only the first N paragraphs.", type=positive_int)
    question_prompt: str = option(QUESTION, "Prompt for a first question ({paragraph}).")
    answer_prompt: str = option(ANSWER, "Prompt for an answer ({paragraph}, {question}).")
    follow_up_prompt: str = option(FOLLOW_UP, "Prompt for a follow-up question ({paragraph}, {conversation}).")
    checkpoint_n: int = option(20, "Paragraphs per checkpoint file. Default 20.", type=positive_int)
    batch_size: int = option(8, "Prompts per generate call. Default 8.", type=positive_int)
    max_new_tokens: int = option(400, "Default 400.", type=positive_int)
    temperature: float = option(0.7, "Default 0.7 (0: greedy).", type=float)
    seed: int = option(42, "Default 42.", type=int)
    quant4: bool = option(False, "Load the model in 4 bits.")
    cpu: bool = option(False, "Use the CPU even when a GPU is available.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)


def build_parser() -> Parser:
    p = Parser(prog="generate_synthetic.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, SyntheticOptions)
    return p


def read_paragraphs(spec: str, text_field: str) -> list[str]:
    path = Path(spec)
    from l2l.data import load_any, read_text

    if path.is_file() and path.suffix.lower() == ".txt":
        return [p.strip() for p in re.split(r"\n\s*\n", read_text(path, "corpus")) if p.strip()]

    dsd = load_any(spec)
    data = next(iter(dsd.values()))
    if text_field not in data.column_names:
        raise UsageError(f"{spec} has no column {text_field!r} (columns: {', '.join(data.column_names)}); "
                         "use --text_field")
    return [t.strip() for t in data[text_field] if isinstance(t, str) and t.strip()]


def shorten(paragraph: str, words: int) -> str:
    """Cut at the last sentence end within `words` words (or at `words` when there is none)."""
    tokens = paragraph.split()
    if len(tokens) <= words:
        return paragraph
    cut = " ".join(tokens[:words])
    end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    return cut[:end + 1] if end > len(cut) // 3 else cut


def clean(text: str) -> str:
    """A generated question or answer without echoed labels or quotes."""
    text = text.strip()
    text = re.sub(r"^(?:question|answer|user|assistant)\s*\d*\s*:\s*", "", text, flags=re.I)
    return text.strip().strip('"“”').strip()


def plan(paragraphs: list[str], cfg) -> list[dict]:
    """Which paragraphs become conversations (the longest share) and which Q&A pairs."""
    usable = [(i, p) for i, p in enumerate(paragraphs) if len(p.split()) >= cfg.min_words]
    n_conv = round(cfg.multi_turn_fraction * len(usable))
    longest = {i for i, _ in sorted(usable, key=lambda x: -len(x[1].split()))[:n_conv]}
    return [{"index": i, "kind": "conversation" if i in longest else "qa",
             "paragraph": p if i in longest else shorten(p, cfg.shorten_words)} for i, p in usable]


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(SyntheticOptions, build_parser().parse_args(argv))
    if not 0 <= cfg.multi_turn_fraction <= 1:
        raise UsageError("--multi_turn_fraction must be in [0, 1]")
    for name, keys in (("question_prompt", ["{paragraph}"]), ("answer_prompt", ["{paragraph}", "{question}"]),
                       ("follow_up_prompt", ["{paragraph}", "{conversation}"])):
        missing = [k for k in keys if k not in getattr(cfg, name)]
        if missing:
            raise UsageError(f"--{name} must contain {', '.join(missing)}")
    from l2l.io import check_apart, check_writable
    from l2l.translate import checkpoints

    folder = Path(cfg.checkpoint_location)
    check_apart(folder, cfg.corpus, cfg.model_name)
    check_writable(folder, folder=True, flag="checkpoint_location")
    done = checkpoints.covered(checkpoints.load(folder)[1]).get("train", set())
    paragraphs = read_paragraphs(cfg.corpus, cfg.text_field)[: cfg.max_paragraphs]
    planned = plan(paragraphs, cfg)
    if not planned:
        raise UsageError(f"no paragraph of {cfg.corpus} has --min_words {cfg.min_words} words or more"
                         + (f" (the longest has {max(len(p.split()) for p in paragraphs)})" if paragraphs else
                            " (it holds no text)"))
    todo = [item for item in planned if item["index"] not in done]
    if not todo:
        log(f"nothing to generate: {len(done)} paragraphs already in {folder}")
        return 0
    from tqdm import tqdm

    from l2l.inference import ChatModel, GenerationOptions

    chat = ChatModel(cfg.model_name, cpu=cfg.cpu, quant4=cfg.quant4, trust_remote_code=cfg.trust_remote_code)
    options = GenerationOptions(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=cfg.seed)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints.remove_temporaries(folder)
    if checkpoints.read_manifest(folder) is None:
        checkpoints.write_manifest(folder, {"dataset": cfg.corpus, "text_fields": ["messages"],
                                            "target_language": "en",
                                            "lang_field": None, "generator": cfg.model_name})
        from l2l.io import mark_output

        mark_output(folder, "generated conversations")
    failed = 0
    with tqdm(total=len(todo), unit="paragraph", desc="generate") as bar:
        for w in range(0, len(todo), cfg.checkpoint_n):
            window = todo[w:w + cfg.checkpoint_n]
            records = generate_window(chat, window, options, cfg)
            kept = [(item["index"], rec) for item, rec in zip(window, records) if rec is not None]
            failed += len(window) - len(kept)
            if kept:
                checkpoints.write_chunk(folder, "train", [i for i, _ in kept], [r for _, r in kept],
                                        {"translator": "generate_synthetic", "model": cfg.model_name,
                                         "target_language": "en", "dataset": cfg.corpus, "text_fields": ["messages"]})
            bar.update(len(window))
    log(f"done: {len(todo) - failed} paragraphs written to {folder}"
        + (f"; {failed} gave an empty question or answer (run again to retry them)" if failed else ""))
    return 0


def generate_window(chat, window: list[dict], options, cfg) -> list[dict | None]:
    """Conversations for a window of paragraphs, one generation step at a time, batched."""
    convs: list[list[dict] | None] = [[] for _ in window]
    for turn in range(cfg.turns):
        active = [k for k, item in enumerate(window) if convs[k] is not None
                  and (turn == 0 or item["kind"] == "conversation")]
        if not active:
            break
        prompts = []
        for k in active:
            p = window[k]["paragraph"]
            if turn == 0:
                prompts.append(cfg.question_prompt.format(paragraph=p))
            else:
                history = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in convs[k])
                prompts.append(cfg.follow_up_prompt.format(paragraph=p, conversation=history))
        questions = batched(chat, prompts, options, cfg.batch_size)
        answers = batched(chat, [cfg.answer_prompt.format(paragraph=window[k]["paragraph"], question=q)
                                 for k, q in zip(active, questions)], options, cfg.batch_size)
        for k, q, a in zip(active, questions, answers):
            if not q or not a:
                convs[k] = None
                continue
            convs[k] += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return [None if c is None else {"id": str(item["index"]), "kind": item["kind"], "paragraph": item["paragraph"],
                                    "messages": c} for item, c in zip(window, convs)]


def batched(chat, prompts: list[str], options, batch_size: int) -> list[str]:
    out = []
    for b in range(0, len(prompts), batch_size):
        out += [clean(t) for t in chat.answer([[{"role": "user", "content": p}] for p in prompts[b:b + batch_size]],
                                              options)]
    return out


if __name__ == "__main__":
    run(main)
