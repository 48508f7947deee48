"""Combining translation checkpoints into one DatasetDict: every record once, in dataset order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from l2l.cli import UsageError
from l2l.translate import checkpoints


@dataclass
class Combined:
    splits: dict[str, list[dict]]
    duplicates: int = 0
    languages: dict[str, Counter] = field(default_factory=dict)
    translators: Counter = field(default_factory=Counter)
    manifest: dict = field(default_factory=dict)
    checks: dict[str, list] = field(default_factory=dict)  # per split, the checks stored with each record


def combine(folder: Path) -> Combined:
    """Read every chunk (refusing a corrupt or foreign one), keep the first written copy of each (split, index),
    sort."""
    if not folder.is_dir():
        raise UsageError(f"checkpoint folder {folder} does not exist")
    manifest, chunks = checkpoints.load(folder)  # each chunk checked: another translation's is refused
    if not chunks:
        raise UsageError(f"checkpoint folder {folder} holds no checkpoint files")
    lang_field = manifest.get("lang_field")
    by_split: dict[str, dict[int, dict]] = {}
    result = Combined(splits={}, manifest=manifest)
    for chunk in chunks:  # in the order they were written: the first written copy of a record wins
        split = chunk.header["split"]
        seen = by_split.setdefault(split, {})
        for n, (i, record) in enumerate(zip(chunk.indices, chunk.records)):
            if i in seen:
                result.duplicates += 1
                continue
            seen[i] = (record, chunk.checks[n] if chunk.checks is not None else False)
            result.translators[chunk.header.get("translator", "?")] += 1
    for split, records in by_split.items():
        ordered = [records[i][0] for i in sorted(records)]
        result.splits[split] = ordered
        result.checks[split] = [records[i][1] for i in sorted(records)]  # False: written before checks were
        langs = Counter(str(r.get(lang_field)) for r in ordered) if lang_field else Counter(
            {manifest.get("target_language", "?"): len(ordered)})
        result.languages[split] = langs
    return result


def to_dataset_dict(combined: Combined):
    import datasets

    try:
        dsd = datasets.DatasetDict({split: datasets.Dataset.from_list(rows) for split,
                                    rows in combined.splits.items()})
    except (TypeError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise UsageError(f"the checkpoint records do not form one table: {mixed_column(combined) or e}") from e
    for split, data in dsd.items():  # no record flagged: still a column of string lists
        if "translation_flags" in data.column_names:
            dsd[split] = data.cast_column("translation_flags", datasets.List(datasets.Value("string")))
    return dsd


def mixed_column(combined: Combined) -> str | None:
    """Where the records disagree: the first column holding values of two kinds, and a record of each."""
    for split, rows in combined.splits.items():
        kinds: dict[str, dict[str, int]] = {}
        for n, row in enumerate(rows):
            for key, value in row.items():
                if value is not None:
                    kinds.setdefault(key, {}).setdefault(type(value).__name__, n)
        for key, seen in kinds.items():
            if len(seen) > 1:
                (a, i), (b, j) = list(seen.items())[:2]
                return f"column {key!r} of split {split} holds {a} (record {i}) and {b} (record {j})"
    return None


def check(combined: Combined, drop_flagged: bool):
    """The translation checks on the combined records, from their source text (--keep_source) or from what
    translate.py stored as it wrote them: translation_flags and translation_score added to each record (flagged
    records left out with drop_flagged); the report, or None for older checkpoints without either."""
    from l2l.translate.quality import check_splits

    m = combined.manifest
    fields, target = list(m.get("text_fields") or []), m["target_language"]
    if m.get("keep_source"):  # the source text is there: every check, from it
        results, report = check_splits(combined.splits, fields, target)
    elif all(c is not False for checks in combined.checks.values() for c in checks):
        results, report = check_splits(combined.splits, fields, target, stored=combined.checks)
    else:
        if drop_flagged:
            raise UsageError("--drop_flagged: these checkpoints were written before translate.py checked its "
                             "output, without --keep_source (check them with check_translations.py "
                             "--source_dataset)")
        return None
    for split, rows in combined.splits.items():
        for row, (flags, score) in zip(rows, results[split]):
            row["translation_flags"], row["translation_score"] = flags, score
        if drop_flagged:
            combined.splits[split] = [r for r in rows if not r["translation_flags"]]
    return report
