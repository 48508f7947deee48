"""Cutting texts into what a translation model may see, and putting the translations back together.

A text becomes a list of pieces, each either sent to the model or kept verbatim:
- fenced code blocks (``` or ~~~), markdown prefixes (list bullets, numbers, headings, quotes), table pipes,
  whitespace and newlines are verbatim and never reach the model;
- inline code, URLs and e-mail addresses inside prose never reach the model either: the sentence is sent
  with numbered placeholders (X1, X2, ...) in their place, so it is translated whole, and the spans are put
  back where the placeholders come out. A translation that loses, repeats or invents a placeholder is not
  trusted: that piece is translated again as fragments around the spans (see `fragments`);
- pieces without a letter (numbers, punctuation) are verbatim too;
- at sentence level (the default for MT models, which are trained on sentences) prose is cut into sentences;
- anything still longer than the model's input budget is cut at sentence, then clause, then word
  boundaries, so nothing is ever silently truncated.
Joining the pieces, with each translatable one replaced by its translation, rebuilds the text with its
layout intact; joining them untranslated gives back the original exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
MD_PREFIX = re.compile(r"^(\s*(?:(?:[-*+]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?|#{1,6}\s+|>\s?)*)")
PROTECTED = re.compile(
    r"(`+)(?:(?!\1).)+?\1"                      # inline code
    r"|<?(?:https?|ftp)://[^\s<>`\"']+"          # URLs
    r"|\bwww\.[^\s<>`\"']+"
    r"|\b[\w.+-]+@[\w-]+\.[\w.-]+\b"             # e-mail addresses
)
URL_TRAIL = ".,;:!?)]}>'\""
LETTER = re.compile(r"[^\W\d_]")
SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|(?<=[。！？])\s*")
CLAUSE_END = re.compile(r"(?<=[,;:，；：])\s+")
SPACE = re.compile(r"\s+")
ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "no.", "fig.",
                 "approx.", "cf.", "jr.", "sr.", "inc.", "ltd.", "u.s.", "a.m.", "p.m."}


PLACEHOLDER = re.compile(r"\bX(\d+)\b")


@dataclass(frozen=True)
class Piece:
    text: str
    translate: bool
    slots: tuple[str, ...] = ()  # verbatim spans standing behind the placeholders X1..Xn in `text`


def _verbatim(text: str) -> list[Piece]:
    return [Piece(text, False)] if text else []


def _prose(text: str) -> list[Piece]:
    """Whitespace around prose stays verbatim; prose without letters is verbatim."""
    core = text.strip()
    if not core:
        return _verbatim(text)
    start = text.index(core)
    lead, trail = text[:start], text[start + len(core):]
    body = Piece(core, bool(LETTER.search(core)))
    return _verbatim(lead) + [body] + _verbatim(trail)


def _spans(text: str) -> list[tuple[int, int]]:
    """Protected spans (inline code, URLs, e-mail addresses); trailing punctuation stays with the prose."""
    spans = []
    for m in PROTECTED.finditer(text):
        start, end = m.span()
        if m.group(1) is None:
            while end > start and text[end - 1] in URL_TRAIL:
                end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _with_placeholders(text: str) -> list[Piece]:
    """Prose holding protected spans becomes one piece with X1..Xn in their place."""
    spans = _spans(text)
    if not spans:
        return _prose(text)
    outside = "".join(text[a:b] for a, b in zip([0] + [e for _, e in spans], [s for s, _ in spans] + [len(text)]))
    if not LETTER.search(outside):
        return _verbatim(text)
    if PLACEHOLDER.search(text):  # the text itself has X1-like words: placeholders would be ambiguous
        return _fragments_of(text, spans)
    parts, slots, pos = [], [], 0
    for start, end in spans:
        slots.append(text[start:end])
        parts.append(text[pos:start] + f"X{len(slots)}")
        pos = end
    parts.append(text[pos:])
    return [_with_slots(p, tuple(slots)) for p in _prose("".join(parts))]


def _with_slots(piece: Piece, slots: tuple[str, ...]) -> Piece:
    if not piece.translate:  # whitespace around the prose cannot hold placeholders
        return piece
    return Piece(piece.text, True, slots)


def _fragments_of(text: str, spans: list[tuple[int, int]]) -> list[Piece]:
    pieces: list[Piece] = []
    pos = 0
    for start, end in spans:
        pieces.extend(_prose(text[pos:start]))
        pieces.extend(_verbatim(text[start:end]))
        pos = end
    pieces.extend(_prose(text[pos:]))
    return pieces


def fragments(piece: Piece) -> list[Piece]:
    """A placeholder piece as prose fragments around its verbatim spans (the fallback)."""
    if not piece.slots:
        return [piece]
    out: list[Piece] = []
    pos = 0
    for m in PLACEHOLDER.finditer(piece.text):
        out.extend(_prose(piece.text[pos:m.start()]))
        out.extend(_verbatim(piece.slots[int(m.group(1)) - 1]))
        pos = m.end()
    out.extend(_prose(piece.text[pos:]))
    return merge(out)


def restore(translation: str, slots: tuple[str, ...]) -> str | None:
    """Put the spans back in a translation; None when the placeholders did not come back exactly once each."""
    if not slots:
        return translation
    found = [int(m.group(1)) for m in PLACEHOLDER.finditer(translation)]
    if sorted(found) != list(range(1, len(slots) + 1)):
        return None
    return PLACEHOLDER.sub(lambda m: slots[int(m.group(1)) - 1], translation)


def _inline(text: str, table_row: bool) -> list[Piece]:
    if not table_row:
        return _with_placeholders(text)
    out: list[Piece] = []
    for i, cell in enumerate(text.split("|")):
        if i:
            out.append(Piece("|", False))
        out.extend(_with_placeholders(cell))
    return out


def structure(text: str) -> list[Piece]:
    """Split a text into verbatim and translatable pieces along its markdown structure (no length rule)."""
    pieces: list[Piece] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        eol = line[len(body):]
        m = FENCE.match(body)
        if fence is not None:  # inside a code block: verbatim until the closing fence
            pieces.append(Piece(line, False))
            closing = m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)
            if closing and not body.strip()[len(m.group(1)):].strip():
                fence = None
            continue
        if m:
            fence = m.group(1)
            pieces.append(Piece(line, False))
            continue
        prefix = MD_PREFIX.match(body).group(1)
        rest = body[len(prefix):]
        pieces.extend(_verbatim(prefix))
        pieces.extend(_inline(rest, table_row=rest.lstrip().startswith("|")))
        pieces.extend(_verbatim(eol))
    return merge(pieces)


def merge(pieces: Iterable[Piece]) -> list[Piece]:
    """Join neighbouring verbatim pieces (fewer, larger pieces; same text)."""
    out: list[Piece] = []
    for p in pieces:
        if not p.text:
            continue
        if out and not p.translate and not out[-1].translate:
            out[-1] = Piece(out[-1].text + p.text, False)
        else:
            out.append(p)
    return out


def _split_keep(text: str, pattern: re.Pattern) -> list[tuple[str, str]]:
    """Cut at `pattern`, returning (part, separator-after) pairs; the abbreviation guard applies to sentences."""
    out: list[tuple[str, str]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.end() == m.start() and m.start() in (0, len(text)):
            continue
        part = text[pos:m.start()]
        if pattern is SENTENCE_END:
            last_word = part.rsplit(None, 1)[-1].lower() if part.strip() else ""
            if last_word in ABBREVIATIONS or re.fullmatch(r"(?:\w\.)+", last_word or "-"):
                continue  # "e.g. this" or "U.S. law" is not a sentence end
        if not part:
            continue
        # keep closing quotes/brackets with the sentence, whitespace as separator
        sep = m.group(0)
        glued = sep.rstrip()
        out.append((part + glued, sep[len(glued):]))
        pos = m.end()
    out.append((text[pos:], ""))
    return [(p, s) for p, s in out if p or s]


def sentences(pieces: list[Piece]) -> list[Piece]:
    """Cut each translatable piece into sentences; separators become verbatim."""
    out: list[Piece] = []
    for p in pieces:
        if not p.translate:
            out.append(p)
            continue
        for part, sep in _split_keep(p.text, SENTENCE_END):
            out.extend(_renumber(q, p.slots) for q in _prose(part))
            out.extend(_verbatim(sep))
    return merge(out)


def _renumber(piece: Piece, slots: tuple[str, ...]) -> Piece:
    """A part of a placeholder piece keeps the spans it holds, renumbered from X1 (better deduplication)."""
    if not slots or not piece.translate:
        return piece
    own: list[str] = []

    def sub(m: re.Match) -> str:
        own.append(slots[int(m.group(1)) - 1])
        return f"X{len(own)}"

    text = PLACEHOLDER.sub(sub, piece.text)
    return Piece(text, True, tuple(own))


CountFn = Callable[[list[str]], list[int]]


def fit(text: str, count: CountFn, budget: int, level: int = 0) -> list[Piece]:
    """Cut one over-long text into translatable pieces of at most `budget` tokens each."""
    splitters = (SENTENCE_END, CLAUSE_END, SPACE)
    if level >= len(splitters):  # no boundary left: cut by characters (3 chars is a safe token bound)
        step = max(1, budget // 3)
        return [Piece(text[i:i + step], True) for i in range(0, len(text), step)]
    parts = _split_keep(text, splitters[level])
    if len(parts) < 2:
        return fit(text, count, budget, level + 1)
    sizes = count([p for p, _ in parts])
    out: list[Piece] = []
    group = ""

    def close() -> None:
        core = group.rstrip()
        out.extend(_prose(core))
        out.extend(_verbatim(group[len(core):]))

    for (part, sep), size in zip(parts, sizes):
        if size > budget:
            if group:
                close()
                group = ""
            out.extend(fit(part, count, budget, level + 1))
            out.extend(_verbatim(sep))
            continue
        # Token counts are not additive (merges across the join): count the grown group itself.
        if group and count([(group + part).strip()])[0] > budget:
            close()
            group = ""
        group += part + sep
    if group:
        close()
    return merge(out)


class Segmenter:
    """Turns texts into pieces a model can take: structure, optional sentence cuts, token budget."""

    def __init__(self, count: CountFn, budget: int, sentence_level: bool = True):
        self.count = count
        self.budget = budget
        self.sentence_level = sentence_level

    def segment_many(self, texts: list[str]) -> list[list[Piece]]:
        result = [structure(t) for t in texts]
        if self.sentence_level:
            result = [sentences(p) for p in result]
        return [self._fit(ps) for ps in result]

    def _fit(self, pieces: list[Piece]) -> list[Piece]:
        """Cut the pieces that exceed the budget (a placeholder piece goes to fragments first)."""
        # Cheap pre-filter: a piece with fewer characters than budget/4 cannot exceed it in tokens.
        candidates = list(dict.fromkeys(p.text for p in pieces if p.translate and len(p.text) * 4 > self.budget))
        if not candidates:
            return pieces
        over = {u for u, n in zip(candidates, self.count(candidates)) if n > self.budget}
        if not over:
            return pieces
        out: list[Piece] = []
        for p in pieces:
            if not p.translate or p.text not in over:
                out.append(p)
            elif p.slots:
                out.extend(self._fit(fragments(p)))
            else:
                out.extend(fit(p.text, self.count, self.budget))
        return merge(out)

    def fragments(self, piece: Piece) -> list[Piece]:
        """The fallback for a placeholder piece whose translation lost a placeholder."""
        return self._fit(fragments(piece))


def join(pieces: list[Piece], translations: dict[str, str], fallback: dict[Piece, str] | None = None) -> str:
    """Rebuild a text: verbatim pieces as they are, the others translated (spans restored, or the fallback)."""
    out = []
    for p in pieces:
        if not p.translate:
            out.append(p.text)
            continue
        filled = restore(translations[p.text], p.slots)
        out.append(filled if filled is not None else (fallback or {})[p])
    return "".join(out)
