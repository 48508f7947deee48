#!/usr/bin/env python
"""Fine-tune a chat model on translated threads with (Q)LoRA supervised fine-tuning.

    python finetune.py tuned_model dataset_name instruction_prompt [--base_model M] [flags]
    python finetune.py --config recipes/quickstart_sft.yaml        # a run file; flags on the command line win
    accelerate launch finetune.py ...   # several GPUs (or processes)

Continued pretraining on plain text is pretrain.py (finetune.py's --raw_text still works and runs it).
"""

from __future__ import annotations

import argparse

from l2l.cli import Parser, log, run
from l2l.config import add_arguments
from l2l.threads.args import add_thread_arguments
from l2l.train.config import SFTOptions


def build_parser() -> Parser:
    from l2l.config import unflagged
    from l2l.threads.make import ThreadOptions

    p = Parser(prog="finetune.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, SFTOptions)
    add_thread_arguments(p)
    p.run_file_ignores = unflagged(ThreadOptions)  # a run's l2l_training_settings.json replays it
    return p


def main(argv: list[str] | None = None) -> int:
    from l2l.config import from_args
    from l2l.threads.args import thread_options

    args = build_parser().parse_args(argv)
    cfg = from_args(SFTOptions, args)
    opts = thread_options(args, cfg.dataset_name)
    if cfg.raw_text:
        return pretrain_instead(cfg, opts)
    from l2l.modeling import device_for
    from l2l.train import loading, outputs, runs

    # Check the outputs and the recorded settings before anything slow
    runs.check_outputs(cfg, opts)
    device = device_for(cfg.cpu)
    tokenizer = loading.load_tokenizer_for_training(cfg.base_model, cfg.padding, cfg.trust_remote_code)
    # Build the threads
    train_ds, eval_ds, eos_ids, answers_only = thread_splits(cfg, opts, tokenizer)

    # Initialize the trainer
    trainer = runs.sft_trainer(cfg, opts, device, tokenizer, train_ds, eval_ds, packing=cfg.packing,
                               packing_strategy=cfg.packing_strategy, assistant_only_loss=answers_only)
    # Train
    result = runs.train(trainer, trainer.args.output_dir, fresh=cfg.overwrite)
    # Save (and push when asked)
    summary = runs.summarize(trainer, result, train_ds, eval_ds, "threads")
    outputs.finish(trainer, tokenizer, cfg, "sft", summary, eos_ids, opts.template)
    return 0


def pretrain_instead(cfg: SFTOptions, opts) -> int:
    """finetune.py --raw_text (kept for the command lines that use it): the same run as pretrain.py."""
    import dataclasses

    from l2l.train.config import PretrainOptions
    from l2l.train.pretrain import pretrain

    log("note: continued pretraining has its own script now: python pretrain.py TUNED TEXT [flags] "
        "(the instruction prompt and the thread flags are not used)")
    shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(PretrainOptions) if hasattr(cfg, f.name)}
    return pretrain(PretrainOptions(**shared, text_field=cfg.raw_text_field, val_fraction=opts.val_fraction))


def thread_splits(cfg, opts, tokenizer):
    """Training and validation threads with the chat template set on the tokenizer, its stop tokens, and
    whether the loss can go on answers only."""
    from trl.chat_template_utils import has_generation_markers

    from l2l import templates
    from l2l.io import save_dataset
    from l2l.threads.make import make
    from l2l.train import runs

    dsd, template = make(opts, tokenizer)
    runs.require_train_split(dsd, cfg.dataset_name)
    runs.check_lengths(dsd["train"]["messages"], tokenizer, template, cfg.max_seq_length)
    if cfg.threads_output_name and runs.is_main_process():
        save_dataset(dsd, cfg.threads_output_name, overwrite=True)
    tokenizer.chat_template = template
    answers_only = not cfg.full_loss and has_generation_markers(template)
    if not cfg.full_loss and not answers_only:
        log("note: the chat template has no {% generation %} markers: training on whole conversations")
    eval_ds = dsd["validation"].select_columns(["messages"]) if "validation" in dsd else None
    eos_ids = templates.stop_token_ids(template, tokenizer)
    return dsd["train"].select_columns(["messages"]), eval_ds, eos_ids, answers_only


if __name__ == "__main__":
    run(main)
