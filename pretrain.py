#!/usr/bin/env python
"""Continue a model's pretraining on plain target-language text (LoRA; new vocabulary rows of an
extend_tokenizer.py model trained too), the loss on every token.

    python pretrain.py tuned_model dataset [--base_model M] [--text_field text] [--val_fraction F] [flags]
    python pretrain.py ./llama3-nl-cpt ./corpus_nl.txt --base_model ./llama3-nl-vocab --max_steps 2000

The dataset: a .txt file (one passage a line) or any dataset with a text column (--text_field).
"""

from __future__ import annotations

import argparse

from l2l.cli import Parser, run
from l2l.config import add_arguments
from l2l.train.config import PretrainOptions


def build_parser() -> Parser:
    p = Parser(prog="pretrain.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, PretrainOptions)
    return p


def main(argv: list[str] | None = None) -> int:
    from l2l.config import from_args
    from l2l.train.pretrain import pretrain

    cfg = from_args(PretrainOptions, build_parser().parse_args(argv))
    return pretrain(cfg)


if __name__ == "__main__":
    run(main)
