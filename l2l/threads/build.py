"""Conversations beyond the dataset's own: a system prompt added, and bilingual translation tasks built from
the translated records beside their sources (how each dataset shape reads as conversations is l2l/shapes.py)."""

from __future__ import annotations

import random

from l2l.shapes import Fields


def with_system(threads: list[dict], prompt: str | None, origin: str) -> list[dict]:
    return [{"id": t["id"], "origin": origin,
             "messages": ([{"role": "system", "content": prompt}] if prompt else []) + t["messages"]}
            for t in threads]


def translation_pairs(rows: list[dict], columns: list[str], f: Fields) -> list[tuple[str, str, str, str]]:
    """(source text, translation, source language, target language) from --keep_source columns."""
    pairs = []
    fields = [c[: -len("_source")] for c in columns if c.endswith("_source") and c[: -len("_source")] in columns]
    for row in rows:
        src_lang = row.get("source_lang")
        tgt_lang = row.get("lang")
        for field in fields:
            a, b = row.get(f"{field}_source"), row.get(field)
            if isinstance(a, str) and isinstance(b, str) and a.strip() and b.strip() and a != b:
                pairs.append((a, b, src_lang, tgt_lang))
    return pairs


TASK_PROMPT = "Translate the following text from {source} to {target}.\n\n{text}"


def translation_tasks(pairs, n: int, target_lang: str | None, rng: random.Random,
                      prompt: str = TASK_PROMPT) -> list[dict]:
    """n bilingual conversations, alternating directions: source->target and target->source."""
    from l2l.languages import display_name

    if not pairs or n <= 0:
        return []
    chosen = rng.sample(pairs, min(n, len(pairs)))
    out = []
    for i, (src, tgt, src_lang, tgt_lang) in enumerate(chosen):
        a_name, b_name = display_name(src_lang or "en"), display_name(tgt_lang or target_lang or "und")
        if i % 2 == 0:
            user, answer = prompt.format(source=a_name, target=b_name, text=src), tgt
        else:
            user, answer = prompt.format(source=b_name, target=a_name, text=tgt), src
        out.append({"id": f"task-{i}", "messages": [{"role": "user", "content": user},
                                                     {"role": "assistant", "content": answer}]})
    return out
