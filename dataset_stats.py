#!/usr/bin/env python
"""Instruction and answer token counts per dataset and split, as a markdown table with totals.

    python dataset_stats.py ./oasst1_nl ./alpaca_nl.jsonl --tokenizer NousResearch/Meta-Llama-3-8B-Instruct
    python dataset_stats.py ./oasst1_nl --tokenizer ./model --output_json stats.json

Counts are over what training sees: OASST trees as their best-ranked threads, alpaca/dolly rows,
ShareGPT/messages conversations, or prompt/chosen/rejected pairs (chosen and rejected both count as answers).
Instruction tokens are the user (and system) turns, answer tokens the assistant turns, without template tokens.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import TRUST_REMOTE_CODE_HELP, Parser, run
from l2l.config import add_arguments, from_args, option


@dataclass(kw_only=True)
class StatsOptions:
    """dataset_stats.py's settings."""

    datasets: list[str] = option(help="Datasets: local files or folders, or Hub ids.", nargs="+", positional=True)
    tokenizer: str = option(help="Tokenizer to count with (Hub id or folder).")
    output_json: str | None = option(None, "Also write the numbers as JSON here.")
    overwrite: bool = option(False, "Replace an existing --output_json.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)


def build_parser() -> Parser:
    p = Parser(prog="dataset_stats.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, StatsOptions)
    return p


def texts_by_side(rows: list[dict], columns: list[str]) -> list[tuple[list[str], list[str]]]:
    """(instruction texts, answer texts) per example."""
    from l2l.shapes import Fields, conversations, is_conversation
    from l2l.threads.preference import PREFERENCE_COLUMNS

    def side(value, roles):
        if isinstance(value, str):
            return [value]
        if is_conversation(value):
            return [t.get("content", t.get("value", "")) for t in value if t.get("role", t.get("from")) in roles]
        return []

    if set(PREFERENCE_COLUMNS) <= set(columns):
        return [(side(r["prompt"], {"user", "system", "human"}),
                 side(r["chosen"], {"assistant", "gpt"}) + side(r["rejected"], {"assistant", "gpt"})) for r in rows]
    out = []
    for t in conversations(rows, columns, Fields()):
        msgs = t["messages"]
        out.append(([m["content"] for m in msgs if m["role"] in ("user", "system")],
                    [m["content"] for m in msgs if m["role"] == "assistant"]))
    return out


def count(tokenizer, texts: list[str]) -> int:
    if not texts:
        return 0
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(StatsOptions, build_parser().parse_args(argv))
    if cfg.output_json:
        from l2l.io import check_file_free

        check_file_free(cfg.output_json, cfg.overwrite, inputs=(*cfg.datasets, cfg.tokenizer), flag="--output_json")
    from l2l.data import load_any
    from l2l.io import atomic_write_text
    from l2l.modeling import load_tokenizer

    tokenizer = load_tokenizer(cfg.tokenizer, trust_remote_code=cfg.trust_remote_code)
    loaded = {spec: load_any(spec,
                             trust_remote_code=cfg.trust_remote_code) for spec in cfg.datasets}  # all checked first
    rows = []
    for spec, dsd in loaded.items():
        for split, data in dsd.items():
            examples = texts_by_side(data.to_list(), data.column_names)
            ins = count(tokenizer, [t for i, _ in examples for t in i])
            ans = count(tokenizer, [t for _, a in examples for t in a])
            rows.append({"dataset": spec, "split": split, "examples": len(examples), "instruction_tokens": ins,
                         "answer_tokens": ans})
    total = {"dataset": "total", "split": "", "examples": sum(r["examples"] for r in rows),
             "instruction_tokens": sum(r["instruction_tokens"] for r in rows),
             "answer_tokens": sum(r["answer_tokens"] for r in rows)}
    lines = ["| dataset | split | examples | instruction tokens | answer tokens | mean instruction | mean answer |",
             "|---|---|---|---|---|---|---|"]
    for r in rows + [total]:
        n = max(1, r["examples"])
        lines.append(f"| {r['dataset']} | {r['split']} | {r['examples']:,} | {r['instruction_tokens']:,} | "
                     f"{r['answer_tokens']:,} | {r['instruction_tokens'] / n:.1f} | {r['answer_tokens'] / n:.1f} |")
    print("\n".join(lines))
    if cfg.output_json:
        atomic_write_text(Path(cfg.output_json),
                          json.dumps({"tokenizer": cfg.tokenizer, "rows": rows, "total": total}, indent=2))
    return 0


if __name__ == "__main__":
    run(main)
