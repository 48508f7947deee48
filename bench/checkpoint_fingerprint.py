#!/usr/bin/env python
"""What the content fingerprint of a translation checkpoint folder costs: translate.py hashes every row of the
dataset before it resumes or starts (a file replaced by another of the same size is refused). Measured against
what plan() does anyway in the same process: loading the dataset from its file.

The data is OASST-shaped (message_id, parent_id, role, lang, rank, text) at OASST1's size, its texts real
English: the answers of zaragoza-construction-faq (installed offline), joined to OASST1's mean message length
(about 600 characters).

    python bench/checkpoint_fingerprint.py [--rows 88000]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from l2l.data import load_any  # noqa: E402
from l2l.translate.checkpoints import dataset_fingerprint  # noqa: E402


def real_sentences() -> list[str]:
    faq = Path(importlib.util.find_spec("zaragoza_construction_faq").origin).parent / "data" / "faq-en-alpaca.jsonl"
    rows = [json.loads(line) for line in faq.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [s.strip() + "." for r in rows for s in r["output"].split(".") if len(s.strip()) > 20]


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    rng, sentences = random.Random(seed), real_sentences()
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            text = ""
            while len(text) < rng.randint(100, 1100):
                text += rng.choice(sentences) + " "
            f.write(json.dumps({"message_id": f"m{i}", "parent_id": None if i % 9 == 0 else f"m{i - 1}",
                                "role": "prompter" if i % 2 else "assistant", "lang": "en", "rank": i % 3,
                                "text": text.strip()}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=88000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "oasst_like.jsonl"
        write_rows(path, args.rows)
        start = time.perf_counter()
        ds = load_any(str(path))
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        first = dataset_fingerprint(ds)
        hash_s = time.perf_counter() - start
        assert dataset_fingerprint(load_any(str(path))) == first  # the same file loaded again: the same digest
        mib = path.stat().st_size / 2**20
    print(f"{args.rows} rows ({mib:.0f} MiB): load {load_s:.2f} s, fingerprint {hash_s:.2f} s "
          f"({hash_s / load_s:.2f}x the load)")


if __name__ == "__main__":
    main()
