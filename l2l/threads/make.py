"""From a dataset to a DatasetDict of training conversations: threads per split, English retention,
bilingual translation tasks, missing splits, a seeded subset, and the rendered `text` column."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from l2l import templates
from l2l.cli import UsageError, log
from l2l.config import nested, option
from l2l.data import load_any
from l2l.shapes import ROLE_MAP, Fields, conversations, record_units
from l2l.threads.build import TASK_PROMPT, translation_pairs, translation_tasks, with_system


@dataclass
class ThreadOptions:
    """How threads are built from a dataset: the flags shared by `python -m threads` and the training scripts.
    dataset, instruction_prompt, seed and trust_remote_code are given by the script (its positionals and flags)."""

    dataset: str
    instruction_prompt: str | None = None
    seed: int = 42
    trust_remote_code: bool = False
    fields: Fields = nested(Fields)
    thread_template: str | None = option(
        None, f"Chat template: {', '.join(templates.NAMES)} (the base model's own) or a Jinja file. Default llama3 "
        "(DPO/ORPO with --adapter: the template saved with the adapter).")
    english_fraction: float = option(0.0, "Share of untranslated (English) threads to mix in against forgetting, "
                                     "e.g. 0.1.", type=float, show_default=False)
    source_dataset: str | None = option(None, "The untranslated dataset for --english_fraction (default: the "
                                        "<field>_source columns kept by translate.py --keep_source).")
    english_instruction_prompt: str | None = option(None, "System prompt for the English threads (default: none).")
    translation_task_fraction: float = option(0.0, "Add this share of bilingual tasks (translate a text "
                                              "source->target and back).", type=float, show_default=False)
    translation_task_prompt: str = option(TASK_PROMPT, "User message of a translation task, with {source}, {target} "
                                          "and {text}.", show_default=False)
    val_fraction: float = option(0.0, "Create a validation split of this share when missing.", type=float,
                                 show_default=False)
    test_fraction: float = option(0.0, "Create a test split of this share when missing.", type=float,
                                  show_default=False)
    max_samples: int | None = option(None, "Use a seeded subset of this many training threads.", type=int)
    skip_flagged: bool = option(False, "Leave out the records the translation checks flagged (their "
                                "translation_flags column, from combine_checkpoints.py or check_translations.py); "
                                "in an OASST tree a flagged message takes its replies with it.")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def template(self) -> str:
        """The template asked for, or the default."""
        return self.thread_template or "llama3"

    def validate(self) -> None:
        for name in ("english_fraction", "translation_task_fraction", "val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise UsageError(f"--{name} must be in [0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise UsageError("--val_fraction plus --test_fraction must stay below 1")
        if self.max_samples is not None and self.max_samples <= 0:
            raise UsageError("--max_samples must be positive")


def _round(x: float) -> int:
    """Half up (2.5 -> 3), as people count shares; Python's round() would give 2."""
    return int(math.floor(x + 0.5))


def _english_share(n_main: int, fraction: float) -> int:
    """How many English threads make `fraction` of the final mix."""
    return _round(fraction / (1 - fraction) * n_main) if fraction else 0


def load_dataset(opts: ThreadOptions):
    """The dataset, without the records the translation checks flagged when --skip_flagged asks."""
    ds = load_any(opts.dataset, trust_remote_code=opts.trust_remote_code)
    if not opts.skip_flagged:
        return ds
    if any("translation_flags" not in d.column_names for d in ds.values()):
        raise UsageError(f"--skip_flagged: {opts.dataset} has no translation_flags column (combine_checkpoints.py "
                         "writes it; for other datasets run check_translations.py first)")
    before = sum(len(d) for d in ds.values())
    ds = ds.filter(lambda row: not row["translation_flags"])
    log(f"--skip_flagged: {before - sum(len(d) for d in ds.values())} flagged records left out")
    return ds


