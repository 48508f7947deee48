#!/usr/bin/env python
"""Records/s of translate.py's job against a naive loop, same model, same data, same process.

The naive loop is what LLaMa2lang did: fixed batches of whole texts in dataset order, no deduplication,
texts cut at the model's input length. translate.py's job cuts texts into sentences (never truncating),
translates each distinct piece once, and batches pieces sorted by length.

Model: a small Marian (OPUS-MT architecture: pad as the last vocabulary row, its embedding zero) with a
tokenizer trained on the data, trained for --train_steps to copy its input. Like a real translation model it
stops at end-of-sentence and its output length follows its input. With --train_steps 0 the weights stay
random: such a model never stops, every row runs to its cap, and the figures flatter per-row caps (kept only
to compare with older figures; label them so).
Data: real English Q&A text (zaragoza-construction-faq on PyPI: `pip install zaragoza-construction-faq`),
with --repeats of the answers repeated elsewhere, as OASST repeats its common replies.

    python bench/translate_throughput.py [--n 300] [--batch_size 10] [--max_batch_tokens 1024] [--train_steps 1200]
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


def faq_rows(n: int) -> list[dict]:
    import importlib.util

    spec = importlib.util.find_spec("zaragoza_construction_faq")
    if spec is None:
        sys.exit("needs the real data: pip install zaragoza-construction-faq==1.2.1")
    path = Path(spec.origin).parent / "data" / "faq-en-alpaca.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows[:n]


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


def train_to_copy(folder: Path, sentences: list[str], steps: int) -> None:
    """Teach the model to copy sentences: it learns to end its output where its input ended."""
    import random

    import torch
    from transformers import AutoTokenizer, MarianMTModel

    if steps <= 0:
        return
    tok = AutoTokenizer.from_pretrained(folder)
    model = MarianMTModel.from_pretrained(folder).train()
    pad = tok.pad_token_id
    model.model.shared.weight.register_hook(lambda g: g.index_fill(0, torch.tensor([pad]), 0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = random.Random(0)
    start = time.perf_counter()
    for step in range(steps):
        batch = rng.sample(sentences, 32)
        enc = tok(batch, text_target=batch, return_tensors="pt", padding=True, truncation=True, max_length=64)
        enc["labels"][enc["labels"] == pad] = -100
        loss = model(**enc).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 200 == 0 or step == steps - 1:
            print(f"copy training step {step}: loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr)
    model.eval().save_pretrained(folder)


def naive(model_dir: Path, rows: list[dict], fields: list[str], batch_size: int) -> tuple[float, int]:
    """LLaMa2lang's loop: whole texts, dataset order, fixed batches, no dedup (empty texts skipped)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    texts = [r[f] for r in rows for f in fields if r[f]]
    start = time.perf_counter()
    tokens = 0
    for b in range(0, len(texts), batch_size):
        enc = tok(texts[b:b + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=512)
        longest = int(enc["attention_mask"].sum(dim=1).max())
        with torch.inference_mode():
            model.generate(**enc, max_new_tokens=2 * longest + 16, do_sample=False)
        tokens += int(enc["attention_mask"].sum())
    return time.perf_counter() - start, tokens


def ours(model_dir: Path, data: Path, work: Path, batch_size: int, engine: str = "transformers",
         max_batch_tokens: int | None = None) -> tuple[float, dict]:
    from l2l.translate_job import JobConfig, TranslationJob
    from l2l.translators import TranslatorOptions, get

    translator = get("opus")(TranslatorOptions(model_name=str(model_dir), device="cpu", engine=engine))
    job = TranslationJob(JobConfig(dataset=str(data), target_lang="nl",
                                   checkpoint_dir=work / f"ckpt-{engine}-{max_batch_tokens}",
                                   text_field="instruction,output", source_lang="en", batch_size=batch_size,
                                   max_batch_tokens=max_batch_tokens), translator)
    plan = job.prepare()
    translator.check_pair("en", "nl")  # load (and convert, for CTranslate2) outside the timed part
    start = time.perf_counter()
    job.run(plan)
    return time.perf_counter() - start, job.pieces.stats


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
    p.add_argument("--n", type=int, default=300, help="records (default 300)")
    p.add_argument("--batch_size", type=int, default=10, help="LLaMa2lang's README uses 10 (default 10)")
    p.add_argument("--max_batch_tokens", type=int, default=1024)
    p.add_argument("--train_steps", type=int, default=1200, help="copy-training steps; 0: random weights")
    p.add_argument("--repeats", type=float, default=0.15, help="share of repeated answers (default 0.15)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    import torch

    rows = with_repeats(faq_rows(args.n), args.repeats)
    fields = ["instruction", "output"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        texts = [r[f] for r in faq_rows(10_000) for f in fields]
        model_dir = build_marian(work / "model", texts)
        torch.set_num_threads(2)
        train_to_copy(model_dir, sentences_of(texts), args.train_steps)
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        data = work / "faq.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        os.environ["L2L_CACHE"] = str(work / "cache")
        t_naive, src_tokens = naive(model_dir, rows, fields, args.batch_size)
        runs = {"translate.py, transformers": ours(model_dir, data, work, args.batch_size)}
        runs["translate.py, CTranslate2 int8"] = ours(model_dir, data, work, args.batch_size, "ctranslate2")
        runs[f"translate.py, CTranslate2 int8, --max_batch_tokens {args.max_batch_tokens}"] = ours(
            model_dir, data, work, args.batch_size, "ctranslate2", args.max_batch_tokens)
        report(args, rows, t_naive, src_tokens, runs)


def report(args, rows: list[dict], t_naive: float, src_tokens: int, runs: dict) -> None:
    import torch

    n = len(rows)
    stats = next(iter(runs.values()))[1]
    model = "random weights (never stops)" if args.train_steps <= 0 else f"copy-trained {args.train_steps} steps"
    print(f"records: {n} ({args.repeats:.0%} repeated answers), source tokens: {src_tokens}, batch size "
          f"{args.batch_size}, threads {torch.get_num_threads()}, model: {model}")
    print(f"pieces: {stats.pieces}, sent to the model: {stats.model_pieces} in {stats.model_calls} calls "
          f"(the naive loop: {-(-sum(1 for r in rows for f in ('instruction', 'output') if r[f]) // args.batch_size)})")
    print("| loop | seconds | records/s | source tokens/s | ratio |")
    print("|---|---|---|---|---|")
    print(f"| naive (LLaMa2lang) | {t_naive:.1f} | {n / t_naive:.2f} | {src_tokens / t_naive:.0f} | 1.00 |")
    for name, (t, _) in runs.items():
        print(f"| {name} | {t:.1f} | {n / t:.2f} | {src_tokens / t:.0f} | {t_naive / t:.2f} |")


if __name__ == "__main__":
    main()
