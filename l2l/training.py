"""What the fine-tuning scripts share: flags, loading a (quantized) base model with LoRA, trainer settings,
automatic resume, and the output folder (adapter, tokenizer, model card, loss plot)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .cli import (UsageError, add_cpu_arg, add_hub_args, add_trust_remote_code_arg, first_line, log, non_negative_int,
                  positive_int)

DEFAULT_BASE_MODEL = "NousResearch/Meta-Llama-3-8B-Instruct"


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tuned_model", help="Output: a local folder for the adapter (a Hub repo id too with --push_to_hub).")
    p.add_argument("dataset_name", help="The dataset: output of combine_checkpoints.py, a local file or a Hub id.")
    p.add_argument("instruction_prompt", help="System prompt added to every thread, e.g. 'You are a generic chatbot "
                                              "that always answers in Dutch.'")
    p.add_argument("--base_model", default=DEFAULT_BASE_MODEL, help=f"Base model (Hub id or folder). Default {DEFAULT_BASE_MODEL}.")
    q = p.add_mutually_exclusive_group()
    q.add_argument("--quant8", action="store_true", help="Load the base model in 8 bits instead of 4-bit NF4.")
    q.add_argument("--noquant", action="store_true", help="No quantization: LoRA on the full-precision model.")
    p.add_argument("--max_seq_length", type=positive_int, default=512, help="Longest training sequence in tokens. Default 512.")
    p.add_argument("--num_train_epochs", type=float, default=2.0, help="Epochs. Default 2.")
    p.add_argument("--max_steps", type=int, default=-1, help="Stop after this many optimizer steps (-1: run the epochs).")
    p.add_argument("--batch_size", type=positive_int, default=4, help="Per-device batch size. Default 4.")
    p.add_argument("--gradient_accumulation_steps", type=positive_int, default=1, help="Default 1.")
    p.add_argument("--learning_rate", type=float, default=2e-4, help="Default 2e-4.")
    p.add_argument("--lr_scheduler_type", default="cosine", help="Default cosine.")
    p.add_argument("--warmup_ratio", type=float, default=0.03, help="Share of steps warming up. Default 0.03.")
    p.add_argument("--lora_r", type=positive_int, default=16, help="LoRA rank. Default 16.")
    p.add_argument("--lora_alpha", type=positive_int, default=32, help="LoRA alpha. Default 32.")
    p.add_argument("--lora_dropout", type=float, default=0.05, help="LoRA dropout. Default 0.05.")
    p.add_argument("--target_modules", default="all-linear",
                   help="Modules given LoRA adapters: all-linear or a comma-separated list (q_proj,v_proj). Default all-linear.")
    p.add_argument("--threads_output_name", default=None, help="Also save the training threads here (a folder).")
    p.add_argument("--padding", choices=["left", "right"], default="right", help="Padding side. Default right.")
    p.add_argument("--seed", type=int, default=42, help="Default 42.")
    p.add_argument("--eval_steps", type=positive_int, default=None,
                   help="Evaluate the validation split every N steps (default: at each save).")
    p.add_argument("--save_steps", type=positive_int, default=100, help="Checkpoint every N steps. Default 100.")
    p.add_argument("--logging_steps", type=positive_int, default=10, help="Default 10.")
    p.add_argument("--report_to", default="none", help="none, tensorboard, wandb... Default none.")
    p.add_argument("--output_dir", default=None,
                   help="Trainer checkpoints (default <tuned_model>-checkpoints). An interrupted run resumes from here.")
    p.add_argument("--gradient_checkpointing", action="store_true", help="Trade compute for memory.")
    add_cpu_arg(p, help="Train on the CPU even when a GPU is available.")
    add_trust_remote_code_arg(p)
    p.add_argument("--overwrite", action="store_true", help="Replace an existing tuned_model folder.")
    add_hub_args(p, "adapter")
    p.add_argument("--hub_model_id", default=None, help="Hub repo for --push_to_hub (default: tuned_model).")


def check_arguments(args) -> None:
    from .io import check_output_free

    if args.max_steps == 0 or args.max_steps < -1:
        raise UsageError("--max_steps must be positive, or -1 to run the epochs")
    if not 0.0 <= args.warmup_ratio < 1.0:
        raise UsageError("--warmup_ratio must be in [0, 1)")
    if not 0.0 <= args.lora_dropout < 1.0:
        raise UsageError("--lora_dropout must be in [0, 1)")
    check_output_free(args.tuned_model, args.overwrite)


def checkpoints_dir(args) -> str:
    return args.output_dir or f"{args.tuned_model.rstrip('/')}-checkpoints"


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# ------------------------------------------------------------------------------------------ model
def disable_cpu_bf16_repacking(model) -> int:
    """STACK.md pitfall 1: on CPUs with AVX512-BF16, bitsandbytes repacks 4-bit weights for inference and
    gradients of later training steps go wrong. Turning the repacking off keeps them exact."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0
    n = 0
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False
            n += 1
    return n


