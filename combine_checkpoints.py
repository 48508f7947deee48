#!/usr/bin/env python
"""Combine the checkpoint files of translate.py into a Hugging Face DatasetDict.

    python combine_checkpoints.py ./output_nl ./oasst1_nl              # save_to_disk, folder created
    python combine_checkpoints.py ./output_nl me/oasst1_nl --push_to_hub  # Hub, only when asked
    python combine_checkpoints.py ./output_nl ./oasst1_nl --drop_flagged  # without what the checks flag

Every record is checked (check_translations.py's checks, from what translate.py stored as it wrote the record, or
from the source text with --keep_source): it gets translation_flags and translation_score, and a summary is
printed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import Parser, log, run
from l2l.config import HubOptions, add_arguments, from_args, nested, option


@dataclass(kw_only=True)
class CombineOptions:
    """combine_checkpoints.py's settings."""

    input_folder: str = option(help="The checkpoint folder written by translate.py, e.g. ./output_nl.", positional=True)
    output_location: str = option(
        help="Folder to save the DatasetDict to (or a Hub repo id with --push_to_hub).", positional=True
    )
    hub: HubOptions = nested(HubOptions)
    overwrite: bool = option(False, "Replace an existing output folder.")
    drop_flagged: bool = option(False, "Leave out the records the translation checks flag (empty, untranslated, "
                                       "wrong language, length, loop, structure).")


def build_parser() -> Parser:
    p = Parser(prog="combine_checkpoints.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, CombineOptions)
    return p


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(CombineOptions, build_parser().parse_args(argv))
    from l2l.io import check_output_free, save_dataset
    from l2l.translate.combine import check, combine, to_dataset_dict

    if not cfg.hub.push_to_hub:  # refuse an occupied output (or the input itself) before reading anything
        check_output_free(cfg.output_location, cfg.overwrite, inputs=(cfg.input_folder,))
    combined = combine(Path(cfg.input_folder))
    report = check(combined, cfg.drop_flagged)
    dsd = to_dataset_dict(combined)
    for split, langs in combined.languages.items():
        log(f"{split}: {len(combined.splits[split])} records ("
            + ", ".join(f"{lang}: {n}" for lang, n in langs.most_common()) + ")")
    if combined.duplicates:
        log(f"{combined.duplicates} records appeared in more than one checkpoint; each was kept once"
            + (" (the better-scoring copy; a later one for " + ", ".join(
                f"{n} by {who}" for who, n in combined.replaced.most_common()) + ")" if combined.replaced else ""))
    for line in report.summary_lines() if report else ["translation checks: none (checkpoints written by an older "
                                                        "version; check_translations.py checks any dataset)"]:
        log(line)
    if report and cfg.drop_flagged:
        log(f"--drop_flagged: {report.flagged} flagged records left out")
    if len(combined.translators) > 1:
        log("translators: " + ", ".join(f"{t}: {n}" for t, n in combined.translators.most_common()))
    where = save_dataset(dsd, cfg.output_location, push_to_hub=cfg.hub.push_to_hub, private=cfg.hub.private,
                         overwrite=cfg.overwrite)
    print(where)
    return 0


if __name__ == "__main__":
    run(main)
