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
    # per split, the later copies of records: (position in the split, record, its checks), e.g. a translation
    # again with --retranslate_flagged; check() keeps the better-scoring copy
    later: dict[str, list] = field(default_factory=dict)
    replaced: Counter = field(default_factory=Counter)  # translator -> records whose later copy was kept
    indices: dict[str, list[int]] = field(default_factory=dict)  # per split, each record's index in the dataset


def combine(folder: Path) -> Combined:
    """Read every chunk (refusing a corrupt or foreign one), keep the first written copy of each (split, index),
    sort."""
    if not folder.is_dir():
        raise UsageError(f"checkpoint folder {folder} does not exist")
    manifest, chunks = checkpoints.load(folder)  # each chunk checked: another translation's is refused
    if not chunks:
        raise UsageError(f"checkpoint folder {folder} holds no checkpoint files")
    return combine_chunks(manifest, chunks)


def languages(rows: list[dict], manifest: dict) -> Counter:
    """Records per language: the language column's values, or the target language for all of them."""
    lang_field = manifest.get("lang_field")
    return Counter(str(r.get(lang_field)) for r in rows) if lang_field else Counter(
        {manifest.get("target_language", "?"): len(rows)})


def combine_chunks(manifest: dict, chunks: list) -> Combined:
    """Chunks already read (in the order they were written), each record once and in dataset order per split;
    the later copies kept aside for check()."""
    by_split: dict[str, dict[int, dict]] = {}
    result = Combined(splits={}, manifest=manifest)
    later: dict[str, list] = {}
    for chunk in chunks:  # in the order they were written: the first written copy of a record stands first
        split = chunk.header["split"]
        seen = by_split.setdefault(split, {})
        for n, (i, record) in enumerate(zip(chunk.indices, chunk.records)):
            copy = (record, chunk.checks[n] if chunk.checks is not None else False, chunk.header.get("translator"))
            if i in seen:
                result.duplicates += 1
                later.setdefault(split, []).append((i, *copy))
                continue
            seen[i] = copy
            result.translators[chunk.header.get("translator", "?")] += 1
    for split, records in by_split.items():
        order = sorted(records)
        position = {i: n for n, i in enumerate(order)}
        result.splits[split], result.indices[split] = [records[i][0] for i in order], order
        result.checks[split] = [records[i][1] for i in order]  # False: written before checks were
        result.later[split] = [(position[i], rec, chk, who) for i, rec, chk, who in later.get(split, [])]
        result.languages[split] = languages(result.splits[split], manifest)
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
    records left out with drop_flagged); where a record was translated more than once, the better-scoring copy
    kept (the first written on a tie); the report, or None for older checkpoints without either."""
    if not checkable(combined):
        if drop_flagged:
            raise UsageError("--drop_flagged: these checkpoints were written before translate.py checked its "
                             "output, without --keep_source (check them with check_translations.py "
                             "--source_dataset)")
        return None
    if any(combined.later.values()):
        keep_better_copies(combined)
    results, report = _checked(combined.splits, combined.checks, combined.manifest)
    source_kept = bool(combined.manifest.get("keep_source"))
    for split, rows in combined.splits.items():
        for row, (flags, score), stored in zip(rows, results[split], combined.checks[split]):
            if stored is False and not source_kept:  # from a chunk written before the checks: not checked
                flags, score = [], None
                report.unchecked += 1
            row["translation_flags"], row["translation_score"] = flags, score
        if drop_flagged:
            combined.splits[split] = kept = [r for r in rows if not r["translation_flags"]]
            combined.languages[split] = languages(kept, combined.manifest)
    return report


def checkable(combined: Combined) -> bool:
    """Whether any record can be checked: the source was kept, or some chunk holds the checks (a folder that an
    older translate.py began: its records are left unchecked, translation_score None)."""
    stored = [c for checks in combined.checks.values() for c in checks]
    stored += [c for copies in combined.later.values() for _, _, c, _ in copies]
    return bool(combined.manifest.get("keep_source")) or any(c is not False for c in stored)


def _checked(splits: dict, stored: dict, manifest: dict):
    from l2l.translate.quality import check_splits

    fields, target = list(manifest.get("text_fields") or []), manifest["target_language"]
    if manifest.get("keep_source"):  # the source text is there: every check, from it
        return check_splits(splits, fields, target)
    return check_splits(splits, fields, target, stored=stored)


def keep_better_copies(combined: Combined) -> None:
    """Each record translated more than once: the copy the checks score higher (the first written on a tie)."""
    splits, stored = dict(combined.splits), dict(combined.checks)
    for split, copies in combined.later.items():
        splits[f"{split}\0later"] = [rec for _, rec, _, _ in copies]
        stored[f"{split}\0later"] = [chk for _, _, chk, _ in copies]
    results, _ = _checked(splits, stored, combined.manifest)
    kept_source = bool(combined.manifest.get("keep_source"))

    def known(score: float, checks) -> float:  # a copy an older translate.py wrote, unchecked: any checked one wins
        return -1.0 if checks is False and not kept_source else score

    best = {split: [known(score, chk) for (_, score), chk in zip(results[split], stored[split])]
            for split in combined.splits}
    for split, copies in combined.later.items():
        for (pos, rec, chk, who), (_, score) in zip(copies, results[f"{split}\0later"]):
            score = known(score, chk)
            if score > best[split][pos]:
                best[split][pos] = score
                combined.splits[split][pos], combined.checks[split][pos] = rec, chk
                combined.replaced[who or "?"] += 1


def flagged_indices(folder: Path, manifest: dict, chunks: list, source: dict | None = None) -> dict[str, list[int]]:
    """Per split, the dataset indices of the records whose best translation so far the checks flag (the chunks
    of `folder`, read already). With `source` (per split, the dataset being translated), the records an older
    translate.py wrote without checks and without --keep_source are checked from its text too."""
    combined = combine_chunks(manifest, chunks)
    from_source = source is not None and not manifest.get("keep_source")
    if not checkable(combined) and not from_source:
        raise UsageError(f"--retranslate_flagged: the checkpoints in {folder} hold no translation checks (written "
                         "by an older version, without --keep_source)")
    if checkable(combined):
        check(combined, drop_flagged=False)
    flagged = {split: {i for i, row in zip(combined.indices[split], rows) if row.get("translation_flags")}
               for split, rows in combined.splits.items()}
    for split, idx in (unchecked_flagged(combined, source) if from_source else {}).items():
        flagged[split] |= idx
    return {split: sorted(idx) for split, idx in flagged.items()}


def unchecked_flagged(combined: Combined, source: dict) -> dict[str, set[int]]:
    """Per split, the dataset indices of the unchecked records (an older translate.py's, no source kept) that
    the checks flag, every record checked beside its text in `source` (so the length ratio is learned from
    all of them)."""
    from l2l.translate.quality import check_splits

    fields = list(combined.manifest.get("text_fields") or [])
    lang = combined.manifest.get("lang_field")  # a record kept as it was (already in the target language) is no copy
    rows, todo = {}, {}
    for split, records in combined.splits.items():
        todo[split] = [k for k, c in enumerate(combined.checks[split]) if c is False]
        if todo[split] and split in source:
            columns = {f"{f}_source": source[split][f] for f in fields}
            columns |= {"source_lang": source[split][lang]} if lang in source[split].column_names else {}
            rows[split] = [r | {key: col[i] for key, col in columns.items()}
                           for r, i in zip(records, combined.indices[split])]
    if not rows:
        return {}
    results, _ = check_splits(rows, fields, combined.manifest["target_language"])
    return {split: {combined.indices[split][k] for k in todo[split] if results[split][k][0]} for split in rows}
