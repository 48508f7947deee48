"""The translation job behind translate.py.

`plan()` does every check that can fail on bad input and works out what is left to do, before anything is
written: for each split, the records still to do (after --start_index/--end_index, sharding, --source_lang and
what the checkpoint folder already holds). `TranslationJob.run(plan)` then takes those records in windows of
--checkpoint_n. In a window every text field (strings, and each turn of conversations) is collected, handed to
a PieceTranslator per source language (segmentation, deduplication, batching: see pieces.py), and put back
together in record order. The window is then written as one checkpoint chunk, atomically.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from l2l import languages
from l2l.cli import UsageError, log, non_negative_int, positive_int
from l2l.config import option
from l2l.data import load_any
from l2l.io import same_path
from l2l.shapes import check_text_columns, is_conversation, resolve_text_fields, turn_text_key
from l2l.translate import checkpoints
from l2l.translate.pieces import PieceTranslator
from l2l.translate.translators.base import PairUnavailable, Translator


@dataclass
class JobConfig:
    """What to translate and where the checkpoints go (translate.py's flags common to every backend)."""

    target_lang: str = option(help="Target language: ISO 639-1 / BCP-47 (nl, pt-BR, zh-Hant) or the model's own "
                                   "code (nld_Latn, nl_XX, <2nl>).", positional=True)
    checkpoint_dir: Path = option(help="Folder for the checkpoint files (created if missing; re-running continues "
                                       "where it stopped).", positional=True, metavar="checkpoint_location")
    dataset: str = option("OpenAssistant/oasst1", "Dataset to translate: a Hub id or a local file/folder (json, "
                          "jsonl, parquet, csv, save_to_disk).", flag="--base_dataset")
    text_field: str | None = option(None, "Column(s) to translate, comma-separated (e.g. instruction,input,output). "
                                    "Conversation columns (ShareGPT conversations, messages) are translated turn by "
                                    "turn. Default: detected from the format (text for OASST).",
                                    flag="--base_dataset_text_field")
    lang_field: str = option("lang", "Column holding each record's language.", flag="--base_dataset_lang_field")
    source_lang: str | None = option(None, "Only translate records in this language (datasets with a language "
                                     "column), or the language of the whole dataset (datasets without one).")
    split: str | None = option(None, "Translate only this split (default: all splits).")
    checkpoint_n: int = option(400, "Records per checkpoint file.", type=positive_int)
    batch_size: int = option(10, "Texts per model call, as in LLaMa2lang: each call carries about this many "
                             "average texts' worth of tokens, cut into sentences and sorted by length.",
                             type=positive_int)
    max_batch_tokens: int | None = option(None, "Padded tokens per model call instead (e.g. 8192 on a GPU). Default: "
                                          "--batch_size average texts' worth.", type=positive_int)
    start_index: int = option(0, "First record (in each split) to translate.", type=non_negative_int)
    end_index: int | None = option(None, "Translate records before this index only. Default: to the end.",
                                   type=non_negative_int)
    num_shards: int = option(1, "Split the work into this many shards (one per GPU or machine).", type=positive_int)
    shard_index: int = option(0, "Which shard this run translates (0-based).", type=non_negative_int)
    retranslate_flagged: bool = option(
        False, "Continue an existing checkpoint folder translating again, with this backend, only the records the "
        "translation checks flag; combine_checkpoints.py keeps, per record, the better-scoring version.")
    keep_source: bool = option(False, "Keep each translated field's original beside it (<field>_source) and the "
                               "original language (source_lang): needed for bilingual tasks and English retention.")

    def __post_init__(self) -> None:
        self.checkpoint_dir = Path(self.checkpoint_dir)
        if not 0 <= self.shard_index < self.num_shards:
            raise UsageError(f"--shard_index must be in 0..{self.num_shards - 1}")
        if self.end_index is not None and self.end_index <= self.start_index:
            raise UsageError("--end_index must be greater than --start_index")
        if self.source_lang:
            languages.validate(self.source_lang, "--source_lang")


@dataclass
class Stats:
    records: int = 0
    passthrough: int = 0
    chunks: int = 0
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def select_indices(n: int, cfg: JobConfig) -> list[int]:
    end = n if cfg.end_index is None else min(cfg.end_index, n)
    return [i for i in range(cfg.start_index, end) if i % cfg.num_shards == cfg.shard_index]


class SourceLanguages:
    """A record's language -> the backend's code, resolved once per language; the ones it cannot translate
    are remembered with their reason (their records are skipped and left to a later run)."""

    def __init__(self, translator: Translator, target: str, target_tag: str, source_lang: str | None):
        self.translator, self.target, self.target_tag = translator, target, target_tag
        self.source_lang = source_lang
        self.codes: dict[str, str] = {}
        self.unsupported: dict[str, str] = {}

    def is_target(self, lang: str | None) -> bool:
        return languages.same_language(lang, self.target_tag)

    def code(self, lang: str) -> str | None:
        if lang in self.codes:
            return self.codes[lang]
        if lang in self.unsupported:
            return None
        try:
            self.codes[lang] = self.translator.source_code(lang)
            return self.codes[lang]
        except (languages.UnsupportedLanguage, languages.InvalidLanguageCode) as e:
            self.unsupported[lang] = str(e)
            log(f"warning: records in {lang!r} will be skipped: {e}")
            return None

    def matches(self, lang: str | None) -> bool:
        """Whether a record's language is the --source_lang asked for (pt matches pt-BR unless a region is asked)."""
        if not lang:
            return False
        want, have = languages.parse(self.source_lang), languages.parse(lang)
        if want is None or have is None:
            return lang == self.source_lang
        if want.territory and want.territory != have.territory:
            return False
        return languages.same_language(lang, self.source_lang)

    def check(self, counts: Counter) -> None:
        """Every source language still to do must be translatable, else its records are skipped (warned now);
        when none is, that is an error before anything is written."""
        usable = 0
        for lang, n in counts.items():
            if lang is None or self.is_target(lang):
                usable += n
                continue
            src = self.code(lang)
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


@dataclass
class Plan:
    """What a run will do, worked out and checked before anything is written."""

    ds: dict                         # split -> datasets.Dataset
    fields: list[str]                # the text fields to translate
    has_lang: bool                   # the dataset has a language column
    sources: SourceLanguages
    pending: dict[str, list[int]]    # split -> record indices still to translate
    already: int                     # records the folder holds already
    identity: dict                   # what this run's manifest and chunk headers say the folder holds
    manifest: dict | None = None     # the folder's manifest (rebuilt from the chunks if it was lost)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.pending.values())


def plan(cfg: JobConfig, translator: Translator) -> Plan:
    """Every check that can fail on bad input, before anything is written; then what is left to do."""
    from l2l.io import check_apart

    folder = cfg.checkpoint_dir
    check_apart(folder, cfg.dataset, translator.options.model_name)
    checkpoints.scan(folder)  # foreign files: refuse before the slow dataset load
    ds = load_any(cfg.dataset, split=cfg.split, trust_remote_code=translator.options.trust_remote_code)
    longest = max(len(d) for d in ds.values())
    if cfg.start_index >= longest:
        raise UsageError(f"--start_index {cfg.start_index} is past the end of {cfg.dataset} ({longest} records)")
    columns = next(iter(ds.values())).column_names
    fields = resolve_text_fields(columns, cfg.text_field, cfg.dataset)
    check_text_columns(ds, fields, cfg.dataset)
    has_lang = cfg.lang_field in columns
    if not has_lang and not cfg.source_lang:
        raise UsageError(f"dataset {cfg.dataset} has no {cfg.lang_field!r} column: say which language it is in "
                         "with --source_lang (e.g. --source_lang en) or name the column with --base_dataset_lang_field")
    target = translator.target_code(cfg.target_lang)  # names close matches when unsupported
    target_tag = str(languages.parse(cfg.target_lang) or languages.validate(target, "target language"))
    manifest, chunks = checkpoints.load(folder)  # every chunk read and checked against the manifest
    identity = {"dataset": cfg.dataset, "text_fields": fields, "target_language": target_tag,
                "keep_source": cfg.keep_source, "lang_field": cfg.lang_field if has_lang else None,
                "split_sizes": {s: len(d) for s, d in ds.items()},
                "split_fingerprints": {s: checkpoints.dataset_fingerprint(d) for s, d in ds.items()}}
    check_manifest(folder, cfg, manifest, identity)
    done = checkpoints.covered(chunks)
    redo = retranslation(cfg, translator, manifest, chunks, ds) if cfg.retranslate_flagged else None
    sources = SourceLanguages(translator, target, target_tag, cfg.source_lang)
    pending: dict[str, list[int]] = {}
    for split, data in ds.items():
        idx = select_indices(len(data), cfg)
        if has_lang and cfg.source_lang:
            langs = data[cfg.lang_field]
            idx = [i for i in idx if sources.matches(langs[i])]
        pending[split] = ([i for i in idx if i in redo.get(split, set())] if redo is not None
                          else [i for i in idx if i not in done.get(split, set())])
    result = Plan(ds, fields, has_lang, sources, pending, sum(len(v) for v in done.values()), identity, manifest)
    sources.check(_language_counts(result, cfg))
    return result


def retranslation(cfg: JobConfig, translator: Translator, manifest: dict | None, chunks: list,
                  ds: dict) -> dict[str, set[int]]:
    """--retranslate_flagged: the flagged records this translator has not translated yet (a resumed run goes
    on where it stopped, and a record is translated again once per translator); records an older version
    wrote unchecked are checked here, from the dataset's text."""
    from l2l.translate.combine import flagged_indices

    if not chunks:
        raise UsageError(f"--retranslate_flagged: {cfg.checkpoint_dir} holds no translation yet; translate it first "
                         "(without the flag)")
    me = translator.describe()
    mine: dict[str, set[int]] = {}
    for chunk in chunks:
        if all(chunk.header.get(k) == v for k, v in me.items()):
            mine.setdefault(chunk.header["split"], set()).update(chunk.indices)
    flagged = flagged_indices(cfg.checkpoint_dir, manifest, chunks, ds)
    redo = {split: set(idx) - mine.get(split, set()) for split, idx in flagged.items()}
    n, already = sum(map(len, flagged.values())), sum(len(set(i) & mine.get(s, set())) for s, i in flagged.items())
    log(f"--retranslate_flagged: {n} flagged records" + (f", {already} already translated again by "
                                                        f"{me['translator']}" if already else ""))
    return redo


def _language_counts(p: Plan, cfg: JobConfig) -> Counter:
    counts: Counter = Counter()
    for split, idx in p.pending.items():
        if not idx:
            continue
        if p.has_lang:
            langs = p.ds[split][cfg.lang_field]
            counts.update(langs[i] or cfg.source_lang for i in idx)
        else:
            counts[cfg.source_lang] += len(idx)
    return counts


def check_manifest(folder: Path, cfg: JobConfig, manifest: dict | None, identity: dict) -> None:
    """A folder started earlier must be continued with the same dataset (by content: a file replaced by another
    of the same size is another dataset), fields, target language and --keep_source."""
    if manifest is None:
        return
    if not languages.same_language(manifest.get("target_language", ""), identity["target_language"]):
        raise UsageError(f"checkpoint folder {folder} holds a translation into "
                         f"{manifest.get('target_language')!r}, not {cfg.target_lang!r}; use another folder")
    if manifest.get("text_fields") != identity["text_fields"]:
        raise UsageError(f"checkpoint folder {folder} translated fields {manifest.get('text_fields')}, "
                         f"not {identity['text_fields']}; use another folder")
    if manifest.get("keep_source", cfg.keep_source) != cfg.keep_source:
        was = "with" if manifest["keep_source"] else "without"
        raise UsageError(f"checkpoint folder {folder} was started {was} --keep_source: continue it {was} it (the "
                         "records would otherwise differ in their columns), or use another folder")
    known, now = manifest.get("split_fingerprints") or {}, identity["split_fingerprints"]
    common = [s for s in now if s in known]
    moved = common and all(known[s] == now[s] for s in common)  # a moved file: the same content
    if not same_path(manifest.get("dataset"), cfg.dataset) and not moved:
        raise UsageError(f"checkpoint folder {folder} holds a translation of {manifest.get('dataset')}, not "
                         f"{cfg.dataset}; use another folder")
    saved, sizes = manifest.get("split_sizes") or {}, identity["split_sizes"]
    changed = [s for s, n in sizes.items() if s in saved and saved[s] != n]
    if changed:
        s = changed[0]
        raise UsageError(f"{cfg.dataset} has changed since {folder} was started: split {s!r} had {saved[s]} records, "
                         f"now {sizes[s]}; use another folder")
    changed = [s for s in common if known[s] != now[s]]
    if changed:
        raise UsageError(f"checkpoint folder {folder} holds a translation of {manifest.get('dataset')}, whose split "
                         f"{changed[0]!r} has changed since (same size, other records); use another folder")


Slot = tuple[int, str, "int | None"]  # (row in the window, field, turn index or None)


class TranslationJob:
    """Runs a plan: windows of --checkpoint_n records, each translated and written as one chunk."""

    def __init__(self, cfg: JobConfig, translator: Translator):
        self.cfg = cfg
        self.translator = translator
        self.stats = Stats()
        self.pieces: PieceTranslator | None = None

    def prepare(self) -> Plan:
        return plan(self.cfg, self.translator)

    def run(self, p: Plan) -> Stats:
        from tqdm import tqdm

        folder = self.cfg.checkpoint_dir
        if p.total == 0:
            where = (f"already in {folder}" if folder.exists()
                     else f"in the selected range (--start_index {self.cfg.start_index})")
            log(f"nothing to translate: {p.already} records {where}")
            return self.stats
        log(
            f"translating {p.total} records of {self.cfg.dataset} ({', '.join(p.fields)}) into "
            f"{p.sources.target_tag} with {self.translator.name} ({self.translator.model_id})"
            + (f"; {p.already} already done" if p.already else "")
        )
        self.translator.load()
        self.pieces = PieceTranslator(self.translator, p.sources.target, self.cfg.batch_size, self.cfg.max_batch_tokens)
        self._start_folder(p)
        start = time.perf_counter()
        with tqdm(total=p.total, unit="rec", desc="translate", mininterval=1.0, dynamic_ncols=True) as bar:
            for split, indices in p.pending.items():
                for w in range(0, len(indices), self.cfg.checkpoint_n):
                    window = indices[w : w + self.cfg.checkpoint_n]
                    self._window(p, split, window)
                    bar.update(len(window))
        self.stats.seconds = time.perf_counter() - start
        self._report()
        return self.stats

    def _start_folder(self, p: Plan) -> None:
        folder = self.cfg.checkpoint_dir
        folder.mkdir(parents=True, exist_ok=True)
        checkpoints.remove_temporaries(folder)
        on_disk = checkpoints.read_manifest(folder)
        if on_disk is None and p.manifest is not None:
            log(f"note: {folder} had lost its {checkpoints.MANIFEST}; rebuilt from its checkpoints, which all "
                "belong to this translation")
        updated = checkpoints.merged_manifest(p.manifest, p.identity)
        if on_disk != {"format": checkpoints.FORMAT, "version": 1, **updated}:
            checkpoints.write_manifest(folder, updated)
        if on_disk is None:
            from l2l.io import mark_output

            mark_output(folder, "translation checkpoints")

    def _language(self, p: Plan, row: dict) -> str:
        return (row.get(self.cfg.lang_field) if p.has_lang else None) or self.cfg.source_lang

    def _window(self, p: Plan, split: str, window: list[int]) -> None:
        rows = p.ds[split].select(window).to_list()
        passthrough = {r for r, row in enumerate(rows) if p.sources.is_target(self._language(p, row))}
        slots: dict[str, list[tuple[Slot, str]]] = defaultdict(list)
        skipped: set[int] = set()
        for r, row in enumerate(rows):
            if r in passthrough:
                continue
            src = p.sources.code(self._language(p, row))
            if src is None:
                skipped.add(r)
                continue
            slots[src] += collect_texts(r, row, p.fields)
        results: dict[Slot, str] = {}
        for src, items in slots.items():
            try:
                texts = self.pieces.translate_texts([text for _, text in items], src)
            except PairUnavailable as e:
                log(f"warning: records in {src!r} are skipped: {e}")
                p.sources.unsupported[src] = str(e)
                skipped.update(slot[0] for slot, _ in items)
                continue
            results.update(zip((slot for slot, _ in items), texts))
        self._write(p, split, window, rows, results, passthrough, skipped)

    def _write(self, p: Plan, split: str, window: list[int], rows: list[dict], results: dict, passthrough: set[int],
               skipped: set[int]) -> None:
        from l2l.translate.quality import written_checks

        indices, records, checks = [], [], []
        for r, row in enumerate(rows):
            lang = self._language(p, row)
            if r in skipped:
                self.stats.skipped[lang] += 1
                continue
            record = rebuild_record(r, row, p.fields, results, self.cfg.keep_source)
            if p.has_lang:
                record[self.cfg.lang_field] = lang if r in passthrough else p.sources.target_tag
            if self.cfg.keep_source:
                record["source_lang"] = lang
            indices.append(window[r])
            records.append(record)
            checks.append(None if r in passthrough else written_checks(row, record, p.fields))
            self.stats.records += 1
            self.stats.passthrough += r in passthrough
        if indices:
            checkpoints.write_chunk(
                self.cfg.checkpoint_dir,
                split,
                indices,
                records,
                {**self.translator.describe(), **chunk_identity(p.identity, split), "target_code": p.sources.target},
                checks,
            )
            self.stats.chunks += 1

    def _report(self) -> None:
        s, ps = self.stats, self.pieces.stats
        rate = s.records / s.seconds if s.seconds else 0.0
        log(
            f"done: {s.records} records in {s.seconds:.1f}s ({rate:.2f} rec/s), {s.chunks} checkpoint files; "
            f"{ps.pieces} pieces, {ps.model_pieces} sent to the model in {ps.model_calls} calls (the rest were repeats)"
            + (
                f"; {ps.fallbacks} lost a placeholder and were translated around their code/URLs"
                if ps.fallbacks
                else ""
            )
            + (f"; {s.passthrough} already in the target language" if s.passthrough else "")
        )
        if s.skipped:
            log(
                "skipped (no model for the language): "
                + ", ".join(f"{lang}: {n}" for lang, n in s.skipped.most_common())
                + ". Run again with another backend on the same folder to translate them."
            )


def chunk_identity(identity: dict, split: str) -> dict:
    """What a chunk header says it belongs to: the run's identity, with its own split's fingerprint and size."""
    kept = {k: identity[k] for k in ("dataset", "text_fields", "target_language", "keep_source", "lang_field")}
    return {**kept, "dataset_fingerprint": identity["split_fingerprints"][split],
            "split_size": identity["split_sizes"][split]}


def collect_texts(r: int, row: dict, fields: list[str]) -> list[tuple[Slot, str]]:
    """The texts of one record to translate: string fields, and each turn of conversation fields."""
    out: list[tuple[Slot, str]] = []
    for f in fields:
        value = row.get(f)
        if isinstance(value, str):
            out.append(((r, f, None), value))
        elif is_conversation(value):
            for t, turn in enumerate(value):
                key = turn_text_key(turn)
                if isinstance(turn.get(key), str):
                    out.append(((r, f, t), turn[key]))
    return out


def rebuild_record(r: int, row: dict, fields: list[str], results: dict, keep_source: bool) -> dict:
    """The record with its translated texts put back (texts not in `results` stay as they were)."""
    record = dict(row)
    for f in fields:
        value = row.get(f)
        if keep_source:
            record[f"{f}_source"] = value
        if isinstance(value, str):
            record[f] = results.get((r, f, None), value)
        elif is_conversation(value):
            turns = []
            for t, turn in enumerate(value):
                turn = dict(turn)
                key = turn_text_key(turn)
                if (r, f, t) in results:
                    turn[key] = results[(r, f, t)]
                turns.append(turn)
            record[f] = turns
    return record
