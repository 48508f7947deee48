"""What a training run leaves behind: the adapter and tokenizer, the model card, the loss plot, the summary, and
the push to the Hub when asked."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from l2l.cli import UsageError, first_line, log
from l2l.train.runs import is_main_process


def finish(trainer, tokenizer, cfg, kind: str, summary: dict, eos_ids: list[int], template_name: str) -> None:
    """On the main process: write tuned_model/, push it when asked, print where it is."""
    if not is_main_process():
        return
    out = save_outputs(trainer, tokenizer, cfg, kind, summary, eos_ids, template_name)
    log(f"{'model' if cfg.full_finetune else 'adapter'}, tokenizer, model card and loss plot in {out}")
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
    from l2l.config import names_where

    hp = {k: getattr(cfg, k) for k in names_where(type(cfg), "card")}
    hp["thread_template"] = template_name
    hp["quantization"] = cfg.quantization
    if cfg.full_finetune or cfg.new_rows_only:  # no LoRA trained: its settings do not apply
        for k in ("lora_r", "lora_alpha", "lora_dropout", "target_modules"):
            hp.pop(k, None)
    rows = "\n".join(f"| {k} | {v} |" for k, v in hp.items())
    metrics = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in summary.items())
    what = (f"`{cfg.base_model}` fine-tuned in full" if cfg.full_finetune
            else f"An adapter for `{cfg.base_model}` that trains its new vocabulary rows only"
            if cfg.new_rows_only else f"A LoRA adapter for `{cfg.base_model}`"
            + (" (with its embeddings trained fully)" if cfg.train_embeddings else ""))
    method = "full-finetune" if cfg.full_finetune else "trainable-tokens" if cfg.new_rows_only else "lora"
    return f"""---
base_model: {cfg.base_model}
library_name: {"transformers" if cfg.full_finetune else "peft"}
tags: [l2l, {method}, {kind}]
---
# {Path(cfg.tuned_model).name}

{what}, trained with {kind.upper()} by l2l on `{cfg.dataset_name}`.

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
python run_inference.py {cfg.tuned_model} "{getattr(cfg, 'instruction_prompt', '')}" "your question"
```
"""


def save_outputs(trainer, tokenizer, cfg, kind: str, summary: dict, eos_ids: list[int] | None = None,
                 template_name: str = "llama3") -> Path:
    """Adapter, tokenizer, generation settings, model card, loss plot and summary in tuned_model/."""
    from l2l.io import building

    with building(cfg.tuned_model, f"{kind} {'model' if cfg.full_finetune else 'adapter'}") as out:
        trainer.model.save_pretrained(out)
        from l2l import templates

        templates.save_with(tokenizer, out)  # inference template; the marked one beside it for training
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
    return Path(cfg.tuned_model)


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