def build_threads(opts: ThreadOptions) -> dict[str, list[dict]]:
    """Conversations (with system prompt and origin) per split, before rendering."""
    rng = random.Random(opts.seed)
    ds = load_dataset(opts)
    columns = next(iter(ds.values())).column_names
    english_ds = load_any(opts.source_dataset,
                          trust_remote_code=opts.trust_remote_code) if opts.source_dataset else None
    result: dict[str, list[dict]] = {}
    for split, rows in carve_records({k: v.to_list() for k, v in ds.items()}, columns, opts).items():
        main = with_system(conversations(rows, columns, opts.fields), opts.instruction_prompt, "translated")
        mixed = list(main)
        if opts.english_fraction:
            if english_ds is not None:
                src = english_ds[split] if split in english_ds else next(iter(english_ds.values()))
                pool = conversations(src.to_list(), src.column_names, opts.fields)
            else:
                pool = conversations(rows, columns, opts.fields, source=True)
            if not pool:
                raise UsageError("--english_fraction needs English threads: translate with --keep_source, "
                                 "or give the original dataset with --source_dataset")
            n = min(len(pool), _english_share(len(main), opts.english_fraction))
            mixed += with_system(rng.sample(pool, n), opts.english_instruction_prompt, "english")
        if opts.translation_task_fraction:
            pairs = translation_pairs(rows, columns, opts.fields)
            if not pairs:
                raise UsageError("--translation_task_fraction needs the source texts: translate with --keep_source")
            n = _round(opts.translation_task_fraction * len(main))
            mixed += with_system(translation_tasks(pairs, n, None, rng, opts.translation_task_prompt),
                                 opts.instruction_prompt, "translation_task")
        rng.shuffle(mixed)
        result[split] = mixed
    return _splits(result, opts, rng)


def carve_records(splits: dict[str, list[dict]], columns: list[str], opts: ThreadOptions) -> dict[str, list[dict]]:
    """Missing validation/test splits, carved out of the train records (whole OASST trees) before any thread is
    built: a held-out record reaches training in no form (translated, English or translation task), and the
    held-out records depend only on the dataset and --seed, so evaluate_model.py finds the same ones."""
    wanted = [(n, f) for n, f in (("validation", opts.val_fraction), ("test", opts.test_fraction))
              if f and n not in splits]
    if not wanted:
        return splits
    train_name = "train" if "train" in splits else next(iter(splits))
    rows = splits[train_name]
    units = record_units(rows, columns, opts.fields)
    keys = list(dict.fromkeys(units))
    total = len(keys) + sum(len(set(record_units(v, columns, opts.fields)))
                            for k, v in splits.items() if k != train_name)
    rng, out = random.Random(opts.seed), dict(splits)
    for name, fraction in wanted:
        n = max(1, _round(fraction * total))
        if n >= len(keys):
            raise UsageError(f"--{'val' if name == 'validation' else name}_fraction leaves no training threads")
        picked = set(rng.sample(keys, n))
        out[name] = [r for r, u in zip(rows, units) if u in picked]
        keys = [k for k in keys if k not in picked]
    kept = set(keys)
    out[train_name] = [r for r, u in zip(rows, units) if u in kept]
    return out


def _splits(result: dict[str, list[dict]], opts: ThreadOptions, rng: random.Random) -> dict[str, list[dict]]:
    train_name = "train" if "train" in result else next(iter(result))
    train = result[train_name]
    for name, fraction in (("validation", opts.val_fraction), ("test", opts.test_fraction)):
        if fraction and name not in result:
            n = max(1, _round(fraction * (len(train) + sum(len(v) for k, v in result.items() if k != train_name))))
            if n >= len(train):
                raise UsageError(f"--{'val' if name == 'validation' else name}_fraction leaves no training threads")
            picked = set(rng.sample(range(len(train)), n))
            result[name] = [t for i, t in enumerate(train) if i in picked]
            train = [t for i, t in enumerate(train) if i not in picked]
    result[train_name] = train
    if opts.max_samples is not None and len(train) > opts.max_samples:
        keep = sorted(rng.sample(range(len(train)), opts.max_samples))
        result[train_name] = [train[i] for i in keep]
    for split, threads in result.items():
        counts = {}
        for t in threads:
            counts[t["origin"]] = counts.get(t["origin"], 0) + 1
        noun = "pairs" if threads and threads[0]["origin"] == "preference" else "threads"
        log(f"{split}: {len(threads)} {noun} (" + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ")")
    if not any(result.values()):
        raise UsageError(f"nothing could be built from {opts.dataset}: no complete thread or ranked pair")
    return result


