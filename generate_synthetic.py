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
from pathlib import Path

from l2l.cli import Parser, UsageError, add_cpu_arg, add_trust_remote_code_arg, log, positive_int, run

QUESTION = ("Read the paragraph below and write one question that it answers. Reply with the question only.\n\n"
            "Paragraph:\n{paragraph}")
ANSWER = ("Answer the question comprehensively, using only the paragraph below.\n\nParagraph:\n{paragraph}\n\n"
          "Question: {question}")
FOLLOW_UP = ("Here is a paragraph and a conversation about it. Write the user's next question about the paragraph, "
             "one that has not been asked yet. Reply with the question only.\n\nParagraph:\n{paragraph}\n\n"
             "Conversation:\n{conversation}")


def build_parser() -> Parser:
    p = Parser(prog="generate_synthetic.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", help="Paragraphs: a .txt file (blank lines between paragraphs), a JSONL/parquet/csv "
                                  "file or folder, or a Hub dataset (a Wikipedia dump, say).")
    p.add_argument("checkpoint_location", help="Folder for the checkpoint files (re-running continues).")
    p.add_argument("--model_name", required=True, help="The chat model that writes (Hub id or folder).")
    p.add_argument("--text_field", default="text", help="Column with the paragraph text. Default text.")
    p.add_argument("--multi_turn_fraction", type=float, default=0.25,
                   help="Share of paragraphs (the longest) that become 3-turn conversations. Default 0.25.")
    p.add_argument("--turns", type=positive_int, default=3, help="Exchanges in a conversation. Default 3.")
    p.add_argument("--min_words", type=positive_int, default=30, help="Skip shorter paragraphs. Default 30.")
    p.add_argument("--shorten_words", type=positive_int, default=120,
                   help="Q&A paragraphs are cut to about this many words, at a sentence end. Default 120.")
    p.add_argument("--max_paragraphs", type=positive_int, default=None, help="Use only the first N paragraphs.")
    p.add_argument("--question_prompt", default=QUESTION, help="Prompt for a first question ({paragraph}).")
    p.add_argument("--answer_prompt", default=ANSWER, help="Prompt for an answer ({paragraph}, {question}).")
    p.add_argument("--follow_up_prompt", default=FOLLOW_UP,
                   help="Prompt for a follow-up question ({paragraph}, {conversation}).")
    p.add_argument("--checkpoint_n", type=positive_int, default=20, help="Paragraphs per checkpoint file. Default 20.")
    p.add_argument("--batch_size", type=positive_int, default=8, help="Prompts per generate call. Default 8.")
    p.add_argument("--max_new_tokens", type=positive_int, default=400, help="Default 400.")
    p.add_argument("--temperature", type=float, default=0.7, help="Default 0.7 (0: greedy).")
    p.add_argument("--seed", type=int, default=42, help="Default 42.")
    p.add_argument("--quant4", action="store_true", help="Load the model in 4 bits.")
    add_cpu_arg(p, help="Use the CPU even when a GPU is available.")
    add_trust_remote_code_arg(p)
    return p


def read_paragraphs(spec: str, text_field: str) -> list[str]:
    path = Path(spec)
    if path.is_file() and path.suffix.lower() == ".txt":
        return [p.strip() for p in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")) if p.strip()]
    from l2l.data import load_any

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


def plan(paragraphs: list[str], args) -> list[dict]:
    """Which paragraphs become conversations (the longest share) and which Q&A pairs."""
    usable = [(i, p) for i, p in enumerate(paragraphs) if len(p.split()) >= args.min_words]
    n_conv = round(args.multi_turn_fraction * len(usable))
    longest = {i for i, _ in sorted(usable, key=lambda x: -len(x[1].split()))[:n_conv]}
    return [{"index": i, "kind": "conversation" if i in longest else "qa",
             "paragraph": p if i in longest else shorten(p, args.shorten_words)} for i, p in usable]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.multi_turn_fraction <= 1:
        raise UsageError("--multi_turn_fraction must be in [0, 1]")
    for name, keys in (("question_prompt", ["{paragraph}"]), ("answer_prompt", ["{paragraph}", "{question}"]),
                       ("follow_up_prompt", ["{paragraph}", "{conversation}"])):
        missing = [k for k in keys if k not in getattr(args, name)]
        if missing:
            raise UsageError(f"--{name} must contain {', '.join(missing)}")
    from l2l import checkpoints
    from l2l.io import check_apart

    folder = Path(args.checkpoint_location)
    check_apart(folder, args.corpus)
    done = checkpoints.covered(folder).get("train", set())
    paragraphs = read_paragraphs(args.corpus, args.text_field)[: args.max_paragraphs]
    todo = [item for item in plan(paragraphs, args) if item["index"] not in done]
    if not todo:
        log(f"nothing to generate: {len(done)} paragraphs already in {folder}")
        return 0
    from tqdm import tqdm

    from l2l.inference import ChatModel, GenerationOptions

    chat = ChatModel(args.model_name, cpu=args.cpu, quant4=args.quant4, trust_remote_code=args.trust_remote_code)
    options = GenerationOptions(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints.remove_temporaries(folder)
    if checkpoints.read_manifest(folder) is None:
        checkpoints.write_manifest(folder, {"dataset": args.corpus, "text_fields": ["messages"],
                                            "target_language": "en",
                                            "lang_field": None, "generator": args.model_name})
    failed = 0
    with tqdm(total=len(todo), unit="paragraph", desc="generate") as bar:
        for w in range(0, len(todo), args.checkpoint_n):
            window = todo[w:w + args.checkpoint_n]
            records = generate_window(chat, window, options, args)
            kept = [(item["index"], rec) for item, rec in zip(window, records) if rec is not None]
            failed += len(window) - len(kept)
            if kept:
                checkpoints.write_chunk(folder, "train", [i for i, _ in kept], [r for _, r in kept],
                                        {"translator": "generate_synthetic", "model": args.model_name,
                                         "target_language": "en", "dataset": args.corpus, "text_fields": ["messages"]})
            bar.update(len(window))
    log(f"done: {len(todo) - failed} paragraphs written to {folder}"
        + (f"; {failed} gave an empty question or answer (run again to retry them)" if failed else ""))
    return 0


def generate_window(chat, window: list[dict], options, args) -> list[dict | None]:
    """Conversations for a window of paragraphs, one generation step at a time, batched."""
    convs: list[list[dict] | None] = [[] for _ in window]
    for turn in range(args.turns):
        active = [k for k, item in enumerate(window) if convs[k] is not None
                  and (turn == 0 or item["kind"] == "conversation")]
        if not active:
            break
        prompts = []
        for k in active:
            p = window[k]["paragraph"]
            if turn == 0:
                prompts.append(args.question_prompt.format(paragraph=p))
            else:
                history = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in convs[k])
                prompts.append(args.follow_up_prompt.format(paragraph=p, conversation=history))
        questions = batched(chat, prompts, options, args.batch_size)
        answers = batched(chat, [args.answer_prompt.format(paragraph=window[k]["paragraph"], question=q)
                                 for k, q in zip(active, questions)], options, args.batch_size)
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
