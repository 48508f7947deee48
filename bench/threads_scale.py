#!/usr/bin/env python
"""Time to build threads at OASST1 scale (88k messages, ~10k trees) against a quadratic reference.

The reference is how LLaMa2lang found replies: for every message, scan the whole dataset for its children.
It is run on a subset (it would take hours at full scale) where both builders must give the same threads;
the ratio is taken there, and the linear builder is also timed at full scale.

    python bench/threads_scale.py [--messages 88000] [--subset 8800]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from l2l.shapes import Fields, oasst_threads  # noqa: E402


def synthetic_oasst(n_messages: int, seed: int = 0) -> list[dict]:
    """Trees shaped like OASST1: ~8.8 messages a tree, 1-3 ranked replies per message, depth up to ~8."""
    rng = random.Random(seed)
    rows: list[dict] = []
    tree = 0
    while len(rows) < n_messages:
        tree += 1
        root = f"t{tree}"
        rows.append({"message_id": root, "parent_id": None, "role": "prompter", "text": f"question {tree}",
                     "rank": None})
        frontier = [(root, "prompter", 0)]
        size = rng.randint(3, 15)
        while frontier and size > 0:
            parent, role, depth = frontier.pop(0)
            child_role = "assistant" if role == "prompter" else "prompter"
            for r in range(rng.randint(1, 3) if depth < 8 else 0):
                mid = f"{parent}.{r}"
                rows.append({"message_id": mid, "parent_id": parent, "role": child_role, "text": f"text {mid}",
                             "rank": r if child_role == "assistant" and rng.random() > 0.1 else None})
                frontier.append((mid, child_role, depth + 1))
                size -= 1
    rng.shuffle(rows)  # OASST is not ordered by tree
    return rows[:n_messages]


def quadratic_threads(rows: list[dict]) -> list[dict]:
    """The reference: children found by scanning every message, at every step."""
    threads = []
    for pos, root in enumerate(rows):
        if root["parent_id"] is not None or root["role"] != "prompter":
            continue
        turns, node, want = [], pos, "user"
        while True:
            turns.append({"role": want, "content": rows[node]["text"]})
            want = "assistant" if want == "user" else "user"
            role = "assistant" if want == "assistant" else "prompter"
            kids = [i for i, r in enumerate(rows) if r["parent_id"] == rows[node]["message_id"] and r["role"] == role]
            if not kids:
                break
            node = min(kids, key=lambda i: (math.inf if rows[i]["rank"] is None else rows[i]["rank"], i))
        while turns and turns[-1]["role"] != "assistant":
            turns.pop()
        if turns:
            threads.append({"id": root["message_id"], "messages": turns})
    return threads


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=88_000)
    p.add_argument("--subset", type=int, default=8_800)
    args = p.parse_args()
    full = synthetic_oasst(args.messages)
    subset = synthetic_oasst(args.subset, seed=1)
    t_full, threads = timed(oasst_threads, full, Fields())
    t_lin, lin = timed(oasst_threads, subset, Fields())
    t_quad, quad = timed(quadratic_threads, subset)
    assert lin == quad, "the linear builder and the reference disagree"
    print(f"full scale: {len(full)} messages, {len(threads)} threads in {t_full:.2f} s")
    print(f"subset: {len(subset)} messages, {len(lin)} threads (identical in both)")
    print("| builder | messages | seconds | ratio |")
    print("|---|---|---|---|")
    print(f"| quadratic reference | {len(subset)} | {t_quad:.2f} | 1 |")
    print(f"| threads/ (linear) | {len(subset)} | {t_lin:.4f} | {t_quad / t_lin:.0f}x faster |")
    print(f"| threads/ (linear) | {len(full)} | {t_full:.2f} | quadratic extrapolated: "
          f"~{t_quad * (len(full) / len(subset)) ** 2 / 60:.0f} min |")


if __name__ == "__main__":
    main()