def load_tokenizer_for_training(name: str, padding: str, trust_remote_code: bool):
    from .modeling import load_tokenizer

    tok = load_tokenizer(name, trust_remote_code=trust_remote_code)
    tok.padding_side = padding
    if tok.pad_token is None:
        # Never a word token: a reserved padding token when the vocabulary has one, else the end token
        # (labels are masked by attention, not by id, so the real end token is still trained).
        for candidate in ("<|finetune_right_pad_id|>", "<|pad|>", "<pad>", "[PAD]"):
            if candidate in tok.get_vocab():
                tok.pad_token = candidate
                break
        else:
            tok.pad_token = tok.eos_token
    return tok


def load_model_for_training(args, device: str):
    """The base model, quantized (4-bit NF4 by default, --quant8, --noquant), ready for k-bit training."""
    import transformers

    from .modeling import compute_dtype, load_model

    quant4 = not (args.quant8 or args.noquant)
    kwargs = {}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and device == "cuda":
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    model = load_model(transformers.AutoModelForCausalLM, args.base_model, device=device, quant4=quant4,
                       quant8=args.quant8, trust_remote_code=args.trust_remote_code,
                       dtype=compute_dtype(device) if device == "cuda" else None)
    if quant4 or args.quant8:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing)
        if device == "cpu":
            disable_cpu_bf16_repacking(model)
    model.config.use_cache = False
    return model


def lora_config(args, task_type: str = "CAUSAL_LM"):
    from peft import LoraConfig

    targets = args.target_modules
    targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    return LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=targets, bias="none", task_type=task_type)


def common_trainer_kwargs(args, device: str, has_eval: bool) -> dict:
    """TrainingArguments shared by SFT, DPO and ORPO."""
    import torch

    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return dict(
        output_dir=checkpoints_dir(args), num_train_epochs=args.num_train_epochs, max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps, learning_rate=args.learning_rate,
        lr_scheduler_type=args.lr_scheduler_type, warmup_steps=args.warmup_ratio, seed=args.seed,
        logging_steps=args.logging_steps, logging_first_step=True, save_steps=args.save_steps,
        save_total_limit=2, eval_strategy="steps" if has_eval else "no",
        eval_steps=(args.eval_steps or args.save_steps) if has_eval else None, report_to=args.report_to,
        use_cpu=device == "cpu", bf16=bf16, fp16=device == "cuda" and not bf16,
        activation_checkpointing=args.gradient_checkpointing, ddp_find_unused_parameters=False,
        disable_tqdm=False,
    )


