#!/usr/bin/env python
"""Combine the checkpoint files of translate.py into a Hugging Face DatasetDict.

    python combine_checkpoints.py ./output_nl ./oasst1_nl              # save_to_disk, folder created
    python combine_checkpoints.py ./output_nl me/oasst1_nl --push_to_hub  # Hub, only when asked
"""

from __future__ import annotations

import argparse
from pathlib import Path

from l2l.cli import Parser, add_hub_args, log, run


def build_parser() -> Parser:
    p = Parser(prog="combine_checkpoints.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input_folder", help="The checkpoint folder written by translate.py, e.g. ./output_nl.")
    p.add_argument("output_location", help="Folder to save the DatasetDict to (or a Hub repo id with --push_to_hub).")
    add_hub_args(p)
    p.add_argument("--overwrite", action="store_true", help="Replace an existing output folder.")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from l2l.combine import combine, to_dataset_dict
    from l2l.io import check_output_free, save_dataset

    if not args.push_to_hub:  # refuse an occupied output (or the input itself) before reading anything
        check_output_free(args.output_location, args.overwrite, inputs=(args.input_folder,))
    combined = combine(Path(args.input_folder))
    dsd = to_dataset_dict(combined)
    for split, langs in combined.languages.items():
        log(f"{split}: {len(combined.splits[split])} records ("
            + ", ".join(f"{lang}: {n}" for lang, n in langs.most_common()) + ")")
    if combined.duplicates:
        log(f"{combined.duplicates} records appeared in more than one checkpoint; each was kept once")
    if len(combined.translators) > 1:
        log("translators: " + ", ".join(f"{t}: {n}" for t, n in combined.translators.most_common()))
    where = save_dataset(dsd, args.output_location, push_to_hub=args.push_to_hub, private=args.private,
                         overwrite=args.overwrite)
    print(where)
    return 0


if __name__ == "__main__":
    run(main)
