"""What the fine-tuning scripts share (their flags are in train_config.py): loading a (quantized) base model
with LoRA, trainer settings, automatic resume, and the output folder (adapter, tokenizer, model card, loss plot)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .cli import UsageError, first_line, log


def check_outputs(cfg, threads) -> None:
    """Before anything slow: the outputs are free (or --overwrite) and apart from every input, and the
    checkpoint folder holds no run with other settings (cfg's and the thread options')."""
    from .io import check_apart, check_output_free
    from .train_config import check_checkpoints, flat_settings

    inputs = (*cfg.inputs(), threads.source_dataset)
    check_output_free(cfg.tuned_model, cfg.overwrite, inputs=inputs)
    check_apart(cfg.checkpoints_dir, *inputs)
    if cfg.threads_output_name:
        check_apart(cfg.threads_output_name, *inputs, cfg.tuned_model, cfg.checkpoints_dir)
    check_checkpoints(cfg, flat_settings(cfg, threads))


def start_checkpoints(cfg, threads) -> None:
    """Right before training: clear the old run's checkpoints with --overwrite, record these settings."""
    from .train_config import flat_settings, record_checkpoints

    record_checkpoints(cfg, flat_settings(cfg, threads), main_process=is_main_process())


def check_lengths(threads: list[list[dict]], tokenizer, template: str, max_len: int) -> None:
    """Before the model loads: how many training threads fit --max_seq_length. None with an answer token inside
    the limit is an error (the trainer would have nothing to learn from); threads cut short are counted."""
    def lengths(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def render(messages: list[dict], prompt_only: bool) -> str:
        if prompt_only:  # up to where the first answer starts
            first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
            messages = messages[:first]
        return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                             add_generation_prompt=prompt_only)

    full = lengths([render(m, False) for m in threads])
    starts = lengths([render(m, True) for m in threads])
    usable = sum(1 for s in starts if s < max_len)
    if not usable:
        raise UsageError(f"none of the {len(threads)} training threads fits --max_seq_length {max_len}: the first "
                         f"answer starts at token {min(starts)} at the earliest (the shortest thread has "
                         f"{min(full)} tokens); raise --max_seq_length or use a shorter chat template "
                         "(--thread_template chatml, or tokenizer)")
    cut = sum(1 for n in full if n > max_len)
    if cut:
        log(f"{cut} of {len(threads)} training threads are longer than --max_seq_length {max_len} tokens and are cut "
            + (f"to it; {len(threads) - usable} of them keep no answer token and teach nothing"
               if usable < len(threads) else "to it"))


def require_train_split(dsd, dataset: str) -> None:
    if "train" not in dsd:
        raise UsageError(f"dataset {dataset} has no 'train' split (splits: {', '.join(dsd)}); training needs one")


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# ------------------------------------------------------------------------------------------ model
def disable_cpu_bf16_repacking(model) -> int:
    """On CPUs with AVX512-BF16, bitsandbytes repacks 4-bit weights for inference the first time one runs
    (generate, evaluate); QLoRA gradients of later training steps are then wrong (53-60 % error measured on
    this project's CI machine). Turning the repacking off keeps them equal to a float reference."""
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


def raw_text_splits(cfg, opts):
    """--raw_text: the passages as a `text` dataset, with a validation share when --val_fraction asks."""
    import random

    import datasets

    from .data import read_texts

    texts, _ = read_texts(cfg.dataset_name, cfg.raw_text_field, 10**9, cfg.trust_remote_code)
    if not texts:
        raise UsageError(f"no text in {cfg.dataset_name}")
    random.Random(cfg.seed).shuffle(texts)
    n_val = round(opts.val_fraction * len(texts)) if opts.val_fraction else 0
    if opts.val_fraction and not 0 < n_val < len(texts):
        raise UsageError(f"--val_fraction {opts.val_fraction} leaves no training or no validation passages")
    log(f"continued pretraining on {len(texts) - n_val} passages" + (f", {n_val} held out" if n_val else ""))
    train = datasets.Dataset.from_dict({"text": texts[n_val:]})
    return train, datasets.Dataset.from_dict({"text": texts[:n_val]}) if n_val else None


