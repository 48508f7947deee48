"""Checks on translated text, cheap enough for every record: no model beyond the language identifier.

Each check has a name (CHECKS). A field's output is checked against its source; a record's result is the list
of the checks that fired on any of its fields and a score in [0, 1] (1: nothing fired; the lowest score of the
fired checks otherwise). The length check is calibrated per language pair from the data itself: the median
output/source length ratio of the records checked together, with a tolerance that widens for short texts.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

from l2l.answers import loops, words

CHECKS = ("empty", "untranslated", "wrong_language", "length", "loop", "structure")
MODEL_CHECKS = ("round_trip", "qe")  # opt-in, model-based (scores.py): a score under the user's threshold
SEVERITY = {"empty": 0.0, "untranslated": 0.1, "wrong_language": 0.2, "loop": 0.2, "length": 0.4,
            "structure": 0.6, "round_trip": 0.3, "qe": 0.3}
MIN_LANGUAGE_CHARS = 60  # shorter outputs are too short to tell their language reliably
MIN_LENGTH_CHARS = 30  # shorter sources vary too much in length to judge

_FENCE = re.compile(r"```")
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_URL = re.compile(r"https?://[^\s)>\]\"']+")
_CODE_CHARS = set("(){}[];=<>+*/\\|&$#@_")
_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+\S", re.M)


@dataclass
class Pair:
    """One translated text beside its source, with what the per-text checks found."""

    source: str
    output: str
    flags: list[str] = field(default_factory=list)
    # for a pair rebuilt from a checkpoint's stored checks (no source text): its source's prose length, and the
    # output's words that its source also has
    source_chars: int | None = None
    copied: list[str] | None = None
    stand_in: bool = False  # not texts: "3 turns" against "2 turns", for a conversation that lost turns

    @property
    def source_length(self) -> int:
        return self.source_chars if self.source_chars is not None else prose_length(self.source)

    @property
    def log_ratio(self) -> float | None:
        s, o = self.source_length, prose_length(self.output)
        return math.log(o / s) if s >= MIN_LENGTH_CHARS and o else None


def prose_length(text: str) -> int:
    return len(" ".join(prose(text).split()))


def _trigrams(tokens: list[str]) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + 3]) for i in range(len(tokens) - 2)}


def prose(text: str) -> str:
    """The text without fenced code, inline code and URLs (kept verbatim by translation, the same on both sides)."""
    text = re.sub(r"```.*?(```|$)", " ", text, flags=re.S)
    return _URL.sub(" ", _INLINE.sub(" ", text))


def looks_like_code(text: str) -> bool:
    """Code or markup outside fences (SQL, a function, a path): the same in every language."""
    chars = [c for c in text if not c.isspace()]
    return bool(chars) and sum(c in _CODE_CHARS for c in chars) >= 0.06 * len(chars)


def untranslated(source: str, output: str) -> bool:
    """The source's prose copied, wholly (the same words, four or more) or mostly (half its word trigrams in the
    output, six words or more); names, titles and code are the same in every language and are not judged."""
    if looks_like_code(prose(source)):
        return False
    s = [w for w in words(prose(source)) if not w.isdigit()]  # numbers are the same in every language
    o = [w for w in words(prose(output)) if not w.isdigit()]
    if sum(w.isalpha() for w in s) < 4:
        return False
    if s == o:
        return True
    if len(s) < 6 or len(o) < 3:
        return False
    grams = _trigrams(o)
    return len(grams & _trigrams(s)) >= 0.5 * len(grams)


def _digits(text: str):
    """The digits of a text, any script's written as ASCII, counted: numbers survive a translation however the
    language groups and separates them (1,000.50 / 1 000,50 / 1.000,50; 10:30 / 10.30; ٢٥ / 25)."""
    from collections import Counter

    return Counter(str(unicodedata.decimal(c)) for c in text if c.isdecimal())


def structure_lost(source: str, output: str) -> bool:
    """Fenced code, inline code, URLs, numbers or list items of the source missing from the output."""
    if len(_FENCE.findall(output)) < len(_FENCE.findall(source)):
        return True
    if any(code not in output for code in _INLINE.findall(source)):
        return True
    if any(url.rstrip(".,;:!?。，、") not in output for url in _URL.findall(source)):
        return True
    if _digits(source) - _digits(output):
        return True
    items = len(_ITEM.findall(source))
    return items >= 2 and len(_ITEM.findall(output)) < items


def text_flags(source: str, output: str) -> list[str]:
    """The checks that need no other record: empty, untranslated, loop, structure (language comes in a batch)."""
    if not source.strip() or not re.search(r"\w", source):
        return []
    said = words(output)
    if not said:
        return ["empty"]
    flags = []
    if untranslated(source, output):
        flags.append("untranslated")
    if loops(said) and not loops(words(source)):
        flags.append("loop")
    if structure_lost(source, output):
        flags.append("structure")
    return flags


def own_words(pair: Pair) -> str:
    """The output without the words it shares with its source (names and terms kept as they were, which would
    make the identifier see the source's language in a good translation)."""
    copied = set(pair.copied) if pair.copied is not None else set(words(pair.source))
    return " ".join(w for w in re.findall(r"\w+", pair.output) if w.lower() not in copied)


def language_flags(pairs: list[Pair], target: str) -> None:
    """wrong_language where the identifier is sure an output's own words are in another language (outputs too
    short to tell, or already flagged empty or untranslated, are not asked)."""
    from l2l.cli import UsageError, log
    from l2l.languages import foreign_language

    asked = [(p, own) for p in pairs if not {"empty", "untranslated"} & set(p.flags)
             and len(own := own_words(p)) >= MIN_LANGUAGE_CHARS]
    if not asked:
        return
    try:
        found = foreign_language([own for _, own in asked], target)
    except UsageError:  # a language lingua does not know: that one check cannot run; the others still do
        log(f"note: the language identifier does not know {target}: wrong_language is not checked")
        return
    for (p, _), lang in zip(asked, found):
        if lang is not None:
            p.flags.append("wrong_language")


@dataclass
class LengthModel:
    """The expected output/source length ratio of a language pair, learned from the data checked."""

    median: float = 0.0
    spread: float = 0.15
    known: bool = True  # False: too few texts to learn the pair's ratio from; the length check does not run

    @classmethod
    def fit(cls, pairs: list[Pair]) -> LengthModel:
        ratios = sorted(r for p in pairs if not p.flags and (r := p.log_ratio) is not None)
        if len(ratios) < 5:
            return cls(known=False)
        median = ratios[len(ratios) // 2]
        mad = sorted(abs(r - median) for r in ratios)[len(ratios) // 2]
        return cls(median=median, spread=max(0.1, 1.4826 * mad))

    def off(self, pair: Pair) -> bool:
        """Far shorter (truncated) or far longer (something added) than the pair's usual ratio."""
        r = pair.log_ratio
        if r is None or not self.known:
            return False
        short = pair.source_length < 120  # short texts vary more
        return abs(r - self.median) > max(0.45 if short else 0.35, 4 * self.spread)


def check_pairs(pairs: list[Pair], target: str, lengths: LengthModel | None = None,
                text_done: bool = False) -> LengthModel:
    """Every check on every pair (flags filled in place; with text_done, the per-text ones are there already);
    the length model used, fitted here unless given."""
    for p in pairs if not text_done else []:
        p.flags = p.flags or text_flags(p.source, p.output)  # flags set already (a turn lost) stand
    language_flags(pairs, target)
    lengths = lengths or LengthModel.fit(pairs)
    for p in pairs:
        if "empty" not in p.flags and lengths.off(p):
            p.flags.append("length")
    return lengths


def record_result(pairs: list[Pair]) -> tuple[list[str], float]:
    """A record's flags (in CHECKS order, each once) and score from its fields' pairs."""
    fired = {f for p in pairs for f in p.flags}
    flags = [c for c in CHECKS + MODEL_CHECKS if c in fired]
    return flags, min((SEVERITY[f] for f in flags), default=1.0)


def row_pairs(row: dict, fields: list[str]) -> list[tuple[str, Pair]]:
    """(field, pair) for each translated text of a row: a text field beside its `<field>_source`, or each turn of
    a conversation beside the same turn of the source conversation."""
    from l2l.shapes import is_conversation, turn_text_key

    out = []
    for f in fields:
        value, source = row.get(f), row.get(f"{f}_source")
        if isinstance(value, str) and isinstance(source, str):
            out.append((f, Pair(source, value)))
        elif is_conversation(value) and is_conversation(source) and len(value) != len(source):
            out.append((f, Pair(f"{len(source)} turns", f"{len(value)} turns", ["structure"], stand_in=True)))
        elif is_conversation(value) and is_conversation(source):
            for t, (turn, was) in enumerate(zip(value, source)):
                key, was_key = turn_text_key(turn), turn_text_key(was)
                if isinstance(turn.get(key), str) and isinstance(was.get(was_key), str):
                    out.append((f"{f}[{t}]", Pair(was[was_key], turn[key])))
    return out


@dataclass
class Report:
    """What the checks found over a dataset: flagged records per check, with a few examples each."""

    records: int = 0
    flagged: int = 0
    per_check: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    examples: dict[str, list[dict]] = field(default_factory=lambda: {c: [] for c in CHECKS})
    length_model: dict = field(default_factory=dict)
    # per split, per model-based score (scores.py), each record's lowest score over its texts (None: not scored)
    scores: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    unchecked: int = 0  # records from checkpoints written before translate.py checked its output

    def add(self, flags: list[str], labelled: list[tuple[str, Pair]], split: str, index: int) -> None:
        self.records += 1
        self.flagged += bool(flags)
        for name in flags:
            self.per_check[name] = self.per_check.get(name, 0) + 1
            if len(self.examples.setdefault(name, [])) < 3:
                where, pair = next((w, p) for w, p in labelled if name in p.flags)
                self.examples[name].append({"split": split, "row": index, "field": where,
                                            "source": pair.source[:300], "output": pair.output[:300]})

    def markdown(self, title: str) -> str:
        lines = [f"# {title}", "", f"{self.flagged} of {self.records} records flagged "
                 f"({self.flagged / max(1, self.records):.1%}).", "", "| check | records | share |", "|---|---|---|"]
        lines += [f"| {c} | {n} | {n / max(1, self.records):.1%} |" for c, n in self.per_check.items()]
        for c, shown in self.examples.items():
            for ex in shown:
                lines += ["", f"**{c}**, {ex['split']} row {ex['row']}, {ex['field']}:", "",
                          f"> source: {ex['source']}".replace("\n", " "), ">",
                          f"> output: {ex['output']}".replace("\n", " ")]
        return "\n".join(lines) + "\n"

    def summary_lines(self) -> list[str]:
        fired = [f"{c}: {n}" for c, n in self.per_check.items() if n]
        head = f"translation checks: {self.flagged} of {self.records} records flagged"
        old = [f"  {self.unchecked} records come from checkpoints an older translate.py wrote, without the checks: "
               "not checked (translation_score empty; check_translations.py --source_dataset checks them)"]
        return [head + (f" ({', '.join(fired)})" if fired else "")] + old * bool(self.unchecked) + [
            f"  {c}, e.g. {ex[0]['split']} row {ex[0]['row']} {ex[0]['field']}: {ex[0]['output'][:80]!r}"
            for c, ex in self.examples.items() if ex]


def check_splits(splits: dict[str, list[dict]], fields: list[str], target: str,
                 stored: dict[str, list] | None = None, scorers: tuple = (),
                 source_lang: str = "en") -> tuple[dict, Report]:
    """Each row's (flags, score), per split, and the report; the length ratio is learned over all splits.
    With `stored` (per split, the checks translate.py wrote beside each row), the rows need no source text.
    `scorers` (scores.py, they need the source text) score each text too and flag those under their threshold;
    a row's source language is its `source_lang`, else `source_lang`."""
    from l2l.languages import same_language

    def passed_through(row: dict) -> bool:  # already in the target language: kept as it was, not translated
        lang = row.get("source_lang")
        return isinstance(lang, str) and same_language(lang, target)

    if stored is not None:
        labelled = {s: [stored_pairs(row, c) for row, c in zip(rows, stored[s])] for s, rows in splits.items()}
    else:
        labelled = {s: [[] if passed_through(row) else row_pairs(row, fields) for row in rows]
                    for s, rows in splits.items()}
    every = [p for rows in labelled.values() for row in rows for _, p in row]
    model = check_pairs(every, target, text_done=stored is not None)
    report = Report(length_model={"median_ratio": round(math.exp(model.median), 3), "spread": round(model.spread, 3)})
    if scorers:
        report.scores = model_scores(splits, labelled, scorers, source_lang)
    results = {}
    for split, rows in labelled.items():
        results[split] = []
        for i, row in enumerate(rows):
            flags, score = record_result([p for _, p in row])
            results[split].append((flags, score))
            report.add(flags, row, split, i)
    return results, report


def model_scores(splits: dict[str, list[dict]], labelled: dict[str, list], scorers: tuple,
                 source_lang: str) -> dict[str, dict[str, list[float | None]]]:
    """Each scorer's score per record (its texts' lowest), per split; texts under a threshold get flagged."""
    from l2l.translate.scores import apply

    items = [(row.get("source_lang") or source_lang, p) for s, rows in labelled.items()
             for row, pairs in zip(splits[s], rows) for _, p in pairs]
    per_text = iter(zip(*apply(list(scorers), items).values()))
    out: dict[str, dict[str, list[float | None]]] = {}
    for split, rows in labelled.items():
        out[split] = {sc.name: [] for sc in scorers}
        for pairs in rows:
            texts = [next(per_text) for _ in pairs]
            for k, sc in enumerate(scorers):
                found = [t[k] for t in texts if t[k] is not None]
                out[split][sc.name].append(round(min(found), 4) if found else None)
    return out


def written_checks(source_row: dict, record: dict, fields: list[str]) -> dict:
    """What translate.py stores beside a record as it writes it: per translated text, where it is, the length
    of its source and the per-text checks that fired (the length and language checks need the whole dataset or
    a language model, and run when the checkpoints are combined)."""
    merged = {**record, **{f"{f}_source": source_row.get(f) for f in fields}}
    stored = []
    for where, p in row_pairs(merged, fields):
        copied = sorted(set(words(p.output)) & set(words(p.source)))[:200]  # for the language check, later
        stored.append([where, prose_length(p.source), p.flags or text_flags(p.source, p.output), copied])
    return {"pairs": stored}


def _text_at(record: dict, where: str) -> str | None:
    from l2l.shapes import turn_text_key

    name, _, turn = where.partition("[")
    value = record.get(name)
    if not turn:
        return value if isinstance(value, str) else None
    try:
        t = value[int(turn.rstrip("]"))]
    except (TypeError, ValueError, IndexError):
        return None
    text = t.get(turn_text_key(t)) if isinstance(t, dict) else None
    return text if isinstance(text, str) else None


def stored_pairs(record: dict, checks: dict | None) -> list[tuple[str, Pair]]:
    """The (where, pair) of a combined record rebuilt from the checks stored as it was written (no source text:
    its length, and the per-text flags)."""
    out = []
    for where, source_chars, flags, *copied in (checks or {}).get("pairs", []):
        text = _text_at(record, where)
        if text is None and flags:  # a lost turn: nothing to look at, the flag stands
            text = ""
        if text is not None:
            out.append((where, Pair("", text, list(flags), source_chars=source_chars,
                                    copied=copied[0] if copied else None)))
    return out
