"""From texts to translated texts through a translator: segmentation, a cache of translated pieces,
deduplication, length-sorted batches and the placeholder fallback. It knows nothing of datasets or
checkpoints, so it can be tested with any object that has the Translator methods it calls
(`translate`, `count_tokens`, `max_input_tokens`, `sentence_level`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from l2l.translate.segment import Piece, Segmenter, join, restore


@dataclass
class PieceStats:
    pieces: int = 0         # pieces asked for
    model_pieces: int = 0   # pieces sent to the model (the rest were repeats)
    model_calls: int = 0    # translate() calls, i.e. batches
    fallbacks: int = 0      # pieces that lost a placeholder and were translated around it


class PieceTranslator:
    """Translates texts piece by piece, each distinct piece once per (source, target) for the whole run.

    A model call carries a budget of padded tokens: --max_batch_tokens, or by default --batch_size average
    texts' worth, so that a call holds as much text as LLaMa2lang's batch of --batch_size whole texts did,
    however many sentence pieces that text was cut into."""

    def __init__(self, translator, target: str, batch_size: int = 10, max_batch_tokens: int | None = None):
        self.translator = translator
        self.target = target
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.segmenter = Segmenter(translator.count_tokens, translator.max_input_tokens,
                                   sentence_level=translator.sentence_level)
        self.cache: dict[tuple[str, str], str] = {}
        self.sizes: dict[str, int] = {}  # tokens per piece, counted once
        self.stats = PieceStats()

    def translate_texts(self, texts: list[str], src: str) -> list[str]:
        """The translations of texts (all in the backend's source code `src`), in order."""
        pieces = self.segmenter.segment_many(texts)
        units = [p.text for ps in pieces for p in ps if p.translate]
        budget = self.budget(units, sum(1 for ps in pieces if any(p.translate for p in ps)))
        self._translate_units(units, src, budget)
        # Placeholder pieces whose translation lost a placeholder are translated again as fragments.
        suspect = {p for ps in pieces for p in ps
                   if p.slots and restore(self.cache[(src, p.text)], p.slots) is None}
        fallback: dict[Piece, str] = {}
        if suspect:
            frags = {p: self.segmenter.fragments(p) for p in suspect}
            self._translate_units([q.text for fs in frags.values() for q in fs if q.translate], src, budget)
            fallback = {p: join(fs, self._table(fs, src)) for p, fs in frags.items()}
            self.stats.fallbacks += len(suspect)
        return [join(ps, self._table(ps, src), fallback) for ps in pieces]

    def _table(self, pieces: list[Piece], src: str) -> dict[str, str]:
        return {p.text: self.cache[(src, p.text)] for p in pieces if p.translate}

    def count(self, texts: list[str]) -> list[int]:
        new = [t for t in dict.fromkeys(texts) if t not in self.sizes]
        if new:
            self.sizes.update(zip(new, self.translator.count_tokens(new)))
        return [self.sizes[t] for t in texts]

    def budget(self, units: list[str], n_texts: int) -> int:
        """Padded tokens per model call: --max_batch_tokens, else --batch_size times the tokens of the
        average text (sentence pieces must not multiply the model calls)."""
        if self.max_batch_tokens:
            return self.max_batch_tokens
        repeats = Counter(units)
        total = sum(n * size for n, size in zip(repeats.values(), self.count(list(repeats))))
        return max(1, round(self.batch_size * total / max(1, n_texts)))

    def _translate_units(self, units: list[str], src: str, budget: int) -> None:
        """Translate what the cache lacks: distinct pieces, longest first, in batches."""
        self.stats.pieces += len(units)
        todo = [u for u in dict.fromkeys(units) if (src, u) not in self.cache]
        self.stats.model_pieces += len(todo)
        todo.sort(key=len, reverse=True)  # longest first: padding is small and memory errors come early
        for batch in self.batches(todo, budget):
            self.stats.model_calls += 1
            for u, out in zip(batch, self.translator.translate(batch, src, self.target)):
                self.cache[(src, u)] = out

    def batches(self, todo: list[str], budget: int):
        """As many pieces as fit `budget` padded tokens; pieces come longest first, so a batch costs its first
        piece's length times its size. One piece over the budget goes alone."""
        batch: list[str] = []
        longest = 0
        for text, n in zip(todo, self.count(todo)):
            if batch and max(longest, n) * (len(batch) + 1) > budget:
                yield batch
                batch, longest = [], 0
            batch.append(text)
            longest = max(longest, n)
        if batch:
            yield batch