def load_model_for_training(cfg, device: str):
    """The base model, quantized (4-bit NF4 by default, --quant8, --noquant), ready for k-bit training."""
    import transformers

    from .modeling import compute_dtype, load_model

    quant4 = not (cfg.quant8 or cfg.noquant)
    kwargs = {}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and device == "cuda":
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    model = load_model(transformers.AutoModelForCausalLM, cfg.base_model, device=device, quant4=quant4,
                       quant8=cfg.quant8, trust_remote_code=cfg.trust_remote_code,
                       dtype=compute_dtype(device) if device == "cuda" else None)
    if quant4 or cfg.quant8:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.checkpointing(device))
        if device == "cpu":
            disable_cpu_bf16_repacking(model)
    model.config.use_cache = False
    return model


def lora_config(cfg, task_type: str = "CAUSAL_LM"):
    from peft import LoraConfig

    from .vocab import read_marker

    targets = cfg.target_modules
    targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    extension = read_marker(cfg.base_model)
    extra = {"trainable_token_indices": extension["new_token_ids"]} if extension else {}
    if extension:
        log(f"the base model's vocabulary was extended (extend_tokenizer.py): its {len(extension['new_token_ids'])} "
            "new embedding rows are trained too")
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, bias="none", task_type=task_type, **extra)


def expose_head_bias(model) -> None:
    """TRL's fused loss reads `lm_head.weight` and `lm_head.bias`. When new token rows are trained, peft wraps the
    head: the wrapper's `weight` is the head with the trained rows (so the loss trains them), but it has no
    `bias` attribute, and the first step fails. Give it the head's own (None: LM heads have no bias)."""
    head = model.get_output_embeddings()
    if type(head).__name__ == "TrainableTokensWrapper" and head.original_module.bias is None:
        try:
            head.bias  # noqa: B018 - a later peft may expose it
        except AttributeError:
            head.bias = None


def common_trainer_kwargs(cfg, device: str, has_eval: bool) -> dict:
    """TrainingArguments shared by SFT, DPO and ORPO."""
    import torch

    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return dict(
        output_dir=cfg.checkpoints_dir, num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type, warmup_steps=cfg.warmup_ratio, seed=cfg.seed,
        logging_steps=cfg.logging_steps, logging_first_step=True, save_steps=cfg.save_steps,
        save_total_limit=2, eval_strategy="steps" if has_eval else "no",
        eval_steps=(cfg.eval_steps or cfg.save_steps) if has_eval else None, report_to=cfg.report_to,
        use_cpu=device == "cpu", bf16=bf16, fp16=device == "cuda" and not bf16,
        activation_checkpointing=cfg.checkpointing(device), ddp_find_unused_parameters=False,
        disable_tqdm=False,
    )


