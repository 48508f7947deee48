"""The translation job behind translate.py.

For each split, the records still to do (after --start_index/--end_index, sharding, --source_lang and what
the checkpoint folder already holds) are taken in windows of --checkpoint_n. In a window every text field
(strings, and each turn of conversations) is cut into pieces (see segment.py); the pieces are grouped by
source language, deduplicated (also against everything translated earlier in this run), sorted by length
so batches carry little padding, translated in batches, and put back together in record order. The window
is then written as one checkpoint chunk, atomically.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import checkpoints, languages
from .cli import UsageError, log
from .data import is_conversation, load_any, resolve_text_fields, turn_text_key
from .segment import Segmenter, join, restore
from .translators.base import Translator
from .translators.base import PairUnavailable


@dataclass
class JobConfig:
    dataset: str
    target_lang: str
    checkpoint_dir: Path
    text_field: str | None = None
    lang_field: str = "lang"
    source_lang: str | None = None
    split: str | None = None
    checkpoint_n: int = 400
    batch_size: int = 10
    max_batch_tokens: int | None = None
    start_index: int = 0
    end_index: int | None = None
    num_shards: int = 1
    shard_index: int = 0
    keep_source: bool = False
    trust_remote_code: bool = False


@dataclass
class Stats:
    records: int = 0
    passthrough: int = 0
    pieces: int = 0
    fallbacks: int = 0
    model_pieces: int = 0
    chunks: int = 0
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def select_indices(n: int, cfg: JobConfig) -> list[int]:
    end = n if cfg.end_index is None else min(cfg.end_index, n)
    return [i for i in range(cfg.start_index, end) if i % cfg.num_shards == cfg.shard_index]


class TranslationJob:
    def __init__(self, cfg: JobConfig, translator: Translator):
        self.cfg = cfg
        self.translator = translator
        self.stats = Stats()
        self.cache: dict[tuple[str, str], str] = {}
        self.sources: dict[str, str] = {}      # a record's language -> the backend's code
        self.unsupported: dict[str, str] = {}  # source language -> reason

    # ------------------------------------------------------------------------------------ checks
    def prepare(self) -> None:
        """Every check that can fail on bad input, before anything is written."""
        cfg = self.cfg
        if not 0 <= cfg.shard_index < cfg.num_shards:
            raise UsageError(f"--shard_index must be in 0..{cfg.num_shards - 1}")
        if cfg.end_index is not None and cfg.end_index <= cfg.start_index:
            raise UsageError("--end_index must be greater than --start_index")
        self.folder = Path(cfg.checkpoint_dir)
        checkpoints.scan(self.folder)  # foreign files: refuse before the slow dataset load
        self.ds = load_any(cfg.dataset, split=cfg.split, trust_remote_code=cfg.trust_remote_code)
        columns = next(iter(self.ds.values())).column_names
        self.fields = resolve_text_fields(columns, cfg.text_field, cfg.dataset)
        self.has_lang = cfg.lang_field in columns
        if cfg.source_lang:
            languages.validate(cfg.source_lang, "--source_lang")
        if not self.has_lang and not cfg.source_lang:
            raise UsageError(f"dataset {cfg.dataset} has no {cfg.lang_field!r} column: say which language it is in "
                             "with --source_lang (e.g. --source_lang en) or name the column with --base_dataset_lang_field")
        self.target = self.translator.target_code(cfg.target_lang)  # names close matches when unsupported
        self.target_tag = str(languages.parse(cfg.target_lang) or languages.validate(self.target, "target language"))
        manifest = checkpoints.read_manifest(self.folder)
        if manifest is not None:
            if not languages.same_language(manifest.get("target_language", ""), self.target_tag):
                raise UsageError(f"checkpoint folder {self.folder} holds a translation into "
                                 f"{manifest.get('target_language')!r}, not {cfg.target_lang!r}; use another folder")
            if manifest.get("text_fields") != self.fields:
                raise UsageError(f"checkpoint folder {self.folder} translated fields {manifest.get('text_fields')}, "
                                 f"not {self.fields}; use another folder")
        self.done = checkpoints.covered(self.folder)  # also validates every chunk
        self.pending: dict[str, list[int]] = {}
        for split, data in self.ds.items():
            idx = select_indices(len(data), cfg)
            if self.has_lang and cfg.source_lang:
                langs = data[cfg.lang_field]
                idx = [i for i in idx if self._matches_source(langs[i])]
            done = self.done.get(split, set())
            self.pending[split] = [i for i in idx if i not in done]
        self.total = sum(len(v) for v in self.pending.values())
        self.already = sum(len(v) for v in self.done.values())
        self._check_sources()

    def _check_sources(self) -> None:
        """Every source language still to do must be translatable, else its records are skipped (warned
        now); when none is, that is an error before anything is written."""
        counts: Counter = Counter()
        for split, idx in self.pending.items():
            if not idx:
                continue
            if self.has_lang:
                langs = self.ds[split][self.cfg.lang_field]
                counts.update(langs[i] or self.cfg.source_lang for i in idx)
            else:
                counts[self.cfg.source_lang] += len(idx)
        usable = 0
        for lang, n in counts.items():
            if lang is None or languages.same_language(lang, self.target_tag):
                usable += n
                continue
            src = self._model_source(lang)
            if src is None:
                continue
            try:
                self.translator.check_pair(src, self.target)
                usable += n
            except PairUnavailable as e:
                self.unsupported[lang] = str(e)
                log(f"warning: {n} records in {lang!r} will be skipped: {e}")
        if counts and not usable:
            raise UsageError(next(iter(self.unsupported.values())) if len(self.unsupported) == 1 else
                             f"none of the source languages can be translated by {self.translator.name}: "
                             + "; ".join(self.unsupported.values()))

    def _matches_source(self, lang: str | None) -> bool:
        if not lang:
            return False
        want = languages.parse(self.cfg.source_lang)
        have = languages.parse(lang)
        if want is None or have is None:
            return lang == self.cfg.source_lang
        if want.territory and want.territory != have.territory:
            return False
        return languages.same_language(lang, self.cfg.source_lang)

    # ----------------------------------------------------------------------------------- running
    def run(self) -> Stats:
        from tqdm import tqdm

        if self.total == 0:
            log(f"nothing to translate: {self.already} records already in {self.folder}")
            return self.stats
        log(f"translating {self.total} records of {self.cfg.dataset} ({', '.join(self.fields)}) into "
            f"{self.target_tag} with {self.translator.name} ({self.translator.model_id})"
            + (f"; {self.already} already done" if self.already else ""))
        self.translator.load()
        self.segmenter = Segmenter(self.translator.count_tokens, self.translator.max_input_tokens,
                                   sentence_level=self.translator.sentence_level)
        self.folder.mkdir(parents=True, exist_ok=True)
        checkpoints.remove_temporaries(self.folder)
        if checkpoints.read_manifest(self.folder) is None:
            checkpoints.write_manifest(self.folder, {
                "dataset": self.cfg.dataset, "text_fields": self.fields, "target_language": self.target_tag,
                "lang_field": self.cfg.lang_field if self.has_lang else None, "keep_source": self.cfg.keep_source})
        start = time.perf_counter()
        with tqdm(total=self.total, unit="rec", desc="translate", mininterval=1.0, dynamic_ncols=True) as bar:
            for split, indices in self.pending.items():
                for w in range(0, len(indices), self.cfg.checkpoint_n):
                    window = indices[w:w + self.cfg.checkpoint_n]
                    self._window(split, window)
                    bar.update(len(window))
        self.stats.seconds = time.perf_counter() - start
        self._report()
        return self.stats

    def _source_of(self, row: dict) -> str:
        return (row.get(self.cfg.lang_field) if self.has_lang else None) or self.cfg.source_lang

    def _model_source(self, lang: str) -> str | None:
        """The backend's code for a record's language, resolved once per language; None (and remembered)
        when it has none."""
        if lang in self.sources:
            return self.sources[lang]
        if lang in self.unsupported:
            return None
        try:
            self.sources[lang] = self.translator.source_code(lang)
            return self.sources[lang]
        except UsageError as e:
            self.unsupported[lang] = str(e)
            log(f"warning: records in {lang!r} will be skipped: {e}")
            return None

    def _window(self, split: str, window: list[int]) -> None:
        rows = self.ds[split].select(window).to_list()
        # 1. collect the texts: (row, field, turn or None, text)
        slots: dict[str, list[tuple[int, str, int | None, str]]] = defaultdict(list)
        passthrough: set[int] = set()
        skipped: set[int] = set()
        for r, row in enumerate(rows):
            lang = self._source_of(row)
            if languages.same_language(lang, self.target_tag):
                passthrough.add(r)
                continue
            src = self._model_source(lang)
            if src is None:
                skipped.add(r)
                self.stats.skipped[lang] += 1
                continue
            for f in self.fields:
                value = row.get(f)
                if isinstance(value, str):
                    slots[src].append((r, f, None, value))
                elif is_conversation(value):
                    for t, turn in enumerate(value):
                        key = turn_text_key(turn)
                        if isinstance(turn.get(key), str):
                            slots[src].append((r, f, t, turn[key]))
        # 2. translate per source language
        results: dict[tuple[int, str, int | None], str] = {}
        for src, items in slots.items():
            try:
                texts = self._translate_texts([text for _, _, _, text in items], src)
            except PairUnavailable as e:
                log(f"warning: records in {src!r} are skipped: {e}")
                self.unsupported[src] = str(e)
                for r, *_ in items:
                    if r not in skipped:
                        skipped.add(r)
                        self.stats.skipped[src] += 1
                continue
            for (r, f, t, _), out in zip(items, texts):
                results[(r, f, t)] = out
        # 3. rebuild the records
        indices, records = [], []
        for r, row in enumerate(rows):
            if r in skipped:
                continue
            record = dict(row)
            lang = self._source_of(row)
            for f in self.fields:
                value = row.get(f)
                if self.cfg.keep_source:
                    record[f"{f}_source"] = value
                if r in passthrough:
                    continue
                if isinstance(value, str):
                    record[f] = results[(r, f, None)]
                elif is_conversation(value):
                    turns = []
                    for t, turn in enumerate(value):
                        turn = dict(turn)
                        key = turn_text_key(turn)
                        if (r, f, t) in results:
                            turn[key] = results[(r, f, t)]
                        turns.append(turn)
                    record[f] = turns
            if self.has_lang:
                record[self.cfg.lang_field] = self.target_tag if r not in passthrough else lang
            if self.cfg.keep_source:
                record["source_lang"] = lang
            indices.append(window[r])
            records.append(record)
            self.stats.records += 1
            self.stats.passthrough += r in passthrough
        if indices:
            checkpoints.write_chunk(self.folder, split, indices, records, {
                **self.translator.describe(), "target_language": self.target_tag, "target_code": self.target,
                "dataset": self.cfg.dataset, "text_fields": self.fields})
            self.stats.chunks += 1

    def _translate_texts(self, texts: list[str], src: str) -> list[str]:
        pieces = self.segmenter.segment_many(texts)
        self._translate_units([p.text for ps in pieces for p in ps if p.translate], src)
        # Placeholder pieces whose translation lost a placeholder are translated again as fragments.
        suspect = {p for ps in pieces for p in ps
                   if p.slots and restore(self.cache[(src, p.text)], p.slots) is None}
        fallback: dict = {}
        if suspect:
            frags = {p: self.segmenter.fragments(p) for p in suspect}
            self._translate_units([q.text for fs in frags.values() for q in fs if q.translate], src)
            fallback = {p: join(fs, self._table(fs, src)) for p, fs in frags.items()}
            self.stats.fallbacks += len(suspect)
        return [join(ps, self._table(ps, src), fallback) for ps in pieces]

    def _table(self, pieces, src: str) -> dict[str, str]:
        return {p.text: self.cache[(src, p.text)] for p in pieces if p.translate}

    def _translate_units(self, units: list[str], src: str) -> None:
        """Translate what the cache lacks: distinct pieces, longest first, in batches."""
        self.stats.pieces += len(units)
        todo = [u for u in dict.fromkeys(units) if (src, u) not in self.cache]
        self.stats.model_pieces += len(todo)
        todo.sort(key=len, reverse=True)  # longest first: padding is small and memory errors come early
        for batch in self._batches(todo):
            for u, out in zip(batch, self.translator.translate(batch, src, self.target)):
                self.cache[(src, u)] = out

    def _batches(self, todo: list[str]):
        """Fixed --batch_size batches, or with --max_batch_tokens as many pieces as fit that many padded
        tokens (pieces come longest first, so a batch costs its first piece's length times its size)."""
        if not self.cfg.max_batch_tokens:
            for b in range(0, len(todo), self.cfg.batch_size):
                yield todo[b:b + self.cfg.batch_size]
            return
        sizes = self.translator.count_tokens(todo) if todo else []
        batch, longest = [], 0
        for text, n in zip(todo, sizes):
            if batch and max(longest, n) * (len(batch) + 1) > self.cfg.max_batch_tokens:
                yield batch
                batch, longest = [], 0
            batch.append(text)
            longest = max(longest, n)
        if batch:
            yield batch

    def _report(self) -> None:
        s = self.stats
        rate = s.records / s.seconds if s.seconds else 0.0
        log(f"done: {s.records} records in {s.seconds:.1f}s ({rate:.2f} rec/s), {s.chunks} checkpoint files; "
            f"{s.pieces} pieces, {s.model_pieces} sent to the model (the rest were repeats)"
            + (f"; {s.fallbacks} lost a placeholder and were translated around their code/URLs" if s.fallbacks else "")
            + (f"; {s.passthrough} already in the target language" if s.passthrough else ""))
        if s.skipped:
            log("skipped (no model for the language): "
                + ", ".join(f"{lang}: {n}" for lang, n in s.skipped.most_common())
                + ". Run again with another backend on the same folder to translate them.")
