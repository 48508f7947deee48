"""Thread-building flags, shared by `python -m threads`, finetune.py, finetune_dpo.py and finetune_orpo.py:
generated from ThreadOptions, where each one is defined."""

from __future__ import annotations

import argparse

from l2l.config import add_arguments, from_args
from l2l.threads.make import ThreadOptions


def add_thread_arguments(p: argparse.ArgumentParser) -> None:
    add_arguments(p.add_argument_group("threads"), ThreadOptions)


def thread_options(args: argparse.Namespace, dataset: str, **given) -> ThreadOptions:
    """ThreadOptions from parsed flags; dataset, instruction_prompt, seed and trust_remote_code come from the
    script's own arguments of those names."""
    return from_args(ThreadOptions, args, dataset=dataset, **given)
