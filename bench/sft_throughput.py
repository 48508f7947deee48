#!/usr/bin/env python
"""Trained tokens/s of SFT with packing against without, same model, same data, same process.

Model: a small Llama (hidden 256, 4 layers) with random weights and a tokenizer trained on the data.
Data: real English Q&A threads (zaragoza-construction-faq on PyPI), ChatML, answers-only loss.
Tokens counted are real (non-padding) tokens, as TRL logs them.

    python bench/sft_throughput.py [--steps 15] [--batch_size 4] [--max_length 512]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from realdata import faq_file  # noqa: E402 - bench/ is on the path when run as a script


def faq_messages() -> list[dict]:
    rows = [json.loads(line) for line in faq_file().read_text(encoding="utf-8").splitlines()]
    return [{"messages": [{"role": "system", "content": "You answer questions about building in Sweden."},
                          {"role": "user", "content": r["instruction"]},
                          {"role": "assistant", "content": r["output"]}]} for r in rows]


def build_model(folder: Path, texts: list[str]) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from l2l.templates import load

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=4000, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<pad>",
                                  unk_token="<|endoftext|>")
    tok.chat_template = load("chatml")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=512,
                                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                                         max_position_embeddings=1024, pad_token_id=tok.pad_token_id,
                                         eos_token_id=tok.eos_token_id))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def run(model_dir: Path, data, packing: str | None, args, out: Path) -> tuple[float, float, int]:
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = SFTConfig(output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
                       max_length=args.max_length, packing=packing is not None,
                       packing_strategy=packing or "bfd", assistant_only_loss=True, use_cpu=True,
                       bf16=False, logging_steps=args.steps, save_strategy="no", report_to="none",
                       activation_checkpointing=False, disable_tqdm=True, seed=0)
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tok,
                         peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                                task_type="CAUSAL_LM"))
    result = trainer.train()
    tokens = max(e.get("num_tokens", 0) for e in trainer.state.log_history)
    seconds = result.metrics["train_runtime"]
    return seconds, tokens, len(trainer.train_dataset)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--max_length", type=int, default=512)
    args = p.parse_args()
    import datasets
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    messages = faq_messages()
    data = datasets.Dataset.from_list(messages)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = build_model(work / "model", [m["content"] for r in messages for m in r["messages"]])
        rows = {name: run(model_dir, data, strategy, args, work / name)
                for name, strategy in (("padded batches", None), ("packing, wrapped", "wrapped"),
                                       ("packing, bfd (padding-free)", "bfd"))}
    print(f"{args.steps} steps of batch {args.batch_size}, max_length {args.max_length}, "
          f"threads {torch.get_num_threads()}; "
          + ", ".join(f"{name}: {n} sequences" for name, (_, _, n) in rows.items()))
    print("| SFT | seconds | trained tokens | tokens/s | ratio |")
    print("|---|---|---|---|---|")
    base = rows["padded batches"][1] / rows["padded batches"][0]
    for name, (t, tokens, _) in rows.items():
        print(f"| {name} | {t:.1f} | {tokens:.0f} | {tokens / t:.0f} | {tokens / t / base:.2f} |")


if __name__ == "__main__":
    main()
