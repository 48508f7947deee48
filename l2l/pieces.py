"""From texts to translated texts through a translator: segmentation, a cache of translated pieces,
deduplication, length-sorted batches and the placeholder fallback. It knows nothing of datasets or
checkpoints, so it can be tested with any object that has the Translator methods it calls
(`translate`, `count_tokens`, `max_input_tokens`, `sentence_level`)."""

from __future__ import annotations

from dataclasses import dataclass

from .segment import Piece, Segmenter, join, restore


@dataclass
class PieceStats:
    pieces: int = 0         # pieces asked for
    model_pieces: int = 0   # pieces sent to the model (the rest were repeats)
    model_calls: int = 0    # translate() calls, i.e. batches
    fallbacks: int = 0      # pieces that lost a placeholder and were translated around it


class PieceTranslator:
    """Translates texts piece by piece, each distinct piece once per (source, target) for the whole run."""

    def __init__(self, translator, target: str, batch_size: int = 10, max_batch_tokens: int | None = None):
        self.translator = translator
        self.target = target
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.segmenter = Segmenter(translator.count_tokens, translator.max_input_tokens,
                                   sentence_level=translator.sentence_level)
        self.cache: dict[tuple[str, str], str] = {}
        self.stats = PieceStats()

    def translate_texts(self, texts: list[str], src: str) -> list[str]:
        """The translations of texts (all in the backend's source code `src`), in order."""
        pieces = self.segmenter.segment_many(texts)
        self._translate_units([p.text for ps in pieces for p in ps if p.translate], src)
        # Placeholder pieces whose translation lost a placeholder are translated again as fragments.
        suspect = {p for ps in pieces for p in ps
                   if p.slots and restore(self.cache[(src, p.text)], p.slots) is None}
        fallback: dict[Piece, str] = {}
        if suspect:
            frags = {p: self.segmenter.fragments(p) for p in suspect}
            self._translate_units([q.text for fs in frags.values() for q in fs if q.translate], src)
            fallback = {p: join(fs, self._table(fs, src)) for p, fs in frags.items()}
            self.stats.fallbacks += len(suspect)
        return [join(ps, self._table(ps, src), fallback) for ps in pieces]

    def _table(self, pieces: list[Piece], src: str) -> dict[str, str]:
        return {p.text: self.cache[(src, p.text)] for p in pieces if p.translate}

    def _translate_units(self, units: list[str], src: str) -> None:
        """Translate what the cache lacks: distinct pieces, longest first, in batches."""
        self.stats.pieces += len(units)
        todo = [u for u in dict.fromkeys(units) if (src, u) not in self.cache]
        self.stats.model_pieces += len(todo)
        todo.sort(key=len, reverse=True)  # longest first: padding is small and memory errors come early
        for batch in self.batches(todo):
            self.stats.model_calls += 1
            for u, out in zip(batch, self.translator.translate(batch, src, self.target)):
                self.cache[(src, u)] = out

    def batches(self, todo: list[str]):
        """Fixed batch_size batches, or with max_batch_tokens as many pieces as fit that many padded tokens
        (pieces come longest first, so a batch costs its first piece's length times its size)."""
        if not self.max_batch_tokens:
            for b in range(0, len(todo), self.batch_size):
                yield todo[b:b + self.batch_size]
            return
        sizes = self.translator.count_tokens(todo) if todo else []
        batch: list[str] = []
        longest = 0
        for text, n in zip(todo, sizes):
            if batch and max(longest, n) * (len(batch) + 1) > self.max_batch_tokens:
                yield batch
                batch, longest = [], 0
            batch.append(text)
            longest = max(longest, n)
        if batch:
            yield batch
