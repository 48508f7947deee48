#!/usr/bin/env python
"""Fine-tune a chat model on translated threads with (Q)LoRA supervised fine-tuning.

    python finetune.py tuned_model dataset_name instruction_prompt [--base_model M] [flags]
    accelerate launch finetune.py ...   # several GPUs (or processes)
"""

from __future__ import annotations

import argparse

from l2l.cli import Parser, log, run
from l2l.training import add_training_arguments
from threads.args import add_thread_arguments


def build_parser() -> Parser:
    p = Parser(prog="finetune.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(p)
    p.add_argument("--packing", action="store_true",
                   help="Pack several threads into each sequence of --max_seq_length (no padding).")
    p.add_argument("--packing_strategy", choices=["bfd", "bfd_split", "wrapped"], default="bfd",
                   help="bfd (default): whole threads, attention kept within each thread (padding-free); "
                        "wrapped: a continuous stream cut at --max_seq_length. See docs/BENCHMARKS.md.")
    p.add_argument("--full_loss", action="store_true",
                   help="Train on whole conversations (default: answers only, where the template marks them).")
    add_thread_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from l2l import training
    from l2l.io import save_dataset
    from l2l.modeling import device_for
    from threads import templates
    from threads.args import thread_options
    from threads.make import make

    training.check_arguments(args)
    opts = thread_options(args, args.dataset_name)
    opts.validate()
    args.thread_template = opts.thread_template  # resolved default, for the model card
    device = device_for(args.cpu)
    tokenizer = training.load_tokenizer_for_training(args.base_model, args.padding, args.trust_remote_code)
    dsd, template = make(opts, tokenizer)
    if args.threads_output_name and training.is_main_process():
        save_dataset(dsd, args.threads_output_name, overwrite=True)
    tokenizer.chat_template = template
    eos_ids = templates.stop_token_ids(template, tokenizer)

    from trl import SFTConfig, SFTTrainer
    from trl.chat_template_utils import has_generation_markers

    answers_only = not args.full_loss and has_generation_markers(template)
    if not args.full_loss and not answers_only:
        log("note: the chat template has no {% generation %} markers: training on whole conversations")
    train_ds = dsd["train"].select_columns(["messages"])
    eval_ds = dsd["validation"].select_columns(["messages"]) if "validation" in dsd else None
    config = SFTConfig(**training.common_trainer_kwargs(args, device, eval_ds is not None),
                       max_length=args.max_seq_length, packing=args.packing, packing_strategy=args.packing_strategy,
                       assistant_only_loss=answers_only)
    model = training.load_model_for_training(args, device)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tokenizer, peft_config=training.lora_config(args))
    result = training.train(trainer, config.output_dir)
    summary = training.summarize(trainer, result, train_ds, eval_ds, "threads")
    training.finish(trainer, tokenizer, args, "sft", summary, eos_ids)
    return 0


if __name__ == "__main__":
    run(main)