def last_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint. The trainer writes trainer_state.json last, so a folder without it was
    cut off while saving (a kill, a full disk): it cannot be resumed from, and is removed."""
    import re
    import shutil

    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in folder.iterdir()
                   if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name)))
    for _, path in reversed(found):
        if (path / "trainer_state.json").exists():
            return str(path)
        if is_main_process():
            log(f"removing {path}: it was cut off while being saved")
            shutil.rmtree(path, ignore_errors=True)
    return None


def train(trainer, output_dir: str, fresh: bool = False):
    """Train, resuming automatically from the newest checkpoint of an interrupted run (unless `fresh`)."""
    resume = None if fresh else last_checkpoint(output_dir)
    if resume:
        log(f"resuming from {resume}")
    import torch

    if torch.cuda.is_available():  # loading and training peak apart: they fail for different reasons
        trainer.l2l_load_peak = torch.cuda.max_memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    return trainer.train(resume_from_checkpoint=resume)


def summarize(trainer, result, train_ds, eval_ds, noun: str) -> dict:
    """Final losses and sizes: train loss and steps, validation loss when there is a validation split."""
    summary = {"train_loss": result.training_loss, "steps": trainer.state.global_step,
               f"train_{noun}": len(train_ds), "processes": trainer.args.world_size}
    summary.update(speed(trainer, result))
    if eval_ds is not None:
        summary["validation_loss"] = trainer.evaluate()["eval_loss"]
        summary[f"validation_{noun}"] = len(eval_ds)
    return summary


def speed(trainer, result) -> dict:
    """Seconds, trained tokens per second (the real tokens TRL counts, all processes) and, on a GPU, the
    peak memory this process allocated while training and while loading: what a user compares between
    --quant8, --noquant and the default."""
    seconds = result.metrics.get("train_runtime") or 0.0
    tokens = max((e.get("num_tokens", 0) for e in trainer.state.log_history), default=0)
    out = {"train_seconds": round(seconds, 1)}
    if tokens and seconds:
        out["tokens_per_second"] = round(tokens / seconds)
    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated():
        out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        out["loading_peak_gpu_memory_gib"] = round(getattr(trainer, "l2l_load_peak", 0) / 2**30, 2)
    log(", ".join(f"{k} {v}" for k, v in out.items()))
    return out


def finish(trainer, tokenizer, cfg, kind: str, summary: dict, eos_ids: list[int], template_name: str) -> None:
    """On the main process: write tuned_model/, push it when asked, print where it is."""
    if not is_main_process():
        return
    out = save_outputs(trainer, tokenizer, cfg, kind, summary, eos_ids, template_name)
    log(f"adapter, tokenizer, model card and loss plot in {out}")
    if cfg.hub.push_to_hub:
        push_adapter(out, cfg.hub_model_id or cfg.tuned_model, cfg.hub.private)
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
            ax.plot([s for s, _ in points], [v for _, v in points], marker="o" if len(points) < 30 else None,
                    label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def model_card(cfg, kind: str, summary: dict, template_name: str) -> str:
    hp = {k: getattr(cfg, k) for k in ("base_model", "dataset_name", "instruction_prompt", "max_seq_length",
                                        "num_train_epochs", "max_steps", "batch_size", "gradient_accumulation_steps",
                                        "learning_rate", "lr_scheduler_type", "warmup_ratio", "lora_r", "lora_alpha",
                                        "lora_dropout", "target_modules", "seed")}
    hp["thread_template"] = template_name
    hp["quantization"] = cfg.quantization
    rows = "\n".join(f"| {k} | {v} |" for k, v in hp.items())
    metrics = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in summary.items())
    return f"""---
base_model: {cfg.base_model}
library_name: peft
tags: [l2l, lora, {kind}]
---
# {Path(cfg.tuned_model).name}

A LoRA adapter for `{cfg.base_model}`, trained with {kind.upper()} by l2l on `{cfg.dataset_name}`.

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
python run_inference.py {cfg.tuned_model} "{cfg.instruction_prompt}" "your question"
```
"""


def save_outputs(trainer, tokenizer, cfg, kind: str, summary: dict, eos_ids: list[int] | None = None,
                 template_name: str = "llama3") -> Path:
    """Adapter, tokenizer, generation settings, model card, loss plot and summary in tuned_model/."""
    out = Path(cfg.tuned_model)
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
    plot_losses(curves, out / "loss.png", f"{kind.upper()} {Path(cfg.tuned_model).name}")
    (out / "README.md").write_text(model_card(cfg, kind, summary, template_name), encoding="utf-8")
    (out / "training_summary.json").write_text(json.dumps(
        {"kind": kind, "base_model": cfg.base_model, "dataset": cfg.dataset_name,
         "instruction_prompt": getattr(cfg, "instruction_prompt", None), **summary,
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