def last_checkpoint(output_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not Path(output_dir).is_dir():
        return None
    return get_last_checkpoint(output_dir)


def train(trainer, output_dir: str):
    """Train, resuming automatically from the newest checkpoint of an interrupted run."""
    resume = last_checkpoint(output_dir)
    if resume:
        log(f"resuming from {resume}")
    return trainer.train(resume_from_checkpoint=resume)


def summarize(trainer, result, train_ds, eval_ds, noun: str) -> dict:
    """Final losses and sizes: train loss and steps, validation loss when there is a validation split."""
    summary = {"train_loss": result.training_loss, "steps": trainer.state.global_step,
               f"train_{noun}": len(train_ds), "processes": trainer.args.world_size}
    if eval_ds is not None:
        summary["validation_loss"] = trainer.evaluate()["eval_loss"]
        summary[f"validation_{noun}"] = len(eval_ds)
    return summary


def finish(trainer, tokenizer, args, kind: str, summary: dict, eos_ids: list[int]) -> None:
    """On the main process: write tuned_model/, push it when asked, print where it is."""
    if not is_main_process():
        return
    out = save_outputs(trainer, tokenizer, args, kind, summary, eos_ids)
    log(f"adapter, tokenizer, model card and loss plot in {out}")
    if args.push_to_hub:
        push_adapter(out, args.hub_model_id or args.tuned_model, args.private)
    print(out)


# ---------------------------------------------------------------------------------------- outputs
def loss_curves(log_history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    curves: dict[str, list[tuple[int, float]]] = {"train": [], "validation": []}
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            curves["train"].append((entry["step"], entry["loss"]))
        if "eval_loss" in entry and "step" in entry:
            curves["validation"].append((entry["step"], entry["eval_loss"]))
    return curves


def plot_losses(curves: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in curves.items():
        if points:
            ax.plot([s for s, _ in points], [v for _, v in points], marker="o" if len(points) < 30 else None, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def model_card(args, kind: str, summary: dict) -> str:
    hp = {k: getattr(args, k) for k in ("base_model", "dataset_name", "instruction_prompt", "thread_template",
                                         "max_seq_length", "num_train_epochs", "max_steps", "batch_size",
                                         "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type",
                                         "warmup_ratio", "lora_r", "lora_alpha", "lora_dropout", "target_modules",
                                         "seed") if hasattr(args, k)}
    hp["quantization"] = "8-bit" if args.quant8 else "none" if args.noquant else "4-bit NF4 (QLoRA)"
    rows = "\n".join(f"| {k} | {v} |" for k, v in hp.items())
    metrics = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in summary.items())
    return f"""---
base_model: {args.base_model}
library_name: peft
tags: [l2l, lora, {kind}]
---
# {Path(args.tuned_model).name}

A LoRA adapter for `{args.base_model}`, trained with {kind.upper()} by l2l on `{args.dataset_name}`.

## Results

| metric | value |
|---|---|
{metrics}

![loss curves](loss.png)

## Hyperparameters

| name | value |
|---|---|
{rows}

## Use

```bash
python run_inference.py {args.tuned_model} "{args.instruction_prompt}" "your question"
```
"""


def save_outputs(trainer, tokenizer, args, kind: str, summary: dict, eos_ids: list[int] | None = None) -> Path:
    """Adapter, tokenizer, generation settings, model card, loss plot and summary in tuned_model/."""
    out = Path(args.tuned_model)
    out.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if eos_ids:
        gen = trainer.model.generation_config if hasattr(trainer.model, "generation_config") else None
        if gen is not None:
            gen.eos_token_id = eos_ids if len(eos_ids) > 1 else eos_ids[0]
            gen.pad_token_id = tokenizer.pad_token_id
            gen.save_pretrained(out)
    curves = loss_curves(trainer.state.log_history)
    plot_losses(curves, out / "loss.png", f"{kind.upper()} {Path(args.tuned_model).name}")
    (out / "README.md").write_text(model_card(args, kind, summary), encoding="utf-8")
    (out / "training_summary.json").write_text(json.dumps(
        {"kind": kind, "base_model": args.base_model, "dataset": args.dataset_name, **summary,
         "curves": curves, "command": [Path(sys.argv[0]).name, *sys.argv[1:]]}, indent=2), encoding="utf-8")
    return out


def push_adapter(folder: Path, repo_id: str, private: bool) -> None:
    from huggingface_hub import HfApi

    token = os.environ.get("HF_TOKEN") or None
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id)
    except Exception as e:
        reason = first_line(e)
        if token:
            reason = reason.replace(token, "***")
        raise UsageError(f"cannot push to the Hub repository {repo_id}: {reason}") from e
    log(f"pushed to https://huggingface.co/{repo_id}")
