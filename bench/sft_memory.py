#!/usr/bin/env python
"""Peak GPU memory and trained tokens/s of finetune.py itself, per quantization mode, on real model shapes.

Each run is the user's command line (`finetune.py OUT DATA PROMPT --base_model M ...`, plus `--quant8` or
`--noquant`), run as a subprocess; finetune.py reports its own seconds, tokens/s (the real tokens TRL counts)
and, on a GPU, the peak memory the process allocated. The models have the shapes of real ones (SmolLM2-135M,
SmolLM2-1.7B, a Llama-2-7B body) with random weights and SmolLM2's tokenizer: speed and memory depend on the
shapes, not on the values of the weights (loss values here mean nothing). Data: the real English Q&As of
zaragoza-construction-faq (alpaca JSONL).

    python bench/sft_memory.py --tokenizer TOKENIZER_DIR --shapes smollm2-1.7b --modes qlora,quant8,noquant
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from realdata import faq_file  # noqa: E402 - bench/ is on the path when run as a script

SHAPES = {  # the published configs of these models (layers, widths, heads); vocabulary: SmolLM2's 49,152
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3),
    "smollm2-1.7b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=32,
                         num_key_value_heads=32),
    "llama2-7b-body": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                           num_attention_heads=32, num_key_value_heads=32, tie_word_embeddings=False),
}
MODES = {"qlora": [], "qlora_no_gc": ["--no_gradient_checkpointing"], "quant8": ["--quant8"], "noquant": ["--noquant"]}


def build(shape: str, tokenizer_dir: Path, out: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(**{"vocab_size": max(len(tok), 49152), "max_position_embeddings": 8192,
                            "rope_theta": 100000.0, "tie_word_embeddings": True, "bos_token_id": tok.bos_token_id,
                            "eos_token_id": tok.eos_token_id, **SHAPES[shape]})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    print(f"{shape}: {params / 1e6:.0f}M parameters", file=sys.stderr, flush=True)
    return out


def finetune(model: Path, mode: str, args, work: Path) -> dict:
    out = work / f"sft-{model.name}-{mode}"
    cmd = [sys.executable, str(ROOT / "finetune.py"), str(out), str(faq_file()), "You answer in English.",
           "--base_model", str(model), "--max_steps", str(args.steps), "--batch_size", str(args.batch_size),
           "--max_seq_length", str(args.max_seq_length), "--logging_steps", str(args.steps),
           "--save_steps", "100000", "--thread_template", "chatml", *MODES[mode], *args.extra.split()]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if args.logs:
        Path(args.logs).mkdir(parents=True, exist_ok=True)
        (Path(args.logs) / f"{model.name}-{mode}.log").write_text(done.stderr.replace("\r", "\n"))
    if done.returncode:
        print(done.stderr[-3000:], file=sys.stderr)
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads((out / "training_summary.json").read_text()) if (out / "training_summary.json").exists() \
        else {"error": "no training_summary.json"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True,
                   help="a folder with SmolLM2's tokenizer (python -m l2l.assets smollm2)")
    p.add_argument("--shapes", default="smollm2-1.7b", help=f"comma-separated: {', '.join(SHAPES)}")
    p.add_argument("--modes", default="qlora,quant8,noquant", help=f"comma-separated: {', '.join(MODES)}")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--max_seq_length", type=int, default=512)
    p.add_argument("--logs", default=None, help="keep each run's log in this folder")
    p.add_argument("--extra", default="", help="more finetune.py flags, e.g. '--gradient_checkpointing'")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            model = build(shape, Path(args.tokenizer), Path(tmp) / shape)
            for mode in args.modes.split(","):
                rows.append((shape, mode, finetune(model, mode, args, Path(tmp))))
                print(row(*rows[-1]), flush=True)
    print(f"{args.steps} steps, batch {args.batch_size}, --max_seq_length {args.max_seq_length} {args.extra}")
    print("| model shape | finetune.py | seconds | tokens/s | peak GPU memory, training (GiB) | loading (GiB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(row(*r))


def row(shape: str, mode: str, r: dict) -> str:
    flag = " ".join(MODES[mode]) or "(default: 4-bit QLoRA)"
    return (f"| {shape} | {flag} | {r.get('train_seconds', r.get('error'))} | {r.get('tokens_per_second', '-')} "
            f"| {r.get('peak_gpu_memory_gib', '-')} | {r.get('loading_peak_gpu_memory_gib', '-')} |")


if __name__ == "__main__":
    main()
