"""A training run: its checks before anything is written, the data checks, trainer settings, automatic resume,
and the summary of what it did (the model is l2l/train/loading.py, the outputs l2l/train/outputs.py, the flags
l2l/train/config.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from l2l.cli import UsageError, log

if TYPE_CHECKING:
    from l2l.threads.make import ThreadOptions
    from l2l.train.config import TrainingConfig


def check_outputs(cfg: TrainingConfig, thread_opts: ThreadOptions | None = None) -> None:
    """Before anything slow: the outputs are free (or --overwrite) and apart from every input, and the
    checkpoint folder holds no run with other settings (cfg's and the thread options')."""
    from l2l.io import check_apart, check_output_free, check_writable
    from l2l.modeling import check_model_files
    from l2l.train.config import check_checkpoints, flat_settings
    from l2l.train.loading import check_new_rows

    inputs = (*cfg.inputs(), *([thread_opts.source_dataset] if thread_opts else []))
    check_output_free(cfg.tuned_model, cfg.overwrite, inputs=inputs)
    check_apart(cfg.checkpoints_dir, *inputs)
    check_writable(cfg.checkpoints_dir, folder=True, flag="the checkpoint folder")
    check_checkpoint_folder(cfg)
    if getattr(cfg, "threads_output_name", None):
        check_apart(cfg.threads_output_name, *inputs, cfg.tuned_model, cfg.checkpoints_dir)
        check_output_free(cfg.threads_output_name, True, flag="--threads_output_name")  # replaced by each run
    check_model_files(cfg.base_model)
    check_new_rows(cfg)
    check_checkpoints(cfg, flat_settings(cfg, *([thread_opts] if thread_opts else [])))


def check_checkpoint_folder(cfg: TrainingConfig) -> None:
    """The checkpoint folder is apart from tuned_model (which is replaced whole at the end) and is the toolkit's,
    empty, or holds only trainer checkpoints: it is marked, and --overwrite deletes it."""
    from l2l.io import is_own

    folder, tuned = Path(cfg.checkpoints_dir).resolve(), Path(cfg.tuned_model).resolve()
    if folder == tuned or folder.is_relative_to(tuned) or tuned.is_relative_to(folder):
        raise UsageError(f"the checkpoint folder {cfg.checkpoints_dir} and tuned_model {cfg.tuned_model} must be "
                         "apart (tuned_model is replaced whole when training ends)")
    if not folder.is_dir() or is_own(folder):
        return
    foreign = sorted(p.name for p in folder.iterdir() if not p.name.startswith("checkpoint-"))
    if foreign:
        raise UsageError(f"the checkpoint folder {cfg.checkpoints_dir} holds files this toolkit did not write (such "
                         f"as {foreign[0]}); choose another --output_dir")


def start_checkpoints(cfg: TrainingConfig, thread_opts: ThreadOptions | None = None) -> None:
    """Right before training: clear the old run's checkpoints with --overwrite, record these settings."""
    from l2l.train.config import flat_settings, record_checkpoints

    settings = flat_settings(cfg, *([thread_opts] if thread_opts else []))
    record_checkpoints(cfg, settings, main_process=is_main_process())


def check_lengths(conversations: list[list[dict]], tokenizer, template: str, max_len: int) -> None:
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

    full = lengths([render(m, False) for m in conversations])
    starts = lengths([render(m, True) for m in conversations])
    usable = sum(1 for s in starts if s < max_len)
    if not usable:
        raise UsageError(f"none of the {len(conversations)} training threads fits --max_seq_length {max_len}: "
                         f"the first answer starts at token {min(starts)} at the earliest (the shortest thread has "
                         f"{min(full)} tokens); raise --max_seq_length or use a shorter chat template "
                         "(--thread_template chatml, or tokenizer)")
    cut = sum(1 for n in full if n > max_len)
    if cut:
        log(f"{cut} of {len(conversations)} training threads are longer than --max_seq_length {max_len} tokens "
            "and are cut "
            + (f"to it; {len(conversations) - usable} of them keep no answer token and teach nothing"
               if usable < len(conversations) else "to it"))


def require_train_split(dsd, dataset: str) -> None:
    if "train" not in dsd:
        raise UsageError(f"dataset {dataset} has no 'train' split (splits: {', '.join(dsd)}); training needs one")


def sft_trainer(cfg: TrainingConfig, thread_opts: ThreadOptions | None, device: str, tokenizer, train_ds, eval_ds,
                **sft_args):
    """trl's SFTTrainer over the model loaded for training (SFT, and continued pretraining): the trainer settings,
    the model with LoRA, these settings recorded beside the checkpoints. sft_args: SFTConfig's own (packing...)."""
    from trl import SFTConfig, SFTTrainer

    from l2l.train import loading

    config = SFTConfig(**common_trainer_kwargs(cfg, device, eval_ds is not None), max_length=cfg.max_seq_length,
                       **sft_args)
    model = loading.load_model_for_training(cfg, device)
    peft_config = loading.lora_config(cfg, model)
    start_checkpoints(cfg, thread_opts)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tokenizer, peft_config=peft_config)
    loading.prepare_trainable(trainer, cfg)
    return trainer


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
        disable_tqdm=False, **({"optim": cfg.optim} if cfg.optim else {}),
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
    from l2l.io import disk_full_names

    with disk_full_names(output_dir):  # a checkpoint cut off by a full disk: removed by the next last_checkpoint
        return trainer.train(resume_from_checkpoint=resume)


def summarize(trainer, result, train_ds, eval_ds, noun: str) -> dict:
    """Final losses and sizes: train loss and steps, validation loss when there is a validation split."""
    summary = {"train_loss": result.training_loss, "steps": trainer.state.global_step,
               f"train_{noun}": len(train_ds) if hasattr(train_ds, "__len__") else "streamed",
               "processes": trainer.args.world_size}
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


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