def render(threads: dict[str, list[dict]], template: str, tokenizer):
    """DatasetDict with id, origin, messages and the rendered text."""
    import datasets

    out = {}
    for split, items in threads.items():
        rows = [{"id": t["id"], "origin": t["origin"], "messages": t["messages"],
                 "text": tokenizer.apply_chat_template(t["messages"], chat_template=template, tokenize=False)}
                for t in items]
        out[split] = datasets.Dataset.from_list(rows)
    return datasets.DatasetDict(out)


def make(opts: ThreadOptions, tokenizer):
    template = templates.load(opts.template, tokenizer)
    missing = templates.missing_tokens(template, tokenizer) if opts.template in templates.SHIPPED else []
    if missing:
        log(f"note: the {opts.template} template's {', '.join(missing)} are not single tokens of this "
            "model; they will be spelled out in pieces (consider --thread_template tokenizer or chatml)")
    return render(build_threads(opts), template, tokenizer), template


def build_pairs(opts: ThreadOptions, count_tokens=None, max_prompt_length: int | None = None) -> dict[str, list[dict]]:
    """Preference pairs per split (prompt/chosen/rejected), prompts fitted to max_prompt_length."""
    from l2l.threads.preference import fit_prompt, preference_rows, shortest_prompt

    if opts.english_fraction or opts.translation_task_fraction:
        raise UsageError("--english_fraction and --translation_task_fraction apply to threads, not preference pairs")
    ds = load_dataset(opts)
    columns = next(iter(ds.values())).column_names
    result, dropped, shortest = {}, 0, None
    for split, data in ds.items():
        pairs = []
        for pair in preference_rows(data.to_list(), columns, opts.fields, opts.instruction_prompt):
            fitted = fit_prompt(pair, count_tokens, max_prompt_length) if count_tokens else pair
            if fitted is None:
                dropped += 1
                need = count_tokens(shortest_prompt(pair["prompt"]))
                shortest = need if shortest is None else min(shortest, need)
                continue
            pairs.append({**fitted, "origin": "preference"})
        result[split] = pairs
    if not dropped and not any(result.values()):
        raise UsageError(no_pairs_reason(ds, opts))
    if dropped and not any(result.values()):
        raise UsageError(f"all {dropped} pairs have prompts longer than --max_prompt_length {max_prompt_length} "
                         f"tokens, even cut to their last question (the shortest needs {shortest}): raise "
                         "--max_prompt_length")
    if dropped:
        log(f"{dropped} pairs left out: their last question alone is longer than --max_prompt_length")
    return _splits(result, opts, random.Random(opts.seed))


def no_pairs_reason(ds: dict, opts: ThreadOptions) -> str:
    """Why a dataset gave no preference pair: no ranks at all, or no prompt with two differently ranked replies."""
    from l2l.shapes import rank_of

    f = opts.fields
    replies = [r for data in ds.values() for r in data.to_list() if ROLE_MAP.get(r.get(f.role)) == "assistant"]
    ranked = [r for r in replies if rank_of(r.get(f.rank)) != float("inf")]
    if not ranked:
        return (f"--preference needs ranked replies, and none of the {len(replies)} assistant replies in "
                f"{opts.dataset} has a rank (column {f.rank!r} is empty): train it with finetune.py instead")
    return (f"no preference pairs in {opts.dataset}: {len(ranked)} of its {len(replies)} replies are ranked, but no "
            "prompt has two replies of different rank")


def pairs_dataset(pairs: dict[str, list[dict]]):
    import datasets

    return datasets.DatasetDict({split: datasets.Dataset.from_list(
        [{k: p[k] for k in ("id", "prompt", "chosen", "rejected")} for p in items]) for split, items in pairs.items()})
