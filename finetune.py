#!/usr/bin/env python
"""Fine-tune a chat model on translated threads with (Q)LoRA supervised fine-tuning (or, with --raw_text,
continue its pretraining on plain target-language text).

    python finetune.py tuned_model dataset_name instruction_prompt [--base_model M] [flags]
    python finetune.py ./cpt corpus_pt.txt "" --raw_text --base_model ./smollm2-pt-vocab
    accelerate launch finetune.py ...   # several GPUs (or processes)
"""

from __future__ import annotations

import argparse

from l2l.cli import Parser, log, run
from l2l.config import add_arguments
from l2l.train_config import SFTOptions
from threads.args import add_thread_arguments


def build_parser() -> Parser:
    p = Parser(prog="finetune.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, SFTOptions)
    add_thread_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from l2l.config import from_args
    from threads.args import thread_options

    args = build_parser().parse_args(argv)
    cfg = from_args(SFTOptions, args)
    opts = thread_options(args, cfg.dataset_name)
    from l2l import training
    from l2l.modeling import device_for

    training.check_outputs(cfg, opts)
    device = device_for(cfg.cpu)
    tokenizer = training.load_tokenizer_for_training(cfg.base_model, cfg.padding, cfg.trust_remote_code)
    if cfg.raw_text:
        train_ds, eval_ds = training.raw_text_splits(cfg, opts)
        eos_ids, answers_only = [tokenizer.eos_token_id], False
    else:
        train_ds, eval_ds, eos_ids, answers_only = thread_splits(cfg, opts, tokenizer)

    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(**training.common_trainer_kwargs(cfg, device, eval_ds is not None),
                       max_length=cfg.max_seq_length, packing=cfg.packing or cfg.raw_text,
                       packing_strategy="wrapped" if cfg.raw_text else cfg.packing_strategy,
                       assistant_only_loss=answers_only)
    model = training.load_model_for_training(cfg, device)
    training.start_checkpoints(cfg, opts)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tokenizer, peft_config=training.lora_config(cfg))
    training.expose_head_bias(trainer.model)
    result = training.train(trainer, config.output_dir, fresh=cfg.overwrite)
    summary = training.summarize(trainer, result, train_ds, eval_ds, "passages" if cfg.raw_text else "threads")
    training.finish(trainer, tokenizer, cfg, "pretrain" if cfg.raw_text else "sft", summary, eos_ids, opts.template)
    return 0


def thread_splits(cfg, opts, tokenizer):
    """Training and validation threads with the chat template set on the tokenizer, its stop tokens, and
    whether the loss can go on answers only."""
    from trl.chat_template_utils import has_generation_markers

    from l2l import training
    from l2l.io import save_dataset
    from threads import templates
    from threads.make import make

    dsd, template = make(opts, tokenizer)
    training.require_train_split(dsd, cfg.dataset_name)
    training.check_lengths(dsd["train"]["messages"], tokenizer, template, cfg.max_seq_length)
    if cfg.threads_output_name and training.is_main_process():
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
