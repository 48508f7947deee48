#!/usr/bin/env python
"""Teach a chat model preferred answers over rejected ones with ORPO (no reference model), on OASST ranks.

    python finetune_orpo.py tuned_model dataset_name instruction_prompt [--adapter SFT_ADAPTER] [flags]
"""

from l2l.cli import run
from l2l.train.preference import main as preference_main


def main(argv=None) -> int:
    return preference_main(argv, "orpo", "finetune_orpo.py", __doc__.split("\n\n")[0])


if __name__ == "__main__":
    run(main)
