"""DPO and ORPO: everything finetune_dpo.py and finetune_orpo.py share beyond l2l/train/runs.py."""

from __future__ import annotations

import argparse
import dataclasses

from l2l.cli import Parser, UsageError, first_line, log
from l2l.config import add_arguments
from l2l.train import loading, outputs, runs
from l2l.train.config import PreferenceOptions


def build_parser(prog: str, description: str) -> Parser:
    from l2l.config import unflagged
    from l2l.threads.args import add_thread_arguments
    from l2l.threads.make import ThreadOptions

    p = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.run_file_ignores = unflagged(ThreadOptions)  # a run's l2l_training_settings.json replays it
    add_arguments(p, PreferenceOptions)
    add_thread_arguments(p)
    return p


def load_model(cfg: PreferenceOptions, device: str, kind: str = "dpo"):
    """The base model, plus the SFT adapter made trainable when --adapter is given (else a fresh LoRA)."""
    if cfg.adapter and cfg.train_embeddings and not adapter_trains_embeddings(cfg.adapter):
        raise UsageError(f"--train_embeddings: the adapter {cfg.adapter} was trained without its embeddings, and "
                         "continuing it keeps its shape; train the SFT adapter with --train_embeddings, or start a "
                         "fresh LoRA (no --adapter)")
    model = loading.load_model_for_training(cfg, device, reference_copy=kind == "dpo")  # ORPO needs none
    if not cfg.adapter:
        return model, loading.lora_config(cfg, model)
    from l2l.inference import attach_adapter

    model = attach_adapter(model, cfg.adapter, trainable=True)
    if device == "cpu":
        loading.disable_cpu_bf16_repacking(model)
    return model, None


def adapter_trains_embeddings(adapter: str) -> bool:
    from peft import PeftConfig

    try:
        return bool(getattr(PeftConfig.from_pretrained(adapter), "modules_to_save", None))
    except Exception as e:  # not there, not an adapter: the adapter's own load says so in one line
        raise UsageError(f"--adapter {adapter}: no adapter_config.json could be read ({first_line(e)})") from e


def preference_metrics(log_history: list[dict]) -> dict:
    """The last logged reward accuracy and margin, train and validation."""
    out = {}
    for entry in log_history:
        for key in ("rewards/accuracies", "rewards/margins", "eval_rewards/accuracies", "eval_rewards/margins"):
            if key in entry:
                out[key.replace("/", "_")] = float(entry[key])
    return out


def tokenizer_and_options(cfg: PreferenceOptions, opts):
    """The tokenizer (an SFT adapter's own when it has one) and the thread options with the template resolved:
    by default the chat template the adapter was trained with."""
    from pathlib import Path

    from_adapter = bool(cfg.adapter) and (Path(cfg.adapter) / "tokenizer_config.json").exists()
    tokenizer = loading.load_tokenizer_for_training(cfg.adapter if from_adapter else cfg.base_model,
                                                     cfg.padding, cfg.trust_remote_code)
    if opts.thread_template is None:
        opts = dataclasses.replace(opts, thread_template="tokenizer" if from_adapter and tokenizer.chat_template
                                   else "llama3")
        log("chat template: " + (f"the one saved with {cfg.adapter}" if opts.template == "tokenizer" else "llama3"))
    return tokenizer, opts


def make_trainer(kind: str, cfg: PreferenceOptions, device: str, model, peft_config, tokenizer, train_ds, eval_ds):
    common = runs.common_trainer_kwargs(cfg, device, eval_ds is not None)
    if kind == "dpo":
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(**common, beta=cfg.beta, max_length=cfg.max_seq_length)
        return DPOTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                          processing_class=tokenizer, peft_config=peft_config)
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    config = ORPOConfig(**common, beta=cfg.beta, max_length=cfg.max_seq_length, remove_unused_columns=False,
                        max_completion_length=max(1, cfg.max_seq_length - cfg.max_prompt_length))
    return ORPOTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                       processing_class=tokenizer, peft_config=peft_config)


def main(argv, kind: str, prog: str, description: str) -> int:
    from l2l.config import from_args
    from l2l.threads.args import thread_options

    args = build_parser(prog, description).parse_args(argv)
    cfg = from_args(PreferenceOptions, args)
    opts = thread_options(args, cfg.dataset_name)
    from l2l import templates
    from l2l.io import save_dataset
    from l2l.modeling import device_for
    from l2l.threads.make import build_pairs, pairs_dataset

    runs.check_outputs(cfg, opts)
    device = device_for(cfg.cpu)
    tokenizer, opts = tokenizer_and_options(cfg, opts)
    template = templates.load(opts.template, tokenizer)
    dsd = pairs_dataset(build_pairs(opts, templates.prompt_counter(tokenizer, template), cfg.max_prompt_length))
    runs.require_train_split(dsd, cfg.dataset_name)
    if cfg.threads_output_name and runs.is_main_process():
        save_dataset(dsd, cfg.threads_output_name, overwrite=True)
    tokenizer.chat_template = template
    eos_ids = templates.stop_token_ids(template, tokenizer)
    columns = ["prompt", "chosen", "rejected"]
    train_ds = dsd["train"].select_columns(columns)
    eval_ds = dsd["validation"].select_columns(columns) if "validation" in dsd else None
    model, peft_config = load_model(cfg, device, kind)
    runs.start_checkpoints(cfg, opts)
    trainer = make_trainer(kind, cfg, device, model, peft_config, tokenizer, train_ds, eval_ds)
    loading.prepare_trainable(trainer, cfg)
    result = runs.train(trainer, cfg.checkpoints_dir, fresh=cfg.overwrite)
    summary = runs.summarize(trainer, result, train_ds, eval_ds, "pairs")
    summary.update(preference_metrics(trainer.state.log_history))
    if cfg.adapter:
        summary["started_from_adapter"] = cfg.adapter
    outputs.finish(trainer, tokenizer, cfg, kind, summary, eos_ids, opts.template)
    return 0
